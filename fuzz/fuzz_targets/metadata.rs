//! Arbitrary text through the metadata parsers: the wire fragment (`:ttl:100:isEncrypted:true`)
//! and, when the input is JSON, both JSON shapes. No panic; a parsed fragment formats back to the
//! same metadata; metadata read from JSON survives its own sync-shape JSON.
#![no_main]

use at_protocol::Metadata;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(meta) = Metadata::parse_fragment(text) {
        assert_eq!(Metadata::parse_fragment(&meta.to_fragment()).as_ref(), Ok(&meta));
        let _ = Metadata::merge_update(&Metadata::default(), &meta);
    }
    let _ = at_protocol::time::parse_date(text);
    if let Ok(json) = serde_json::from_str::<serde_json::Value>(text) {
        if let Ok(meta) = Metadata::from_json(&json) {
            assert_eq!(Metadata::from_json(&meta.to_sync_json()).as_ref(), Ok(&meta));
            assert_eq!(Metadata::from_json(&meta.to_lookup_json()).as_ref(), Ok(&meta));
        }
    }
});
