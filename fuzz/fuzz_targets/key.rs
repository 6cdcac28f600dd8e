//! Arbitrary text through the key and atSign grammar: no panic; a parsed key formats back to text
//! that parses to the same key; a parsed atSign is already normal (parsing its text is a no-op);
//! the derived views (namespace, visibility, cached form) never panic and stay parseable.
#![no_main]

use at_protocol::{AtKey, AtSign};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(atsign) = AtSign::parse(text) {
        assert!(atsign.as_str().starts_with('@'));
        assert!(!atsign.name().is_empty());
        assert_eq!(AtSign::parse(atsign.as_str()).as_ref(), Ok(&atsign));
    }
    if let Ok(key) = AtKey::parse(text) {
        assert_eq!(AtKey::parse(&key.to_string()).as_ref(), Ok(&key));
        let _ = key.namespace();
        let _ = key.scan_visibility();
        let _ = (key.is_reserved(), key.commits(), key.is_hidden());
        if let Some(cached) = key.to_cached() {
            assert!(cached.is_cached());
            assert_eq!(AtKey::parse(&cached.to_string()), Ok(cached));
        }
    }
});
