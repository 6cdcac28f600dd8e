//! Inputs the fuzz targets (`fuzz/`) found, kept as ordinary tests so `make test` runs them.

use at_protocol::root::{RootReply, RootRequest};
use at_protocol::{AtSign, Metadata};

/// `metadata` target: a date with nanoseconds, read from JSON, came back different after its own
/// `sync:from` JSON (written with microseconds, as Dart does). Dates are now read to the
/// microsecond, so both JSON shapes give back the metadata they were made from.
#[test]
fn json_dates_finer_than_a_microsecond_round_trip() {
    let input = r#"{"cry":"false","expiresAt":"2024-01-30T03:04:05.671111118Z","veion":"2"}"#;
    let json: serde_json::Value = serde_json::from_str(input).unwrap();
    let meta = Metadata::from_json(&json).unwrap();
    let expires = meta.expires_at.expect("expiresAt read");
    assert_eq!(expires.subsec_nanosecond(), 671_111_000);
    assert_eq!(Metadata::from_json(&meta.to_sync_json()), Ok(meta.clone()));
    assert_eq!(Metadata::from_json(&meta.to_lookup_json()), Ok(meta));
}

/// `root` target: `@.exit` is a lookup of the atSign `@exit` (dots are dropped), while the exact
/// text `@exit` closes the connection, as the reference root does; the atSign itself is found by
/// its name without `@`, which is what clients send (atprotocol.md §2).
#[test]
fn the_atsign_exit_is_looked_up_by_name() {
    let exit = AtSign::parse("@exit").unwrap();
    assert_eq!(
        RootRequest::parse("@.exit"),
        RootRequest::Lookup(exit.clone())
    );
    assert_eq!(RootRequest::parse("@exit"), RootRequest::Exit);
    assert_eq!(RootRequest::parse("@EXIT\r\n"), RootRequest::Exit);
    assert_eq!(RootRequest::parse(exit.name()), RootRequest::Lookup(exit));
}

/// `root` target: `data:data:null:null:2` was read as host `data:null:null`, port 2, which formats
/// back to a different reply. A host with a colon is no address a directory publishes.
#[test]
fn root_replies_with_a_colon_in_the_host_are_refused() {
    assert!(RootReply::parse("data:data:null:null:2").is_err());
    assert!(RootReply::parse("[::1]:6464\r\n@").is_err());
    assert!(RootReply::parse("a:b:64\r\n@").is_err());
    assert_eq!(
        RootReply::parse("data:alice.example:6464"),
        Ok(RootReply::Found {
            host: "alice.example".into(),
            port: 6464
        })
    );
}

/// `root` target: `data:data:2` (host `data`, with the legacy `data:` prefix) was read as host
/// `data`, whose own reply `data:2` then failed to parse: the prefix was stripped even when no
/// `host:port` followed it.
#[test]
fn a_host_named_data_survives_its_own_reply() {
    let found = RootReply::Found {
        host: "data".into(),
        port: 2,
    };
    assert_eq!(RootReply::parse("data:data:2"), Ok(found.clone()));
    assert_eq!(RootReply::parse(&found.to_wire()), Ok(found));
}
