//! TCP + TLS connect and deadline-bounded reads shared by every client connection.

use rustls_pki_types::ServerName;
use tokio::io::{AsyncRead, AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio::time::{timeout, Instant};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

use super::config::ClientConfig;
use super::error::ClientError;
use super::framing::FrameBuffer;

pub(crate) type Stream = TlsStream<TcpStream>;

/// Opens TCP to `host:port` and runs the TLS handshake with `sni` as the server name, each step under
/// `connect_timeout`.
pub(crate) async fn connect_tls(
    config: &ClientConfig,
    host: &str,
    port: u16,
    sni: &str,
) -> Result<Stream, ClientError> {
    let server_name = ServerName::try_from(sni.to_owned())
        .map_err(|_| ClientError::InvalidServerName(sni.to_owned()))?;
    let step = format!("connecting to {host}:{port}");
    let tcp = timeout(config.connect_timeout, TcpStream::connect((host, port)))
        .await
        .map_err(|_| ClientError::Timeout {
            step: step.clone(),
            after: config.connect_timeout,
        })?
        .map_err(|e| ClientError::io(step, e))?;
    // Replies are small and latency-bound (§1.1 sets TCP_NODELAY on both ends).
    tcp.set_nodelay(true)
        .map_err(|e| ClientError::io("setting TCP_NODELAY", e))?;
    let step = format!("TLS handshake with {host}:{port}");
    timeout(
        config.connect_timeout,
        TlsConnector::from(config.tls.clone()).connect(server_name, tcp),
    )
    .await
    .map_err(|_| ClientError::Timeout {
        step: step.clone(),
        after: config.connect_timeout,
    })?
    .map_err(|e| ClientError::io(step, e))
}

/// Writes one command line (a `\n` is appended) and flushes it as one TLS record.
pub(crate) async fn write_line<W: AsyncWriteExt + Unpin>(
    writer: &mut W,
    command: &str,
    step: &str,
) -> Result<(), ClientError> {
    if command.contains('\n') {
        return Err(ClientError::MultiLineCommand);
    }
    let mut line = Vec::with_capacity(command.len() + 1);
    line.extend_from_slice(command.as_bytes());
    line.push(b'\n');
    writer
        .write_all(&line)
        .await
        .map_err(|e| ClientError::io(format!("sending {step}"), e))?;
    writer
        .flush()
        .await
        .map_err(|e| ClientError::io(format!("sending {step}"), e))
}

/// Reads until `extract` yields a frame. Each read waits at most `read_timeout`; the whole frame at most
/// `response_timeout`. `extract` receives `eof = true` once the peer has closed.
pub(crate) async fn read_frame<R, T>(
    reader: &mut R,
    frames: &mut FrameBuffer,
    config: &ClientConfig,
    step: &str,
    mut extract: impl FnMut(&mut FrameBuffer, bool) -> Option<T>,
) -> Result<T, ClientError>
where
    R: AsyncRead + Unpin,
{
    let deadline = Instant::now() + config.response_timeout;
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        if let Some(frame) = extract(frames, false) {
            return Ok(frame);
        }
        let remaining = deadline.saturating_duration_since(Instant::now());
        let (wait, total) = if remaining < config.read_timeout {
            (remaining, true)
        } else {
            (config.read_timeout, false)
        };
        let n = match timeout(wait, reader.read(&mut chunk)).await {
            // A peer that drops TCP without a TLS close_notify has still closed the stream.
            Ok(Err(e)) if e.kind() == std::io::ErrorKind::UnexpectedEof => 0,
            Ok(read) => read.map_err(|e| ClientError::io(step.to_owned(), e))?,
            Err(_) => {
                return Err(ClientError::Timeout {
                    step: step.to_owned(),
                    after: if total {
                        config.response_timeout
                    } else {
                        config.read_timeout
                    },
                })
            }
        };
        if n == 0 {
            if let Some(frame) = extract(frames, true) {
                return Ok(frame);
            }
            let rest = frames.take_rest();
            return Err(if rest.is_empty() {
                ClientError::Closed {
                    step: step.to_owned(),
                }
            } else {
                ClientError::UnexpectedReply {
                    step: format!("{step} (connection closed)"),
                    reply: rest,
                }
            });
        }
        frames
            .push(chunk.get(..n).unwrap_or_default())
            .map_err(|_| ClientError::FrameTooLarge {
                limit: config.max_response_bytes,
            })?;
    }
}

/// The verb of a command (text before the first `:` or space), for step names that never carry
/// secrets such as CRAM digests or PKAM signatures.
pub(crate) fn verb_of(command: &str) -> &str {
    let end = command.find([':', ' ']).unwrap_or(command.len());
    command.get(..end).unwrap_or(command)
}
