//! `stream:init|send|receive|done|resume` — the relay file transfer at_client's
//! `AtClient.stream()` speaks (atprotocol.md §3.9).
//!
//! Forms the reference clients send:
//! - sender, on its own authenticated server: `stream:init@bob namespace:<ns> <id> <fileName> <length>`
//!   (`namespace:null` when the caller gave none);
//! - receiver, on the sender's server: `stream:receive <id>`, then `stream:done <id>`;
//! - `stream:resume@bob startByte:<n> <id>`.

use std::fmt;

use super::cursor::{parse_u64, Cursor};
use super::error::ParseError;
use crate::atsign::AtSign;

/// The operation of a `stream:` command.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StreamOp {
    Init,
    Send,
    Receive,
    Done,
    Resume,
}

impl StreamOp {
    pub const ALL: [StreamOp; 5] = [
        StreamOp::Init,
        StreamOp::Send,
        StreamOp::Receive,
        StreamOp::Done,
        StreamOp::Resume,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StreamOp::Init => "init",
            StreamOp::Send => "send",
            StreamOp::Receive => "receive",
            StreamOp::Done => "done",
            StreamOp::Resume => "resume",
        }
    }
}

/// `stream:<op>[@<receiver>][ namespace:<ns>][ startByte:<n>] <streamId>[ <fileName> <length>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamParams {
    pub operation: StreamOp,
    /// The other party, without `@` (`[^@:\s]+`).
    pub receiver: Option<String>,
    /// `[\w-]+`; the reference treats the text `null` as absent.
    pub namespace: Option<String>,
    pub start_byte: Option<u64>,
    /// `[\w-]*` (a UUID from at_client).
    pub stream_id: String,
    /// The file name as sent (at_client sends it base64-encoded); with `length`.
    pub file_name: Option<String>,
    pub length: Option<u64>,
}

impl StreamParams {
    /// The namespace unless absent or the text `null` at_client sends for "none".
    pub fn effective_namespace(&self) -> Option<&str> {
        self.namespace.as_deref().filter(|ns| *ns != "null")
    }

    /// `stream:init@<receiver> namespace:<ns|null> <id> <fileName> <length>`, as at_client sends it.
    pub fn init(
        receiver: &AtSign,
        namespace: Option<&str>,
        stream_id: &str,
        file_name: &str,
        length: u64,
    ) -> StreamParams {
        StreamParams {
            operation: StreamOp::Init,
            receiver: Some(receiver.name().to_string()),
            namespace: Some(namespace.unwrap_or("null").to_string()),
            start_byte: None,
            stream_id: stream_id.to_string(),
            file_name: Some(file_name.to_string()),
            length: Some(length),
        }
    }

    /// `stream:receive <id>` or `stream:done <id>` (what the receiving side sends).
    pub fn for_id(operation: StreamOp, stream_id: &str) -> StreamParams {
        StreamParams {
            operation,
            receiver: None,
            namespace: None,
            start_byte: None,
            stream_id: stream_id.to_string(),
            file_name: None,
            length: None,
        }
    }
}

/// The notification text a sender's atServer sends the receiver for `stream:init`:
/// `@bob:stream_id[.<ns>] @alice:<id>:<fileName>:<length>` (the receiver then connects to
/// @alice's server and sends `stream:receive <id>`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct StreamAnnouncement {
    pub receiver: AtSign,
    pub namespace: Option<String>,
    pub sender: AtSign,
    pub stream_id: String,
    pub file_name: String,
    pub length: u64,
}

impl StreamAnnouncement {
    /// Parses the notification text; `None` when it is not a stream announcement.
    pub fn parse(text: &str) -> Option<StreamAnnouncement> {
        let (head, tail) = text.split_once(' ')?;
        let (receiver, key) = head.split_once(':')?;
        let namespace = match key.strip_prefix("stream_id")? {
            "" => None,
            rest => Some(rest.strip_prefix('.')?.to_string()),
        };
        let (sender, rest) = tail.split_once(':')?;
        let (stream_id, rest) = rest.split_once(':')?;
        let (file_name, length) = rest.rsplit_once(':')?;
        Some(StreamAnnouncement {
            receiver: AtSign::parse(receiver).ok()?,
            namespace,
            sender: AtSign::parse(sender).ok()?,
            stream_id: stream_id.to_string(),
            file_name: file_name.to_string(),
            length: length.parse().ok()?,
        })
    }
}

impl fmt::Display for StreamAnnouncement {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}:stream_id", self.receiver)?;
        if let Some(ns) = &self.namespace {
            write!(f, ".{ns}")?;
        }
        write!(
            f,
            " {}:{}:{}:{}",
            self.sender, self.stream_id, self.file_name, self.length
        )
    }
}

