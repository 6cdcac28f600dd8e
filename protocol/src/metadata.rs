//! Record metadata (§5): the wire fragment (`:ttl:…:isEncrypted:…`), the update merge rules
//! and the two JSON shapes (lookup: typed values; sync: every value a string).

use jiff::Timestamp;
use serde_json::{Map, Value};

use crate::time::{format_dart, format_iso, parse_date, wire_iso_len};

/// A metadata fragment or JSON object that breaks the grammar.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MetadataError {
    #[error("{0} must be greater than or equal to 0")]
    Negative(&'static str),
    #[error("ttr must be -1 or greater")]
    TtrTooSmall,
    #[error("duplicate metadata item {0}")]
    Duplicate(&'static str),
    #[error("invalid value for {0}")]
    InvalidValue(&'static str),
    #[error("unexpected text in metadata: {0:?}")]
    Unexpected(String),
    #[error("metadata JSON must be an object")]
    NotAnObject,
}

/// All metadata of a record. `None` = absent on the wire / not stored.
///
/// Server-managed fields (`created_by` … `version`) are never part of the wire fragment;
/// `c_at`/`u_at`/`e_at`/`a_at` are the caller-asserted timestamps of the fragment (≥3.16.3).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Metadata {
    pub created_by: Option<String>,
    pub updated_by: Option<String>,
    pub created_at: Option<Timestamp>,
    pub updated_at: Option<Timestamp>,
    pub expires_at: Option<Timestamp>,
    pub available_at: Option<Timestamp>,
    pub refresh_at: Option<Timestamp>,
    pub status: Option<String>,
    pub version: Option<i64>,
    /// Milliseconds.
    pub ttl: Option<i64>,
    /// Milliseconds.
    pub ttb: Option<i64>,
    /// Seconds; `-1` = cache forever.
    pub ttr: Option<i64>,
    pub ccd: Option<bool>,
    pub c_at: Option<Timestamp>,
    pub u_at: Option<Timestamp>,
    pub e_at: Option<Timestamp>,
    pub a_at: Option<Timestamp>,
    pub data_signature: Option<String>,
    /// Accepted on the wire, never stored.
    pub shared_key_status: Option<String>,
    pub is_binary: Option<bool>,
    pub is_encrypted: Option<bool>,
    pub shared_key_enc: Option<String>,
    pub pub_key_cs: Option<String>,
    pub pub_key_hash: Option<String>,
    pub hashing_algo: Option<String>,
    pub encoding: Option<String>,
    pub enc_key_name: Option<String>,
    pub enc_algo: Option<String>,
    pub iv_nonce: Option<String>,
    pub ske_enc_key_name: Option<String>,
    pub ske_enc_algo: Option<String>,
    pub immutable: Option<bool>,
    /// Base64 JSON, opaque.
    pub app_metadata: Option<String>,
}

/// The wire fragment items, in the reference's canonical order (§14).
pub const FRAGMENT_ITEMS: [&str; 24] = [
    "ttl",
    "ttb",
    "ttr",
    "ccd",
    "cAt",
    "uAt",
    "eAt",
    "aAt",
    "dataSignature",
    "sharedKeyStatus",
    "isBinary",
    "isEncrypted",
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
    "immutable",
    "appMetadata",
];

/// Case-insensitive lookup of a fragment item name; returns its canonical spelling.
pub fn fragment_item(name: &str) -> Option<&'static str> {
    FRAGMENT_ITEMS
        .into_iter()
        .find(|n| n.eq_ignore_ascii_case(name))
}

fn parse_bool(name: &'static str, v: &str) -> Result<bool, MetadataError> {
    if v.eq_ignore_ascii_case("true") {
        Ok(true)
    } else if v.eq_ignore_ascii_case("false") {
        Ok(false)
    } else {
        Err(MetadataError::InvalidValue(name))
    }
}

fn parse_int(name: &'static str, v: &str) -> Result<i64, MetadataError> {
    let digits = v.strip_prefix('-').unwrap_or(v);
    if digits.is_empty() || !digits.bytes().all(|b| b.is_ascii_digit()) {
        return Err(MetadataError::InvalidValue(name));
    }
    v.parse().map_err(|_| MetadataError::InvalidValue(name))
}

