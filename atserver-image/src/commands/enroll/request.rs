//! `enroll:request`: a new enrollment, approved at once on a CRAM connection, else pending with
//! a self notification for the approving client.

use std::collections::BTreeMap;

use serde_json::{json, Map};

use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;
use at_protocol::command::EnrollRequest;
use at_protocol::ErrorCode;

use crate::notifications::{Kind, Notification};
use crate::session::{Auth, AuthMethod, Enrollment};

use super::record::{
    all_enrollments, given, save, Stored, ENROLLMENT_SUFFIX, ENROLL_WINDOW_MS, MAX_ENROLL_REQUESTS,
    PENDING_TTL_MS,
};

/// The requested namespaces (lower-cased), each with access `r` or `rw`.
fn namespaces_param(p: &EnrollRequest) -> Result<BTreeMap<String, String>, AtError> {
    let Some(m) = &p.namespaces else {
        return Ok(BTreeMap::new());
    };
    m.iter()
        .map(|(k, v)| match v.as_str() {
            a @ ("r" | "rw") => Ok((k.to_lowercase(), a.to_string())),
            _ => Err(AtError::new(
                ErrorCode::IllegalArguments,
                format!("invalid access for namespace {k}"),
            )),
        })
        .collect()
}

async fn consume_otp(s: &Session, otp: &str) -> Result<bool, AtError> {
    let me = s.atsign();
    let otp_key = format!("private:{}.__otp{me}", otp.to_lowercase());
    if let Read::Active(_) = keystore::read(&s.shared, &otp_key).await? {
        keystore::delete(&s.shared, &otp_key).await?;
        return Ok(true);
    }
    if let Read::Active(r) = keystore::read(&s.shared, &format!("private:spp.__otp{me}")).await? {
        return Ok(r.value.is_some_and(|v| v.eq_ignore_ascii_case(otp)));
    }
    Ok(false)
}

pub async fn request(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let app = given(&p.app_name)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "appName is mandatory"))?;
    let device = given(&p.device_name)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "deviceName is mandatory"))?;
    let apkam_key = given(&p.apkam_public_key)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "apkamPublicKey is mandatory"))?;
    let signing_algo = super::record::requested_signing_algo(p)?;
    let now = s.shared.clock.now_millis();
    s.enroll_requests.retain(|t| now - t < ENROLL_WINDOW_MS);
    if s.enroll_requests.len() >= MAX_ENROLL_REQUESTS {
        return Err(AtError::new(
            ErrorCode::TooManyRequests,
            "too many enrollment requests on this connection",
        ));
    }
    s.enroll_requests.push(now);
    let mut namespaces = namespaces_param(p)?;
    let cram_session = matches!(
        s.auth,
        Auth::Owner {
            method: AuthMethod::Cram,
            ..
        }
    );
    if !s.is_owner() {
        if !s.shared.throttle.allowed(s.peer_addr.ip()) {
            return Err(AtError::new(
                ErrorCode::TooManyRequests,
                "too many failed attempts; try again later",
            ));
        }
        if given(&p.encrypted_apkam_symmetric_key).is_none() || namespaces.is_empty() {
            return Err(AtError::new(
                ErrorCode::IllegalArguments,
                "encryptedAPKAMSymmetricKey and at least one namespace are mandatory",
            ));
        }
        let otp = given(&p.otp).unwrap_or_default();
        if otp.is_empty() || !consume_otp(s, otp).await? {
            s.shared.throttle.record_failure(s.peer_addr.ip());
            return Err(AtError::internal(
                "invalid otp. Cannot process enroll request",
            ));
        }
    }
    // One live enrollment per (app, device).
    for (_, st) in all_enrollments(s).await? {
        let same = st.str("appName") == Some(app) && st.str("deviceName") == Some(device);
        if same && matches!(st.state(), "pending" | "approved") {
            return Err(AtError::internal(format!(
                "an enrollment for {app}/{device} already exists"
            )));
        }
    }
    let id = uuid::Uuid::new_v4().to_string();
    let me = s.atsign().to_string();
    if cram_session {
        namespaces.insert("__manage".into(), "rw".into());
        namespaces.insert("*".into(), "rw".into());
    }
    let mut st = Stored { value: Map::new() };
    st.value.insert("sessionId".into(), json!(s.session_id));
    st.value.insert("appName".into(), json!(app));
    st.value.insert("deviceName".into(), json!(device));
    st.value.insert("namespaces".into(), json!(namespaces));
    st.value.insert("apkamPublicKey".into(), json!(apkam_key));
    if let Some(algo) = signing_algo {
        st.value
            .insert("signingAlgo".into(), json!(algo.wire_name()));
    }
    st.value
        .insert("requestType".into(), json!("newEnrollment"));
    st.value.insert(
        "encryptedAPKAMSymmetricKey".into(),
        json!(given(&p.encrypted_apkam_symmetric_key)),
    );
    let expiry = p.apkam_keys_expiry_in_millis.unwrap_or(0);
    st.value
        .insert("apkamKeysExpiryInMillis".into(), json!(expiry));
    if cram_session {
        st.set_state("approved");
        save(s, &id, &st, Some(expiry)).await?;
        let none = MetaUpdate::default();
        keystore::put(
            &s.shared,
            keystore::PKAM_PUBLIC_KEY,
            Some(apkam_key.to_string()),
            &none,
            true,
        )
        .await?;
        store_default_keys(s, &id, p).await?;
        let enrollment = Enrollment {
            id: id.clone(),
            namespaces,
        };
        s.set_auth(Auth::Owner {
            method: AuthMethod::Cram,
            enrollment: Some(enrollment),
        });
        return Ok(Reply::Data(
            json!({"enrollmentId": id, "status": "approved"}).to_string(),
        ));
    }
    st.set_state("pending");
    save(s, &id, &st, Some(PENDING_TTL_MS)).await?;
    let ttl = 24 * 3600 * 1000;
    let sym = given(&p.encrypted_apkam_symmetric_key);
    let key = format!("{id}{ENROLLMENT_SUFFIX}");
    let n = Notification {
        value: Some(
            json!({"encryptedApkamSymmetricKey": sym, "encryptedAPKAMSymmetricKey": sym,
                   "appName": app, "deviceName": device, "namespace": namespaces})
            .to_string(),
        ),
        ..Notification::new(Kind::SelfKind, &me, &me, key, now, ttl)
    };
    keystore::notify::store_notification(&s.shared, n).await?;
    Ok(Reply::Data(
        json!({"enrollmentId": id, "status": "pending"}).to_string(),
    ))
}

pub async fn store_default_keys(s: &Session, id: &str, p: &EnrollRequest) -> Result<(), AtError> {
    let me = s.atsign().to_string();
    let none = MetaUpdate::default();
    for (given_key, suffix) in [
        (
            &p.encrypted_default_encryption_private_key,
            "default_enc_private_key",
        ),
        (
            &p.encrypted_default_self_encryption_key,
            "default_self_enc_key",
        ),
    ] {
        if let Some(v) = given(given_key) {
            let key = format!("{id}.{suffix}.__manage{me}");
            keystore::put(
                &s.shared,
                &key,
                Some(json!({"value": v}).to_string()),
                &none,
                true,
            )
            .await?;
        }
    }
    Ok(())
}
