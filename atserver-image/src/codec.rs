//! Line framing: splits the inbound byte stream on `\n` with a length cap. Parsing is elsewhere.

use bytes::{Buf, BytesMut};
use tokio_util::codec::Decoder;

/// A frame: one line without its terminator (a trailing `\r` is kept for the caller's trim).
#[derive(Debug, PartialEq, Eq)]
pub enum Frame {
    Line(Vec<u8>),
    /// The line grew past the cap; the caller answers AT0005 and closes.
    TooLong,
}

#[derive(Debug)]
pub struct LineCodec {
    max: usize,
    scanned: usize,
}

impl LineCodec {
    pub fn new(max_line_len: usize) -> Self {
        LineCodec {
            max: max_line_len,
            scanned: 0,
        }
    }
}

impl Decoder for LineCodec {
    type Item = Frame;
    type Error = std::io::Error;

    fn decode(&mut self, buf: &mut BytesMut) -> Result<Option<Frame>, Self::Error> {
        let start = self.scanned.min(buf.len());
        match buf[start..].iter().position(|b| *b == b'\n') {
            Some(off) => {
                let end = start + off;
                self.scanned = 0;
                if end > self.max {
                    buf.clear();
                    return Ok(Some(Frame::TooLong));
                }
                let line = buf.split_to(end).to_vec();
                buf.advance(1);
                Ok(Some(Frame::Line(line)))
            }
            None if buf.len() > self.max => {
                buf.clear();
                self.scanned = 0;
                Ok(Some(Frame::TooLong))
            }
            None => {
                self.scanned = buf.len();
                Ok(None)
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splits_lines_and_caps_length() {
        let mut c = LineCodec::new(8);
        let mut b = BytesMut::from(&b"ab\n\ncd\r\nef"[..]);
        assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::Line(b"ab".to_vec())));
        assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::Line(vec![])));
        assert_eq!(
            c.decode(&mut b).unwrap(),
            Some(Frame::Line(b"cd\r".to_vec()))
        );
        assert_eq!(c.decode(&mut b).unwrap(), None);
        b.extend_from_slice(b"ghijklm");
        assert_eq!(c.decode(&mut b).unwrap(), Some(Frame::TooLong));
    }

    proptest::proptest! {
        /// However the bytes are chunked, the frames are the input's complete lines.
        #[test]
        fn chunking_does_not_change_frames(data in proptest::collection::vec(proptest::prelude::any::<u8>(), 0..300),
                                           cuts in proptest::collection::vec(0usize..300, 0..10)) {
            let mut codec = LineCodec::new(1000);
            let mut buf = BytesMut::new();
            let mut frames = Vec::new();
            let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c <= data.len()).collect();
            points.push(data.len());
            points.sort_unstable();
            let mut last = 0;
            for p in points {
                buf.extend_from_slice(&data[last..p]);
                last = p;
                while let Some(f) = codec.decode(&mut buf).unwrap() {
                    frames.push(f);
                }
            }
            let mut expected: Vec<Frame> = data.split(|b| *b == b'\n').map(|l| Frame::Line(l.to_vec())).collect();
            expected.pop(); // the part after the last newline is not a frame yet
            proptest::prop_assert_eq!(frames, expected);
        }
    }
}
