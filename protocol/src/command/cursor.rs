//! A tiny scanner over the text of one command: case-insensitive literals, values kept as sent.

use super::error::ParseError;

pub(crate) struct Cursor<'a> {
    rest: &'a str,
}

impl<'a> Cursor<'a> {
    pub(crate) fn new(text: &'a str) -> Self {
        Cursor { rest: text }
    }

    pub(crate) fn rest(&self) -> &'a str {
        self.rest
    }

    pub(crate) fn is_empty(&self) -> bool {
        self.rest.is_empty()
    }

    /// Whether the text starts with `lit` (ASCII case-insensitive).
    pub(crate) fn peek(&self, lit: &str) -> bool {
        self.rest
            .get(..lit.len())
            .is_some_and(|head| head.eq_ignore_ascii_case(lit))
    }

    /// Consumes `lit` if the text starts with it.
    pub(crate) fn eat(&mut self, lit: &str) -> bool {
        if self.peek(lit) {
            self.rest = &self.rest[lit.len()..];
            true
        } else {
            false
        }
    }

    /// Consumes `lit` or fails.
    pub(crate) fn expect(&mut self, lit: &str) -> Result<(), ParseError> {
        if self.eat(lit) {
            Ok(())
        } else {
            Err(ParseError::syntax(format!("expected {lit:?}")))
        }
    }

    /// Consumes text up to (not including) the first char matching `stop`, or everything.
    pub(crate) fn take_until(&mut self, stop: impl Fn(char) -> bool) -> &'a str {
        let end = self.rest.find(stop).unwrap_or(self.rest.len());
        let (head, tail) = self.rest.split_at(end);
        self.rest = tail;
        head
    }

    /// Consumes everything.
    pub(crate) fn take_rest(&mut self) -> &'a str {
        std::mem::take(&mut self.rest)
    }

    /// Replaces the remaining text (after a sub-parser consumed a prefix of it).
    pub(crate) fn set_rest(&mut self, rest: &'a str) {
        self.rest = rest;
    }

    pub(crate) fn expect_end(&self) -> Result<(), ParseError> {
        if self.rest.is_empty() {
            Ok(())
        } else {
            Err(ParseError::syntax(format!("unexpected {:?}", self.rest)))
        }
    }
}

/// `[^:@\s]+`
pub(crate) fn is_token(s: &str) -> bool {
    !s.is_empty() && !s.chars().any(|c| c == ':' || c == '@' || c.is_whitespace())
}

/// `\d+` as a u64.
pub(crate) fn parse_u64(what: &str, s: &str) -> Result<u64, ParseError> {
    if s.is_empty() || !s.bytes().all(|b| b.is_ascii_digit()) {
        return Err(ParseError::syntax(format!("{what} must be a number")));
    }
    s.parse()
        .map_err(|_| ParseError::syntax(format!("{what} is out of range")))
}

/// `true|false`, case-insensitive.
pub(crate) fn parse_bool(what: &str, s: &str) -> Result<bool, ParseError> {
    if s.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if s.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(ParseError::syntax(format!("{what} must be true or false")))
    }
}
