//! One root-protocol connection: greeting, then lookups until `@exit`, end of stream, or abuse control.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use at_protocol::codec::{Line, LineCodec};
use at_protocol::root::{RootReply, RootRequest};
use futures::StreamExt;
use tokio::io::{AsyncWrite, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

use super::limits::SourceLimiter;
use crate::directory::{Directory, Resolution};

#[derive(Debug, Clone)]
pub struct Settings {
    pub max_line: usize,
    pub handshake_timeout: Duration,
    /// Before the first lookup.
    pub idle_timeout: Duration,
    /// After a lookup; `None` keeps a used connection open (clients in the field never reconnect).
    pub session_idle_timeout: Option<Duration>,
    pub miss_allowance: u32,
    pub miss_delay: Duration,
}

pub(super) struct Shared {
    pub acceptor: TlsAcceptor,
    pub directory: Directory,
    pub limiter: Arc<SourceLimiter>,
    pub settings: Settings,
}

/// The reply and its prompt leave in one write: clients split responses on read boundaries.
async fn send<W: AsyncWrite + Unpin>(out: &mut W, reply: &str) -> std::io::Result<()> {
    out.write_all(reply.as_bytes()).await?;
    out.flush().await
}

pub(super) async fn run(
    shared: &Shared,
    tcp: TcpStream,
    peer: SocketAddr,
    shutdown: CancellationToken,
) {
    let metrics = &shared.directory.metrics;
    let settings = &shared.settings;
    let tls =
        match tokio::time::timeout(settings.handshake_timeout, shared.acceptor.accept(tcp)).await {
            Ok(Ok(tls)) => tls,
            Ok(Err(e)) => {
                tracing::debug!(%peer, error = %e, "TLS handshake failed");
                return;
            }
            Err(_) => {
                metrics.reject("handshake_timeout");
                return;
            }
        };
    let (read, mut write) = tokio::io::split(tls);
    let mut lines = FramedRead::new(read, LineCodec::new(settings.max_line));
    if send(&mut write, "@").await.is_err() {
        return;
    }
    let mut session = Session {
        shared,
        peer,
        misses: 0,
        used: false,
    };
    loop {
        let idle = if session.used {
            settings.session_idle_timeout
        } else {
            Some(settings.idle_timeout)
        };
        let next = tokio::select! {
            _ = shutdown.cancelled() => break,
            next = next_line(&mut lines, idle) => next,
        };
        let request = match next {
            Next::Frame(Line::Text(line)) => RootRequest::parse(&line),
            Next::Frame(Line::InvalidUtf8) => RootRequest::Invalid("not UTF-8".into()),
            Next::Frame(Line::TooLong) => {
                metrics.reject("oversized_line");
                break;
            }
            Next::Idle => {
                metrics.reject("idle");
                break;
            }
            Next::Closed => break,
        };
        let reply = match session.handle(request, &shutdown).await {
            Step::Reply(reply) => reply,
            Step::Close => break,
        };
        if send(&mut write, &reply).await.is_err() {
            break;
        }
    }
    // Best effort: the peer may already be gone.
    let _ = write.shutdown().await;
}

enum Step {
    Reply(String),
    Close,
}

/// Per-connection state of the abuse control.
struct Session<'a> {
    shared: &'a Shared,
    peer: SocketAddr,
    misses: u32,
    /// Has looked something up: from then on the (longer) session idle timeout applies.
    used: bool,
}

impl Session<'_> {
    async fn handle(&mut self, request: RootRequest, shutdown: &CancellationToken) -> Step {
        let metrics = &self.shared.directory.metrics;
        if request == RootRequest::Exit {
            return Step::Close;
        }
        if !self.shared.limiter.allow(self.peer.ip()) {
            metrics.reject("rate_limited");
            return Step::Close;
        }
        match request {
            // Clients such as at_c send a blank line first and wait for any answer.
            RootRequest::Blank | RootRequest::Exit => Step::Reply(RootReply::NotFound.to_wire()),
            RootRequest::Invalid(reason) => {
                tracing::debug!(peer = %self.peer, %reason, "invalid root request");
                metrics.lookup("invalid");
                self.miss(shutdown).await
            }
            RootRequest::Lookup(atsign) => {
                self.used = true;
                match self.shared.directory.resolve(atsign.name()).await {
                    Resolution::Found(address) => {
                        metrics.lookup("found");
                        let reply = RootReply::Found {
                            host: address.host,
                            port: address.port,
                        };
                        Step::Reply(reply.to_wire())
                    }
                    Resolution::NotFound => {
                        metrics.lookup("not_found");
                        self.miss(shutdown).await
                    }
                    // `null` would tell the client the atSign does not exist, a wrong answer
                    // clients act on; closing says only "try again" (found by `make reliability`).
                    Resolution::Unavailable => {
                        metrics.lookup("error");
                        Step::Close
                    }
                }
            }
        }
    }

    /// A not-found answer; beyond the allowance it is delayed, which slows down enumeration.
    async fn miss(&mut self, shutdown: &CancellationToken) -> Step {
        self.misses = self.misses.saturating_add(1);
        if self.misses > self.shared.settings.miss_allowance {
            self.shared.directory.metrics.miss_delays.inc();
            tokio::select! {
                _ = shutdown.cancelled() => return Step::Close,
                _ = tokio::time::sleep(self.shared.settings.miss_delay) => {}
            }
        }
        Step::Reply(RootReply::NotFound.to_wire())
    }
}

enum Next {
    Frame(Line),
    Idle,
    Closed,
}

async fn next_line<R>(lines: &mut FramedRead<R, LineCodec>, idle: Option<Duration>) -> Next
where
    R: tokio::io::AsyncRead + Unpin,
{
    let item = match idle {
        Some(limit) => match tokio::time::timeout(limit, lines.next()).await {
            Ok(item) => item,
            Err(_) => return Next::Idle,
        },
        None => lines.next().await,
    };
    match item {
        Some(Ok(line)) => Next::Frame(line),
        Some(Err(_)) | None => Next::Closed,
    }
}
