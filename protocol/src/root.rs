//! atDirectory (root server) messages (§2).

use crate::atsign::AtSign;

/// Longest request the reference root accepts (its string buffer is 255 characters).
pub const MAX_ROOT_REQUEST: usize = 255;

/// One line received by the atDirectory.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootRequest {
    /// Look up this atSign (sent with or without `@`, any case).
    Lookup(AtSign),
    /// `@exit`: close the connection.
    Exit,
    /// An empty line (at_c sends one right after connecting); answered with `null`.
    Blank,
    /// Not an atSign; answered like a miss. Carries the reason.
    Invalid(String),
}

impl RootRequest {
    /// Parses one line (with or without its line ending).
    pub fn parse(line: &str) -> RootRequest {
        let t = line.trim();
        if t.is_empty() {
            return RootRequest::Blank;
        }
        if t.eq_ignore_ascii_case("@exit") {
            return RootRequest::Exit;
        }
        if t.chars().count() > MAX_ROOT_REQUEST {
            return RootRequest::Invalid("request too long".to_string());
        }
        match AtSign::parse(t) {
            Ok(a) => RootRequest::Lookup(a),
            Err(e) => RootRequest::Invalid(e.to_string()),
        }
    }
}

/// The atDirectory's answer.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootReply {
    Found { host: String, port: u16 },
    NotFound,
}

/// A root reply no client would accept.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid atDirectory reply: {0:?}")]
pub struct RootReplyError(pub String);

impl RootReply {
    /// The exact bytes: `host:port\r\n@` or `null\r\n@` (CRLF, unlike atServers).
    pub fn to_wire(&self) -> String {
        match self {
            RootReply::Found { host, port } => format!("{host}:{port}\r\n@"),
            RootReply::NotFound => "null\r\n@".to_string(),
        }
    }

    /// `host:port`, if found.
    pub fn address(&self) -> Option<String> {
        match self {
            RootReply::Found { host, port } => Some(format!("{host}:{port}")),
            RootReply::NotFound => None,
        }
    }

    /// Parses a reply the way clients do (§2.1): anything starting `null` (or the legacy
    /// `data:null`) is a miss; otherwise `@` and whitespace are stripped and `host:port` read.
    pub fn parse(frame: &str) -> Result<RootReply, RootReplyError> {
        let cleaned: String = frame.chars().filter(|c| *c != '@').collect();
        let t = cleaned.trim();
        if t.starts_with("null") || t == "data:null" {
            return Ok(RootReply::NotFound);
        }
        // The legacy `data:` prefix only when a `host:port` follows it: `data:2` is host `data`
        // (found by the root fuzz target).
        let t = match t.strip_prefix("data:") {
            Some(rest) if rest.contains(':') => rest,
            _ => t,
        };
        let bad = || RootReplyError(frame.to_string());
        let (host, port) = t.rsplit_once(':').ok_or_else(bad)?;
        let port: u16 = port.trim().parse().map_err(|_| bad())?;
        // A directory publishes DNS names and IPv4 addresses only (clients split `host:port` on
        // its only colon), so a host with a colon is not an address (found by the root fuzz
        // target: `data:data:null:null:2` was read as host `data:null:null`).
        if host.is_empty() || host.contains(char::is_whitespace) || host.contains(':') {
            return Err(bad());
        }
        Ok(RootReply::Found {
            host: host.to_string(),
            port,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        let alice = AtSign::parse("@alice").unwrap();
        assert_eq!(
            RootRequest::parse("alice\n"),
            RootRequest::Lookup(alice.clone())
        );
        assert_eq!(RootRequest::parse("@Alice\r\n"), RootRequest::Lookup(alice));
        assert_eq!(RootRequest::parse("@exit"), RootRequest::Exit);
        assert_eq!(RootRequest::parse("\r\n"), RootRequest::Blank);
        assert!(matches!(RootRequest::parse("a b"), RootRequest::Invalid(_)));
        assert!(matches!(
            RootRequest::parse(&"a".repeat(300)),
            RootRequest::Invalid(_)
        ));
    }

    #[test]
    fn replies() {
        let found = RootReply::Found {
            host: "vip.ve.atsign.zone".into(),
            port: 25000,
        };
        assert_eq!(found.to_wire(), "vip.ve.atsign.zone:25000\r\n@");
        assert_eq!(RootReply::NotFound.to_wire(), "null\r\n@");
        assert_eq!(RootReply::parse(&found.to_wire()), Ok(found.clone()));
        assert_eq!(
            RootReply::parse("@vip.ve.atsign.zone:25000\r\n@"),
            Ok(found)
        );
        assert_eq!(RootReply::parse("null\r\n@"), Ok(RootReply::NotFound));
        assert_eq!(RootReply::parse("data:null"), Ok(RootReply::NotFound));
        assert!(RootReply::parse("garbage\r\n@").is_err());
        assert!(RootReply::parse("host:99999").is_err());
        assert!(RootReply::parse(":64").is_err());
    }
}
