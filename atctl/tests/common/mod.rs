//! Harness for end-to-end tests: a test CA, the real `atdirectory` (on a fresh Postgres database) and
//! `atserver` binaries as child processes on ports chosen by the OS, registration through the
//! directory's REST API, and `atctl` itself run as a process.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use rcgen::{
    BasicConstraints, CertificateParams, CertifiedIssuer, DnType, ExtendedKeyUsagePurpose, IsCa,
    KeyPair, KeyUsagePurpose,
};
use sqlx::Connection;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

pub const TOKEN: &str = "atctl-test-token-0123456789";
const STARTUP: Duration = Duration::from_secs(60);

/// A binary built next to this test's (`$CARGO_TARGET_DIR/debug/<name>`).
pub fn bin(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let debug = exe
        .parent()
        .and_then(Path::parent)
        .expect("test binary lives in <target>/debug/deps");
    let path = debug.join(name);
    assert!(
        path.exists(),
        "{} is missing: build it first with `cargo build -p atserver -p atdirectory` (and `-p atfleet-e2e --bin kubesim` for the Kubernetes test)",
        path.display()
    );
    path
}

/// A CA plus one leaf for `localhost`/`127.0.0.1`, as PEM files in `dir`; more leaves on demand.
pub struct Pki {
    pub ca_path: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    dir: PathBuf,
    issuer: CertifiedIssuer<'static, KeyPair>,
}

impl Pki {
    pub fn new(dir: &Path) -> Pki {
        let mut ca = CertificateParams::new(Vec::<String>::new()).unwrap();
        ca.distinguished_name
            .push(DnType::CommonName, "atctl test CA");
        ca.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        ca.key_usages = vec![
            KeyUsagePurpose::KeyCertSign,
            KeyUsagePurpose::CrlSign,
            KeyUsagePurpose::DigitalSignature,
        ];
        let issuer = CertifiedIssuer::self_signed(ca, KeyPair::generate().unwrap()).unwrap();
        let mut leaf =
            CertificateParams::new(vec!["localhost".to_string(), "127.0.0.1".to_string()]).unwrap();
        leaf.distinguished_name
            .push(DnType::CommonName, "localhost");
        leaf.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let pki = Pki {
            ca_path: dir.join("ca.pem"),
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("key.pem"),
            dir: dir.to_path_buf(),
            issuer,
        };
        std::fs::write(&pki.ca_path, pki.issuer.as_ref().pem()).unwrap();
        std::fs::write(&pki.cert_path, cert.pem()).unwrap();
        std::fs::write(&pki.key_path, key.serialize_pem()).unwrap();
        pki
    }

    /// A leaf naming only `host`, for server and client use (an atServer presents it to peers),
    /// as (certificate, key) PEM files.
    pub fn leaf(&self, host: &str) -> (PathBuf, PathBuf) {
        let mut params = CertificateParams::new(vec![host.to_string()]).unwrap();
        params.distinguished_name.push(DnType::CommonName, host);
        params.extended_key_usages = vec![
            ExtendedKeyUsagePurpose::ServerAuth,
            ExtendedKeyUsagePurpose::ClientAuth,
        ];
        params.use_authority_key_identifier_extension = true;
        let key = KeyPair::generate().unwrap();
        let cert = params.signed_by(&key, &self.issuer).unwrap();
        let paths = (
            self.dir.join(format!("{host}.pem")),
            self.dir.join(format!("{host}.key")),
        );
        std::fs::write(&paths.0, cert.pem()).unwrap();
        std::fs::write(&paths.1, key.serialize_pem()).unwrap();
        paths
    }
}

async fn http(
    method: Method,
    url: &str,
    token: Option<&str>,
    body: Option<String>,
) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder().method(method).uri(url);
    if let Some(t) = token {
        req = req.header("authorization", format!("Bearer {t}"));
    }
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

/// Polls `http://addr/readyz` until it answers 200.
pub async fn wait_ready(addr: SocketAddr) {
    let url = format!("http://{addr}/readyz");
    tokio::time::timeout(STARTUP, async {
        loop {
            if http(Method::GET, &url, None, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} never became ready"));
}

fn database_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "DATABASE_URL is not set: run under scripts/with-postgres (scripts/with-postgres -- cargo test -p atctl)"
        ),
    }
}

