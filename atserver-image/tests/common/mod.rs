//! Test harness: a test PKI, an in-process server on 127.0.0.1:0 with a manual clock, and a raw
//! line client speaking the atProtocol over TLS.
#![allow(dead_code)]

pub mod keys;

use std::net::SocketAddr;
use std::path::PathBuf;
use std::sync::Arc;
use std::time::Duration;

use atfleet_test_support::pki::{Leaf, TestCa};
use atserver::{Config, Handle, ManualClock, Server};
use rustls::pki_types::{CertificateDer, ServerName};
use rustls::RootCertStore;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub const ATSIGN: &str = "@alice";
pub const SECRET: &str = "b26455a907582760ebf35bc4847de549bc41c24b25c8b1c58d5964f7b4f8a43bc55b0e9a601c9a9657d9a8b8bbc32f88b4e38ffaca03c8710ebae1b14ca9f364";
/// The manual clock starts here (2024-10-24) so formatted dates look real.
pub const T0: i64 = 1_729_733_702_123;

/// A CA and a leaf certificate for `localhost` / `127.0.0.1`, written to a directory.
pub struct Pki {
    pub dir: PathBuf,
    pub ca_pem: String,
    pub ca_path: PathBuf,
    pub cert_path: PathBuf,
    pub key_path: PathBuf,
    ca: TestCa,
}

impl Pki {
    pub fn new(dir: PathBuf) -> Pki {
        let ca = TestCa::new(&dir, "atfleet test CA");
        let pki = Pki {
            cert_path: dir.join("cert.pem"),
            key_path: dir.join("key.pem"),
            dir,
            ca_pem: ca.ca_pem.clone(),
            ca_path: ca.ca_path.clone(),
            ca,
        };
        pki.issue_leaf("atserver");
        pki
    }

    /// Writes a fresh leaf certificate (with `cn` as common name) over the served files.
    pub fn issue_leaf(&self, cn: &str) {
        let served = Leaf {
            cert: self.cert_path.clone(),
            key: self.key_path.clone(),
        };
        self.ca.issue(&["localhost", "127.0.0.1"], cn, &served);
    }

    pub fn connector(&self) -> TlsConnector {
        let mut roots = RootCertStore::empty();
        let ca = rustls_pki_types_from_pem(&self.ca_pem);
        roots.add(ca).unwrap();
        let config = rustls::ClientConfig::builder_with_provider(Arc::new(
            rustls::crypto::ring::default_provider(),
        ))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_root_certificates(roots)
        .with_no_client_auth();
        TlsConnector::from(Arc::new(config))
    }
}

fn rustls_pki_types_from_pem(pem: &str) -> CertificateDer<'static> {
    use rustls::pki_types::pem::PemObject;
    CertificateDer::from_pem_slice(pem.as_bytes()).unwrap()
}

pub struct TestServer {
    pub handle: Option<Handle>,
    pub clock: Arc<ManualClock>,
    pub tmp: tempfile::TempDir,
    pub pki: Pki,
    pub addr: SocketAddr,
}

/// A configuration for tests: ephemeral ports, fast background jobs.
pub fn test_config(tmp: &std::path::Path, pki: &Pki) -> Config {
    let mut c = Config::new(
        ATSIGN,
        tmp.join("data"),
        pki.cert_path.clone(),
        pki.key_path.clone(),
    )
    .unwrap();
    c.listen = "127.0.0.1:0".parse().unwrap();
    c.http_listen = Some("127.0.0.1:0".parse().unwrap());
    c.cram_secret = Some(SECRET.to_string());
    c.sweep_interval = Duration::from_secs(3600);
    c.tls_reload_interval = Duration::from_millis(100);
    c.stats_notification_interval = None;
    c.limits.reaper_interval = Duration::from_millis(50);
    c
}

impl TestServer {
    pub async fn start() -> TestServer {
        Self::start_with(|_| {}).await
    }

    pub async fn start_with(tweak: impl FnOnce(&mut Config)) -> TestServer {
        let tmp = tempfile::tempdir().unwrap();
        let pki = Pki::new(tmp.path().to_path_buf());
        let mut config = test_config(tmp.path(), &pki);
        tweak(&mut config);
        let clock = ManualClock::new(T0);
        let handle = Server::start(config, clock.clone()).await.unwrap();
        let addr = handle.tls_addr;
        TestServer {
            handle: Some(handle),
            clock,
            tmp,
            pki,
            addr,
        }
    }

    pub fn handle(&self) -> &Handle {
        self.handle.as_ref().unwrap()
    }

    pub async fn connect(&self) -> Client {
        Client::connect(self.addr, &self.pki).await
    }

    /// A connection authenticated with CRAM.
    pub async fn owner(&self) -> Client {
        let mut c = self.connect().await;
        c.cram(SECRET).await;
        c
    }

    pub async fn stop(mut self) {
        if let Some(h) = self.handle.take() {
            h.shutdown().await;
        }
    }
}

/// A raw atProtocol client: one command line out, one reply (`…\n<prompt>`) in.
pub struct Client {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl Client {
    pub async fn connect(addr: SocketAddr, pki: &Pki) -> Client {
        let mut c = Self::connect_raw(addr, pki).await;
        let greeting = c.read_exact_str(1).await;
        assert_eq!(greeting, "@");
        c
    }

    /// Connects without reading the greeting.
    pub async fn connect_raw(addr: SocketAddr, pki: &Pki) -> Client {
        let tcp = TcpStream::connect(addr).await.unwrap();
        let name = ServerName::try_from("localhost").unwrap();
        let stream = pki.connector().connect(name, tcp).await.unwrap();
        Client {
            stream,
            buf: Vec::new(),
        }
    }