fn is_word(s: &str) -> bool {
    s.chars()
        .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn parse_stream(c: &mut Cursor<'_>) -> Result<StreamParams, ParseError> {
    let op_text = c.take_until(|ch| ch == '@' || ch == ' ');
    let operation = StreamOp::ALL
        .into_iter()
        .find(|o| o.as_str().eq_ignore_ascii_case(op_text))
        .ok_or_else(|| ParseError::syntax(format!("unknown stream operation {op_text:?}")))?;
    let receiver = if c.eat("@") {
        let r = c.take_until(|ch| ch == '@' || ch == ':' || ch.is_whitespace());
        if r.is_empty() {
            return Err(ParseError::syntax("empty receiver"));
        }
        Some(r.to_string())
    } else {
        None
    };
    let mut namespace = None;
    let mut start_byte = None;
    loop {
        let mut probe = Cursor::new(c.rest());
        probe.eat(" ");
        if probe.eat("namespace:") && namespace.is_none() && start_byte.is_none() {
            let ns = probe.take_until(|ch| ch == ' ');
            if ns.is_empty() || !is_word(ns) {
                return Err(ParseError::syntax("invalid namespace"));
            }
            namespace = Some(ns.to_string());
        } else if probe.eat("startByte:") && start_byte.is_none() {
            start_byte = Some(parse_u64("startByte", probe.take_until(|ch| ch == ' '))?);
        } else {
            break;
        }
        c.set_rest(probe.rest());
    }
    if !c.eat(" ") {
        return Err(ParseError::syntax("missing stream id"));
    }
    let stream_id = c.take_until(|ch| ch == ' ');
    if !is_word(stream_id) {
        return Err(ParseError::syntax("invalid stream id"));
    }
    let (file_name, length) = if c.is_empty() {
        (None, None)
    } else {
        c.expect(" ")?;
        let rest = c.take_rest();
        // `( (?<fileName>.* ))?((?<length>\d*))?$`: the name runs to the last space.
        let (name, len) = rest
            .rsplit_once(' ')
            .ok_or_else(|| ParseError::syntax("expected <fileName> <length>"))?;
        if name.is_empty() {
            return Err(ParseError::syntax("empty file name"));
        }
        (Some(name.to_string()), Some(parse_u64("length", len)?))
    };
    Ok(StreamParams {
        operation,
        receiver,
        namespace,
        start_byte,
        stream_id: stream_id.to_string(),
        file_name,
        length,
    })
}

impl fmt::Display for StreamParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "stream:{}", self.operation.as_str())?;
        if let Some(r) = &self.receiver {
            write!(f, "@{r}")?;
        }
        if let Some(ns) = &self.namespace {
            write!(f, " namespace:{ns}")?;
        }
        if let Some(b) = self.start_byte {
            write!(f, " startByte:{b}")?;
        }
        write!(f, " {}", self.stream_id)?;
        if let (Some(name), Some(len)) = (&self.file_name, self.length) {
            write!(f, " {name} {len}")?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::super::Command;
    use super::*;

    fn parse(line: &str) -> StreamParams {
        match Command::parse(line) {
            Ok(Command::Stream(p)) => p,
            other => panic!("{line}: {other:?}"),
        }
    }

    #[test]
    fn at_client_forms() {
        let p = parse("stream:init@bob namespace:null 0b1c-9 ZmlsZS50eHQ= 10485760");
        assert_eq!(p.operation, StreamOp::Init);
        assert_eq!(p.receiver.as_deref(), Some("bob"));
        assert_eq!(p.effective_namespace(), None);
        assert_eq!(p.stream_id, "0b1c-9");
        assert_eq!(p.file_name.as_deref(), Some("ZmlsZS50eHQ="));
        assert_eq!(p.length, Some(10_485_760));
        let p = parse("stream:init@bob namespace:wavi abc my file.txt 5");
        assert_eq!(p.effective_namespace(), Some("wavi"));
        assert_eq!(p.file_name.as_deref(), Some("my file.txt"));
        let p = parse("stream:receive abc");
        assert_eq!(
            (p.operation, p.stream_id.as_str()),
            (StreamOp::Receive, "abc")
        );
        assert_eq!(parse("stream:done abc").operation, StreamOp::Done);
        let p = parse("stream:resume@alice startByte:512 abc");
        assert_eq!(p.start_byte, Some(512));
        assert_eq!(p.receiver.as_deref(), Some("alice"));
    }

    #[test]
    fn builders_and_announcements_round_trip() {
        let bob = AtSign::parse("@bob").unwrap();
        let init = StreamParams::init(&bob, None, "id-1", "ZmlsZQ==", 10);
        assert_eq!(
            init.to_string(),
            "stream:init@bob namespace:null id-1 ZmlsZQ== 10"
        );
        assert_eq!(parse(&init.to_string()), init);
        assert_eq!(
            StreamParams::for_id(StreamOp::Done, "id-1").to_string(),
            "stream:done id-1"
        );
        for text in [
            "@bob:stream_id @alice:id-1:ZmlsZQ==:10",
            "@bob:stream_id.wavi @alice:id-1:my:file:10",
        ] {
            let a = StreamAnnouncement::parse(text).unwrap();
            assert_eq!(a.to_string(), text);
            assert_eq!(a.length, 10);
        }
        assert!(StreamAnnouncement::parse("@bob:stream_resume id:5").is_none());
        assert!(StreamAnnouncement::parse("@bob:stream_id @alice:id:f:x").is_none());
    }

    #[test]
    fn refuses_what_the_grammar_refuses() {
        for bad in [
            "stream:",
            "stream:fly abc",
            "stream:receive",
            "stream:receive a:b",
            "stream:init@ abc",
            "stream:init@bob namespace:a.b abc",
            "stream:init@bob abc name notanumber",
            "stream:resume@bob startByte:x abc",
        ] {
            assert!(Command::parse(bad).is_err(), "{bad}");
        }
    }
}
