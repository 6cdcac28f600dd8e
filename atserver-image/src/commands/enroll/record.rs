//! The stored enrollment record (`<id>.new.enrollments.__manage@me`), its states, and the checks
//! pkam and dispatch make against it (atprotocol.md §6.3–6.4).

use std::collections::BTreeMap;

use serde_json::{json, Map, Value};

use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;
use crate::session::Session;
use at_protocol::command::EnrollRequest;
use at_protocol::crypto::SigningAlgo;
use at_protocol::ErrorCode;

pub const PENDING_TTL_MS: i64 = 48 * 3600 * 1000;
/// `enroll:request`s allowed per connection per window (the reference's defaults).
pub const MAX_ENROLL_REQUESTS: usize = 5;
pub const ENROLL_WINDOW_MS: i64 = 3600 * 1000;
pub const ENROLLMENT_SUFFIX: &str = ".new.enrollments.__manage";

pub fn record_key(id: &str, me: &str) -> String {
    format!("{id}{ENROLLMENT_SUFFIX}{me}")
}

fn valid_enrollment_id(id: &str) -> bool {
    !id.is_empty()
        && id.len() <= 64
        && id
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_')
}

/// A stored enrollment record and its state.
pub struct Stored {
    pub value: Map<String, Value>,
}

impl Stored {
    pub fn state(&self) -> &str {
        self.value
            .get("approval")
            .and_then(|a| a.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("pending")
    }
    pub fn str(&self, k: &str) -> Option<&str> {
        self.value.get(k).and_then(Value::as_str)
    }
    pub fn namespaces(&self) -> BTreeMap<String, String> {
        self.value
            .get("namespaces")
            .and_then(Value::as_object)
            .map(|m| {
                m.iter()
                    .filter_map(|(k, v)| v.as_str().map(|v| (k.clone(), v.to_string())))
                    .collect()
            })
            .unwrap_or_default()
    }
    pub fn set_state(&mut self, state: &str) {
        self.value
            .insert("approval".into(), json!({"state": state}));
    }
}

pub async fn load(s: &Session, id: &str) -> Result<Option<Stored>, AtError> {
    if !valid_enrollment_id(id) {
        return Ok(None);
    }
    Ok(
        match keystore::read(&s.shared, &record_key(id, s.atsign())).await? {
            Read::Active(r) => r
                .value
                .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                .and_then(|v| v.as_object().cloned())
                .map(|value| Stored { value }),
            _ => None,
        },
    )
}

pub async fn save(s: &Session, id: &str, st: &Stored, ttl: Option<i64>) -> Result<(), AtError> {
    let meta = MetaUpdate {
        ttl,
        ..Default::default()
    };
    let value = Value::Object(st.value.clone()).to_string();
    keystore::put(
        &s.shared,
        &record_key(id, s.atsign()),
        Some(value),
        &meta,
        true,
    )
    .await?;
    Ok(())
}

/// The `signingAlgo` an `enroll:request` or `enroll:update` names for its APKAM key (3.16).
pub fn requested_signing_algo(p: &EnrollRequest) -> Result<Option<SigningAlgo>, AtError> {
    match p.other.get("signingAlgo") {
        None | Some(Value::Null) => Ok(None),
        Some(v) => v
            .as_str()
            .and_then(|a| a.parse().ok())
            .map(Some)
            .ok_or_else(|| {
                AtError::new(
                    ErrorCode::IllegalArguments,
                    format!("unknown signingAlgo {v}"),
                )
            }),
    }
}

/// The algorithm PKAM verifies an enrollment's key with: the one its record names (3.16: the
/// record decides, not the `pkam:` command), RSA-2048 for records written without one.
pub fn recorded_signing_algo(st: &Stored) -> SigningAlgo {
    st.str("signingAlgo")
        .and_then(|a| a.parse().ok())
        .unwrap_or(SigningAlgo::Rsa2048)
}

/// The APKAM public key, namespaces and signing algorithm of an approved enrollment, or the
/// error pkam answers.
pub async fn approved_key(
    s: &Session,
    id: &str,
) -> Result<(String, BTreeMap<String, String>, SigningAlgo), AtError> {
    let st = load(s, id).await?.ok_or_else(|| {
        AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    match st.state() {
        "approved" => Ok((
            st.str("apkamPublicKey").unwrap_or_default().to_string(),
            st.namespaces(),
            recorded_signing_algo(&st),
        )),
        "pending" => Err(AtError::handler(
            ErrorCode::ApkamAuthFailed,
            format!("enrollment_id: {id} is pending"),
        )),
        "denied" => Err(AtError::handler(
            ErrorCode::ApkamAuthDenied,
            format!("enrollment_id: {id} is denied"),
        )),
        "revoked" => Err(AtError::handler(
            ErrorCode::ApkamAccessRevoked,
            format!("enrollment_id: {id} is revoked"),
        )),
        _ => Err(AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )),
    }
}

/// Closes APKAM connections whose enrollment is no longer approved.
pub async fn check_enrollment_active(s: &Session, id: &str) -> Result<(), AtError> {
    match load(s, id).await? {
        Some(st) if st.state() == "approved" => Ok(()),
        _ => Err(AtError::handler(
            ErrorCode::TooManyRequests,
            format!("The enrollment id: {id} is expired. Closing the connection"),
        )
        .closing()),
    }
}

/// Whether this connection may manage enrollments covering `target` namespaces.
pub fn may_manage(s: &Session, target: &BTreeMap<String, String>) -> Result<(), AtError> {
    let Some(en) = s.enrollment() else {
        return Ok(());
    };
    if en.namespaces.get("__manage").map(String::as_str) != Some("rw")
        && !en.namespaces.contains_key("__manage")
    {
        return Err(AtError::internal(format!(
            "enrollment {} has no __manage access",
            en.id
        )));
    }
    for (ns, want) in target {
        let have = en
            .namespaces
            .get(ns)
            .or_else(|| en.namespaces.get("*"))
            .map(String::as_str);
        let covered = matches!((have, want.as_str()), (Some("rw"), _) | (Some("r"), "r"));
        if !covered {
            return Err(AtError::internal(format!(
                "enrollment {} may not grant access to namespace {ns}",
                en.id
            )));
        }
    }
    Ok(())
}

pub async fn all_enrollments(s: &Session) -> Result<Vec<(String, Stored)>, AtError> {
    let now = s.shared.clock.now_millis();
    let suffix = format!("{ENROLLMENT_SUFFIX}{}", s.atsign());
    let keys: Vec<String> = s.shared.store.call(move |db| db.active_keys(now)).await?;
    let mut out = Vec::new();
    for k in keys.into_iter().filter(|k| k.ends_with(&suffix)) {
        let id = k[..k.len() - suffix.len()].to_string();
        if let Some(st) = load(s, &id).await? {
            out.push((k, st));
        }
    }
    Ok(out)
}

pub fn summary(st: &Stored) -> Value {
    json!({
        "appName": st.str("appName"),
        "deviceName": st.str("deviceName"),
        "namespace": st.namespaces(),
        "encryptedAPKAMSymmetricKey": st.str("encryptedAPKAMSymmetricKey"),
        "status": st.state(),
    })
}

/// A text member the client sent, empty counting as absent.
pub fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}
