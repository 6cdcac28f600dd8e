//! `enroll:update` (3.16), as the reference's enroll handler does it: an approved enrollment
//! amends its *own* record — `apkamPublicKey` (with `apkamPublicKeySignature`, a signature by
//! the new key over `<enrollmentId>|<apkamPublicKey>|<signingAlgo>` proving possession),
//! `signingAlgo` (only with a new key), `apsk`/`apskLegacy` (published at
//! `public:_apsk.<id>.a.__e@me`) and `metadata` (merged per member). `namespaces` and the
//! approval state are out of reach. Answers `{"enrollmentId":…,"status":"approved"}`.

use at_protocol::command::EnrollRequest;
use at_protocol::crypto::{HashingAlgo, PkamPublicKey, SigningAlgo};
use at_protocol::ErrorCode;
use serde_json::{json, Value};

use super::record::{load, save, Stored};
use crate::error::AtError;
use crate::keystore;
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

fn illegal(msg: impl Into<String>) -> AtError {
    AtError::new(ErrorCode::IllegalArguments, msg.into())
}

/// The text `enroll:update` signs to prove possession of a new APKAM key (a missing algorithm
/// is written `null`, as the reference's string interpolation writes it).
pub fn possession_text(
    enrollment_id: &str,
    public_key: &str,
    signing_algo: Option<&str>,
) -> String {
    format!(
        "{enrollment_id}|{public_key}|{}",
        signing_algo.unwrap_or("null")
    )
}

fn text_member<'a>(p: &'a EnrollRequest, name: &str) -> Option<&'a str> {
    p.other.get(name).and_then(Value::as_str)
}

pub async fn update(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let id = p
        .enrollment_id
        .as_deref()
        .filter(|id| !id.is_empty())
        .ok_or_else(|| illegal("enrollmentId is mandatory for enroll:update"))?;
    let signing_algo = text_member(p, "signingAlgo");
    let apsk = p.other.get("apsk");
    let apsk_legacy = text_member(p, "apskLegacy");
    let metadata = p.other.get("metadata");
    if p.apkam_public_key.is_none()
        && signing_algo.is_none()
        && apsk.is_none()
        && apsk_legacy.is_none()
        && metadata.is_none()
    {
        return Err(illegal(
            "enroll:update must name at least one of apkamPublicKey, signingAlgo, apsk, apskLegacy or metadata",
        ));
    }
    if p.namespaces.is_some() {
        return Err(illegal(
            "enroll:update cannot change namespaces: an enrollment may not widen its own grant",
        ));
    }
    if apsk.is_some() && apsk_legacy.is_some() {
        return Err(illegal("apsk and apskLegacy are mutually exclusive"));
    }
    if metadata.is_some_and(|m| !m.is_object()) {
        return Err(illegal("metadata must be a JSON object"));
    }
    // Self-only: an owner (CRAM or legacy PKAM) connection holds no key of this enrollment.
    let caller = s.enrollment().map(|e| e.id.clone());
    if caller.as_deref() != Some(id) {
        return Err(AtError::internal(format!(
            "enroll:update is self-only: this connection is authenticated as {}, not {id}",
            caller.as_deref().unwrap_or("the owner")
        )));
    }
    let mut st: Stored = load(s, id).await?.ok_or_else(|| {
        AtError::new(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    if st.state() != "approved" {
        return Err(AtError::internal(format!(
            "enroll:update requires an approved enrollment; {id} is {}",
            st.state()
        )));
    }
    if let Some(new_key) = p.apkam_public_key.as_deref() {
        let algo_name = signing_algo
            .map(str::to_string)
            .or_else(|| st.str("signingAlgo").map(str::to_string));
        verify_possession(
            id,
            new_key,
            algo_name.as_deref(),
            text_member(p, "apkamPublicKeySignature"),
        )
        .await?;
        st.value.insert("apkamPublicKey".into(), json!(new_key));
        if let Some(a) = signing_algo {
            st.value.insert("signingAlgo".into(), json!(a));
        }
    } else if signing_algo.is_some() {
        return Err(illegal(
            "signingAlgo cannot be changed without apkamPublicKey: the algorithm describes the key",
        ));
    }
    let published = if let Some(v) = apsk {
        st.value.insert("apsk".into(), v.clone());
        st.value.remove("apskLegacy");
        Some(v.to_string())
    } else if let Some(v) = apsk_legacy {
        st.value.insert("apskLegacy".into(), json!(v));
        st.value.remove("apsk");
        Some(v.to_string())
    } else {
        None
    };
    if let Some(Value::Object(m)) = metadata {
        let mut merged = st
            .value
            .get("metadata")
            .and_then(Value::as_object)
            .cloned()
            .unwrap_or_default();
        merged.extend(m.clone());
        st.value.insert("metadata".into(), Value::Object(merged));
    }
    // The record keeps its expiry: an enrollment may not postpone its own retirement.
    save(s, id, &st, None).await?;
    if let Some(value) = published {
        let me = s.atsign().to_string();
        let key = format!("public:_apsk.{id}.a.__e{me}");
        keystore::put(&s.shared, &key, Some(value), &MetaUpdate::default(), false).await?;
    }
    Ok(Reply::Data(
        json!({"enrollmentId": id, "status": "approved"}).to_string(),
    ))
}

async fn verify_possession(
    id: &str,
    public_key: &str,
    signing_algo: Option<&str>,
    signature: Option<&str>,
) -> Result<(), AtError> {
    let signature = signature.filter(|s| !s.is_empty()).ok_or_else(|| {
        AtError::internal("enroll:update changing apkamPublicKey requires apkamPublicKeySignature")
    })?;
    let algo: SigningAlgo = match signing_algo {
        Some(a) => a
            .parse()
            .map_err(|_| illegal(format!("unknown signingAlgo {a}")))?,
        None => SigningAlgo::Rsa2048,
    };
    let text = possession_text(id, public_key, signing_algo);
    let (key, sig) = (public_key.to_string(), signature.to_string());
    let verified = tokio::task::spawn_blocking(move || {
        PkamPublicKey::from_encoded(algo, &key)
            .and_then(|k| k.verify(HashingAlgo::Sha256, text.as_bytes(), &sig))
    })
    .await
    .map_err(|_| AtError::internal("verification task failed"))?;
    verified.map_err(|_| {
        AtError::internal(
            "apkamPublicKeySignature does not verify against the apkamPublicKey being installed",
        )
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn possession_text_is_pipe_separated() {
        assert_eq!(possession_text("e1", "k", None), "e1|k|null");
        assert_eq!(possession_text("e1", "k", Some("mldsa65")), "e1|k|mldsa65");
    }
}
