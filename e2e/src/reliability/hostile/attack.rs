//! Hostile sessions: each opens its own TCP connection from one of many loopback source
//! addresses, misbehaves in one way, and reports how the server ended it. A session that the
//! server has not ended when its deadline (the server's own timeout for that abuse plus slack)
//! passes is counted as hung.

use std::net::{IpAddr, Ipv4Addr, SocketAddr};
use std::sync::Arc;
use std::time::Duration;

use rand::{Rng, RngCore};
use rustls::pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::time::timeout;
use tokio_rustls::TlsConnector;

/// What is attacked.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Target {
    AtServer,
    Directory,
}

/// One way of misbehaving.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Kind {
    /// Random bytes instead of a TLS ClientHello.
    Garbage,
    /// TCP connect, then nothing at all.
    Silent,
    /// A ClientHello, then nothing (the handshake never finishes).
    HalfTls,
    /// After the greeting, one byte every 500 ms and never a newline.
    Slowloris,
    /// One line longer than the server accepts.
    Oversized,
    /// Hundreds of commands in one write, replies read.
    Flood,
    /// Failed CRAM attempts on one connection (atServer) / lookups of names that do not exist
    /// (atDirectory: the miss delay).
    Guessing,
    /// Commands with large replies, written without ever reading a reply.
    StalledReader,
}

impl Kind {
    /// The kinds run against `target`: the atDirectory's replies are a few bytes and its
    /// per-source rate limit ends any flood, so a reader that never reads cannot stall it.
    pub fn against(target: Target) -> &'static [Kind] {
        match target {
            Target::AtServer => &Kind::ALL,
            Target::Directory => &Kind::ALL[..7],
        }
    }

    pub const ALL: [Kind; 8] = [
        Kind::Garbage,
        Kind::Silent,
        Kind::HalfTls,
        Kind::Slowloris,
        Kind::Oversized,
        Kind::Flood,
        Kind::Guessing,
        Kind::StalledReader,
    ];
}

/// How the server ended a session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Ending {
    /// The server closed the connection (end of stream, reset, or a failed write).
    Closed,
    /// The server answered with an error line (and then closed, or kept answering errors).
    ErrorReply,
    /// The server answered every request (not-found answers to guesses): the session ended with
    /// the client leaving, as the protocol allows.
    Answered,
    /// Still open at the deadline.
    Hung(String),
}

/// The limits the attacked servers run with (what the deadlines are derived from).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub handshake: Duration,
    /// Idle time before an unauthenticated connection is closed (plus the reaper's period).
    pub idle: Duration,
    pub max_line: usize,
    /// Added to every deadline: the machine is shared and loaded.
    pub slack: Duration,
}

/// Where and how to attack.
#[derive(Clone)]
pub struct Victim {
    pub target: Target,
    pub addr: SocketAddr,
    pub server_name: ServerName<'static>,
    pub limits: Limits,
    pub tls: TlsConnector,
    pub tls_config: Arc<rustls::ClientConfig>,
}

/// The source address of session `n`: 127.0.1.1 … 127.0.1.100, never an honest client's.
fn source(n: usize) -> SocketAddr {
    let last = u8::try_from(n % 100 + 1).unwrap_or(1);
    SocketAddr::new(IpAddr::V4(Ipv4Addr::new(127, 0, 1, last)), 0)
}

async fn connect(n: usize, to: SocketAddr) -> std::io::Result<TcpStream> {
    let s = TcpSocket::new_v4()?;
    s.bind(source(n))?;
    // A small receive buffer makes a reader that never reads stall the server sooner.
    s.set_recv_buffer_size(16 * 1024)?;
    s.connect(to).await
}

/// Runs session `n` of `kind` against `v`.
pub async fn session(n: usize, kind: Kind, v: &Victim) -> Ending {
    let l = v.limits;
    let deadline = l.slack
        + match kind {
            Kind::Silent | Kind::HalfTls | Kind::Garbage => l.handshake,
            Kind::Slowloris | Kind::StalledReader => l.handshake + l.idle,
            // The atDirectory delays each miss beyond the first by its miss delay (3 s).
            Kind::Guessing => l.handshake + Duration::from_secs(8),
            Kind::Oversized | Kind::Flood => l.handshake,
        };
    match timeout(deadline, run(n, kind, v)).await {
        Ok(Ok(ending)) => ending,
        // An I/O error on our side: the server reset or dropped the connection.
        Ok(Err(_)) => Ending::Closed,
        Err(_) => Ending::Hung(format!(
            "{:?} session {n} against the {:?} still open after {} s",
            kind,
            v.target,
            deadline.as_secs()
        )),
    }
}

async fn run(n: usize, kind: Kind, v: &Victim) -> std::io::Result<Ending> {
    let mut tcp = connect(n, v.addr).await?;
    match kind {
        Kind::Garbage => {
            let mut junk = vec![0u8; rand::thread_rng().gen_range(64..4096)];
            rand::thread_rng().fill_bytes(&mut junk);
            // Not a TLS record type: 0x16 would start a (long) handshake record.
            junk[0] = 0x47;
            tcp.write_all(&junk).await?;
            until_closed(&mut tcp).await
        }
        Kind::Silent => until_closed(&mut tcp).await,
        Kind::HalfTls => {
            let mut hello = Vec::new();
            let mut c = rustls::ClientConnection::new(v.tls_config.clone(), v.server_name.clone())
                .map_err(std::io::Error::other)?;
            c.write_tls(&mut hello)?;
            tcp.write_all(&hello).await?;
            until_closed(&mut tcp).await
        }
        _ => {
            let mut tls = v.tls.connect(v.server_name.clone(), tcp).await?;
            // The greeting (`@`).
            let mut greeting = [0u8; 1];
            if tls.read(&mut greeting).await? == 0 {
                return Ok(Ending::Closed);
            }
            match kind {
                Kind::Slowloris => slowloris(&mut tls).await,
                Kind::Oversized => oversized(&mut tls, v.limits.max_line).await,
                Kind::Flood => flood(&mut tls, v.target).await,
                Kind::Guessing => guessing(&mut tls, v.target).await,
                _ => stalled(&mut tls).await,
            }
        }
    }
}

