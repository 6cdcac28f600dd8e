//! A small real fleet for controller tests: the real control plane with the node agent running
//! real `atserver` binaries as processes (this test's namespace is not simulated), the real atDirectory on its own Postgres database (from `DATABASE_URL`), and one
//! in-process operator whose atServers resolve through that directory.

use std::path::Path;
use std::time::Duration;

use at_protocol::client::{AtConnection, ClientConfig, RootClient, TlsOptions};
use at_protocol::AtSign;
use atfleet_operator::controller::Config;
use atfleet_operator::crd::Atsign;
use atfleet_operator::directory::DirectoryClient;
use atfleet_operator::tls::CA_CERT_KEY;
use atfleet_test_support::bins::workspace_bin;
use clap::Parser;
use k8s_openapi::api::core::v1::{Pod, Secret};
use kube::Api;

use super::{
    cluster_with, config, ns, start_replica, system_ns, Replica, Setup, TestCluster, TOKEN,
};

/// Upper bound for anything in a real fleet to happen on a loaded 2-core machine.
pub const PATIENCE: Duration = Duration::from_secs(90);

/// Polls `check` until it holds, failing after [`PATIENCE`].
pub async fn within<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = bool>,
{
    atfleet_test_support::wait::eventually(what, PATIENCE, check).await;
}

