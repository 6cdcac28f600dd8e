//! Record metadata (atprotocol.md §5): the stored form, the wire fragment, merge rules and the
//! JSON shapes of lookup (`meta`/`all`) and sync.

use serde::{Deserialize, Serialize};
use serde_json::Value;

/// Opaque string fields: stored, returned and forwarded verbatim.
pub const STRING_FIELDS: &[&str] = &[
    "dataSignature",
    "sharedKeyStatus",
    "sharedKeyEnc",
    "pubKeyCS",
    "pubKeyHash",
    "hashingAlgo",
    "encoding",
    "encKeyName",
    "encAlgo",
    "ivNonce",
    "skeEncKeyName",
    "skeEncAlgo",
    "appMetadata",
];

/// Stored metadata of one record. Times are epoch milliseconds.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct Metadata {
    pub created_by: String,
    pub updated_by: String,
    pub created_at: i64,
    pub updated_at: i64,
    pub expires_at: Option<i64>,
    pub available_at: Option<i64>,
    pub refresh_at: Option<i64>,
    pub version: i64,
    pub ttl: Option<i64>,
    pub ttb: Option<i64>,
    pub ttr: Option<i64>,
    pub ccd: Option<bool>,
    pub is_binary: bool,
    pub is_encrypted: bool,
    pub immutable: bool,
    /// The opaque fields of [`STRING_FIELDS`], by wire name.
    pub strings: std::collections::BTreeMap<String, String>,
}

/// Metadata as a command gives it, the input of a write's merge: the protocol's model, so
/// `None` = not mentioned and a string item `null` = clear (`at_protocol::Metadata::merge_update`).
pub type MetaUpdate = at_protocol::Metadata;

impl Metadata {
    /// A fresh record's metadata, written at `now` by `atsign`.
    pub fn new_record(atsign: &str, now: i64) -> Self {
        Metadata {
            created_by: atsign.to_string(),
            updated_by: atsign.to_string(),
            created_at: now,
            updated_at: now,
            ..Default::default()
        }
    }

    /// Applies a command's metadata on an update of this record: the protocol's merge rules
    /// (§5.2), then what only the server owns: version, updater and the timers.
    pub fn apply(&mut self, update: &MetaUpdate, now: i64, atsign: &str, existed: bool) {
        if existed {
            self.version += 1;
        }
        self.updated_at = now;
        self.updated_by = atsign.to_string();
        let merged = at_protocol::Metadata::merge_update(&self.to_wire(), update);
        self.ttl = merged.ttl;
        self.ttb = merged.ttb;
        self.ttr = merged.ttr;
        self.ccd = merged.ccd;
        self.is_binary = merged.is_binary.unwrap_or(false);
        self.is_encrypted = merged.is_encrypted.unwrap_or(false);
        self.immutable = merged.immutable.unwrap_or(false);
        self.strings = merged
            .fragment_items()
            .into_iter()
            .filter(|(name, _)| STRING_FIELDS.contains(name))
            .map(|(name, value)| (name.to_string(), value))
            .collect();
        // Timers restart from this write when given; ttl counts from birth when a ttb is set.
        if update.ttb.is_some() {
            self.available_at = self.ttb.map(|ttb| now + ttb);
        }
        if update.ttl.is_some() || update.ttb.is_some() {
            self.expires_at = self.ttl.map(|ttl| now + ttl + self.ttb.unwrap_or(0));
        }
        if update.ttr.is_some() {
            self.refresh_at = self.ttr.filter(|t| *t > 0).map(|ttr| now + ttr * 1000);
        }
    }

    /// True when `now` is before birth.
    pub fn unborn(&self, now: i64) -> bool {
        self.available_at.is_some_and(|a| now < a)
    }

    /// True when `now` is at or past expiry.
    pub fn expired(&self, now: i64) -> bool {
        self.expires_at.is_some_and(|e| now >= e)
    }