/// Reads until the server closes; an error line on the way makes it an error ending.
async fn until_closed<S: AsyncRead + Unpin>(s: &mut S) -> std::io::Result<Ending> {
    let mut buf = vec![0u8; 8192];
    let mut saw_error = false;
    let mut tail = Vec::new();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(if saw_error {
                Ending::ErrorReply
            } else {
                Ending::Closed
            });
        }
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(6).any(|w| w == b"error:") {
            saw_error = true;
        }
        let keep = tail.len().saturating_sub(8);
        tail.drain(..keep);
    }
}

async fn slowloris<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<Ending> {
    let mut buf = [0u8; 512];
    loop {
        s.write_all(b"a").await?;
        s.flush().await?;
        // Anything the server says (an error, or the end) while we trickle.
        match timeout(Duration::from_millis(500), s.read(&mut buf)).await {
            Ok(Ok(0)) => return Ok(Ending::Closed),
            Ok(Ok(n)) if buf[..n].windows(6).any(|w| w == b"error:") => {
                return until_closed(s).await.map(|_| Ending::ErrorReply)
            }
            Ok(Ok(_)) => {}
            Ok(Err(e)) => return Err(e),
            Err(_) => {}
        }
    }
}

async fn oversized<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    max_line: usize,
) -> std::io::Result<Ending> {
    let chunk = vec![b'x'; 16 * 1024];
    let mut sent = 0;
    while sent <= max_line {
        // The server may close as soon as the line is too long: a failed write is its answer.
        if s.write_all(&chunk).await.is_err() {
            return Ok(Ending::Closed);
        }
        sent += chunk.len();
    }
    let _ = s.write_all(b"\n").await;
    until_closed(s).await
}

async fn flood<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: Target,
) -> std::io::Result<Ending> {
    const LINES: usize = 300;
    let line: &[u8] = match target {
        // Verbs that need authentication, and nonsense.
        Target::AtServer => b"llookup:secret.wavi@alice\nupdate:x@alice y\nnotify:list\nfoo\n",
        // Lookups: the per-source rate limit (burst 200) is what ends this.
        // (A registered name and blank lines: misses would be slowed down by the miss delay.)
        Target::Directory => b"alice\n\nalice\n\n",
    };
    let mut burst = Vec::with_capacity(LINES * line.len() / 4);
    for _ in 0..LINES / 4 {
        burst.extend_from_slice(line);
    }
    if s.write_all(&burst).await.is_err() {
        return Ok(Ending::Closed);
    }
    s.flush().await?;
    read_replies(s, LINES).await
}

/// Reads until `expected` reply lines have come (then leaves) or the server closes.
async fn read_replies<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    expected: usize,
) -> std::io::Result<Ending> {
    let mut buf = vec![0u8; 16 * 1024];
    let (mut lines, mut saw_error) = (0usize, false);
    let mut tail = Vec::new();
    loop {
        let n = s.read(&mut buf).await?;
        if n == 0 {
            return Ok(if saw_error {
                Ending::ErrorReply
            } else {
                Ending::Closed
            });
        }
        lines += buf[..n].iter().filter(|b| **b == b'\n').count();
        tail.extend_from_slice(&buf[..n]);
        if tail.windows(6).any(|w| w == b"error:") {
            saw_error = true;
        }
        let keep = tail.len().saturating_sub(8);
        tail.drain(..keep);
        if lines >= expected {
            let _ = s.shutdown().await;
            return Ok(if saw_error {
                Ending::ErrorReply
            } else {
                Ending::Answered
            });
        }
    }
}

async fn guessing<S: AsyncRead + AsyncWrite + Unpin>(
    s: &mut S,
    target: Target,
) -> std::io::Result<Ending> {
    match target {
        Target::AtServer => {
            // More failures than one connection is allowed (5): the server closes.
            let mut lines = String::from("from:@alice\n");
            for i in 0..8 {
                lines.push_str(&format!("cram:{i:0128x}\n"));
            }
            s.write_all(lines.as_bytes()).await?;
            until_closed(s).await
        }
        Target::Directory => {
            // Names that are not registered: the first is answered at once, the second after
            // the miss delay.
            let mut rng = rand::thread_rng();
            let lines = format!("x{:x}\nx{:x}\n", rng.gen::<u64>(), rng.gen::<u64>());
            s.write_all(lines.as_bytes()).await?;
            read_replies(s, 2).await
        }
    }
}

/// Writes `scan` (a reply of every public key) again and again and never reads. Once the
/// server's replies fill the socket buffers it stops reading; then its idle limit must end the
/// connection, which our blocked write sees as a reset.
async fn stalled<S: AsyncRead + AsyncWrite + Unpin>(s: &mut S) -> std::io::Result<Ending> {
    let chunk = "scan\n".repeat(64);
    loop {
        if s.write_all(chunk.as_bytes()).await.is_err() {
            return Ok(Ending::Closed);
        }
    }
}
