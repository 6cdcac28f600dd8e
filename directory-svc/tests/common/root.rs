//! A root-protocol client over TLS, written from the specification (atprotocol.md §2).

use std::net::SocketAddr;
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub struct RootConn {
    tls: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl RootConn {
    /// Connects, completes TLS for `localhost` and reads the `@` greeting.
    pub async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Self {
        let tcp = TcpStream::connect(addr).await.expect("connect");
        let name = ServerName::try_from("localhost").expect("name");
        let tls = TlsConnector::from(config)
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut conn = Self {
            tls,
            buf: Vec::new(),
        };
        let mut greeting = [0u8; 1];
        conn.tls.read_exact(&mut greeting).await.expect("greeting");
        assert_eq!(&greeting, b"@", "greeting");
        conn
    }

    /// The certificate the server presented.
    pub fn peer_certificate(&self) -> Vec<u8> {
        let (_, session) = self.tls.get_ref();
        session
            .peer_certificates()
            .and_then(|c| c.first())
            .map(|c| c.to_vec())
            .expect("peer certificate")
    }

    pub async fn send(&mut self, bytes: &[u8]) {
        self.tls.write_all(bytes).await.expect("write");
        self.tls.flush().await.expect("flush");
    }

    /// Reads one reply frame: everything up to and including `\n@`. `None` when the server closed.
    pub async fn reply(&mut self) -> Option<String> {
        loop {
            if let Some(end) = self.buf.windows(2).position(|w| w == b"\n@") {
                let frame: Vec<u8> = self.buf.drain(..end + 2).collect();
                return Some(String::from_utf8(frame).expect("utf-8 reply"));
            }
            let mut chunk = [0u8; 1024];
            match self.tls.read(&mut chunk).await {
                Ok(0) | Err(_) => return None,
                Ok(n) => self.buf.extend_from_slice(&chunk[..n]),
            }
        }
    }

    /// Sends one line and returns the raw reply frame.
    pub async fn lookup(&mut self, line: &str) -> String {
        self.send(format!("{line}\n").as_bytes()).await;
        self.reply()
            .await
            .unwrap_or_else(|| panic!("no reply to {line:?}: connection closed"))
    }

    /// True when the server closes the connection without sending anything more.
    pub async fn closed(&mut self) -> bool {
        self.reply().await.is_none() && self.buf.is_empty()
    }
}