/// `[^:@\s]+`
fn check_token(name: &'static str, v: &str) -> Result<String, MetadataError> {
    if v.is_empty() || v.chars().any(|c| c == ':' || c == '@' || c.is_whitespace()) {
        return Err(MetadataError::InvalidValue(name));
    }
    Ok(v.to_string())
}

fn set_once<T>(
    slot: &mut Option<T>,
    name: &'static str,
    value: Result<T, MetadataError>,
) -> Result<(), MetadataError> {
    if slot.is_some() {
        return Err(MetadataError::Duplicate(name));
    }
    *slot = Some(value?);
    Ok(())
}

impl Metadata {
    /// Parses a complete fragment (`:ttl:100:isEncrypted:true`, items in any order).
    pub fn parse_fragment(input: &str) -> Result<Metadata, MetadataError> {
        let mut meta = Metadata::default();
        let mut rest = input;
        while !rest.is_empty() {
            rest = meta
                .take_item(rest)?
                .ok_or_else(|| MetadataError::Unexpected(rest.to_string()))?;
        }
        Ok(meta)
    }

    /// Consumes one `:name:value` item from the front of `input` into `self`.
    ///
    /// `Ok(None)` when the text does not start with a metadata item (the caller's grammar
    /// continues there); `Ok(Some(rest))` after consuming one.
    pub fn take_item<'a>(&mut self, input: &'a str) -> Result<Option<&'a str>, MetadataError> {
        let Some(after_colon) = input.strip_prefix(':') else {
            return Ok(None);
        };
        let Some((name, tail)) = after_colon.split_once(':') else {
            return Ok(None);
        };
        let Some(name) = fragment_item(name) else {
            return Ok(None);
        };
        if matches!(name, "cAt" | "uAt" | "eAt" | "aAt") {
            let len = wire_iso_len(tail).ok_or(MetadataError::InvalidValue(name))?;
            let (value, rest) = tail.split_at(len);
            if !(rest.is_empty() || rest.starts_with(':')) {
                return Err(MetadataError::InvalidValue(name));
            }
            let ts = parse_date(value).map_err(|_| MetadataError::InvalidValue(name));
            let slot = match name {
                "cAt" => &mut self.c_at,
                "uAt" => &mut self.u_at,
                "eAt" => &mut self.e_at,
                _ => &mut self.a_at,
            };
            set_once(slot, name, ts)?;
            return Ok(Some(rest));
        }
        let (value, rest) = match tail.find(':') {
            Some(i) => tail.split_at(i),
            None => (tail, ""),
        };
        self.set_item(name, value)?;
        Ok(Some(rest))
    }

    fn set_item(&mut self, name: &'static str, v: &str) -> Result<(), MetadataError> {
        let nonneg = |n: i64| {
            if n < 0 {
                Err(MetadataError::Negative(name))
            } else {
                Ok(n)
            }
        };
        match name {
            "ttl" => set_once(&mut self.ttl, name, parse_int(name, v).and_then(nonneg)),
            "ttb" => set_once(&mut self.ttb, name, parse_int(name, v).and_then(nonneg)),
            "ttr" => set_once(
                &mut self.ttr,
                name,
                parse_int(name, v).and_then(|n| {
                    if n < -1 {
                        Err(MetadataError::TtrTooSmall)
                    } else {
                        Ok(n)
                    }
                }),
            ),
            "ccd" => set_once(&mut self.ccd, name, parse_bool(name, v)),
            "isBinary" => set_once(&mut self.is_binary, name, parse_bool(name, v)),
            "isEncrypted" => set_once(&mut self.is_encrypted, name, parse_bool(name, v)),
            "immutable" => set_once(&mut self.immutable, name, parse_bool(name, v)),
            _ => {
                let slot = self
                    .string_slot(name)
                    .ok_or_else(|| MetadataError::Unexpected(name.to_string()))?;
                set_once(slot, name, check_token(name, v))
            }
        }
    }

    /// Sets (or with `None` clears) the opaque text item with wire name `name`
    /// (`dataSignature`, `sharedKeyEnc`, `ivNonce`, …); `false` if `name` is not one.
    pub fn set_text(&mut self, name: &str, value: Option<String>) -> bool {
        match self.string_slot(name) {
            Some(slot) => {
                *slot = value;
                true
            }
            None => false,
        }
    }

    fn string_slot(&mut self, name: &str) -> Option<&mut Option<String>> {
        Some(match name {
            "dataSignature" => &mut self.data_signature,
            "sharedKeyStatus" => &mut self.shared_key_status,
            "sharedKeyEnc" => &mut self.shared_key_enc,
            "pubKeyCS" => &mut self.pub_key_cs,
            "pubKeyHash" => &mut self.pub_key_hash,
            "hashingAlgo" => &mut self.hashing_algo,
            "encoding" => &mut self.encoding,
            "encKeyName" => &mut self.enc_key_name,
            "encAlgo" => &mut self.enc_algo,
            "ivNonce" => &mut self.iv_nonce,
            "skeEncKeyName" => &mut self.ske_enc_key_name,
            "skeEncAlgo" => &mut self.ske_enc_algo,
            "appMetadata" => &mut self.app_metadata,
            _ => return None,
        })
    }

    /// The fragment items that are set, canonical order, as `(name, wire value)`.
    pub fn fragment_items(&self) -> Vec<(&'static str, String)> {
        let int = |v: &Option<i64>| v.map(|n| n.to_string());
        let boolean = |v: &Option<bool>| v.map(|b| b.to_string());
        let iso = |v: &Option<Timestamp>| v.map(format_iso);
        let values: [Option<String>; 24] = [
            int(&self.ttl),
            int(&self.ttb),
            int(&self.ttr),
            boolean(&self.ccd),
            iso(&self.c_at),
            iso(&self.u_at),
            iso(&self.e_at),
            iso(&self.a_at),
            self.data_signature.clone(),
            self.shared_key_status.clone(),
            boolean(&self.is_binary),
            boolean(&self.is_encrypted),
            self.shared_key_enc.clone(),
            self.pub_key_cs.clone(),
            self.pub_key_hash.clone(),
            self.hashing_algo.clone(),
            self.encoding.clone(),
            self.enc_key_name.clone(),
            self.enc_algo.clone(),
            self.iv_nonce.clone(),
            self.ske_enc_key_name.clone(),
            self.ske_enc_algo.clone(),
            boolean(&self.immutable),
            self.app_metadata.clone(),
        ];
        FRAGMENT_ITEMS
            .into_iter()
            .zip(values)
            .filter_map(|(n, v)| v.map(|v| (n, v)))
            .collect()
    }

    /// The wire fragment in canonical order, e.g. `:ttl:100:isEncrypted:true` (empty if none).
    pub fn to_fragment(&self) -> String {
        let mut s = String::new();
        for (n, v) in self.fragment_items() {
            s.push(':');
            s.push_str(n);
            s.push(':');
            s.push_str(&v);
        }
        s
    }

    /// Whether no wire fragment item is set.
    pub fn fragment_is_empty(&self) -> bool {
        self.fragment_items().is_empty()
    }

    /// The update merge of §3.3/§5.2 as a pure function (timestamps, version and the
    /// expiry clock are the server's business):
    /// absent → keep stored; string `null` → clear; value → replace; `isBinary`/`isEncrypted`
    /// absent → `false`; `ttl:0`/`ttb:0`/`ttr:0` → cleared; `ccd` is `false` whenever a ttr is
    /// set and unspecified, and cleared when no ttr remains; `sharedKeyStatus` is never stored.
    pub fn merge_update(stored: &Metadata, incoming: &Metadata) -> Metadata {
        fn num(stored: Option<i64>, incoming: Option<i64>) -> Option<i64> {
            match incoming {
                Some(0) => None,
                Some(n) => Some(n),
                None => stored,
            }
        }
        fn text(stored: &Option<String>, incoming: &Option<String>) -> Option<String> {
            match incoming.as_deref() {
                Some("null") => None,
                Some(v) => Some(v.to_string()),
                None => stored.clone(),
            }
        }
        let mut out = stored.clone();
        out.ttl = num(stored.ttl, incoming.ttl);
        out.ttb = num(stored.ttb, incoming.ttb);
        out.ttr = num(stored.ttr, incoming.ttr);
        out.ccd = match out.ttr {
            None => None,
            Some(_) => incoming.ccd.or(stored.ccd).or(Some(false)),
        };
        out.c_at = incoming.c_at.or(stored.c_at);
        out.u_at = incoming.u_at.or(stored.u_at);
        out.e_at = incoming.e_at.or(stored.e_at);
        out.a_at = incoming.a_at.or(stored.a_at);
        out.data_signature = text(&stored.data_signature, &incoming.data_signature);
        out.shared_key_status = None;
        out.is_binary = Some(incoming.is_binary.unwrap_or(false));
        out.is_encrypted = Some(incoming.is_encrypted.unwrap_or(false));
        out.shared_key_enc = text(&stored.shared_key_enc, &incoming.shared_key_enc);
        out.pub_key_cs = text(&stored.pub_key_cs, &incoming.pub_key_cs);
        out.pub_key_hash = text(&stored.pub_key_hash, &incoming.pub_key_hash);
        out.hashing_algo = text(&stored.hashing_algo, &incoming.hashing_algo);
        out.encoding = text(&stored.encoding, &incoming.encoding);
        out.enc_key_name = text(&stored.enc_key_name, &incoming.enc_key_name);
        out.enc_algo = text(&stored.enc_algo, &incoming.enc_algo);
        out.iv_nonce = text(&stored.iv_nonce, &incoming.iv_nonce);
        out.ske_enc_key_name = text(&stored.ske_enc_key_name, &incoming.ske_enc_key_name);
        out.ske_enc_algo = text(&stored.ske_enc_algo, &incoming.ske_enc_algo);
        out.immutable = incoming.immutable.or(stored.immutable);
        out.app_metadata = text(&stored.app_metadata, &incoming.app_metadata);
        out
    }

    fn json_fields(&self) -> Vec<(&'static str, JsonValue)> {
        use JsonValue::{Bool, Date, Int, Text};
        let mut v = Vec::new();
        let mut push = |name: &'static str, value: Option<JsonValue>| {
            if let Some(value) = value {
                v.push((name, value));
            }
        };
        push("createdBy", self.created_by.clone().map(Text));
        push("updatedBy", self.updated_by.clone().map(Text));
        push("createdAt", self.created_at.map(Date));
        push("updatedAt", self.updated_at.map(Date));
        push("expiresAt", self.expires_at.map(Date));
        push("availableAt", self.available_at.map(Date));
        push("refreshAt", self.refresh_at.map(Date));
        push("status", self.status.clone().map(Text));
        push("version", self.version.map(Int));
        push("ttl", self.ttl.map(Int));
        push("ttb", self.ttb.map(Int));
        push("ttr", self.ttr.map(Int));
        push("ccd", self.ccd.map(Bool));
        push("isBinary", self.is_binary.map(Bool));
        push("isEncrypted", self.is_encrypted.map(Bool));
        push("dataSignature", self.data_signature.clone().map(Text));
        push("sharedKeyStatus", self.shared_key_status.clone().map(Text));
        push("sharedKeyEnc", self.shared_key_enc.clone().map(Text));
        push("pubKeyCS", self.pub_key_cs.clone().map(Text));
        push("pubKeyHash", self.pub_key_hash.clone().map(Text));
        push("hashingAlgo", self.hashing_algo.clone().map(Text));
        push("encoding", self.encoding.clone().map(Text));
        push("encKeyName", self.enc_key_name.clone().map(Text));
        push("encAlgo", self.enc_algo.clone().map(Text));
        push("ivNonce", self.iv_nonce.clone().map(Text));
        push("skeEncKeyName", self.ske_enc_key_name.clone().map(Text));
        push("skeEncAlgo", self.ske_enc_algo.clone().map(Text));
        push("immutable", self.immutable.map(Bool));
        push("appMetadata", self.app_metadata.clone().map(Text));
        v
    }

    /// The `lookup:meta`/`llookup:meta` shape: typed values, nulls dropped, Dart dates.
    pub fn to_lookup_json(&self) -> Value {
        let map: Map<String, Value> = self
            .json_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), v.typed()))
            .collect();
        Value::Object(map)
    }

    /// The `sync:from` shape: every non-null value as a string.
    pub fn to_sync_json(&self) -> Value {
        let map: Map<String, Value> = self
            .json_fields()
            .into_iter()
            .map(|(k, v)| (k.to_string(), Value::String(v.text())))
            .collect();
        Value::Object(map)
    }

    /// Reads either JSON shape (numbers/booleans as JSON values or as strings; dates in the
    /// Dart or ISO form; `null` and `"null"` mean absent; unknown names are ignored).
    pub fn from_json(value: &Value) -> Result<Metadata, MetadataError> {
        let obj = value.as_object().ok_or(MetadataError::NotAnObject)?;
        let mut m = Metadata::default();
        for (k, v) in obj {
            if v.is_null() || v.as_str() == Some("null") {
                continue;
            }
            let Some(name) = JSON_NAMES.iter().copied().find(|n| *n == k.as_str()) else {
                continue;
            };
            let text = || -> Result<String, MetadataError> {
                match v {
                    Value::String(s) => Ok(s.clone()),
                    Value::Number(n) => Ok(n.to_string()),
                    Value::Bool(b) => Ok(b.to_string()),
                    _ => Err(MetadataError::InvalidValue(name)),
                }
            };
            let int = || parse_int(name, &text()?);
            let boolean = || parse_bool(name, &text()?);
            let date = || parse_date(&text()?).map_err(|_| MetadataError::InvalidValue(name));
            match name {
                "createdBy" => m.created_by = Some(text()?),
                "updatedBy" => m.updated_by = Some(text()?),
                "createdAt" => m.created_at = Some(date()?),
                "updatedAt" => m.updated_at = Some(date()?),
                "expiresAt" => m.expires_at = Some(date()?),
                "availableAt" => m.available_at = Some(date()?),
                "refreshAt" => m.refresh_at = Some(date()?),
                "status" => m.status = Some(text()?),
                "version" => m.version = Some(int()?),
                "ttl" => m.ttl = Some(int()?),
                "ttb" => m.ttb = Some(int()?),
                "ttr" => m.ttr = Some(int()?),
                "ccd" => m.ccd = Some(boolean()?),
                "isBinary" => m.is_binary = Some(boolean()?),
                "isEncrypted" => m.is_encrypted = Some(boolean()?),
                "immutable" => m.immutable = Some(boolean()?),
                other => {
                    if let Some(slot) = m.string_slot(other) {
                        *slot = Some(text()?);
                    }
                }
            }
        }
        Ok(m)
    }
}

