//! Arbitrary text through both sides of the root protocol: `RootRequest::parse` (what the
//! atDirectory runs on every line it receives) and `RootReply::parse` (what clients run on the
//! directory's answer). No panic; a lookup names a valid atSign that its name (what clients send)
//! looks up again; a found address a directory would send (a host name or IP literal) survives
//! `to_wire` and back.
#![no_main]

use at_protocol::root::{RootReply, RootRequest, MAX_ROOT_REQUEST};
use at_protocol::AtSign;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match RootRequest::parse(text) {
        RootRequest::Lookup(atsign) => {
            assert!(text.trim().chars().count() <= MAX_ROOT_REQUEST);
            assert_eq!(AtSign::parse(atsign.name()).as_ref(), Ok(&atsign));
            // Clients send the name without `@` (`@exit` itself is the exit command).
            assert_eq!(
                RootRequest::parse(atsign.name()),
                RootRequest::Lookup(atsign)
            );
        }
        RootRequest::Blank => assert!(text.trim().is_empty()),
        RootRequest::Exit | RootRequest::Invalid(_) => {}
    }
    if let Ok(reply) = RootReply::parse(text) {
        if let RootReply::Found { host, port } = &reply {
            assert!(!host.is_empty() && !host.contains(char::is_whitespace));
            assert!(!host.contains('@') && !host.contains(':'));
            // Clients read any answer starting `null` as a miss (atprotocol.md §2.1), so only
            // hosts a directory registers (DNS names, IP literals) must round-trip.
            let registrable = host
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || ".-".contains(c))
                && !host.starts_with("null");
            if registrable {
                assert_eq!(RootReply::parse(&reply.to_wire()).as_ref(), Ok(&reply));
                assert_eq!(reply.address(), Some(format!("{host}:{port}")));
            }
        }
    }
});
