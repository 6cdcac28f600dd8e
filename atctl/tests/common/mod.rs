//! Harness for end-to-end tests: a test CA, the real `atdirectory` (on a fresh Postgres database) and
//! `atserver` binaries as child processes on ports chosen by the OS, registration through the
//! directory's REST API, and `atctl` itself run as a process.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use at_protocol::client::{AtConnection, ClientConfig, TlsOptions};
use at_protocol::crypto::{AtKeys, AtKeysFile, PkamSigner};
use at_protocol::AtSign;
use atfleet_test_support::bins::workspace_bin;
use atfleet_test_support::pki::{Leaf, TestCa};
use atfleet_test_support::process::{start_atserver, AtServerArgs, Directory};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "atctl-test-token-0123456789";

/// A binary built next to this test's (`$CARGO_TARGET_DIR/debug/<name>`).
pub fn bin(name: &str) -> PathBuf {
    workspace_bin(name, "`cargo build -p atserver -p atdirectory`")
}

/// One directory and any number of atServers sharing a CA, in one temporary folder.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub pki: TestCa,
    /// The leaf for `localhost`/`127.0.0.1` the directory and shared-host atServers serve.
    pub localhost: Leaf,
    pub root_addr: SocketAddr,
    pub dir_http: SocketAddr,
    directory: Directory,
    children: Vec<Child>,
}

pub struct Server {
    pub atsign: String,
    pub tls: SocketAddr,
    pub http: SocketAddr,
    pub secret: String,
    /// The loopback address it listens on.
    pub host: String,
    /// Its process among the fleet's children.
    child: usize,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let pki = TestCa::new(dir.path(), "atctl test CA");
        let localhost = pki.localhost_leaf("localhost");
        let directory =
            Directory::start(&bin("atdirectory"), dir.path(), &localhost, TOKEN, "atctl").await;
        Fleet {
            dir,
            pki,
            localhost,
            root_addr: directory.root_addr,
            dir_http: directory.http_addr,
            directory,
            children: Vec::new(),
        }
    }

    /// Starts an atServer for `atsign` with a fresh CRAM secret and registers it in the directory.
    pub async fn server(&mut self, atsign: &str) -> Server {
        let leaf = self.localhost.clone();
        self.server_at(atsign, "127.0.0.1", leaf).await
    }

    /// Like [`Self::server`], on a loopback address of its own (e.g. `127.0.0.2`) with a
    /// certificate naming only that address, as in a real fleet where each atServer proves its
    /// own host to its peers.
    pub async fn server_on_own_host(&mut self, atsign: &str, host: &str) -> Server {
        let leaf = self.pki.leaf(host);
        self.server_at(atsign, host, leaf).await
    }

    /// Stops `server`, replaces its CRAM secret file with a new secret (as the operator does when
    /// the Secret was deleted and the kubelet updates the mounted file) and starts it again on
    /// the same data folder.
    pub async fn restart_with_new_secret(&mut self, server: &Server) -> Server {
        let old = &mut self.children[server.child];
        old.start_kill().unwrap();
        old.wait().await.unwrap();
        let tls = if server.host == "127.0.0.1" {
            self.localhost.clone()
        } else {
            self.pki.leaf(&server.host)
        };
        self.server_at(&server.atsign, &server.host, tls).await
    }

    async fn server_at(&mut self, atsign: &str, host: &str, tls: Leaf) -> Server {
        let name = atsign.trim_start_matches('@');
        let secret = format!(
            "{:032x}{:032x}{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>(),
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let cram_secret_file = self.dir.path().join(format!("{name}.cram"));
        std::fs::write(&cram_secret_file, &secret).unwrap();
        let args = AtServerArgs {
            atsign: atsign.to_owned(),
            host: host.to_owned(),
            data_dir: self.dir.path().join(format!("{name}-data")),
            tls,
            cram_secret_file,
            ca_bundle: Some(self.pki.ca_path.clone()),
            root_server: Some(self.root_addr),
        };
        let started = start_atserver(args.command(&bin("atserver"))).await;
        self.children.push(started.child);
        self.directory
            .register(atsign, host, started.tls.port(), "atctl-tests")
            .await;
        Server {
            atsign: atsign.to_owned(),
            tls: started.tls,
            http: started.http,
            secret,
            host: host.to_owned(),
            child: self.children.len() - 1,
        }
    }

    /// An `atctl` runner using this fleet's directory and CA, with keys in `keys_dir`.
    pub fn atctl(&self, keys_dir: &str) -> Atctl {
        self.atctl_with_root(keys_dir, &self.root_addr.to_string())
    }

    /// Like [`Self::atctl`] with another directory address.
    pub fn atctl_with_root(&self, keys_dir: &str, root: &str) -> Atctl {
        let keys = self.dir.path().join(keys_dir);
        Atctl {
            keys_dir: keys,
            home: self.dir.path().join("home"),
            fleet_dir: self.dir.path().to_path_buf(),
            base: vec![
                "--root-server".into(),
                root.to_owned(),
                "--ca-bundle".into(),
                self.pki.ca_path.display().to_string(),
            ],
        }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }

    /// Client settings trusting the fleet's CA.
    pub fn client_config(&self) -> ClientConfig {
        ClientConfig::new(TlsOptions::from_ca_pem_file(&self.pki.ca_path).unwrap()).unwrap()
    }

    /// A PKAM-authenticated protocol connection to `server`, to look at what it holds.
    pub async fn owner_conn(&self, server: &Server, keys: &AtKeys) -> AtConnection {
        let host = server.tls.ip().to_string();
        let mut conn = AtConnection::connect(&self.client_config(), &host, server.tls.port())
            .await
            .unwrap();
        let at = AtSign::parse(&server.atsign).unwrap();
        conn.authenticate_pkam(&at, &PkamSigner::rsa(keys.pkam.private_key().clone()), None)
            .await
            .unwrap();
        conn
    }
}

