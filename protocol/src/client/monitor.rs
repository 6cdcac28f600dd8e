//! A connection in monitor mode: `notification: {json}` lines stream in, interleaved with replies to
//! commands the client still sends (e.g. `noop:0` heartbeats). A reader task splits the two:
//! notifications go to a channel, replies to whoever is waiting in [`MonitorConnection::send`].

use tokio::io::{AsyncReadExt, ReadHalf, WriteHalf};
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio::time::timeout;

use crate::notification::NotificationJson;
use crate::response::Reply;

use super::config::ClientConfig;
use super::error::ClientError;
use super::framing::FrameBuffer;
use super::transport::{verb_of, write_line, Stream};

/// Notifications buffered before the reader waits for the consumer.
const NOTIFICATION_BACKLOG: usize = 1024;

/// A monitor stream. Dropping it stops the reader task and closes the connection.
#[derive(Debug)]
pub struct MonitorConnection {
    writer: WriteHalf<Stream>,
    replies: mpsc::Receiver<Reply>,
    notifications: Option<mpsc::Receiver<String>>,
    reader: JoinHandle<()>,
    config: ClientConfig,
}

impl MonitorConnection {
    pub(crate) async fn start(
        stream: Stream,
        frames: FrameBuffer,
        config: ClientConfig,
        command: &str,
    ) -> Result<Self, ClientError> {
        let (read_half, mut writer) = tokio::io::split(stream);
        write_line(&mut writer, command, verb_of(command)).await?;
        let (reply_tx, replies) = mpsc::channel(16);
        let (notify_tx, notifications) = mpsc::channel(NOTIFICATION_BACKLOG);
        let reader = tokio::spawn(read_loop(read_half, frames, reply_tx, notify_tx));
        Ok(Self {
            writer,
            replies,
            notifications: Some(notifications),
            reader,
            config,
        })
    }

    /// Takes the channel of notification JSON texts (the part after `notification:`). It ends when
    /// the connection closes. Returns `None` if already taken.
    pub fn take_notifications(&mut self) -> Option<mpsc::Receiver<String>> {
        self.notifications.take()
    }

    /// The next notification JSON text, or `None` once the connection has closed (or the channel was
    /// taken).
    pub async fn next_notification(&mut self) -> Option<String> {
        self.notifications.as_mut()?.recv().await
    }

    /// Like [`Self::next_notification`], parsed into the grammar's [`NotificationJson`].
    pub async fn next_notification_json(
        &mut self,
    ) -> Option<Result<NotificationJson, serde_json::Error>> {
        let json = self.next_notification().await?;
        Some(serde_json::from_str(&json))
    }

    /// Sends a command on the monitor connection and waits (at most `response_timeout`) for its
    /// reply, while notifications keep flowing to their channel.
    pub async fn send(&mut self, command: &str) -> Result<Reply, ClientError> {
        let verb = verb_of(command).to_owned();
        // A reply that arrived after an earlier timeout must not answer this command.
        while self.replies.try_recv().is_ok() {}
        write_line(&mut self.writer, command, &verb).await?;
        let step = format!("reading the reply to `{verb}` on a monitor connection");
        match timeout(self.config.response_timeout, self.replies.recv()).await {
            Ok(Some(reply)) => Ok(reply),
            Ok(None) => Err(ClientError::Closed { step }),
            Err(_) => Err(ClientError::Timeout {
                step,
                after: self.config.response_timeout,
            }),
        }
    }
}

impl Drop for MonitorConnection {
    fn drop(&mut self) {
        self.reader.abort();
    }
}

async fn read_loop(
    mut reader: ReadHalf<Stream>,
    mut frames: FrameBuffer,
    replies: mpsc::Sender<Reply>,
    notifications: mpsc::Sender<String>,
) {
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        while let Some(line) = frames.next_line() {
            match Reply::parse(&line) {
                Ok(Reply::Notification(json)) => {
                    // A consumer that dropped its receiver only loses notifications, not replies.
                    let _ = notifications.send(json).await;
                }
                Ok(reply @ (Reply::Data(_) | Reply::Error { .. })) => {
                    if replies.send(reply).await.is_err() {
                        return;
                    }
                }
                Ok(Reply::Pol(_)) | Err(_) => {
                    tracing::debug!(line = %line, "ignoring unexpected line on monitor connection");
                }
            }
        }
        match reader.read(&mut chunk).await {
            Ok(0) => return,
            Ok(n) => {
                if frames.push(chunk.get(..n).unwrap_or_default()).is_err() {
                    tracing::warn!("monitor line exceeds the response size limit; closing");
                    return;
                }
            }
            Err(e) => {
                tracing::debug!(error = %e, "monitor connection read failed");
                return;
            }
        }
    }
}
