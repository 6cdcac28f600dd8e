//! Root-protocol messages (atprotocol.md §2). Private until `at_protocol::root` lands.

use at_protocol::AtSign;

use crate::cache::Address;

#[derive(Debug, Clone, PartialEq, Eq)]
pub enum RootRequest {
    Lookup(AtSign),
    Exit,
    Blank,
    Invalid,
}

impl RootRequest {
    /// One line without its terminator. Case and a leading `@` do not matter (§4.2 normalisation).
    pub fn parse(line: &str) -> Self {
        let line = line.trim();
        if line.is_empty() {
            return RootRequest::Blank;
        }
        if line == "@exit" {
            return RootRequest::Exit;
        }
        AtSign::parse(line).map_or(RootRequest::Invalid, RootRequest::Lookup)
    }
}

/// `host:port\r\n@` — CRLF as the reference root sends it; clients strip it.
pub fn found(address: &Address) -> String {
    format!("{address}\r\n@")
}

pub const NOT_FOUND: &str = "null\r\n@";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn requests() {
        assert_eq!(RootRequest::parse("@exit"), RootRequest::Exit);
        assert_eq!(RootRequest::parse("  "), RootRequest::Blank);
        assert_eq!(RootRequest::parse("a:b"), RootRequest::Invalid);
        let alice = AtSign::parse("alice").ok().map(RootRequest::Lookup);
        assert_eq!(Some(RootRequest::parse("@Alice")), alice);
    }
}
