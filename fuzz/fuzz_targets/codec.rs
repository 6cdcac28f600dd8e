//! Arbitrary bytes, fed in arbitrary chunks, through the line codec: no panic, every line is
//! newline-free and within the limit, and the buffer never holds more than one line.
#![no_main]

use at_protocol::{Line, LineCodec};
use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use tokio_util::codec::Decoder;

fuzz_target!(|data: &[u8]| {
    let Some((&first, rest)) = data.split_first() else {
        return;
    };
    let max = usize::from(first % 64) + 1;
    let mut codec = LineCodec::new(max);
    let mut buf = BytesMut::new();
    // The second byte picks the chunk size, so reads split lines at every position.
    let chunk = rest.first().map_or(1, |b| usize::from(*b % 16) + 1);
    for piece in rest.chunks(chunk) {
        buf.extend_from_slice(piece);
        loop {
            match codec.decode(&mut buf) {
                Ok(Some(Line::Text(text))) => {
                    assert!(!text.contains('\n'));
                    assert!(text.len() <= max);
                }
                Ok(Some(Line::TooLong | Line::InvalidUtf8)) => {}
                Ok(None) => break,
                Err(e) => panic!("the decoder only fails on I/O: {e}"),
            }
        }
        assert!(buf.len() <= max + 1);
    }
    // The end of input never fails and leaves nothing behind.
    while let Some(line) = codec.decode_eof(&mut buf).expect("no I/O in decode_eof") {
        if let Line::Text(text) = line {
            assert!(text.len() <= max);
        }
    }
    assert!(buf.is_empty());
});
