//! Property tests: arbitrary input never panics; the codec's output is always well-formed.

use at_protocol::command::{route, Command, Verb};
use at_protocol::key::AtKey;
use at_protocol::root::{RootReply, RootRequest};
use at_protocol::{Line, LineCodec, Metadata, Reply};
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
    fn route_names_the_verb_parse_finds(s in protocolish()) {
        let verb = route(&s);
        if let Ok(c) = Command::parse(&s) {
            prop_assert_eq!(verb, Verb::of(&c), "{:?}", s);
            prop_assert_eq!(verb.requires_auth(), c.requires_auth(), "{:?}", s);
        }
    }

    #[test]
    fn route_never_panics(s in any::<String>()) {
        let verb = route(&s);
        if let Ok(c) = Command::parse(&s) {
            prop_assert_eq!(verb, Verb::of(&c), "{:?}", s);
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
            while let Some(line) = codec.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                if let Line::Text(text) = &line {
                    prop_assert!(!text.contains('\n'));
                    prop_assert!(text.len() <= max);
                }
                frames += 1;
            }
            // Memory stays bounded: at most one (possibly partial) line is buffered.
            prop_assert!(buf.len() <= max + 1);
        }
        // Every frame but a trailing overlong one ends at a newline of the input.
        prop_assert!(frames <= newlines_in + 1);
    }

    /// However the bytes are chunked, the frames are those of a simple model: each line split
    /// on `\n` is text, not UTF-8 or too long; an unterminated tail only counts when too long.
    #[test]
    fn codec_frames_match_the_model_under_any_chunking(
        data in vec(prop_oneof![any::<u8>(), Just(b'\n'), Just(b'\r'), Just(b'a')], 0..256),
        cuts in vec(0usize..256, 0..12),
        max in 1usize..24,
    ) {
        let mut codec = LineCodec::new(max);
        let mut buf = BytesMut::new();
        let mut frames = Vec::new();
        let mut points: Vec<usize> = cuts.into_iter().filter(|c| *c <= data.len()).collect();
        points.push(data.len());
        points.sort_unstable();
        let mut last = 0;
        for p in points {
            buf.extend_from_slice(&data[last..p]);
            last = p;
            while let Some(line) = codec.decode(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
                frames.push(line);
            }
        }
        while let Some(line) = codec.decode_eof(&mut buf).map_err(|e| TestCaseError::fail(e.to_string()))? {
            frames.push(line);
        }
        prop_assert!(buf.is_empty());

        let mut segments: Vec<&[u8]> = data.split(|b| *b == b'\n').collect();
        let tail = segments.pop().unwrap_or_default();
        let mut expected: Vec<Line> = segments
            .into_iter()
            .map(|seg| {
                if seg.len() > max {
                    Line::TooLong
                } else {
                    let seg = seg.strip_suffix(b"\r").unwrap_or(seg);
                    std::str::from_utf8(seg).map_or(Line::InvalidUtf8, |t| Line::Text(t.to_string()))
                }
            })
            .collect();
        if tail.len() > max {
            expected.push(Line::TooLong);
        }
        prop_assert_eq!(frames, expected);
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
        let lines: Vec<Line> = lines.into_iter().map(Line::Text).collect();
        prop_assert_eq!(out, lines);
    }
}
