//! One client connection: the TLS handshake under its deadline, the connection limit, then the
//! loop that reads command lines, runs them and writes replies and monitor lines.

use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use at_protocol::codec::{Line, LineCodec};
use at_protocol::ErrorCode;
use futures::StreamExt;
use tokio::io::{AsyncRead, AsyncWrite, AsyncWriteExt, ReadHalf, WriteHalf};
use tokio::net::TcpStream;
use tokio::sync::broadcast;
use tokio_rustls::server::TlsStream;
use tokio_rustls::TlsAcceptor;
use tokio_util::codec::FramedRead;

use crate::commands;
use crate::context::Shared;
use crate::error::AtError;
use crate::notifications::{stats_notification, Event, Kind};
use crate::reply::{render, Reply};
use crate::session::{Access, Session};

/// Serves one accepted TCP connection: the TLS handshake, the connection limit, then [`run`].
///
/// This future is every connection's task, and a task is as large as the largest state of its
/// future for its whole life, so nothing big is kept here across an await: the handshake (a whole
/// rustls connection and its timer) is boxed and freed once done, the TLS stream and the session
/// are moved straight into [`run`] (a local that was borrowed keeps its own slot beside the
/// awaited future), and [`run`] builds its loop without copying them.
pub async fn serve(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    shared: Arc<Shared>,
    permit: Option<tokio::sync::OwnedSemaphorePermit>,
) {
    let Some(tls) = Box::pin(handshake(tcp, addr, acceptor, &shared)).await else {
        return;
    };
    let Some(_permit) = permit else {
        Box::pin(refuse(tls, &shared)).await;
        return;
    };
    let (id, conn) = shared
        .registry
        .register(shared.clock.now_millis(), &shared.shutdown);
    session_over(tls, shared.clone(), addr, conn).await;
    shared.registry.unregister(id);
}

/// The TLS handshake under its deadline; `None` when it failed, timed out or the server is
/// shutting down.
async fn handshake(
    tcp: TcpStream,
    addr: SocketAddr,
    acceptor: TlsAcceptor,
    shared: &Shared,
) -> Option<TlsStream<TcpStream>> {
    let handshake =
        tokio::time::timeout(shared.config.limits.handshake_timeout, acceptor.accept(tcp));
    tokio::select! {
        _ = shared.shutdown.cancelled() => None,
        r = handshake => match r {
            Ok(Ok(s)) => Some(s),
            Ok(Err(e)) => {
                tracing::debug!(%addr, error = %e, "TLS handshake failed");
                shared.metrics.handshake_failures.inc();
                None
            }
            Err(_) => {
                tracing::debug!(%addr, "TLS handshake timed out");
                shared.metrics.handshake_failures.inc();
                None
            }
        },
    }
}

/// Over the connection limit: says so and closes.
async fn refuse(mut tls: TlsStream<TcpStream>, shared: &Shared) {
    shared.metrics.rejected_connections.inc();
    let refusal = at_protocol::Response::error(
        at_protocol::ErrorCode::InboundConnectionLimit,
        "Inbound connection limit exceeded",
    );
    let _ = tls.write_all(refusal.to_line().as_bytes()).await;
    let _ = tls.shutdown().await;
}

/// The session of an accepted connection, with the client certificate chain it presented. Not
/// async, so reading the certificates borrows `tls` outside [`serve`]'s future.
fn session_over(
    tls: TlsStream<TcpStream>,
    shared: Arc<Shared>,
    addr: SocketAddr,
    conn: Arc<crate::limits::ConnEntry>,
) -> impl Future<Output = ()> {
    let mut session = Session::new(shared, addr, conn);
    session.peer_certs = tls.get_ref().1.peer_certificates().map(<[_]>::to_vec);
    run(session, tls)
}

async fn next_event(rx: &mut Option<broadcast::Receiver<Event>>) -> Option<Event> {
    match rx {
        Some(r) => loop {
            match r.recv().await {
                Ok(ev) => return Some(ev),
                Err(broadcast::error::RecvError::Lagged(n)) => {
                    tracing::warn!(skipped = n, "monitor connection lagged behind");
                }
                Err(broadcast::error::RecvError::Closed) => return None,
            }
        },
        None => std::future::pending().await,
    }
}

/// The monitor line for `event`, if this connection's monitor wants it.
fn monitor_line(session: &Session, event: &Event) -> Option<String> {
    let spec = session.monitor.as_ref()?;
    match event {
        Event::Stats {
            last_commit_id,
            operation,
        } => {
            let now = session.shared.clock.now_millis();
            Some(
                stats_notification(session.atsign(), *last_commit_id, *operation, now)
                    .to_monitor_line(),
            )
        }
        Event::Notification(n) => {
            let wanted_kind =
                n.kind == Kind::Received || (n.kind == Kind::SelfKind && spec.self_notifications);
            let from = n.from.trim_start_matches('@');
            let matches = spec.regex.is_match(&n.key) || spec.regex.is_match(from);
            let allowed =
                session.enrollment().is_none() || session.authorize(&n.key, Access::Read).is_ok();
            (wanted_kind && matches && allowed).then(|| n.to_json(false).to_monitor_line())
        }
    }
}

