//! One connection to an atServer: greeting, then request/response.

use std::time::Duration;

use crate::response::{Prompt, Reply};

use super::config::ClientConfig;
use super::error::ClientError;
use super::framing::FrameBuffer;
use super::monitor::MonitorConnection;
use super::transport::{connect_tls, read_frame, verb_of, write_line, Stream};

/// A TLS connection to an atServer that has received its `@` greeting.
#[derive(Debug)]
pub struct AtConnection {
    stream: Stream,
    frames: FrameBuffer,
    config: ClientConfig,
    /// Who this connection is authenticated as, as far as this client knows.
    pub(crate) prompt: Prompt,
}

impl AtConnection {
    /// Connects to `host:port`, verifying the certificate for `host`, and reads the greeting.
    pub async fn connect(
        config: &ClientConfig,
        host: &str,
        port: u16,
    ) -> Result<Self, ClientError> {
        Self::connect_with_sni(config, host, port, host).await
    }

    /// Connects to `host:port` but uses `sni` as the TLS server name (e.g. dialling an IP while the
    /// certificate names the atServer's host).
    pub async fn connect_with_sni(
        config: &ClientConfig,
        host: &str,
        port: u16,
        sni: &str,
    ) -> Result<Self, ClientError> {
        let stream = connect_tls(config, host, port, sni).await?;
        let mut conn = Self {
            stream,
            frames: FrameBuffer::new(config.max_response_bytes),
            config: config.clone(),
            prompt: Prompt::Unauthenticated,
        };
        let greeting = read_frame(
            &mut conn.stream,
            &mut conn.frames,
            &conn.config,
            "reading the greeting",
            |f, _| f.take_greeting(),
        )
        .await?;
        greeting.map_err(|reply| ClientError::UnexpectedReply {
            step: "reading the greeting".into(),
            reply,
        })?;
        Ok(conn)
    }

    /// The prompt this client expects after its authentication so far.
    pub fn prompt(&self) -> &Prompt {
        &self.prompt
    }

    /// The settings this connection uses.
    pub fn config(&self) -> &ClientConfig {
        &self.config
    }

    /// Changes the longest wait for the next bytes of a reply from now on.
    pub fn set_read_timeout(&mut self, timeout: Duration) {
        self.config.read_timeout = timeout;
    }

    /// Changes the longest wait for a whole reply from now on (also used by [`Self::monitor`]).
    pub fn set_response_timeout(&mut self, timeout: Duration) {
        self.config.response_timeout = timeout;
    }

    /// Sends one command line and returns the parsed reply. Server errors come back as
    /// [`Reply::Error`], not as `Err`: the connection stays usable.
    pub async fn send(&mut self, command: &str) -> Result<Reply, ClientError> {
        let frame = self.send_raw(command).await?;
        parse_reply(&frame, command)
    }

    /// Sends one command line and returns the response frame text (prompt removed) without parsing.
    pub async fn send_raw(&mut self, command: &str) -> Result<String, ClientError> {
        let verb = verb_of(command).to_owned();
        write_line(&mut self.stream, command, &verb).await?;
        let step = format!("reading the reply to `{verb}`");
        read_frame(
            &mut self.stream,
            &mut self.frames,
            &self.config,
            &step,
            |f, eof| f.next_response(eof),
        )
        .await
    }

    /// Sends a command and returns the text after `data:`; an error reply becomes
    /// [`ClientError::Server`].
    pub async fn send_data(&mut self, command: &str) -> Result<String, ClientError> {
        match self.send(command).await? {
            Reply::Data(data) => Ok(data),
            Reply::Error { code, message } => Err(ClientError::Server { code, message }),
            other => Err(ClientError::UnexpectedReply {
                step: format!("reading the reply to `{}`", verb_of(command)),
                reply: format!("{other:?}"),
            }),
        }
    }

    /// Sends `pol` and reads its special reply (`@bob@`, no newline) or an error.
    pub(crate) async fn send_pol(&mut self) -> Result<Reply, ClientError> {
        write_line(&mut self.stream, "pol", "pol").await?;
        let frame = read_frame(
            &mut self.stream,
            &mut self.frames,
            &self.config,
            "reading the reply to `pol`",
            |f, eof| f.next_pol_reply(eof),
        )
        .await?;
        parse_reply(&frame, "pol")
    }

    /// Sends a `monitor…` command and turns this connection into a monitor stream: notifications
    /// arrive on a channel while [`MonitorConnection::send`] still answers commands such as `noop:0`.
    pub async fn monitor(self, command: &str) -> Result<MonitorConnection, ClientError> {
        MonitorConnection::start(self.stream, self.frames, self.config, command).await
    }

    /// Sends `@exit` and closes the TLS session.
    pub async fn close(mut self) -> Result<(), ClientError> {
        use tokio::io::AsyncWriteExt;
        write_line(&mut self.stream, "@exit", "@exit").await?;
        self.stream
            .shutdown()
            .await
            .map_err(|e| ClientError::io("closing the connection", e))
    }
}

pub(crate) fn parse_reply(frame: &str, command: &str) -> Result<Reply, ClientError> {
    Reply::parse(frame).map_err(|_| ClientError::UnexpectedReply {
        step: format!("reading the reply to `{}`", verb_of(command)),
        reply: frame.to_owned(),
    })
}
