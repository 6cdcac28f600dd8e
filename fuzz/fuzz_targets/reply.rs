//! Arbitrary text through the client's response parser (`data:`, `error:` in its three styles,
//! `notification:`, the `pol` answer, with prompts glued on either side) and the monitor-line
//! parser: no panic, and an error reply's code is one the server can send.
#![no_main]

use at_protocol::{NotificationJson, Reply};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Reply::parse(text) {
        Ok(Reply::Error {
            code: Some(code), ..
        }) => assert_eq!(code.as_str().parse().ok(), Some(code)),
        Ok(Reply::Pol(atsign)) => assert!(atsign.as_str().starts_with('@')),
        Ok(_) | Err(_) => {}
    }
    if let Ok(note) = NotificationJson::parse_monitor_line(text) {
        let _ = note.to_monitor_line();
    }
});