/// Serves one connection until it closes, is reaped or the server shuts down.
///
/// Not an `async fn`: one would keep its arguments (the session and the whole stream) in its
/// future beside the copies its body works on. The stream is split here, into a shared
/// allocation, and the loop's future holds the session, the halves and the line buffer once.
pub fn run<S>(mut session: Session, stream: S) -> impl Future<Output = ()>
where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let (rd, mut wr) = tokio::io::split(stream);
    // 1 KiB to start (tokio-util's default is 8 KiB): most lines are short, and it grows on demand
    // for the long ones; idle connections (monitors) are the many.
    let mut frames = FramedRead::with_capacity(
        rd,
        LineCodec::new(session.shared.config.limits.max_line_len),
        1024,
    );
    // Used in place by the block, not moved into new locals (which would be a second copy).
    async move { serve_lines(&mut session, &mut frames, &mut wr).await }
}

/// The loop of [`run`]: reads command lines, runs them, writes replies and monitor lines.
async fn serve_lines<S>(
    session: &mut Session,
    frames: &mut FramedRead<ReadHalf<S>, LineCodec>,
    wr: &mut WriteHalf<S>,
) where
    S: AsyncRead + AsyncWrite + Unpin,
{
    let mut events: Option<broadcast::Receiver<Event>> = None;
    let cancel = session.conn.cancel.clone();
    if wr.write_all(b"@").await.is_err() || wr.flush().await.is_err() {
        return;
    }
    loop {
        let out: Option<String>;
        let mut close = false;
        tokio::select! {
            _ = cancel.cancelled() => break,
            frame = frames.next() => {
                let Some(Ok(frame)) = frame else { break };
                session.conn.touch(session.shared.clock.now_millis());
                let reply = match frame {
                    Line::TooLong => Reply::Error(AtError::new(ErrorCode::BufferOverflow, "Buffer limit exceeded").closing()),
                    Line::InvalidUtf8 => Reply::Error(AtError::syntax("command is not valid UTF-8")),
                    Line::Text(text) => commands::execute(session, &text).await,
                };
                if matches!(reply, Reply::Close) {
                    break;
                }
                close = matches!(&reply, Reply::Error(e) if e.should_close());
                let prompt = if close && matches!(&reply, Reply::Error(e) if e.code == ErrorCode::BufferOverflow) {
                    None
                } else if session.monitor.is_some() && matches!(reply, Reply::Data(ref d) if d == "ok") {
                    // atsdk's monitor wants complete lines only (atsdk.md §7).
                    None
                } else {
                    Some(session.prompt())
                };
                out = render(&reply, prompt.as_ref(), session.is_owner(), session.json_errors);
                if let Some(sub) = session.subscription.take() {
                    events = Some(sub);
                }
            }
            ev = next_event(&mut events) => {
                let Some(ev) = ev else { break };
                out = monitor_line(session, &ev);
            }
            ev = crate::streams::next(&mut session.stream) => {
                let (conn, clock) = (&session.conn, &session.shared.clock);
                let touch = || conn.touch(clock.now_millis());
                // Boxed: the relay's state would otherwise be part of every connection's task,
                // monitors included, though few connections ever stream.
                let flow = Box::pin(crate::streams::serve(ev, &mut session.stream, frames, wr, &cancel, &touch)).await;
                if flow == crate::streams::Flow::Close {
                    break;
                }
                continue;
            }
        }
        let mut buf = out.unwrap_or_default();
        for line in session.pending_lines.drain(..) {
            buf.push_str(&line);
        }
        if !buf.is_empty() {
            if !write_unless_cancelled(wr, buf.as_bytes(), &cancel).await {
                break;
            }
            // Idle time also counts from the last write, as the reference measures it: a
            // monitor being fed notifications is not idle.
            session.conn.touch(session.shared.clock.now_millis());
        }
        if close {
            break;
        }
    }
    // The close_notify waits on the same client: the reaper bounds it too (sent whenever it can
    // go without waiting, as on a graceful shutdown).
    tokio::select! {
        biased;
        _ = wr.shutdown() => {}
        _ = cancel.cancelled() => {}
    }
}

/// Writes `bytes` unless the connection is cancelled first. A client that stops reading its
/// replies blocks the write (and with it the reading of its next lines), so the idle reaper and
/// shutdown must be able to end the connection here too; else it holds its slot forever (found by
/// `make reliability`'s hostile section).
async fn write_unless_cancelled<W: AsyncWrite + Unpin>(
    wr: &mut W,
    bytes: &[u8],
    cancel: &tokio_util::sync::CancellationToken,
) -> bool {
    tokio::select! {
        biased;
        r = async {
            wr.write_all(bytes).await?;
            wr.flush().await
        } => r.is_ok(),
        _ = cancel.cancelled() => false,
    }
}

#[cfg(test)]
mod task_size {
    use super::*;

    /// The size of the future `f` returns, without calling it.
    fn returned<A, B, C, D, E, F>(_: impl FnOnce(A, B, C, D, E) -> F) -> usize {
        std::mem::size_of::<F>()
    }

    /// Every open connection is one task of this size for its whole life (1,000 monitors, 1,000
    /// of them): a borrowed local kept beside the loop's future, the handshake's rustls state or
    /// a second copy of the session and stream each add a kilobyte or more. It was 4,160 bytes
    /// in a release build before they were taken out, and is 992 after.
    #[test]
    fn a_connection_task_stays_small() {
        let size = returned(serve);
        eprintln!("connection task future: {size} bytes");
        assert!(size <= 1536, "connection task future is {size} bytes");
    }
}
