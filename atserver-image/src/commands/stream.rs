//! `stream:init|receive|done|resume` (atprotocol.md §3.9), as at_client's `AtClient.stream()`
//! and its `StreamNotificationHandler` use it:
//!
//! 1. the sender, authenticated on its own server, sends `stream:init@bob namespace:<ns> <id>
//!    <fileName> <length>`; the server notifies @bob with the text
//!    `@bob:stream_id[.<ns>] @alice:<id>:<fileName>:<length>` and answers nothing yet;
//! 2. @bob's client connects to @alice's server (no authentication: the id is the capability)
//!    and sends `stream:receive <id>`; the sender gets `stream:ack <id>` and writes the bytes,
//!    which the server relays raw to the receiver (after its `@` greeting);
//! 3. the receiver sends `stream:done <id>`; the sender gets `stream:done <id>` and both
//!    connections close.
//!
//! `stream:resume@bob startByte:<n> <id>` notifies @bob with `@bob:stream_resume <id>:<n>`.
//! Unlike the reference, resume needs authentication (it makes this server send a
//! notification), and `stream:send`, which the reference ignores, gets AT0003.

use at_protocol::command::{StreamAnnouncement, StreamOp, StreamParams};
use at_protocol::AtSign;

use crate::error::AtError;
use crate::keystore;
use crate::metadata::Metadata;
use crate::notifications::{Kind, MessageType, Notification};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, Session};
use crate::streams::RelayError;

pub async fn stream(s: &mut Session, p: StreamParams) -> CmdResult {
    match p.operation {
        StreamOp::Init => init(s, p).await,
        StreamOp::Receive => receive(s, &p.stream_id).await,
        StreamOp::Done => done(s, &p.stream_id).await,
        StreamOp::Resume => resume(s, p).await,
        StreamOp::Send => Err(AtError::syntax(
            "stream:send is not a server operation; send the bytes after stream:ack",
        )),
    }
}

fn require_auth(s: &Session) -> Result<(), AtError> {
    if s.is_owner() || matches!(s.auth, Auth::Peer(_)) {
        Ok(())
    } else {
        Err(AtError::unauthenticated(
            "Stream init requires either pol or auth",
        ))
    }
}

fn receiver_of(p: &StreamParams) -> Result<AtSign, AtError> {
    let who = p
        .receiver
        .as_deref()
        .ok_or_else(|| AtError::syntax("stream needs @<receiver>"))?;
    AtSign::parse(who).map_err(|e| AtError::syntax(e.to_string()))
}

fn invalid_stream_id() -> AtError {
    AtError::unauthenticated("Invalid stream id")
}

async fn init(s: &mut Session, p: StreamParams) -> CmdResult {
    require_auth(s)?;
    let receiver = receiver_of(&p)?;
    let (Some(file_name), Some(length)) = (p.file_name.as_deref(), p.length) else {
        return Err(AtError::syntax("stream:init needs <fileName> <length>"));
    };
    let relay = &s.shared.streams;
    if p.start_byte.is_some_and(|b| b > 0) {
        // A restart of the transfer replaces the earlier attempt, as in the reference.
        relay.close(&p.stream_id);
    }
    let link = relay.open(&p.stream_id, length).map_err(|e| match e {
        RelayError::InUse => AtError::syntax("stream id already in use"),
        RelayError::Unknown => invalid_stream_id(),
    })?;
    let me = AtSign::parse(s.atsign()).map_err(|e| AtError::internal(e.to_string()))?;
    let text = StreamAnnouncement {
        receiver: receiver.clone(),
        namespace: p.effective_namespace().map(str::to_string),
        sender: me,
        stream_id: p.stream_id.clone(),
        file_name: file_name.to_string(),
        length,
    }
    .to_string();
    notify_text(s, receiver.as_str(), text).await?;
    s.stream = Some(link);
    Ok(Reply::Silent)
}

async fn receive(s: &mut Session, id: &str) -> CmdResult {
    let link = s
        .shared
        .streams
        .claim(id)
        .await
        .map_err(|_| invalid_stream_id())?;
    s.stream = Some(link);
    Ok(Reply::Silent)
}

async fn done(s: &mut Session, id: &str) -> CmdResult {
    s.shared
        .streams
        .finish(id)
        .await
        .map_err(|_| invalid_stream_id())?;
    // The reference destroys both sockets once the transfer is done.
    Ok(Reply::Close)
}

async fn resume(s: &mut Session, p: StreamParams) -> CmdResult {
    require_auth(s)?;
    let receiver = receiver_of(&p)?;
    let start = p.start_byte.unwrap_or(0);
    let text = format!("{receiver}:stream_resume {}:{start}", p.stream_id);
    notify_text(s, receiver.as_str(), text).await?;
    Ok(Reply::Silent)
}

/// A text notification from this atSign to `to` (the stream announcements are text, not keys).
async fn notify_text(s: &Session, to: &str, text: String) -> Result<(), AtError> {
    let me = s.atsign().to_string();
    let now = s.shared.clock.now_millis();
    let ttl = s.shared.config.notification_ttl_ms;
    let kind = if to == me { Kind::Received } else { Kind::Sent };
    let n = Notification {
        message_type: MessageType::Text,
        metadata: Some(Metadata::new_record(&me, now)),
        ..Notification::new(kind, &me, to, text, now, ttl)
    };
    keystore::notify::store_notification(&s.shared, n).await
}