/// Runs the real `atctl` binary.
pub struct Atctl {
    pub keys_dir: PathBuf,
    pub home: PathBuf,
    /// Where the fleet wrote each atServer's CRAM secret (`<name>.cram`).
    fleet_dir: PathBuf,
    base: Vec<String>,
}

#[derive(Debug)]
pub struct Run {
    pub code: i32,
    pub stdout: String,
    pub stderr: String,
}

impl Run {
    pub fn ok(self) -> Run {
        assert_eq!(self.code, 0, "atctl failed: {self:?}");
        self
    }

    pub fn json(&self) -> serde_json::Value {
        serde_json::from_str(self.stdout.trim())
            .unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {self:?}"))
    }

    /// The string `field` of the JSON on stdout.
    pub fn json_str(&self, field: &str) -> String {
        self.json()[field]
            .as_str()
            .unwrap_or_else(|| panic!("no string {field:?}: {self:?}"))
            .to_owned()
    }
}

impl Atctl {
    pub fn command(&self, args: &[&str]) -> Command {
        let mut c = Command::new(env!("CARGO_BIN_EXE_atctl"));
        for (k, _) in std::env::vars() {
            if k.starts_with("ATCTL_") {
                c.env_remove(k);
            }
        }
        c.env("HOME", &self.home)
            .args(&self.base)
            .arg("--keys-dir")
            .arg(&self.keys_dir)
            .args(args)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        c
    }

    pub async fn run(&self, args: &[&str]) -> Run {
        let out = tokio::time::timeout(Duration::from_secs(120), self.command(args).output())
            .await
            .expect("atctl finished in time")
            .expect("run atctl");
        Run {
            code: out.status.code().unwrap_or(-1),
            stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        }
    }

    pub fn keys_file(&self, atsign: &str) -> PathBuf {
        self.keys_dir.join(format!("{atsign}_key.atKeys"))
    }

    /// The CRAM secret file the fleet wrote for `atsign`'s atServer.
    pub fn cram_file(&self, atsign: &str) -> PathBuf {
        self.fleet_dir
            .join(format!("{}.cram", atsign.trim_start_matches('@')))
    }

    /// `atctl onboard <atsign> --cram-secret-file <its server's secret> <flags>`.
    pub async fn onboard(&self, atsign: &str, flags: &[&str]) -> Run {
        let secret = self.cram_file(atsign);
        let mut args = vec![
            "onboard",
            atsign,
            "--cram-secret-file",
            secret.to_str().unwrap(),
        ];
        args.extend_from_slice(flags);
        self.run(&args).await
    }

    /// Onboards `atsign` (which must succeed) and returns the keys it wrote.
    pub async fn onboard_keys(&self, atsign: &str) -> AtKeys {
        self.onboard(atsign, &[]).await.ok();
        AtKeysFile::load(&self.keys_file(atsign))
            .unwrap()
            .decrypt()
            .unwrap()
    }
}

/// The shared Kubernetes control plane (scripts/with-controlplane starts it for the test run),
/// with a namespace of this test's own.
pub struct Kube {
    pub client: kube::Client,
    pub kubeconfig: PathBuf,
    pub namespace: String,
}

impl Kube {
    pub async fn start() -> Kube {
        let shared = atfleet_cluster::SharedCluster::from_env().unwrap_or_else(|e| panic!("{e}"));
        let client = shared.client().await.expect("admin client");
        let namespace = shared
            .namespace(&client, "atctl", false)
            .await
            .expect("namespace");
        Kube {
            client,
            kubeconfig: shared.kubeconfig.clone(),
            namespace,
        }
    }

    /// POSTs a Kubernetes object to `path` (e.g. `/api/v1/namespaces/<ns>/secrets`).
    pub async fn create(&self, path: &str, object: serde_json::Value) {
        let request = http::Request::post(path)
            .header("content-type", "application/json")
            .body(object.to_string().into_bytes())
            .expect("request");
        self.client
            .request::<serde_json::Value>(request)
            .await
            .unwrap_or_else(|e| panic!("POST {path}: {e}"));
    }
}

/// A running `atctl --json monitor` and the lines it printed so far.
pub struct Monitor {
    pub child: Child,
    lines: tokio::io::Lines<BufReader<tokio::process::ChildStdout>>,
    seen: Vec<serde_json::Value>,
}

impl Monitor {
    /// Starts the monitor; `--since 0` replays stored notifications, so its start cannot race
    /// a notification sent right after.
    pub fn start(atctl: &Atctl, atsign: &str) -> Monitor {
        let mut child = atctl
            .command(&["-a", atsign, "--json", "monitor", "--since", "0"])
            .spawn()
            .unwrap();
        let lines = BufReader::new(child.stdout.take().unwrap()).lines();
        Monitor {
            child,
            lines,
            seen: Vec::new(),
        }
    }

    /// The next printed notification `want` accepts (bounded wait).
    pub async fn next_match(
        &mut self,
        want: impl Fn(&serde_json::Value) -> bool,
    ) -> serde_json::Value {
        let Monitor { lines, seen, .. } = self;
        let found = tokio::time::timeout(Duration::from_secs(60), async {
            while let Ok(Some(line)) = lines.next_line().await {
                let v: serde_json::Value = serde_json::from_str(&line).unwrap();
                seen.push(v.clone());
                if want(&v) {
                    return Some(v);
                }
            }
            None
        })
        .await;
        match found {
            Ok(Some(v)) => v,
            Ok(None) => panic!("monitor ended early: {:?}", self.seen),
            Err(_) => panic!("notification not seen: {:?}", self.seen),
        }
    }
}
