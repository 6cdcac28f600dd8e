//! A small fleet for server-to-server tests: a test CA, the real `atdirectory` on a fresh
//! Postgres database, and real `atserver` processes, each on its own loopback address
//! (127.0.0.x) with a certificate for exactly that address, registered through the directory's
//! REST API. Clients speak the protocol through `at_protocol::client`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use at_protocol::client::{AtConnection, ClientConfig, MonitorConnection, TlsOptions};
use at_protocol::AtSign;
use atfleet_test_support::bins::workspace_bin_or_build;
use atfleet_test_support::http::request;
pub use atfleet_test_support::pki::Leaf;
use atfleet_test_support::pki::TestCa;
use atfleet_test_support::process::{start_atserver, AtServerArgs, Directory};
use hyper::Method;
use tokio::process::Child;

pub const TOKEN: &str = "s2s-test-token-0123456789abcdef";

/// Client settings trusting the fleet's CA, optionally presenting `leaf` as client certificate.
fn client_config(ca: &TestCa, leaf: Option<&Leaf>) -> ClientConfig {
    let mut tls = TlsOptions::from_ca_pem_file(&ca.ca_path).unwrap();
    if let Some(l) = leaf {
        tls = tls.with_client_cert_pem_files(&l.cert, &l.key).unwrap();
    }
    ClientConfig::new(tls)
        .unwrap()
        .with_response_timeout(Duration::from_secs(30))
        .with_read_timeout(Duration::from_secs(30))
}

/// Fast retries so outages end quickly in tests, unless the node sets a flag itself.
fn node_args(own: &[String]) -> Vec<String> {
    let mut args = own.to_vec();
    for (flag, value) in [
        ("--delivery-backoff-ms", "100"),
        ("--delivery-quarantine-ms", "100"),
        ("--delivery-max-backoff-ms", "500"),
        ("--delivery-max-attempts", "100000"),
    ] {
        if !own.iter().any(|a| a == flag) {
            args.extend([flag.to_string(), value.to_string()]);
        }
    }
    args
}

/// One atServer process of the fleet.
pub struct Node {
    pub atsign: AtSign,
    /// Its loopback address, also the host registered in the directory and its certificate's SAN.
    pub host: String,
    pub leaf: Leaf,
    pub secret: String,
    pub data_dir: PathBuf,
    pub tls: SocketAddr,
    /// Its health/metrics listener.
    pub http: SocketAddr,
    /// Extra command-line flags.
    pub args: Vec<String>,
    child: Option<Child>,
}

