//! A small fleet for server-to-server tests: a test CA, the real `atdirectory` on a fresh
//! Postgres database, and real `atserver` processes, each on its own loopback address
//! (127.0.0.x) with a certificate for exactly that address, registered through the directory's
//! REST API. Clients speak the protocol through `at_protocol::client`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use at_protocol::client::{AtConnection, ClientConfig, MonitorConnection, TlsOptions};
use at_protocol::AtSign;
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, IsCa, KeyPair, KeyUsagePurpose,
};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "s2s-test-token-0123456789abcdef";
const STARTUP: Duration = Duration::from_secs(90);

/// A binary of the workspace next to this test's (`<target>/debug/<name>`), built on demand.
fn workspace_bin(name: &str, package: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/debug/deps");
    let path = debug.join(name);
    if !path.exists() {
        let status = std::process::Command::new(env!("CARGO"))
            .args(["build", "-p", package, "--bin", name])
            .env(
                "CARGO_TARGET_DIR",
                debug.parent().expect("target directory"),
            )
            .status()
            .expect("run cargo build");
        assert!(status.success(), "cargo build -p {package} failed");
    }
    path
}

/// The CA and its issuer, which signs one leaf per host.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_path: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

/// PEM files of one leaf certificate.
#[derive(Clone)]
pub struct Leaf {
    pub cert: PathBuf,
    pub key: PathBuf,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "s2s test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let ca_path = dir.join("ca.pem");
        std::fs::write(&ca_path, issuer.as_ref().pem()).unwrap();
        Pki {
            dir: dir.to_path_buf(),
            ca_path,
            issuer,
        }
    }

    /// A leaf whose SAN is exactly `host` (server and client use).
    pub fn leaf(&self, host: &str) -> Leaf {
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let leaf = Leaf {
            cert: self.dir.join(format!("{host}.pem")),
            key: self.dir.join(format!("{host}.key")),
        };
        std::fs::write(&leaf.key, key.serialize_pem()).unwrap();
        std::fs::write(&leaf.cert, cert.pem()).unwrap();
        leaf
    }

    /// Client settings trusting the CA, optionally presenting `leaf` as client certificate.
    pub fn client(&self, leaf: Option<&Leaf>) -> ClientConfig {
        let mut tls = TlsOptions::from_ca_pem_file(&self.ca_path).unwrap();
        if let Some(l) = leaf {
            tls = tls.with_client_cert_pem_files(&l.cert, &l.key).unwrap();
        }
        ClientConfig::new(tls)
            .unwrap()
            .with_response_timeout(Duration::from_secs(30))
            .with_read_timeout(Duration::from_secs(30))
    }
}

async fn http(method: Method, url: &str, body: Option<String>) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder()
        .method(method)
        .uri(url)
        .header("authorization", format!("Bearer {TOKEN}"));
    if body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(body.unwrap_or_default())))
        .unwrap();
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            let text = bytes
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            (status, text)
        }
        Err(_) => (0, String::new()),
    }
}

async fn wait_ready(addr: SocketAddr) {
    let url = format!("http://{addr}/readyz");
    tokio::time::timeout(STARTUP, async {
        loop {
            if http(Method::GET, &url, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} never became ready"));
}

/// A new empty database on the cluster of `DATABASE_URL`, so tests run in parallel.
async fn fresh_database() -> String {
    let base = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "DATABASE_URL is not set: run under scripts/with-postgres (scripts/with-postgres -- cargo test -p atserver)"
        ),
    };
    let name = format!("s2s_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to Postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p.to_owned(), Some(q.to_owned())),
        None => (base.clone(), None),
    };
    let (server, _) = path.rsplit_once('/').expect("database URL has a path");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Reads stdout lines until `find` matches; keeps draining afterwards.
async fn first_match<T: Send + 'static>(
    child: &mut Child,
    what: &str,
    find: impl Fn(&str) -> Option<T>,
) -> T {
    let stdout = child.stdout.take().expect("piped stdout");
    let mut lines = BufReader::new(stdout).lines();
    let found = tokio::time::timeout(STARTUP, async {
        while let Ok(Some(line)) = lines.next_line().await {
            if let Some(t) = find(&line) {
                return Some(t);
            }
        }
        None
    })
    .await;
    let Ok(Some(found)) = found else {
        panic!("{what} did not start: {:?}", child.try_wait());
    };
    tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
    found
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
    pub pki: Pki,
    pub root_addr: SocketAddr,
    pub dir_http: SocketAddr,
    _directory: Child,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path());
        let leaf = pki.leaf("127.0.0.1");
        let token_file = tmp.path().join("token");
        std::fs::write(&token_file, TOKEN).unwrap();
        let mut child = Command::new(workspace_bin("atdirectory", "atdirectory"))
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&leaf.cert)
            .arg("--tls-key")
            .arg(&leaf.key)
            .arg("--api-token-file")
            .arg(&token_file)
            .args(["--database-url", &fresh_database().await])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atdirectory");
        let (root_addr, dir_http) = first_match(&mut child, "atdirectory", |line| {
            let v: serde_json::Value = serde_json::from_str(line).ok()?;
            let get = |f: &str| v.get(f)?.as_str()?.parse::<SocketAddr>().ok();
            Some((get("root_addr")?, get("http_addr")?))
        })
        .await;
        wait_ready(dir_http).await;
        Fleet {
            tmp,
            pki,
            root_addr,
            dir_http,
            _directory: child,
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
        let secret_file = self.tmp.path().join(format!("{}.cram", node.atsign.name()));
        std::fs::write(&secret_file, &node.secret).unwrap();
        let mut child = Command::new(env!("CARGO_BIN_EXE_atserver"))
            .args(["--atsign", node.atsign.as_str()])
            .args(["--listen", &format!("{}:0", node.host)])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&node.data_dir)
            .arg("--tls-cert")
            .arg(&node.leaf.cert)
            .arg("--tls-key")
            .arg(&node.leaf.key)
            .arg("--ca-bundle")
            .arg(&self.pki.ca_path)
            .args(["--root-server", &self.root_addr.to_string()])
            .arg("--cram-secret-file")
            .arg(&secret_file)
            .args(node_args(&node.args))
            .env("ATSERVER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atserver");
        let (tls, http_addr) = first_match(&mut child, "atserver", |line| {
            let word = |p: &str| {
                line.split_whitespace()
                    .find_map(|w| w.strip_prefix(p))?
                    .parse::<SocketAddr>()
                    .ok()
            };
            Some((word("tls=")?, word("http=")?))
        })
        .await;
        wait_ready(http_addr).await;
        node.tls = tls;
        node.http = http_addr;
        node.child = Some(child);
    }

    /// Registers `node`'s current address in the directory.
    pub async fn register(&self, node: &Node) {
        let body =
            serde_json::json!({"host": node.host, "port": node.tls.port(), "owner": "s2s-tests"});
        let (status, text) = http(
            Method::PUT,
            &format!("http://{}/v1/atsigns/{}", self.dir_http, node.atsign),
            Some(body.to_string()),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "register {}: {status} {text}",
            node.atsign
        );
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
            &self.pki.client(leaf),
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
    let (status, text) = http(Method::GET, &format!("http://{}/metrics", node.http), None).await;
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
