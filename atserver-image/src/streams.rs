//! The relay behind `stream:` (atprotocol.md §3.9): a sender's connection, once a receiver has
//! claimed its stream id, stops reading command lines and its raw bytes are copied to the
//! receiver's connection, as the reference's `StreamManager` does.
//!
//! Each side keeps a [`Link`] in its session; the connection loop waits on it beside the socket
//! and hands what arrives to [`serve`]. Bytes travel in bounded chunks, so a slow receiver
//! slows the sender instead of growing a buffer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use bytes::{Bytes, BytesMut};
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::sync::mpsc;
use tokio_util::codec::FramedRead;
use tokio_util::sync::CancellationToken;

/// Size of one relayed chunk.
const CHUNK: usize = 64 * 1024;
/// Chunks in flight between the two connections.
const IN_FLIGHT: usize = 8;

/// What the receiver's side tells the sender's connection.
#[derive(Debug)]
pub enum ToSender {
    /// A receiver claimed the stream: write `stream:ack <id>`, then relay into this sink.
    Ack(mpsc::Sender<Bytes>),
    /// The receiver has everything: write `stream:done <id>` and close.
    Done,
}

struct Entry {
    to_sender: mpsc::Sender<ToSender>,
    claimed: bool,
    /// Which opening of the id this is, so a closing sender removes only its own.
    serial: u64,
}

#[derive(Default)]
struct Streams {
    open: HashMap<String, Entry>,
    serial: u64,
}

/// The open streams of this server, by stream id.
#[derive(Clone, Default)]
pub struct StreamRelay {
    streams: Arc<Mutex<Streams>>,
}

/// Why a stream id cannot be used.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RelayError {
    /// Another sender holds the id.
    InUse,
    /// No sender holds the id (or a receiver already claimed it).
    Unknown,
}

impl StreamRelay {
    fn streams(&self) -> std::sync::MutexGuard<'_, Streams> {
        // A panic elsewhere cannot leave the map half-written: every change is one insert/remove.
        self.streams.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Opens `id` for a sender; the returned link is the sender's end.
    pub fn open(&self, id: &str, length: u64) -> Result<Link, RelayError> {
        let mut streams = self.streams();
        if streams.open.contains_key(id) {
            return Err(RelayError::InUse);
        }
        streams.serial += 1;
        let serial = streams.serial;
        let (tx, rx) = mpsc::channel(2);
        streams.open.insert(
            id.to_string(),
            Entry {
                to_sender: tx,
                claimed: false,
                serial,
            },
        );
        Ok(Link::Sender {
            guard: Registration {
                relay: self.clone(),
                id: id.to_string(),
                serial,
            },
            length,
            rx,
        })
    }

    /// Drops `id` (a restart of the same transfer from a later byte).
    pub fn close(&self, id: &str) {
        self.streams().open.remove(id);
    }

    /// A receiver claims `id`; the sender is told to start. Returns the receiver's end.
    pub async fn claim(&self, id: &str) -> Result<Link, RelayError> {
        let to_sender = {
            let mut streams = self.streams();
            let entry = streams.open.get_mut(id).ok_or(RelayError::Unknown)?;
            if entry.claimed {
                return Err(RelayError::Unknown);
            }
            entry.claimed = true;
            entry.to_sender.clone()
        };
        let (sink, rx) = mpsc::channel(IN_FLIGHT);
        to_sender
            .send(ToSender::Ack(sink))
            .await
            .map_err(|_| RelayError::Unknown)?;
        Ok(Link::Receiver { rx })
    }

    /// The receiver is done: the sender writes `stream:done` and closes; the id is forgotten.
    pub async fn finish(&self, id: &str) -> Result<(), RelayError> {
        let to_sender = self
            .streams()
            .open
            .remove(id)
            .map(|e| e.to_sender)
            .ok_or(RelayError::Unknown)?;
        to_sender
            .send(ToSender::Done)
            .await
            .map_err(|_| RelayError::Unknown)
    }