    /// The leaf certificate the server presented.
    pub fn peer_certificate(&self) -> Vec<u8> {
        let (_, conn) = self.stream.get_ref();
        conn.peer_certificates().unwrap()[0].to_vec()
    }

    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 8192];
        match tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk)).await {
            Ok(Ok(0)) | Ok(Err(_)) => false,
            Ok(Ok(n)) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
            Err(_) => panic!(
                "timed out waiting for the server; have {:?}",
                String::from_utf8_lossy(&self.buf)
            ),
        }
    }

    pub async fn read_exact_str(&mut self, n: usize) -> String {
        while self.buf.len() < n {
            assert!(self.fill().await, "connection closed");
        }
        let out: Vec<u8> = self.buf.drain(..n).collect();
        String::from_utf8(out).unwrap()
    }

    pub async fn write(&mut self, bytes: &[u8]) {
        self.stream.write_all(bytes).await.unwrap();
        self.stream.flush().await.unwrap();
    }

    /// Sends a command and returns the full reply including the prompt.
    pub async fn send_raw(&mut self, cmd: &str) -> String {
        self.write(format!("{cmd}\n").as_bytes()).await;
        self.read_reply().await
    }

    /// Reads one reply: up to a `\n` followed by a prompt `@…@` or `@`.
    pub async fn read_reply(&mut self) -> String {
        loop {
            if let Some(end) = reply_end(&self.buf) {
                let out: Vec<u8> = self.buf.drain(..end).collect();
                return String::from_utf8(out).unwrap();
            }
            assert!(
                self.fill().await,
                "connection closed; have {:?}",
                String::from_utf8_lossy(&self.buf)
            );
        }
    }

    /// Sends a command and returns the reply line without the prompt.
    pub async fn send(&mut self, cmd: &str) -> String {
        let raw = self.send_raw(cmd).await;
        raw.split_once('\n')
            .map(|(l, _)| l.to_string())
            .unwrap_or(raw)
    }

    /// Sends a command; `None` when the connection failed or closed before a full reply.
    pub async fn try_send(&mut self, cmd: &str) -> Option<String> {
        self.stream
            .write_all(format!("{cmd}\n").as_bytes())
            .await
            .ok()?;
        self.stream.flush().await.ok()?;
        loop {
            if let Some(end) = reply_end(&self.buf) {
                let out: Vec<u8> = self.buf.drain(..end).collect();
                let text = String::from_utf8(out).ok()?;
                return Some(
                    text.split_once('\n')
                        .map(|(l, _)| l.to_string())
                        .unwrap_or(text),
                );
            }
            let mut chunk = [0u8; 8192];
            match tokio::time::timeout(Duration::from_secs(20), self.stream.read(&mut chunk)).await
            {
                Ok(Ok(n)) if n > 0 => self.buf.extend_from_slice(&chunk[..n]),
                _ => return None,
            }
        }
    }

    /// Reads one `\n`-terminated line (monitor notifications).
    pub async fn read_line(&mut self) -> String {
        loop {
            if let Some(i) = self.buf.iter().position(|b| *b == b'\n') {
                let out: Vec<u8> = self.buf.drain(..=i).collect();
                return String::from_utf8(out).unwrap().trim_end().to_string();
            }
            assert!(self.fill().await, "connection closed");
        }
    }

    /// True when the server closed the connection (reads to end of stream).
    pub async fn closed(&mut self) -> bool {
        loop {
            if !self.fill().await {
                return true;
            }
        }
    }

    pub async fn cram(&mut self, secret: &str) {
        let challenge = self.send(&format!("from:{ATSIGN}")).await;
        let challenge = challenge.strip_prefix("data:").unwrap().to_string();
        let digest = atserver::crypto::cram_digest(secret, &challenge);
        assert_eq!(
            self.send_raw(&format!("cram:{digest}")).await,
            format!("data:success\n{ATSIGN}@")
        );
    }

    /// PKAM with an RSA private key (base64 PKCS#8), optionally bound to an enrollment.
    pub async fn pkam(&mut self, private_key: &str, enrollment: Option<&str>) -> String {
        let challenge = self.send(&format!("from:{ATSIGN}")).await;
        let challenge = challenge.strip_prefix("data:").unwrap().to_string();
        let sig = keys::sign(private_key, &challenge);
        match enrollment {
            Some(id) => self.send(&format!("pkam:enrollmentId:{id}:{sig}")).await,
            None => self.send(&format!("pkam:{sig}")).await,
        }
    }
}

/// End of the first complete reply in `buf`: a `\n`, then `@` and either more prompt text ending
/// in `@` or nothing else yet buffered.
fn reply_end(buf: &[u8]) -> Option<usize> {
    let nl = buf.iter().position(|b| *b == b'\n')?;
    let rest = &buf[nl + 1..];
    if rest.first() != Some(&b'@') {
        // A prompt-less line (monitor noop) or a partial read.
        return None;
    }
    // Prompt is `@` (anonymous) or `@name@`.
    if let Some(j) = rest[1..].iter().position(|b| *b == b'@') {
        let candidate = &rest[1..=j];
        if !candidate.contains(&b'\n') && !candidate.contains(&b':') {
            return Some(nl + 1 + j + 2);
        }
    }
    if rest.len() == 1 {
        return Some(nl + 2);
    }
    None
}

/// The body of a `data:` reply; panics with the reply otherwise.
pub fn data(reply: &str) -> &str {
    reply
        .strip_prefix("data:")
        .unwrap_or_else(|| panic!("expected data, got {reply}"))
}

/// The JSON body of a `data:` reply.
pub fn json(reply: &str) -> serde_json::Value {
    serde_json::from_str(data(reply)).unwrap()
}