/// Polls `probe` until it yields a value, failing after [`PATIENCE`] with the last complaint.
pub async fn until<T, F, Fut>(what: &str, probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<T, String>>,
{
    atfleet_test_support::wait::until(what, PATIENCE, probe).await
}

/// A database of its own in the cluster `DATABASE_URL` names.
pub async fn fresh_database() -> String {
    atfleet_test_support::postgres::fresh_database("atfleet_fleet").await
}

/// The real atDirectory, stoppable and restartable on the same addresses.
pub struct RealDirectory {
    args: Vec<String>,
    running: Option<atdirectory::Running>,
    pub root_port: u16,
    pub http_url: String,
    /// PEM of the self-signed certificate its root protocol serves (for `localhost`).
    pub cert_pem: String,
}

impl RealDirectory {
    async fn start(dir: &Path) -> Self {
        let cert =
            rcgen::generate_simple_self_signed(vec!["localhost".to_owned()]).expect("certificate");
        let (cert_path, key_path, token_path) = (
            dir.join("directory.crt"),
            dir.join("directory.key"),
            dir.join("token"),
        );
        std::fs::write(&cert_path, cert.cert.pem()).expect("write");
        std::fs::write(&key_path, cert.signing_key.serialize_pem()).expect("write");
        std::fs::write(&token_path, TOKEN).expect("write");
        let path = |p: &Path| p.display().to_string();
        let args = vec![
            "atdirectory".to_owned(),
            "--tls-cert".into(),
            path(&cert_path),
            "--tls-key".into(),
            path(&key_path),
            "--database-url".into(),
            fresh_database().await,
            "--api-token-file".into(),
            path(&token_path),
            // Lookups must see registrations and withdrawals at once, and many misses in a row.
            "--cache-ttl-ms".into(),
            "1".into(),
            "--negative-ttl-ms".into(),
            "1".into(),
            "--miss-delay-ms".into(),
            "0".into(),
            "--rate-limit-per-second".into(),
            "0".into(),
        ];
        let mut d = Self {
            args,
            running: None,
            root_port: 0,
            http_url: String::new(),
            cert_pem: cert.cert.pem(),
        };
        d.run("127.0.0.1:0", "127.0.0.1:0").await;
        d
    }

    async fn run(&mut self, listen: &str, http_listen: &str) {
        let mut args = self.args.clone();
        args.extend([
            "--listen".into(),
            listen.into(),
            "--http-listen".into(),
            http_listen.into(),
        ]);
        let cli = atdirectory::Cli::try_parse_from(args).expect("directory flags");
        let running = atdirectory::start(cli.config)
            .await
            .expect("directory starts");
        self.root_port = running.root_addr.port();
        self.http_url = format!("http://{}", running.http_addr);
        self.running = Some(running);
    }

    /// Stops it (both the root protocol and the registration API go away).
    pub async fn stop(&mut self) {
        if let Some(r) = self.running.take() {
            r.shutdown().await;
        }
    }

    /// Starts it again where it was.
    pub async fn restart(&mut self) {
        let listen = format!("127.0.0.1:{}", self.root_port);
        let http = self.http_url.trim_start_matches("http://").to_owned();
        self.run(&listen, &http).await;
    }

    /// `host:port` the directory answers for `atsign` through the root protocol, over TLS.
    pub async fn lookup(&self, atsign: &str) -> Option<(String, u16)> {
        let tls = TlsOptions::from_ca_pem(self.cert_pem.as_bytes()).expect("trust");
        let root = RootClient::new(
            ClientConfig::new(tls).expect("client config"),
            "localhost",
            self.root_port,
        );
        let at = AtSign::parse(atsign).expect("atSign");
        root.lookup(&at).await.expect("root lookup")
    }
}

pub struct Fleet {
    pub sim: TestCluster,
    pub client: kube::Client,
    pub directory: RealDirectory,
    pub operator: Option<Replica>,
    _state: tempfile::TempDir,
}

impl Fleet {
    /// Everything up, with the operator running.
    pub async fn start() -> Self {
        // The node agent runs pods from the binaries next to this test's.
        workspace_bin("atserver", "cargo build -p atserver");
        let state = tempfile::tempdir().expect("tempdir");
        let directory = RealDirectory::start(state.path()).await;
        let (sim, client) = cluster_with(Setup {
            simulate: false,
            ..Setup::default()
        })
        .await;
        let mut fleet = Self {
            sim,
            client,
            directory,
            operator: None,
            _state: state,
        };
        fleet.operator = Some(fleet.start_operator());
        fleet
    }

    fn start_operator(&self) -> Replica {
        let dir = DirectoryClient::new(&self.directory.http_url, Some(TOKEN.into()), None)
            .expect("directory client")
            .with_timeout(Duration::from_secs(2));
        let mut cfg: Config = config();
        cfg.defaults.root_server = format!("127.0.0.1:{}", self.directory.root_port);
        cfg.defaults.storage_size = "64Mi".into();
        start_replica(cfg, Some(dir), None)
    }

    /// The Atsign spec fields every fleet test uses: reachable on 127.0.0.1 through the kubelet's
    /// NodePort forwarder, with a small volume.
    pub fn spec(extra: serde_json::Value) -> serde_json::Value {
        let mut spec = serde_json::json!({
            "exposure": { "mode": "NodePort", "host": "127.0.0.1" },
            "storage": { "size": "64Mi" },
        });
        if let (Some(s), Some(e)) = (spec.as_object_mut(), extra.as_object()) {
            for (k, v) in e {
                s.insert(k.clone(), v.clone());
            }
        }
        spec
    }

    pub fn atsigns(&self) -> Api<Atsign> {
        Api::namespaced(self.client.clone(), ns())
    }

    /// The pod `<name>-0`, if it exists.
    pub async fn pod(&self, name: &str) -> Option<Pod> {
        let pods: Api<Pod> = Api::namespaced(self.client.clone(), ns());
        pods.get_opt(&format!("{name}-0")).await.ok().flatten()
    }

    /// `status.endpoint` as (host, port).
    pub async fn endpoint(&self, name: &str) -> Option<(String, u16)> {
        let a = self.atsigns().get_opt(name).await.ok()??;
        let ep = a.status?.endpoint?;
        let (h, p) = ep.rsplit_once(':')?;
        Some((h.to_owned(), p.parse().ok()?))
    }

    /// Connects to the atServer at `host:port` over TLS, trusting only the operator's built-in CA
    /// (its certificate from the CA Secret the operator keeps), and reads the `@` greeting.
    pub async fn greet(&self, host: &str, port: u16) -> Result<(), String> {
        let secrets: Api<Secret> = Api::namespaced(self.client.clone(), system_ns());
        let secret = secrets.get("atfleet-ca").await.map_err(|e| e.to_string())?;
        let ca = secret
            .data
            .as_ref()
            .and_then(|d| d.get(CA_CERT_KEY))
            .ok_or("no CA certificate in the operator's CA Secret")?;
        let tls = TlsOptions::from_ca_pem(&ca.0).map_err(|e| e.to_string())?;
        let cfg = ClientConfig::new(tls)
            .map_err(|e| e.to_string())?
            .with_connect_timeout(Duration::from_secs(5))
            .with_read_timeout(Duration::from_secs(5));
        let conn = AtConnection::connect(&cfg, host, port)
            .await
            .map_err(|e| e.to_string())?;
        let _ = conn.close().await;
        Ok(())
    }

    /// Stops the operator, removes the test's namespaces (the node agent stops their pods) and
    /// stops the directory.
    pub async fn shutdown(mut self) {
        if let Some(op) = self.operator.take() {
            op.stop().await;
        }
        self.sim.shutdown().await;
        self.directory.stop().await;
    }
}

/// The pid of the pod's atserver process (`containerID: process://<pid>`).
pub fn pid(pod: &Pod) -> Option<i32> {
    pod.status
        .as_ref()?
        .container_statuses
        .as_ref()?
        .first()?
        .container_id
        .as_deref()?
        .strip_prefix("process://")?
        .parse()
        .ok()
}

/// Whether a process with this pid exists on this machine.
pub fn alive(pid: i32) -> bool {
    // A zombie still has a /proc entry; its state says it is gone.
    std::fs::read_to_string(format!("/proc/{pid}/stat"))
        .ok()
        .and_then(|s| {
            s.rsplit_once(')')
                .map(|(_, rest)| !rest.trim_start().starts_with('Z'))
        })
        .unwrap_or(false)
}
