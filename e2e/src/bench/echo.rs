//! The baseline server: bare rustls on loopback answering each line with the same line. It runs as
//! `atfleet-bench serve-echo` in its own process, like the servers it is compared with.

use std::net::SocketAddr;
use std::path::Path;
use std::sync::Arc;
use std::time::Duration;

use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;
use tokio_rustls::{TlsAcceptor, TlsConnector};

use super::context::Ctx;
use super::error::BenchError;
use super::load::Exchange;
use super::process::Spawned;

/// Serves until killed; prints `listening <addr>` once bound.
pub async fn serve(cert: &Path, key: &Path) -> Result<(), BenchError> {
    let acceptor = TlsAcceptor::from(super::pki::rustls_server(cert, key)?);
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .map_err(|e| BenchError::Setup(format!("echo bind: {e}")))?;
    let addr = listener
        .local_addr()
        .map_err(|e| BenchError::Setup(format!("echo bind: {e}")))?;
    println!("listening {addr}");
    loop {
        let Ok((tcp, _)) = listener.accept().await else {
            continue;
        };
        let acceptor = acceptor.clone();
        tokio::spawn(async move {
            let _ = tcp.set_nodelay(true);
            let Ok(tls) = acceptor.accept(tcp).await else {
                return;
            };
            let mut stream = BufReader::new(tls);
            let mut line = String::new();
            loop {
                line.clear();
                match stream.read_line(&mut line).await {
                    Ok(0) | Err(_) => return,
                    Ok(_) => {}
                }
                if stream.get_mut().write_all(line.as_bytes()).await.is_err()
                    || stream.get_mut().flush().await.is_err()
                {
                    return;
                }
            }
        });
    }
}

/// Starts the echo server process.
pub async fn spawn(ctx: &Ctx) -> Result<(tokio::process::Child, SocketAddr), BenchError> {
    let mut cmd = tokio::process::Command::new(&ctx.bench_exe);
    cmd.arg("serve-echo")
        .arg("--cert")
        .arg(&ctx.pki.cert)
        .arg("--key")
        .arg(&ctx.pki.key);
    let mut p = Spawned::start(cmd, "echo server", &ctx.log)?;
    let addr = p
        .wait_for(Duration::from_secs(30), |l| {
            l.strip_prefix("listening ")?.trim().parse().ok()
        })
        .await?;
    Ok((p.drain_stdout(), addr))
}

/// One persistent echo connection.
pub struct EchoConn {
    stream: BufReader<TlsStream<TcpStream>>,
    line: String,
    reply: String,
}

impl EchoConn {
    pub async fn connect(
        addr: SocketAddr,
        tls: &Arc<rustls::ClientConfig>,
        line: &str,
    ) -> Result<EchoConn, BenchError> {
        let tcp = TcpStream::connect(addr)
            .await
            .map_err(|e| BenchError::Setup(format!("echo connect: {e}")))?;
        let _ = tcp.set_nodelay(true);
        let name = rustls::pki_types::ServerName::try_from("localhost")
            .map_err(|e| BenchError::Setup(e.to_string()))?;
        let tls = TlsConnector::from(tls.clone())
            .connect(name, tcp)
            .await
            .map_err(|e| BenchError::Setup(format!("echo handshake: {e}")))?;
        Ok(EchoConn {
            stream: BufReader::new(tls),
            line: format!("{line}\n"),
            reply: String::new(),
        })
    }
}

impl Exchange for EchoConn {
    async fn exchange(&mut self, _i: usize) -> Result<(), BenchError> {
        let io = |e: std::io::Error| BenchError::Setup(format!("echo exchange: {e}"));
        self.stream
            .get_mut()
            .write_all(self.line.as_bytes())
            .await
            .map_err(io)?;
        self.stream.get_mut().flush().await.map_err(io)?;
        self.reply.clear();
        self.stream.read_line(&mut self.reply).await.map_err(io)?;
        if self.reply != self.line {
            return Err(BenchError::Setup(format!("echo replied {:?}", self.reply)));
        }
        Ok(())
    }
}

/// A new TLS connection for every exchange (the baseline for connection-per-lookup).
pub struct EchoFresh {
    pub addr: SocketAddr,
    pub tls: Arc<rustls::ClientConfig>,
    pub line: String,
}

impl Exchange for EchoFresh {
    async fn exchange(&mut self, i: usize) -> Result<(), BenchError> {
        let mut conn = EchoConn::connect(self.addr, &self.tls, &self.line).await?;
        conn.exchange(i).await
    }
}