pub struct Fleet {
    pub tmp: tempfile::TempDir,
    pub pki: TestCa,
    pub root_addr: SocketAddr,
    pub dir_http: SocketAddr,
    directory: Directory,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let pki = TestCa::new(tmp.path(), "s2s test CA");
        let leaf = pki.leaf("127.0.0.1");
        let bin = workspace_bin_or_build("atdirectory", "atdirectory", env!("CARGO"));
        let directory = Directory::start(&bin, tmp.path(), &leaf, TOKEN, "s2s").await;
        Fleet {
            pki,
            tmp,
            root_addr: directory.root_addr,
            dir_http: directory.http_addr,
            directory,
        }
    }

    /// A node for `atsign` on loopback address `host` (not started).
    pub fn node(&self, atsign: &str, host: &str) -> Node {
        let name = atsign.trim_start_matches('@');
        Node {
            atsign: AtSign::parse(atsign).unwrap(),
            host: host.to_string(),
            leaf: self.pki.leaf(host),
            secret: format!(
                "{:032x}{:032x}",
                rand::random::<u128>(),
                rand::random::<u128>()
            ),
            data_dir: self.tmp.path().join(format!("{name}-data")),
            tls: SocketAddr::from(([127, 0, 0, 1], 0)),
            http: SocketAddr::from(([127, 0, 0, 1], 0)),
            args: Vec::new(),
            child: None,
        }
    }

    /// Starts (or restarts) `node` on a fresh port without telling the directory.
    pub async fn spawn(&self, node: &mut Node) {
        let cram_secret_file = self.tmp.path().join(format!("{}.cram", node.atsign.name()));
        std::fs::write(&cram_secret_file, &node.secret).unwrap();
        let args = AtServerArgs {
            atsign: node.atsign.as_str().to_owned(),
            host: node.host.clone(),
            data_dir: node.data_dir.clone(),
            tls: node.leaf.clone(),
            cram_secret_file,
            ca_bundle: Some(self.pki.ca_path.clone()),
            root_server: Some(self.root_addr),
        };
        let mut command = args.command(env!("CARGO_BIN_EXE_atserver").as_ref());
        command.args(node_args(&node.args));
        let started = start_atserver(command).await;
        node.tls = started.tls;
        node.http = started.http;
        node.child = Some(started.child);
    }

    /// Registers `node`'s current address in the directory.
    pub async fn register(&self, node: &Node) {
        self.directory
            .register(
                node.atsign.as_str(),
                &node.host,
                node.tls.port(),
                "s2s-tests",
            )
            .await;
    }

    /// Starts and registers a node.
    pub async fn start_node(&self, atsign: &str, host: &str) -> Node {
        let mut node = self.node(atsign, host);
        self.spawn(&mut node).await;
        self.register(&node).await;
        node
    }

    /// An anonymous connection to `node`, optionally presenting a client certificate.
    pub async fn connect(&self, node: &Node, leaf: Option<&Leaf>) -> AtConnection {
        AtConnection::connect_with_sni(
            &client_config(&self.pki, leaf),
            &node.host,
            node.tls.port(),
            &node.host,
        )
        .await
        .expect("connect")
    }

    /// An owner (CRAM) connection to `node`.
    pub async fn owner(&self, node: &Node) -> AtConnection {
        let mut c = self.connect(node, None).await;
        c.authenticate_cram(&node.atsign, &node.secret)
            .await
            .expect("cram");
        c
    }

    /// An owner monitor connection to `node` (`monitor` with `args`, e.g. `:0 app`).
    pub async fn monitor(&self, node: &Node, args: &str) -> MonitorConnection {
        self.owner(node)
            .await
            .monitor(&format!("monitor{args}"))
            .await
            .expect("monitor")
    }
}

impl Node {
    /// Kills the process (no graceful shutdown: what survives is what was on disk).
    pub async fn kill(&mut self) {
        if let Some(mut c) = self.child.take() {
            c.kill().await.ok();
            c.wait().await.ok();
        }
    }
}

/// The Prometheus text of a node's `/metrics`.
pub async fn metrics(node: &Node) -> String {
    let (status, text) = request(
        Method::GET,
        &format!("http://{}/metrics", node.http),
        Some(TOKEN),
        None,
    )
    .await;
    assert_eq!(status, 200, "GET /metrics: {text}");
    text
}

/// Sends `cmd` and returns the reply line without its prompt (`data:…` / `error:…`).
pub async fn send(c: &mut AtConnection, cmd: &str) -> String {
    c.send_raw(cmd).await.expect("reply").trim().to_string()
}

/// The JSON after `data:`.
pub fn json(reply: &str) -> serde_json::Value {
    let data = reply
        .strip_prefix("data:")
        .unwrap_or_else(|| panic!("not data: {reply}"));
    serde_json::from_str(data).unwrap_or_else(|e| panic!("not JSON ({e}): {reply}"))
}

/// The error code of an `error:` reply.
pub fn code(reply: &str) -> &str {
    reply
        .strip_prefix("error:")
        .and_then(|r| r.get(..6))
        .unwrap_or_else(|| panic!("not an error: {reply}"))
}

/// Sends `cmd` until the reply is `expected` (a bounded wait on a condition, not a fixed sleep).
pub async fn poll_until(c: &mut AtConnection, cmd: &str, expected: &str) {
    let mut last = String::new();
    let waited = tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            last = send(c, cmd).await;
            if last == expected {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(
        waited.is_ok(),
        "`{cmd}` never answered {expected}; last: {last}"
    );
}

/// The next non-stats notification on a monitor, as JSON.
pub async fn next_notification(m: &mut MonitorConnection) -> serde_json::Value {
    tokio::time::timeout(Duration::from_secs(60), async {
        loop {
            let text = m.next_notification().await.expect("monitor open");
            let v: serde_json::Value = serde_json::from_str(&text).expect("notification JSON");
            if v["id"] != "-1" {
                return v;
            }
        }
    })
    .await
    .expect("a notification within 60 s")
}