    /// How many streams are open (for tests and metrics).
    pub fn len(&self) -> usize {
        self.streams().open.len()
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// Forgets the sender's stream id when its connection goes away.
pub struct Registration {
    relay: StreamRelay,
    id: String,
    serial: u64,
}

impl Drop for Registration {
    fn drop(&mut self) {
        let mut streams = self.relay.streams();
        // Only our own entry: a restart may have opened the id again for another sender.
        if streams
            .open
            .get(&self.id)
            .is_some_and(|e| e.serial == self.serial)
        {
            streams.open.remove(&self.id);
        }
    }
}

/// One connection's end of a stream.
pub enum Link {
    Sender {
        guard: Registration,
        length: u64,
        rx: mpsc::Receiver<ToSender>,
    },
    Receiver {
        rx: mpsc::Receiver<Bytes>,
    },
}

/// What a link delivers to its connection.
pub enum LinkEvent {
    Ack(mpsc::Sender<Bytes>),
    Done,
    Bytes(Bytes),
    /// The other end went away, or the receiver has every byte.
    Ended,
}

/// The next event of `link`; never resolves without one.
pub async fn next(link: &mut Option<Link>) -> LinkEvent {
    match link {
        None => std::future::pending().await,
        Some(Link::Sender { rx, .. }) => match rx.recv().await {
            Some(ToSender::Ack(sink)) => LinkEvent::Ack(sink),
            Some(ToSender::Done) => LinkEvent::Done,
            None => LinkEvent::Ended,
        },
        Some(Link::Receiver { rx }) => match rx.recv().await {
            Some(bytes) => LinkEvent::Bytes(bytes),
            None => LinkEvent::Ended,
        },
    }
}

/// Whether the connection goes on after an event.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Flow {
    Continue,
    Close,
}

/// Acts on `event` for the connection whose reader is `frames` and writer `wr`; `touch` marks
/// the connection active (bytes moving are not idleness, which the reaper would end).
pub async fn serve<R, D, W>(
    event: LinkEvent,
    link: &mut Option<Link>,
    frames: &mut FramedRead<R, D>,
    wr: &mut W,
    cancel: &CancellationToken,
    touch: &(dyn Fn() + Sync),
) -> Flow
where
    R: AsyncRead + Unpin,
    W: AsyncWrite + Unpin,
{
    let (id, length) = match link {
        Some(Link::Sender { guard, length, .. }) => (guard.id.clone(), *length),
        _ => (String::new(), 0),
    };
    match event {
        LinkEvent::Ack(sink) => {
            if write(wr, format!("stream:ack {id}\n").as_bytes())
                .await
                .is_err()
            {
                return Flow::Close;
            }
            // Lines the client sent after init (none, with at_client) are part of the payload.
            let leftover = frames.read_buffer_mut().split();
            let relayed = tokio::select! {
                _ = cancel.cancelled() => return Flow::Close,
                r = pump(leftover, frames.get_mut(), length, &sink, touch) => r,
            };
            match relayed {
                Ok(n) if n == length => Flow::Continue,
                _ => Flow::Close,
            }
        }
        LinkEvent::Done => {
            let _ = write(wr, format!("stream:done {id}\n").as_bytes()).await;
            Flow::Close
        }
        LinkEvent::Bytes(bytes) => match write(wr, &bytes).await {
            Ok(()) => {
                touch();
                Flow::Continue
            }
            Err(_) => Flow::Close,
        },
        LinkEvent::Ended => {
            let receiving = matches!(link, Some(Link::Receiver { .. }));
            *link = None;
            // A receiver's transfer is over and it will say `stream:done`; a sender whose
            // receiver vanished has nobody to send to.
            if receiving {
                Flow::Continue
            } else {
                Flow::Close
            }
        }
    }
}

async fn write<W: AsyncWrite + Unpin>(wr: &mut W, bytes: &[u8]) -> std::io::Result<()> {
    wr.write_all(bytes).await?;
    wr.flush().await
}

/// Copies `length` bytes (what was buffered first, then the socket) into `sink`, calling
/// `touch` per chunk; returns how many were copied before the end of the socket or of the
/// receiver.
pub async fn pump<R: AsyncRead + Unpin>(
    mut leftover: BytesMut,
    reader: &mut R,
    length: u64,
    sink: &mpsc::Sender<Bytes>,
    touch: &(dyn Fn() + Sync),
) -> std::io::Result<u64> {
    let mut sent: u64 = 0;
    let cap = |sent: u64| usize::try_from(length - sent).unwrap_or(usize::MAX);
    if !leftover.is_empty() {
        let take = leftover.len().min(cap(sent));
        let chunk = leftover.split_to(take).freeze();
        sent += chunk.len() as u64;
        if sink.send(chunk).await.is_err() {
            return Ok(sent);
        }
    }
    let mut buf = BytesMut::with_capacity(CHUNK);
    while sent < length {
        buf.reserve(CHUNK);
        let want = CHUNK.min(cap(sent));
        let n = (&mut *reader).take(want as u64).read_buf(&mut buf).await?;
        if n == 0 {
            break;
        }
        sent += n as u64;
        if sink.send(buf.split().freeze()).await.is_err() {
            break;
        }
        touch();
    }
    Ok(sent)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn pump_copies_exactly_length_bytes_leftover_first() {
        let (tx, mut rx) = mpsc::channel::<Bytes>(IN_FLIGHT);
        let mut reader: &[u8] = &[3u8; 200_000];
        let task = tokio::spawn(async move {
            let mut got = Vec::new();
            while let Some(b) = rx.recv().await {
                got.extend_from_slice(&b);
            }
            got
        });
        let touched = std::sync::atomic::AtomicUsize::new(0);
        let touch = || {
            touched.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        };
        let n = pump(
            BytesMut::from(&b"ab"[..]),
            &mut reader,
            150_002,
            &tx,
            &touch,
        )
        .await
        .unwrap();
        assert!(touched.into_inner() >= 3, "one touch per chunk");
        drop(tx);
        let got = task.await.unwrap();
        assert_eq!(n, 150_002);
        assert_eq!(&got[..2], b"ab");
        assert_eq!(got.len(), 150_002);
        assert_eq!(reader.len(), 50_000);
    }

    #[tokio::test]
    async fn a_stream_id_is_claimed_once_and_forgotten_with_its_sender() {
        let relay = StreamRelay::default();
        let sender = relay.open("s1", 1).unwrap();
        assert!(matches!(relay.open("s1", 1), Err(RelayError::InUse)));
        let mut sender = Some(sender);
        let receiver = relay.claim("s1").await.unwrap();
        assert!(matches!(receiver, Link::Receiver { .. }));
        assert!(matches!(next(&mut sender).await, LinkEvent::Ack(_)));
        assert!(matches!(relay.claim("s1").await, Err(RelayError::Unknown)));
        drop(sender);
        assert!(relay.is_empty());
        assert!(matches!(relay.finish("s1").await, Err(RelayError::Unknown)));
    }
}
