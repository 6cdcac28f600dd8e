//! Arbitrary text through the command parser (the server side of every verb): no panic, errors
//! are AT0003, the router names the verb the parser found, and whatever parses formats back to
//! text that parses to the same command.
#![no_main]

use at_protocol::command::{route, Verb};
use at_protocol::Command;
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
});
