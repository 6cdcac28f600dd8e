//! Child processes of the workspace: reading their startup lines, and starting `atdirectory`
//! and `atserver` the way a fleet runs them.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::Stdio;

use hyper::Method;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

use crate::http::{request, wait_ready};
use crate::pki::Leaf;
use crate::STARTUP;

/// Reads lines from a child's piped stdout until `find` returns something, within
/// [`STARTUP`]; keeps draining stdout afterwards so the child never blocks on it.
pub async fn first_match<T: Send + 'static>(
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

/// The `tls=` and `http=` addresses of atserver's listening line.
pub fn atserver_addrs(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let word = |p: &str| {
        line.split_whitespace()
            .find_map(|w| w.strip_prefix(p))?
            .parse::<SocketAddr>()
            .ok()
    };
    Some((word("tls=")?, word("http=")?))
}

/// The `root_addr` and `http_addr` of atdirectory's JSON startup log line.
pub fn directory_addrs(line: &str) -> Option<(SocketAddr, SocketAddr)> {
    let v: serde_json::Value = serde_json::from_str(line).ok()?;
    let get = |f: &str| v.get(f)?.as_str()?.parse::<SocketAddr>().ok();
    Some((get("root_addr")?, get("http_addr")?))
}

/// A running `atdirectory` process on its own fresh Postgres database.
pub struct Directory {
    pub root_addr: SocketAddr,
    pub http_addr: SocketAddr,
    token: String,
    _child: Child,
}

impl Directory {
    /// Starts `bin` serving `tls` on ephemeral ports, with API token `token` (written to
    /// `dir/token`) and a database named `<db_prefix>_<random>`; returns once it is ready.
    pub async fn start(bin: &Path, dir: &Path, tls: &Leaf, token: &str, db_prefix: &str) -> Self {
        let token_file = dir.join("token");
        std::fs::write(&token_file, token).expect("write token file");
        let mut child = Command::new(bin)
            .args(["--listen", "127.0.0.1:0", "--http-listen", "127.0.0.1:0"])
            .arg("--tls-cert")
            .arg(&tls.cert)
            .arg("--tls-key")
            .arg(&tls.key)
            .arg("--api-token-file")
            .arg(&token_file)
            .args([
                "--database-url",
                &crate::postgres::fresh_database(db_prefix).await,
            ])
            .args(["--log-format", "json"])
            .env("RUST_LOG", "info")
            .env_remove("DATABASE_URL")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .expect("spawn atdirectory");
        let (root_addr, http_addr) = first_match(&mut child, "atdirectory", directory_addrs).await;
        wait_ready(http_addr).await;
        Directory {
            root_addr,
            http_addr,
            token: token.to_owned(),
            _child: child,
        }
    }

    /// Registers `atsign` at `host:port` for `owner` through the REST API; asserts success.
    pub async fn register(&self, atsign: &str, host: &str, port: u16, owner: &str) {
        let body = serde_json::json!({"host": host, "port": port, "owner": owner});
        let (status, text) = request(
            Method::PUT,
            &format!("http://{}/v1/atsigns/{atsign}", self.http_addr),
            Some(&self.token),
            Some(body.to_string()),
        )
        .await;
        assert!(
            (200..300).contains(&status),
            "register {atsign}: {status} {text}"
        );
    }
}

/// What one `atserver` process is started with.
pub struct AtServerArgs {
    pub atsign: String,
    /// The address its TLS listener binds (port 0).
    pub host: String,
    pub data_dir: PathBuf,
    pub tls: Leaf,
    pub cram_secret_file: PathBuf,
    /// The CA it trusts for peers and the directory.
    pub ca_bundle: Option<PathBuf>,
    pub root_server: Option<SocketAddr>,
}

impl AtServerArgs {
    /// The command for `bin` on ephemeral ports (health on 127.0.0.1), warnings-only logs on
    /// piped stdout; callers may add flags before [`start_atserver`].
    pub fn command(&self, bin: &Path) -> Command {
        let mut c = Command::new(bin);
        c.args(["--atsign", &self.atsign])
            .args(["--listen", &format!("{}:0", self.host)])
            .args(["--http-listen", "127.0.0.1:0"])
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--tls-cert")
            .arg(&self.tls.cert)
            .arg("--tls-key")
            .arg(&self.tls.key)
            .arg("--cram-secret-file")
            .arg(&self.cram_secret_file);
        if let Some(ca) = &self.ca_bundle {
            c.arg("--ca-bundle").arg(ca);
        }
        if let Some(root) = self.root_server {
            c.args(["--root-server", &root.to_string()]);
        }
        c.env("ATSERVER_LOG", "warn")
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .kill_on_drop(true);
        c
    }
}

/// A started atserver and the addresses it listens on.
pub struct AtServerProcess {
    pub child: Child,
    pub tls: SocketAddr,
    pub http: SocketAddr,
}

/// Spawns `command` (from [`AtServerArgs::command`]) and returns once it is ready.
pub async fn start_atserver(mut command: Command) -> AtServerProcess {
    let mut child = command.spawn().expect("spawn atserver");
    let (tls, http) = first_match(&mut child, "atserver", atserver_addrs).await;
    wait_ready(http).await;
    AtServerProcess { child, tls, http }
}

#[cfg(test)]
mod tests {
    use super::{atserver_addrs, directory_addrs};

    #[test]
    fn parses_startup_lines() {
        let a = atserver_addrs("atserver @alice listening tls=127.0.0.2:4001 http=127.0.0.1:9");
        assert_eq!(
            a.map(|(t, h)| (t.to_string(), h.to_string())),
            Some(("127.0.0.2:4001".into(), "127.0.0.1:9".into()))
        );
        assert_eq!(atserver_addrs("tls=127.0.0.1:1"), None);
        let d = directory_addrs(r#"{"root_addr":"127.0.0.1:5","http_addr":"127.0.0.1:6"}"#);
        assert_eq!(d.map(|(r, _)| r.port()), Some(5));
        assert_eq!(directory_addrs("not json"), None);
    }
}
