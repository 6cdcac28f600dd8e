//! A root-protocol client over TLS, written from the specification (atprotocol.md §2).

use std::net::{IpAddr, SocketAddr};
use std::sync::Arc;

use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

pub struct RootConn {
    tls: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

impl RootConn {
    /// Connects, completes TLS for `localhost` and reads the `@` greeting.
    pub async fn connect(addr: SocketAddr, config: Arc<rustls::ClientConfig>) -> Self {
        Self::try_connect_from(addr, config, None)
            .await
            .expect("TLS handshake and greeting")
    }

    /// Like [`RootConn::connect`], from a chosen loopback source address (any of 127/8 works on Linux);
    /// `None` when the server refuses the connection.
    pub async fn try_connect_from(
        addr: SocketAddr,
        config: Arc<rustls::ClientConfig>,
        from: Option<IpAddr>,
    ) -> Option<Self> {
        let tcp = match from {
            Some(ip) => {
                let socket = TcpSocket::new_v4().expect("socket");
                socket.bind(SocketAddr::new(ip, 0)).expect("bind source");
                socket.connect(addr).await.expect("connect")
            }
            None => TcpStream::connect(addr).await.expect("connect"),
        };
        let name = ServerName::try_from("localhost").expect("name");
        let tls = TlsConnector::from(config).connect(name, tcp).await.ok()?;
        let mut conn = Self {
            tls,
            buf: Vec::new(),
        };
        let mut greeting = [0u8; 1];
        conn.tls.read_exact(&mut greeting).await.ok()?;
        assert_eq!(&greeting, b"@", "greeting");
        Some(conn)
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