/// JSON member names `from_json` understands.
const JSON_NAMES: [&str; 29] = [
    "createdBy",
    "updatedBy",
    "createdAt",
    "updatedAt",
    "expiresAt",
    "availableAt",
    "refreshAt",
    "status",
    "version",
    "ttl",
    "ttb",
    "ttr",
    "ccd",
    "isBinary",
    "isEncrypted",
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
    "immutable",
    "appMetadata",
];

enum JsonValue {
    Text(String),
    Int(i64),
    Bool(bool),
    Date(Timestamp),
}

impl JsonValue {
    fn typed(self) -> Value {
        match self {
            JsonValue::Text(s) => Value::String(s),
            JsonValue::Int(n) => Value::from(n),
            JsonValue::Bool(b) => Value::Bool(b),
            JsonValue::Date(t) => Value::String(format_dart(t)),
        }
    }

    fn text(self) -> String {
        match self {
            JsonValue::Text(s) => s,
            JsonValue::Int(n) => n.to_string(),
            JsonValue::Bool(b) => b.to_string(),
            JsonValue::Date(t) => format_dart(t),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn fragment_any_order_canonical_output() {
        let m = Metadata::parse_fragment(":isEncrypted:true:ivNonce:abc=:TTL:100:ttr:-1").unwrap();
        assert_eq!(m.ttl, Some(100));
        assert_eq!(m.ttr, Some(-1));
        assert_eq!(m.is_encrypted, Some(true));
        assert_eq!(m.iv_nonce.as_deref(), Some("abc="));
        assert_eq!(
            m.to_fragment(),
            ":ttl:100:ttr:-1:isEncrypted:true:ivNonce:abc="
        );
        let all = ":ttl:1:ttb:2:ttr:3:ccd:true:cAt:2024-10-24T01:35:02.123Z:uAt:2024-10-24T01:35:02Z:eAt:2025-01-01T00:00:00Z:aAt:2024-01-01T00:00:00.5Z:dataSignature:sig:sharedKeyStatus:s:isBinary:false:isEncrypted:true:sharedKeyEnc:ske:pubKeyCS:cs:pubKeyHash:h:hashingAlgo:sha256:encoding:base64:encKeyName:k:encAlgo:a:ivNonce:iv:skeEncKeyName:sk:skeEncAlgo:sa:immutable:true:appMetadata:e30=";
        let m = Metadata::parse_fragment(all).unwrap();
        assert_eq!(m.to_fragment(), all);
        assert_eq!(m.fragment_items().len(), 24);
    }

    #[test]
    fn fragment_rejects() {
        for bad in [
            ":ttl:-1",
            ":ttb:-5",
            ":ttr:-2",
            ":ttl:x",
            ":ttl:",
            ":ccd:yes",
            ":ivNonce:a@b",
            ":ivNonce:",
            ":ttl:1:ttl:2",
            ":cAt:2024-10-24 01:35:02Z",
            ":nope:1",
            "ttl:1",
        ] {
            assert!(Metadata::parse_fragment(bad).is_err(), "{bad}");
        }
        assert_eq!(
            Metadata::parse_fragment(":ttl:-1"),
            Err(MetadataError::Negative("ttl"))
        );
    }

    #[test]
    fn merge_rules() {
        let stored = Metadata {
            ttl: Some(1000),
            ttr: Some(60),
            ccd: Some(true),
            is_encrypted: Some(true),
            is_binary: Some(true),
            iv_nonce: Some("iv".into()),
            encoding: Some("base64".into()),
            version: Some(3),
            ..Default::default()
        };
        let incoming = Metadata::parse_fragment(":encoding:null:dataSignature:s").unwrap();
        let m = Metadata::merge_update(&stored, &incoming);
        assert_eq!(m.ttl, Some(1000));
        assert_eq!(m.ttr, Some(60));
        assert_eq!(m.ccd, Some(true));
        assert_eq!(m.iv_nonce.as_deref(), Some("iv"));
        assert_eq!(m.encoding, None);
        assert_eq!(m.data_signature.as_deref(), Some("s"));
        assert_eq!(m.is_encrypted, Some(false));
        assert_eq!(m.is_binary, Some(false));
        assert_eq!(m.version, Some(3));

        let m = Metadata::merge_update(
            &stored,
            &Metadata::parse_fragment(":ttr:0:ccd:true").unwrap(),
        );
        assert_eq!((m.ttr, m.ccd), (None, None));
        let m = Metadata::merge_update(
            &Metadata::default(),
            &Metadata::parse_fragment(":ttr:10").unwrap(),
        );
        assert_eq!((m.ttr, m.ccd), (Some(10), Some(false)));
        let m = Metadata::merge_update(
            &stored,
            &Metadata::parse_fragment(":ttl:0:sharedKeyStatus:x").unwrap(),
        );
        assert_eq!((m.ttl, m.shared_key_status), (None, None));
    }

    #[test]
    fn json_shapes() {
        let m = Metadata {
            created_by: Some("@alice".into()),
            created_at: Some("2024-10-24T01:35:02.123Z".parse().unwrap()),
            status: Some("active".into()),
            version: Some(3),
            ttr: Some(86400),
            ccd: Some(true),
            is_encrypted: Some(true),
            iv_nonce: Some("iv".into()),
            ..Default::default()
        };
        let lookup = m.to_lookup_json();
        assert_eq!(
            lookup,
            json!({"createdBy":"@alice","createdAt":"2024-10-24 01:35:02.123Z","status":"active",
                   "version":3,"ttr":86400,"ccd":true,"isEncrypted":true,"ivNonce":"iv"})
        );
        let sync = m.to_sync_json();
        assert_eq!(
            sync,
            json!({"createdBy":"@alice","createdAt":"2024-10-24 01:35:02.123Z","status":"active",
                   "version":"3","ttr":"86400","ccd":"true","isEncrypted":"true","ivNonce":"iv"})
        );
        assert_eq!(Metadata::from_json(&lookup), Ok(m.clone()));
        assert_eq!(Metadata::from_json(&sync), Ok(m));
        let iso =
            json!({"createdAt":"2024-10-24T01:35:02.123Z","expiresAt":"null","x":1,"ttl":null});
        let parsed = Metadata::from_json(&iso).unwrap();
        assert!(parsed.created_at.is_some() && parsed.expires_at.is_none());
        assert!(Metadata::from_json(&json!([1])).is_err());
        assert!(Metadata::from_json(&json!({"ttl":"abc"})).is_err());
    }
}
