//! Arbitrary text through every parser: no panic, and whatever parses as a command formats
//! back to text that parses to the same command; the router names the verb the parser found.
#![no_main]

use at_protocol::command::{route, Verb};
use at_protocol::root::{RootReply, RootRequest};
use at_protocol::{AtKey, Command, Metadata, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let verb = route(text);
    match Command::parse(text) {
        Ok(cmd) => {
            assert_eq!(verb, Verb::of(&cmd));
            assert_eq!(Command::parse(&cmd.to_string()), Ok(cmd));
        }
        Err(e) => assert_eq!(e.error_code().as_str(), "AT0003"),
    }
    if let Ok(key) = AtKey::parse(text) {
        assert_eq!(AtKey::parse(&key.to_string()), Ok(key));
    }
    if let Ok(meta) = Metadata::parse_fragment(text) {
        assert_eq!(Metadata::parse_fragment(&meta.to_fragment()), Ok(meta));
    }
    let _ = Reply::parse(text);
    let _ = RootRequest::parse(text);
    let _ = RootReply::parse(text);
});
