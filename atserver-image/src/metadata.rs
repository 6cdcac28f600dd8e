//! Record metadata (atprotocol.md §5): the stored form, the wire fragment, merge rules and the
//! JSON shapes of lookup (`meta`/`all`) and sync.

use serde::{Deserialize, Serialize};
use serde_json::{Map, Value};

use crate::error::AtError;

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

/// Metadata as given in a command. `None` = not mentioned; for strings `Some(None)` = literal `null`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct MetaUpdate {
    pub ttl: Option<i64>,
    pub ttb: Option<i64>,
    pub ttr: Option<i64>,
    pub ccd: Option<bool>,
    pub is_binary: Option<bool>,
    pub is_encrypted: Option<bool>,
    pub immutable: Option<bool>,
    pub strings: Vec<(String, Option<String>)>,
}

impl MetaUpdate {
    pub fn is_empty(&self) -> bool {
        *self == MetaUpdate::default()
    }

    /// Sets one named attribute; returns `Ok(false)` if the name is not a metadata attribute.
    pub fn set(&mut self, name: &str, value: &str) -> Result<bool, AtError> {
        let lname = name.to_ascii_lowercase();
        let int = |v: &str| {
            v.parse::<i64>()
                .map_err(|_| AtError::syntax(format!("{name} must be an integer")))
        };
        let boolean = |v: &str| match v.to_ascii_lowercase().as_str() {
            "true" => Ok(true),
            "false" => Ok(false),
            _ => Err(AtError::syntax(format!("{name} must be true or false"))),
        };
        match lname.as_str() {
            "ttl" => {
                let v = int(value)?;
                if v < 0 {
                    return Err(AtError::syntax(
                        "Valid value for TTL should be greater than or equal to 0",
                    ));
                }
                self.ttl = Some(v);
            }
            "ttb" => {
                let v = int(value)?;
                if v < 0 {
                    return Err(AtError::syntax(
                        "Valid value for TTB should be greater than or equal to 0",
                    ));
                }
                self.ttb = Some(v);
            }
            "ttr" => {
                let v = int(value)?;
                if v < -1 {
                    return Err(AtError::syntax(
                        "Valid values for TTR are -1 and greater than or equal to 0",
                    ));
                }
                self.ttr = Some(v);
            }
            "ccd" => self.ccd = Some(boolean(value)?),
            "isbinary" => self.is_binary = Some(boolean(value)?),
            "isencrypted" => self.is_encrypted = Some(boolean(value)?),
            "immutable" => self.immutable = Some(boolean(value)?),
            _ => {
                let Some(canonical) = STRING_FIELDS.iter().find(|f| f.eq_ignore_ascii_case(name))
                else {
                    return Ok(false);
                };
                if value.is_empty() || value.contains('@') || value.chars().any(char::is_whitespace)
                {
                    return Err(AtError::syntax(format!("invalid value for {name}")));
                }
                let v = (value != "null").then(|| value.to_string());
                self.strings.push((canonical.to_string(), v));
            }
        }
        Ok(true)
    }
}

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

    /// Applies a command's metadata on an update of this record (§5.2 merge rules).
    pub fn apply(&mut self, update: &MetaUpdate, now: i64, atsign: &str, existed: bool) {
        if existed {
            self.version += 1;
        }
        self.updated_at = now;
        self.updated_by = atsign.to_string();
        if let Some(ttl) = update.ttl {
            self.ttl = (ttl > 0).then_some(ttl);
        }
        if let Some(ttb) = update.ttb {
            self.ttb = (ttb > 0).then_some(ttb);
        }
        if let Some(ttr) = update.ttr {
            self.ttr = (ttr != 0).then_some(ttr);
        }
        if let Some(ccd) = update.ccd {
            self.ccd = Some(ccd);
        }
        // ccd is only meaningful with a ttr; it defaults to false when a ttr is set.
        if self.ttr.is_none() {
            self.ccd = None;
        } else if self.ccd.is_none() {
            self.ccd = Some(false);
        }
        self.is_binary = update.is_binary.unwrap_or(false);
        self.is_encrypted = update.is_encrypted.unwrap_or(false);
        if let Some(imm) = update.immutable {
            self.immutable = imm;
        }
        for (name, value) in &update.strings {
            match value {
                Some(v) => {
                    self.strings.insert(name.clone(), v.clone());
                }
                None => {
                    self.strings.remove(name);
                }
            }
        }
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

    /// The metadata JSON of `llookup:meta` / `lookup:meta` (nulls removed, numbers as numbers).
    pub fn to_lookup_json(&self) -> Value {
        self.to_wire().to_lookup_json()
    }

    /// The sync form: the same fields, every value a string (§9.2).
    pub fn to_sync_json(&self) -> Value {
        self.to_wire().to_sync_json()
    }

    /// Applies a Metadata JSON object (as sent by `update:json:`) on top of this record.
    pub fn update_from_json(obj: &Map<String, Value>) -> Result<MetaUpdate, AtError> {
        let mut u = MetaUpdate::default();
        for (k, v) in obj {
            let text = match v {
                Value::Null => continue,
                Value::String(s) => s.clone(),
                Value::Bool(b) => b.to_string(),
                Value::Number(n) => n.to_string(),
                _ => return Err(AtError::syntax(format!("invalid metadata field {k}"))),
            };
            // Unknown fields (createdAt, status, …) are server-owned; ignore them.
            let _ = u.set(k, &text)?;
        }
        Ok(u)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sets_attributes_by_wire_name() {
        let mut m = MetaUpdate::default();
        assert!(m.set("TTL", "1000").unwrap());
        assert!(m.set("isEncrypted", "true").unwrap());
        assert!(m.set("ivNonce", "AbC=").unwrap());
        assert!(m.set("encoding", "null").unwrap());
        assert!(!m.set("cAt", "2024-10-24T01:35:02.123Z").unwrap());
        assert_eq!(m.ttl, Some(1000));
        assert_eq!(m.is_encrypted, Some(true));
        assert_eq!(
            m.strings,
            vec![
                ("ivNonce".to_string(), Some("AbC=".to_string())),
                ("encoding".to_string(), None)
            ]
        );
    }

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
    fn rejects_negative_ttl() {
        let mut m = MetaUpdate::default();
        assert!(m.set("ttl", "-5").is_err());
        assert!(m.set("ttr", "-2").is_err());
        assert!(m.set("ttr", "-1").is_ok());
    }
}