    /// This record's metadata in the protocol's model (status `active`; `immutable` only when
    /// set), which renders both JSON shapes.
    pub fn to_wire(&self) -> at_protocol::Metadata {
        let date = |ms: i64| jiff::Timestamp::from_millisecond(ms).ok();
        let mut wire = at_protocol::Metadata {
            created_by: Some(self.created_by.clone()),
            updated_by: Some(self.updated_by.clone()),
            created_at: date(self.created_at),
            updated_at: date(self.updated_at),
            expires_at: self.expires_at.and_then(date),
            available_at: self.available_at.and_then(date),
            refresh_at: self.refresh_at.and_then(date),
            status: Some("active".into()),
            version: Some(self.version),
            ttl: self.ttl,
            ttb: self.ttb,
            ttr: self.ttr,
            ccd: self.ccd,
            is_binary: Some(self.is_binary),
            is_encrypted: Some(self.is_encrypted),
            immutable: self.immutable.then_some(true),
            ..Default::default()
        };
        for (name, value) in &self.strings {
            wire.set_text(name, Some(value.clone()));
        }
        wire
    }

    /// Metadata another atServer sent (its lookup JSON in the protocol's model), kept as it was
    /// sent: owner, dates and version included. `now` stands in for a missing creation time.
    pub fn from_wire(wire: &at_protocol::Metadata, now: i64) -> Self {
        let ms = |t: Option<jiff::Timestamp>| t.map(|t| t.as_millisecond());
        Metadata {
            created_by: wire.created_by.clone().unwrap_or_default(),
            updated_by: wire.updated_by.clone().unwrap_or_default(),
            created_at: ms(wire.created_at).unwrap_or(now),
            updated_at: ms(wire.updated_at).or(ms(wire.created_at)).unwrap_or(now),
            expires_at: ms(wire.expires_at),
            available_at: ms(wire.available_at),
            refresh_at: ms(wire.refresh_at),
            version: wire.version.unwrap_or(0),
            ttl: wire.ttl,
            ttb: wire.ttb,
            ttr: wire.ttr,
            ccd: wire.ccd,
            is_binary: wire.is_binary.unwrap_or(false),
            is_encrypted: wire.is_encrypted.unwrap_or(false),
            immutable: wire.immutable.unwrap_or(false),
            strings: wire
                .fragment_items()
                .into_iter()
                .filter(|(name, _)| STRING_FIELDS.contains(name))
                .map(|(name, value)| (name.to_string(), value))
                .collect(),
        }
    }

    /// The metadata JSON of `llookup:meta` / `lookup:meta` (nulls removed, numbers as numbers).
    pub fn to_lookup_json(&self) -> Value {
        self.to_wire().to_lookup_json()
    }

    /// The sync form: the same fields, every value a string (§9.2).
    pub fn to_sync_json(&self) -> Value {
        self.to_wire().to_sync_json()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn merges_and_times() {
        let mut md = Metadata::new_record("@alice", 1000);
        let u = MetaUpdate {
            ttl: Some(500),
            ttb: Some(100),
            ttr: Some(10),
            ..Default::default()
        };
        md.apply(&u, 1000, "@alice", false);
        assert_eq!(md.available_at, Some(1100));
        assert_eq!(md.expires_at, Some(1600));
        assert_eq!(md.refresh_at, Some(11_000));
        assert_eq!(md.ccd, Some(false));
        assert!(md.unborn(1099));
        assert!(!md.unborn(1100));
        assert!(md.expired(1600));
        md.apply(
            &MetaUpdate {
                ttl: Some(0),
                ..Default::default()
            },
            2000,
            "@alice",
            true,
        );
        assert_eq!(md.expires_at, None);
        assert_eq!(md.version, 1);
    }

    #[test]
    fn strings_are_kept_replaced_and_cleared() {
        let mut md = Metadata::new_record("@alice", 0);
        let first =
            MetaUpdate::parse_fragment(":ivNonce:AbC=:encoding:base64:sharedKeyStatus:x").unwrap();
        md.apply(&first, 1, "@alice", false);
        assert_eq!(md.strings.get("ivNonce").map(String::as_str), Some("AbC="));
        assert_eq!(
            md.strings.get("encoding").map(String::as_str),
            Some("base64")
        );
        // sharedKeyStatus is accepted on the wire and never stored (atprotocol.md §5).
        assert!(!md.strings.contains_key("sharedKeyStatus"));
        let second = MetaUpdate::parse_fragment(":encoding:null:dataSignature:sig").unwrap();
        md.apply(&second, 2, "@alice", true);
        assert_eq!(md.strings.get("ivNonce").map(String::as_str), Some("AbC="));
        assert!(!md.strings.contains_key("encoding"));
        assert_eq!(
            md.strings.get("dataSignature").map(String::as_str),
            Some("sig")
        );
    }
}
