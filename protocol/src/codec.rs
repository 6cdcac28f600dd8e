//! Line framing for atProtocol connections (§1.3), as a tokio-util codec.
//!
//! Decoding splits on every `\n` (so pipelined commands are separate frames, unlike the
//! reference), strips one trailing `\r`, and yields blank lines as empty strings (clients such
//! as at_c send `\r\n` and wait for a reply). Encoding writes the string verbatim: server
//! responses already end with their prompt ([`crate::Response::to_wire`]) and client commands
//! must carry their own `\n`.
//!
//! A line the server must answer and survive (not UTF-8) or answer and close on (too long) is a
//! frame, not a decoder error: tokio-util's `FramedRead` ends the stream after an error, so only
//! socket failures are errors here.

use bytes::{Buf, BytesMut};
use tokio_util::codec::{Decoder, Encoder};

use crate::error_code::ErrorCode;

/// The reference server's inbound buffer (≈10 MB).
pub const DEFAULT_MAX_LINE: usize = 10_240_000;

/// One decoded frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Line {
    /// A complete line without its `\n` and one trailing `\r`; empty for a blank line.
    Text(String),
    /// The line (counting a trailing `\r`, not the `\n`) exceeds the limit. Reported as soon as
    /// the limit is passed, before its `\n` arrives; the rest of the line, up to and including
    /// the next `\n`, is then discarded without further frames.
    TooLong,
    /// A complete line that is not UTF-8. It is dropped and the next line decodes normally.
    InvalidUtf8,
}

impl Line {
    /// The error to answer with: AT0005 for overlong lines, AT0003 for undecodable ones.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Line::Text(_) => None,
            Line::TooLong => Some(ErrorCode::BufferOverflow),
            Line::InvalidUtf8 => Some(ErrorCode::InvalidSyntax),
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

fn to_line(bytes: &[u8]) -> Line {
    let bytes = bytes.strip_suffix(b"\r").unwrap_or(bytes);
    match std::str::from_utf8(bytes) {
        Ok(text) => Line::Text(text.to_string()),
        Err(_) => Line::InvalidUtf8,
    }
}

impl Decoder for LineCodec {
    type Item = Line;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        if self.discarding {
            match buf.iter().position(|b| *b == b'\n') {
                Some(i) => {
                    buf.advance(i + 1);
                    self.discarding = false;
                    self.next_index = 0;
                }
                None => {
                    // Nothing of the overlong line is kept, so memory stays bounded.
                    buf.clear();
                    return Ok(None);
                }
            }
        }
        // A `\n` at index `max` still ends a line of exactly `max` bytes.
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
                Ok(Some(to_line(line.get(..end).unwrap_or_default())))
            }
            None if buf.len() > self.max => {
                self.discarding = true;
                self.next_index = 0;
                Ok(Some(Line::TooLong))
            }
            None => {
                self.next_index = read_to;
                Ok(None)
            }
        }
    }

    /// At end of stream the complete lines still buffered are yielded; a partial line (no `\n`
    /// yet) is dropped, as commands only count once their `\n` arrives. A partial line already
    /// over the limit was reported as [`Line::TooLong`] before the end.
    fn decode_eof(&mut self, buf: &mut BytesMut) -> Result<Option<Line>, std::io::Error> {
        let line = self.decode(buf)?;
        if line.is_none() {
            buf.clear();
            self.next_index = 0;
            self.discarding = false;
        }
        Ok(line)
    }
}

impl Encoder<String> for LineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: String, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

impl Encoder<&str> for LineCodec {
    type Error = std::io::Error;

