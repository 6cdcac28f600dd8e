//! Property tests: arbitrary input never panics; the codec's output is always well-formed.

use at_protocol::command::Command;
use at_protocol::key::AtKey;
use at_protocol::root::{RootReply, RootRequest};
use at_protocol::{CodecError, LineCodec, Metadata, Reply};
use bytes::BytesMut;
use proptest::collection::vec;
use proptest::prelude::*;
use tokio_util::codec::Decoder;

/// Text assembled from protocol tokens, so the parsers get past their first branch.
fn protocolish() -> impl Strategy<Value = String> {
    let token = prop_oneof![
        Just("update".to_string()),
        Just("update:meta".to_string()),
        Just("notify".to_string()),
        Just("notify:all".to_string()),
        Just("lookup".to_string()),
        Just("llookup".to_string()),
        Just("delete".to_string()),
        Just("scan".to_string()),
        Just("monitor".to_string()),
        Just("sync:from".to_string()),
        Just("enroll".to_string()),
        Just("keys".to_string()),
        Just("otp".to_string()),
        Just("stats".to_string()),
        Just("config:block".to_string()),
        Just("pkam".to_string()),
        Just("from".to_string()),
        Just(":".to_string()),
        Just("::".to_string()),
        Just("@".to_string()),
        Just(" ".to_string()),
        Just("public".to_string()),
        Just("cached".to_string()),
        Just("ttl".to_string()),
        Just("ttr".to_string()),
        Just("cAt".to_string()),
        Just("2024-10-24T01:35:02.1Z".to_string()),
        Just("isEncrypted".to_string()),
        Just("true".to_string()),
        Just("-1".to_string()),
        Just("{".to_string()),
        Just("}".to_string()),
        Just(",".to_string()),
        Just("🛠".to_string()),
        "[a-z0-9]{1,4}",
        any::<String>(),
    ];
    vec(token, 0..16).prop_map(|v| v.concat())
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn command_parse_never_panics(s in any::<String>()) {
        if let Ok(c) = Command::parse(&s) {
            // Whatever parses formats to something that parses to the same command.
            prop_assert_eq!(Command::parse(&c.to_string()), Ok(c));
        }
    }

    #[test]
    fn command_parse_never_panics_on_protocolish_text(s in protocolish()) {
        match Command::parse(&s) {
            Ok(c) => prop_assert_eq!(Command::parse(&c.to_string()), Ok(c)),
            Err(e) => prop_assert_eq!(e.error_code().as_str(), "AT0003"),
        }
    }

    #[test]
    fn other_parsers_never_panic(s in protocolish()) {
        let _ = AtKey::parse(&s);
        let _ = Metadata::parse_fragment(&s);
        let _ = Reply::parse(&s);
        let _ = RootRequest::parse(&s);
        let _ = RootReply::parse(&s);
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(&s) {
            let _ = Metadata::from_json(&v);
        }
    }

    #[test]
    fn codec_yields_only_newline_free_bounded_lines(
        chunks in vec(vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r')], 0..64), 0..16),
        max in 1usize..32,
    ) {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut newlines_in = 0usize;
        let mut frames = 0usize;
        for chunk in &chunks {
            newlines_in += chunk.iter().filter(|b| **b == b'\n').count();
            buf.extend_from_slice(chunk);
            loop {
                match codec.decode(&mut buf) {
                    Ok(Some(line)) => {
                        frames += 1;
                        prop_assert!(!line.contains('\n'));
                        prop_assert!(line.len() <= max);
                    }
                    Ok(None) => break,
                    Err(CodecError::InvalidUtf8) => frames += 1,
                    Err(CodecError::LineTooLong { .. }) => {}
                    Err(CodecError::Io(e)) => prop_assert!(false, "io error {e}"),
                }
            }
            // Memory stays bounded: at most one (possibly partial) line is buffered.
            prop_assert!(buf.len() <= max + 1);
        }
        prop_assert!(frames <= newlines_in);
    }

    #[test]
    fn codec_round_trips_clean_lines(lines in vec("[^\n\r]{0,20}", 0..10)) {
        let mut codec = LineCodec::new(100);
        let wire: String = lines.iter().map(|l| format!("{l}\r\n")).collect();
        let mut buf = BytesMut::from(wire.as_bytes());
        let mut out = Vec::new();
        while let Some(l) = codec.decode(&mut buf).unwrap() {
            out.push(l);
        }
        prop_assert_eq!(out, lines);
    }
}
