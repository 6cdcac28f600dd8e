//! Line framing for atProtocol connections (§1.3), as a tokio-util codec.
//!
//! Decoding splits on every `\n` (so pipelined commands are separate frames, unlike the
//! reference), strips one trailing `\r`, and yields blank lines as empty strings (clients such
//! as at_c send `\r\n` and wait for a reply). Encoding writes the string verbatim: server
//! responses already end with their prompt ([`crate::Response::to_wire`]) and client commands
//! must carry their own `\n`.
//!
//! Note on errors through `FramedRead`: after the decoder returns an error, tokio-util's
//! `FramedRead` yields `None` once and then resumes reading. `InvalidUtf8` leaves the codec
//! ready for the next line; `LineTooLong` makes it discard up to the next `\n` first.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error_code::ErrorCode;

/// The reference server's inbound buffer (≈10 MB).
pub const DEFAULT_MAX_LINE: usize = 10_240_000;

/// A framing failure.
#[derive(Debug, thiserror::Error)]
pub enum CodecError {
    /// The line (without its `\n`) exceeds the limit; the rest of it will be discarded.
    #[error("line longer than {max} bytes")]
    LineTooLong { max: usize },
    /// The line is not UTF-8; it was dropped and the connection can carry on.
    #[error("line is not valid UTF-8")]
    InvalidUtf8,
    #[error(transparent)]
    Io(#[from] std::io::Error),
}

impl CodecError {
    /// AT0005 for overlong lines, AT0003 for undecodable ones, AT0004 for socket errors.
    pub fn error_code(&self) -> ErrorCode {
        match self {
            CodecError::LineTooLong { .. } => ErrorCode::BufferOverflow,
            CodecError::InvalidUtf8 => ErrorCode::InvalidSyntax,
            CodecError::Io(_) => ErrorCode::Socket,
        }
    }
}

/// Splits a byte stream into lines of at most `max` bytes.
#[derive(Debug, Clone)]
pub struct LineCodec {
    max: usize,
    /// Where to resume searching for `\n` (bytes before it were already scanned).
    next_index: usize,
    /// Dropping the tail of an overlong line.
    discarding: bool,
}

impl LineCodec {
    /// A codec accepting lines of up to `max` bytes (excluding the `\n`).
    pub fn new(max: usize) -> LineCodec {
        LineCodec {
            max,
            next_index: 0,
            discarding: false,
        }
    }

    pub fn max_length(&self) -> usize {
        self.max
    }
}

impl Default for LineCodec {
    fn default() -> Self {
        LineCodec::new(DEFAULT_MAX_LINE)
    }
}

fn to_line(bytes: &[u8]) -> Result<String, CodecError> {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    std::str::from_utf8(bytes)
        .map(str::to_string)
        .map_err(|_| CodecError::InvalidUtf8)
}

impl Decoder for LineCodec {
    type Item = String;
    type Error = CodecError;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<String>, CodecError> {
        loop {
            if self.discarding {
                match buf.iter().position(|b| *b == b'\n') {
                    Some(i) => {
                        buf.advance(i + 1);
                        self.discarding = false;
                        self.next_index = 0;
                        continue;
                    }
                    None => {
                        buf.clear();
                        return Ok(None);
                    }
                }
            }
            let read_to = buf.len().min(self.max.saturating_add(1));
            let start = self.next_index.min(read_to);
            let found = buf
                .get(start..read_to)
                .and_then(|window| window.iter().position(|b| *b == b'\n'));
            match found {
                Some(offset) => {
                    let end = start + offset;
                    self.next_index = 0;
                    let line = buf.split_to(end + 1);
                    return to_line(line.get(..end).unwrap_or_default()).map(Some);
                }
                None if buf.len() > self.max => {
                    self.discarding = true;
                    self.next_index = 0;
                    return Err(CodecError::LineTooLong { max: self.max });
                }
                None => {
                    self.next_index = read_to;
                    return Ok(None);
                }
            }
        }
    }

    /// A partial line at end of stream is dropped: commands only count once their `\n` arrives.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<String>, CodecError> {
        let line = self.decode(buf)?;
        if line.is_none() {
            buf.clear();
            self.next_index = 0;
        }
        Ok(line)
    }
}

impl Encoder<String> for LineCodec {
    type Error = CodecError;

    fn encode(&mut self, item: String, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

impl Encoder<&str> for LineCodec {
    type Error = CodecError;

    fn encode(&mut self, item: &str, dst: &mut BytesMut) -> Result<(), CodecError> {
        dst.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn decode_all(codec: &mut LineCodec, buf: &mut BytesMut) -> Vec<Result<String, String>> {
        let mut out = Vec::new();
        loop {
            match codec.decode(buf) {
                Ok(Some(l)) => out.push(Ok(l)),
                Ok(None) => return out,
                Err(e) => out.push(Err(e.to_string())),
            }
        }
    }

    #[test]
    fn splits_every_newline_and_keeps_blank_lines() {
        let mut c = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"from:@alice\r\n\r\nnoop:0\nscan"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            [Ok("from:@alice".into()), Ok("".into()), Ok("noop:0".into())]
        );
        assert_eq!(&buf[..], b"scan");
        buf.extend_from_slice(b" .*\n");
        assert_eq!(decode_all(&mut c, &mut buf), [Ok("scan .*".into())]);
    }

    #[test]
    fn overlong_line_errors_then_recovers() {
        let mut c = LineCodec::new(5);
        let mut buf = BytesMut::from(&b"12345\n123456"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            [Ok("12345".into()), Err("line longer than 5 bytes".into())]
        );
        buf.extend_from_slice(b"789");
        assert!(decode_all(&mut c, &mut buf).is_empty());
        assert!(buf.is_empty(), "discarded bytes are not kept");
        buf.extend_from_slice(b"0\nok\n");
        assert_eq!(decode_all(&mut c, &mut buf), [Ok("ok".into())]);
        assert_eq!(
            CodecError::LineTooLong { max: 5 }.error_code(),
            ErrorCode::BufferOverflow
        );
    }

    #[test]
    fn invalid_utf8_is_an_error_and_the_next_line_still_decodes() {
        let mut c = LineCodec::default();
        let mut buf = BytesMut::from(&b"\xff\xfe\nnoop:0\n"[..]);
        assert!(matches!(c.decode(&mut buf), Err(CodecError::InvalidUtf8)));
        assert_eq!(c.decode(&mut buf).unwrap(), Some("noop:0".into()));
    }

    #[test]
    fn eof_drops_partial_line() {
        let mut c = LineCodec::default();
        let mut buf = BytesMut::from(&b"a\npartial"[..]);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some("a".into()));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn encodes_verbatim() {
        let mut c = LineCodec::default();
        let mut dst = BytesMut::new();
        c.encode("data:ok\n@alice@".to_string(), &mut dst).unwrap();
        c.encode("noop:0\n", &mut dst).unwrap();
        assert_eq!(&dst[..], b"data:ok\n@alice@noop:0\n");
    }
}