/// A new empty database on the test cluster, so tests run in parallel.
async fn fresh_database() -> String {
    let base = database_url();
    let name = format!("atctl_{:016x}", rand::random::<u64>());
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

/// Reads lines from a child's stdout until `find` returns something; keeps draining afterwards.
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

/// One directory and any number of atServers sharing a CA, in one temporary folder.
pub struct Fleet {
    pub dir: tempfile::TempDir,
    pub pki: Pki,
    pub root_addr: SocketAddr,
    pub dir_http: SocketAddr,
    children: Vec<Child>,
}

pub struct Server {
    pub atsign: String,
    pub tls: SocketAddr,
    pub http: SocketAddr,
    pub secret: String,
}

impl Fleet {
    pub async fn start() -> Fleet {
        let dir = tempfile::tempdir().unwrap();
        let pki = Pki::new(dir.path());
        let token_file = dir.path().join("token");
        std::fs::write(&token_file, TOKEN).unwrap();
        let mut child = Command::new(bin("atdirectory"))
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&pki.cert_path)
            .arg("--tls-key")
            .arg(&pki.key_path)
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
            dir,
            pki,
            root_addr,
            dir_http,
            children: vec![child],
        }
    }

    /// Starts an atServer for `atsign` with a fresh CRAM secret and registers it in the directory.
    pub async fn server(&mut self, atsign: &str) -> Server {
        let (cert, key) = (self.pki.cert_path.clone(), self.pki.key_path.clone());
        self.server_at(atsign, "127.0.0.1", &cert, &key).await
    }

    /// Like [`Self::server`], on a loopback address of its own (e.g. `127.0.0.2`) with a
    /// certificate naming only that address, as in a real fleet where each atServer proves its
    /// own host to its peers.
    pub async fn server_on_own_host(&mut self, atsign: &str, host: &str) -> Server {
        let (cert, key) = self.pki.leaf(host);
        self.server_at(atsign, host, &cert, &key).await
    }

    async fn server_at(&mut self, atsign: &str, host: &str, cert: &Path, key: &Path) -> Server {
        let name = atsign.trim_start_matches('@');
        let secret = format!(
            "{:032x}{:032x}{:032x}{:032x}",
            rand::random::<u128>(),
            rand::random::<u128>(),
            rand::random::<u128>(),
            rand::random::<u128>()
        );
        let secret_file = self.dir.path().join(format!("{name}.cram"));
        std::fs::write(&secret_file, &secret).unwrap();
        let mut child = Command::new(bin("atserver"))
            .args([
                "--atsign",
                atsign,
                "--listen",
                &format!("{host}:0"),
                "--http-listen",
                "127.0.0.1:0",
            ])
            .arg("--data-dir")
            .arg(self.dir.path().join(format!("{name}-data")))
            .arg("--tls-cert")
            .arg(cert)
            .arg("--tls-key")
            .arg(key)
            .arg("--ca-bundle")
            .arg(&self.pki.ca_path)
            .args(["--root-server", &self.root_addr.to_string()])
            .arg("--cram-secret-file")
            .arg(&secret_file)
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
        self.children.push(child);
        wait_ready(http_addr).await;
        let body = serde_json::json!({"host": host, "port": tls.port(), "owner": "atctl-tests"});
        let (status, text) = http(
            Method::PUT,
            &format!("http://{}/v1/atsigns/{atsign}", self.dir_http),
            Some(TOKEN),
            Some(body.to_string()),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "register {atsign}: {status} {text}"
        );
        Server {
            atsign: atsign.to_owned(),
            tls,
            http: http_addr,
            secret,
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
}

/// Runs the real `atctl` binary.
pub struct Atctl {
    pub keys_dir: PathBuf,
    pub home: PathBuf,
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
}

/// A running kubesim (in-memory Kubernetes API) with a kubeconfig pointing at it.
pub struct Kube {
    _child: Child,
    pub url: String,
    pub kubeconfig: PathBuf,
}

impl Kube {
    pub async fn start(dir: &Path) -> Kube {
        let kubeconfig = dir.join("kubeconfig");
        let mut child = Command::new(bin("kubesim"))
            .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
            .arg(&kubeconfig)
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn kubesim (cargo build -p atfleet-e2e --bin kubesim)");
        let url = first_match(&mut child, "kubesim", |line| {
            line.strip_prefix("kubesim listening on ")
                .map(|u| u.trim().to_owned())
        })
        .await;
        Kube {
            _child: child,
            url,
            kubeconfig,
        }
    }

    /// POSTs a Kubernetes object to `path` (e.g. `/api/v1/namespaces/fleet/secrets`).
    pub async fn create(&self, path: &str, object: serde_json::Value) {
        let (status, text) = http(
            Method::POST,
            &format!("{}{path}", self.url),
            None,
            Some(object.to_string()),
        )
        .await;
        assert!((200..300).contains(&status), "POST {path}: {status} {text}");
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
