//! atDirectory (root server) lookups over one reused TLS connection (§2.1).

use tokio::sync::Mutex;

use crate::atsign::AtSign;
use crate::root::RootReply;

use super::config::ClientConfig;
use super::error::ClientError;
use super::framing::FrameBuffer;
use super::transport::{connect_tls, read_frame, write_line, Stream};

/// Resolves atSigns to `host:port`. One connection serves every lookup; it is opened on first use and
/// reopened once if the directory closed it (the reference directory closes after repeated misses).
/// Safe to share between tasks (lookups are serialised on the connection).
#[derive(Debug)]
pub struct RootClient {
    config: ClientConfig,
    host: String,
    port: u16,
    sni: String,
    conn: Mutex<Option<RootConnection>>,
}

#[derive(Debug)]
struct RootConnection {
    stream: Stream,
    frames: FrameBuffer,
}

impl RootClient {
    pub fn new(config: ClientConfig, host: impl Into<String>, port: u16) -> Self {
        let host = host.into();
        Self {
            config,
            sni: host.clone(),
            host,
            port,
            conn: Mutex::new(None),
        }
    }

    /// Uses `sni` as the TLS server name instead of the host dialled.
    pub fn with_sni(mut self, sni: impl Into<String>) -> Self {
        self.sni = sni.into();
        self
    }

    /// `Some((host, port))` of the atSign's server, or `None` if the directory does not know it.
    pub async fn lookup(&self, atsign: &AtSign) -> Result<Option<(String, u16)>, ClientError> {
        let mut slot = self.conn.lock().await;
        let reused = slot.is_some();
        match self.lookup_on(&mut slot, atsign).await {
            // A reused connection may have been closed by the directory since its last use.
            Err(ClientError::Closed { .. } | ClientError::Io { .. }) if reused => {
                *slot = None;
                self.lookup_on(&mut slot, atsign).await
            }
            other => other,
        }
    }

    async fn lookup_on(
        &self,
        slot: &mut Option<RootConnection>,
        atsign: &AtSign,
    ) -> Result<Option<(String, u16)>, ClientError> {
        if slot.is_none() {
            *slot = Some(self.open().await?);
        }
        let Some(conn) = slot.as_mut() else {
            return Err(ClientError::Closed {
                step: "opening the directory connection".into(),
            });
        };
        let outcome = async {
            // The directory expects the bare name (§2.1 step 3).
            write_line(&mut conn.stream, atsign.name(), "a directory lookup").await?;
            let frame = read_frame(
                &mut conn.stream,
                &mut conn.frames,
                &self.config,
                "reading a directory reply",
                |f, eof| f.next_response(eof),
            )
            .await?;
            parse_root_reply(&frame)
        }
        .await;
        if outcome.is_err() {
            // After any failure the connection's state is unknown: start afresh next time.
            *slot = None;
        }
        outcome
    }

    async fn open(&self) -> Result<RootConnection, ClientError> {
        let stream = connect_tls(&self.config, &self.host, self.port, &self.sni).await?;
        let mut conn = RootConnection {
            stream,
            frames: FrameBuffer::new(self.config.max_response_bytes),
        };
        read_frame(
            &mut conn.stream,
            &mut conn.frames,
            &self.config,
            "reading the directory greeting",
            |f, _| f.take_greeting(),
        )
        .await?
        .map_err(|reply| ClientError::UnexpectedReply {
            step: "reading the directory greeting".into(),
            reply,
        })?;
        Ok(conn)
    }
}

/// Reads a directory reply (prompt already removed) with the grammar's [`RootReply`].
fn parse_root_reply(frame: &str) -> Result<Option<(String, u16)>, ClientError> {
    match RootReply::parse(frame) {
        Ok(RootReply::Found { host, port }) => Ok(Some((host, port))),
        Ok(RootReply::NotFound) => Ok(None),
        Err(_) => Err(ClientError::UnexpectedReply {
            step: "reading a directory reply".into(),
            reply: frame.to_owned(),
        }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn root_replies() {
        assert_eq!(
            parse_root_reply("vip.ve.atsign.zone:25000").unwrap(),
            Some(("vip.ve.atsign.zone".into(), 25000))
        );
        assert_eq!(parse_root_reply("null").unwrap(), None);
        assert_eq!(parse_root_reply("data:null").unwrap(), None);
        for bad in ["", "host", "host:port", ":80", "host:70000"] {
            assert!(parse_root_reply(bad).is_err(), "{bad}");
        }
    }
}