    fn encode(&mut self, item: &str, dst: &mut BytesMut) -> Result<(), std::io::Error> {
        dst.extend_from_slice(item.as_bytes());
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use futures::StreamExt;
    use tokio::io::AsyncWriteExt;
    use tokio_util::codec::FramedRead;

    fn text(s: &str) -> Line {
        Line::Text(s.to_string())
    }

    fn decode_all(codec: &mut LineCodec, buf: &mut BytesMut) -> Vec<Line> {
        let mut out = Vec::new();
        while let Some(line) = codec.decode(buf).unwrap() {
            out.push(line);
        }
        out
    }

    #[test]
    fn splits_every_newline_and_keeps_blank_lines() {
        let mut c = LineCodec::new(100);
        let mut buf = BytesMut::from(&b"from:@alice\r\n\r\nnoop:0\nscan"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            [text("from:@alice"), text(""), text("noop:0")]
        );
        assert_eq!(&buf[..], b"scan");
        buf.extend_from_slice(b" .*\n");
        assert_eq!(decode_all(&mut c, &mut buf), [text("scan .*")]);
    }

    #[test]
    fn overlong_line_is_reported_once_then_discarded() {
        let mut c = LineCodec::new(5);
        let mut buf = BytesMut::from(&b"12345\n123456"[..]);
        assert_eq!(decode_all(&mut c, &mut buf), [text("12345"), Line::TooLong]);
        buf.extend_from_slice(b"789");
        assert!(decode_all(&mut c, &mut buf).is_empty());
        assert!(buf.is_empty(), "discarded bytes are not kept");
        buf.extend_from_slice(b"0\nok\n");
        assert_eq!(decode_all(&mut c, &mut buf), [text("ok")]);
        assert_eq!(Line::TooLong.error_code(), Some(ErrorCode::BufferOverflow));
    }

    #[test]
    fn limit_counts_the_carriage_return_but_not_the_newline() {
        let mut c = LineCodec::new(3);
        let mut buf = BytesMut::from(&b"abc\nab\r\nabc\r\nok\n"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            [text("abc"), text("ab"), Line::TooLong, text("ok")]
        );
    }

    #[test]
    fn invalid_utf8_is_a_frame_and_the_next_line_still_decodes() {
        let mut c = LineCodec::default();
        let mut buf = BytesMut::from(&b"\xff\xfe\nnoop:0\n"[..]);
        assert_eq!(
            decode_all(&mut c, &mut buf),
            [Line::InvalidUtf8, text("noop:0")]
        );
        assert_eq!(
            Line::InvalidUtf8.error_code(),
            Some(ErrorCode::InvalidSyntax)
        );
        assert_eq!(text("noop:0").error_code(), None);
    }

    #[test]
    fn eof_yields_complete_lines_and_drops_a_partial_one() {
        let mut c = LineCodec::default();
        let mut buf = BytesMut::from(&b"a\npartial"[..]);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(text("a")));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
        assert!(buf.is_empty());
    }

    #[test]
    fn eof_while_discarding_resets_the_codec() {
        let mut c = LineCodec::new(2);
        let mut buf = BytesMut::from(&b"abcdef"[..]);
        assert_eq!(c.decode_eof(&mut buf).unwrap(), Some(Line::TooLong));
        assert_eq!(c.decode_eof(&mut buf).unwrap(), None);
        buf.extend_from_slice(b"ok\n");
        assert_eq!(decode_all(&mut c, &mut buf), [text("ok")]);
    }

    #[test]
    fn encodes_verbatim() {
        let mut c = LineCodec::default();
        let mut dst = BytesMut::new();
        c.encode("data:ok\n@alice@".to_string(), &mut dst).unwrap();
        c.encode("noop:0\n", &mut dst).unwrap();
        assert_eq!(&dst[..], b"data:ok\n@alice@noop:0\n");
    }

    /// Through a real `FramedRead`: bad lines are frames and the stream stays open after them.
    #[tokio::test]
    async fn framed_read_survives_bad_lines() {
        // A pipe smaller than the overlong line, so it arrives in several reads.
        let (mut client, server) = tokio::io::duplex(64);
        let mut frames = FramedRead::new(server, LineCodec::new(100));
        let writer = tokio::spawn(async move {
            client.write_all(b"\xc3\x28\r\n").await?;
            client.write_all(b"from:@alice\r\n").await?;
            client.write_all(&[b'x'; 1000]).await?;
            client.write_all(b"\nnoop:0\n").await?;
            client.flush().await?;
            Ok::<_, std::io::Error>(client)
        });
        let mut got = Vec::new();
        for _ in 0..4 {
            got.push(frames.next().await.expect("stream open").unwrap());
        }
        assert_eq!(
            got,
            [
                Line::InvalidUtf8,
                text("from:@alice"),
                Line::TooLong,
                text("noop:0")
            ]
        );
        // Still open: a later line arrives, and the peer's close ends the stream.
        let mut client = writer.await.unwrap().unwrap();
        client.write_all(b"@exit\n").await.unwrap();
        assert_eq!(frames.next().await.unwrap().unwrap(), text("@exit"));
        drop(client);
        assert!(frames.next().await.is_none());
    }
}
