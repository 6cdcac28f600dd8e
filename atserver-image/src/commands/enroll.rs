//! APKAM: `enroll:*`, `otp:get|put`, `keys:*`, and the enrollment checks used by pkam and dispatch
//! (atprotocol.md §6.3–6.4).

use std::collections::BTreeMap;

use rand::Rng;
use serde_json::{json, Map, Value};

use crate::commands::write::{self, Read};
use crate::error::AtError;
use crate::metadata::MetaUpdate;
use crate::notifications::{Kind, MessageType, Notification, Operation, Priority, Status};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, AuthMethod, Enrollment, Session};
use at_protocol::command::{
    EnrollOp, EnrollParams, EnrollRequest, KeysOp, KeysParams, KeysVisibility, OtpOp, OtpParams,
};
use at_protocol::ErrorCode;

const PENDING_TTL_MS: i64 = 48 * 3600 * 1000;
const OTP_TTL_MS: i64 = 5 * 60 * 1000;
/// `enroll:request`s allowed per connection per window (the reference's defaults).
const MAX_ENROLL_REQUESTS: usize = 5;
const ENROLL_WINDOW_MS: i64 = 3600 * 1000;
const ENROLLMENT_SUFFIX: &str = ".new.enrollments.__manage";

fn record_key(id: &str, me: &str) -> String {
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
struct Stored {
    value: Map<String, Value>,
}

impl Stored {
    fn state(&self) -> &str {
        self.value
            .get("approval")
            .and_then(|a| a.get("state"))
            .and_then(Value::as_str)
            .unwrap_or("pending")
    }
    fn str(&self, k: &str) -> Option<&str> {
        self.value.get(k).and_then(Value::as_str)
    }
    fn namespaces(&self) -> BTreeMap<String, String> {
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
    fn set_state(&mut self, state: &str) {
        self.value
            .insert("approval".into(), json!({"state": state}));
    }
}

async fn load(s: &Session, id: &str) -> Result<Option<Stored>, AtError> {
    if !valid_enrollment_id(id) {
        return Ok(None);
    }
    Ok(
        match write::read(&s.shared, &record_key(id, s.atsign())).await? {
            Read::Active(r) => r
                .value
                .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                .and_then(|v| v.as_object().cloned())
                .map(|value| Stored { value }),
            _ => None,
        },
    )
}

async fn save(s: &Session, id: &str, st: &Stored, ttl: Option<i64>) -> Result<(), AtError> {
    let meta = MetaUpdate {
        ttl,
        ..Default::default()
    };
    let value = Value::Object(st.value.clone()).to_string();
    write::put(
        &s.shared,
        &record_key(id, s.atsign()),
        Some(value),
        &meta,
        true,
    )
    .await?;
    Ok(())
}

/// The APKAM public key and namespaces of an approved enrollment, or the error pkam answers.
pub async fn approved_key(
    s: &Session,
    id: &str,
) -> Result<(String, BTreeMap<String, String>), AtError> {
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
fn may_manage(s: &Session, target: &BTreeMap<String, String>) -> Result<(), AtError> {
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

/// A text member the client sent, empty counting as absent.
fn given(v: &Option<String>) -> Option<&str> {
    v.as_deref().filter(|v| !v.is_empty())
}

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

pub async fn enroll(s: &mut Session, p: EnrollParams) -> CmdResult {
    let op = p.operation;
    let force = p.force;
    let p = p.request.unwrap_or_default();
    if op != EnrollOp::Request && !s.is_owner() {
        return Err(AtError::unauthenticated(
            "Command cannot be executed without auth",
        ));
    }
    match op {
        EnrollOp::Request => request(s, &p).await,
        EnrollOp::Approve
        | EnrollOp::Deny
        | EnrollOp::Revoke
        | EnrollOp::Unrevoke
        | EnrollOp::Delete => transition(s, op.as_str(), &p, force).await,
        EnrollOp::List => list(s, &p).await,
        EnrollOp::Fetch => fetch(s, &p).await,
        EnrollOp::Update | EnrollOp::ListNs => Err(AtError::syntax("invalid enroll operation")),
    }
}

async fn consume_otp(s: &Session, otp: &str) -> Result<bool, AtError> {
    let me = s.atsign();
    let otp_key = format!("private:{}.__otp{me}", otp.to_lowercase());
    if let Read::Active(_) = write::read(&s.shared, &otp_key).await? {
        write::delete(&s.shared, &otp_key).await?;
        return Ok(true);
    }
    if let Read::Active(r) = write::read(&s.shared, &format!("private:spp.__otp{me}")).await? {
        return Ok(r.value.is_some_and(|v| v.eq_ignore_ascii_case(otp)));
    }
    Ok(false)
}

async fn request(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let app = given(&p.app_name)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "appName is mandatory"))?;
    let device = given(&p.device_name)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "deviceName is mandatory"))?;
    let apkam_key = given(&p.apkam_public_key)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "apkamPublicKey is mandatory"))?;
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
        write::put(
            &s.shared,
            write::PKAM_PUBLIC_KEY,
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
    let n = Notification {
        id: uuid::Uuid::new_v4().to_string(),
        from: me.clone(),
        to: me.clone(),
        key: format!("{id}{ENROLLMENT_SUFFIX}"),
        value: Some(
            json!({"encryptedApkamSymmetricKey": sym, "encryptedAPKAMSymmetricKey": sym,
                   "appName": app, "deviceName": device, "namespace": namespaces})
            .to_string(),
        ),
        operation: Operation::Update,
        message_type: MessageType::Key,
        kind: Kind::SelfKind,
        status: Status::Delivered,
        priority: Priority::Low,
        strategy: "all".into(),
        latest_n: 1,
        notifier: "SYSTEM".into(),
        retry_count: 0,
        created_at: now,
        ttl,
        expires_at: now + ttl,
        is_encrypted: false,
        metadata: None,
    };
    write::store_notification(&s.shared, n).await?;
    Ok(Reply::Data(
        json!({"enrollmentId": id, "status": "pending"}).to_string(),
    ))
}

async fn store_default_keys(s: &Session, id: &str, p: &EnrollRequest) -> Result<(), AtError> {
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
            write::put(
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

async fn transition(s: &mut Session, op: &str, p: &EnrollRequest, force: bool) -> CmdResult {
    let id = given(&p.enrollment_id)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "enrollmentId is mandatory"))?;
    let mut st = load(s, id).await?.ok_or_else(|| {
        AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    may_manage(s, &st.namespaces())?;
    let state = st.state().to_string();
    let allowed = match op {
        "approve" => state == "pending",
        "deny" => state == "pending",
        "revoke" => state == "approved",
        "unrevoke" => state == "revoked",
        _ => state == "denied" || state == "revoked",
    };
    if !allowed {
        return Err(AtError::handler(
            ErrorCode::InvalidEnrollmentStatus,
            format!("Cannot {op} a {state} enrollment. Only the allowed transitions are permitted"),
        ));
    }
    let own = s.enrollment().is_some_and(|e| e.id == id);
    if op == "revoke" && own && !force {
        return Err(AtError::handler(
            ErrorCode::EnrollmentRevokeSelf,
            "Current client cannot revoke its own enrollment",
        ));
    }
    let me = s.atsign().to_string();
    let new_state = match op {
        "approve" => "approved",
        "deny" => "denied",
        "revoke" => "revoked",
        "unrevoke" => "approved",
        _ => {
            write::delete(&s.shared, &record_key(id, &me)).await?;
            return Ok(Reply::Data(
                json!({"enrollmentId": id, "status": "deleted"}).to_string(),
            ));
        }
    };
    st.set_state(new_state);
    let expiry = st
        .value
        .get("apkamKeysExpiryInMillis")
        .and_then(Value::as_i64)
        .unwrap_or(0);
    let ttl = if new_state == "approved" {
        Some(expiry.max(0))
    } else {
        None
    };
    save(s, id, &st, ttl).await?;
    if op == "approve" {
        let app = st.str("appName").unwrap_or_default().to_lowercase();
        let device = st.str("deviceName").unwrap_or_default().to_lowercase();
        let key = format!("public:{app}.{device}.pkam.__pkams.__public_keys{me}");
        let value = json!({"apkamPublicKey": st.str("apkamPublicKey")}).to_string();
        write::put(&s.shared, &key, Some(value), &MetaUpdate::default(), true).await?;
        store_default_keys(s, id, p).await?;
    }
    if op == "revoke" && !own {
        s.shared.registry.drop_enrollment(id);
    }
    Ok(Reply::Data(
        json!({"status": new_state, "enrollmentId": id}).to_string(),
    ))
}

async fn all_enrollments(s: &Session) -> Result<Vec<(String, Stored)>, AtError> {
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

fn summary(st: &Stored) -> Value {
    json!({
        "appName": st.str("appName"),
        "deviceName": st.str("deviceName"),
        "namespace": st.namespaces(),
        "encryptedAPKAMSymmetricKey": st.str("encryptedAPKAMSymmetricKey"),
        "status": st.state(),
    })
}

async fn list(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    may_manage(s, &BTreeMap::new())?;
    let filter = p.enrollment_status_filter.as_ref();
    let mut out = Map::new();
    for (key, st) in all_enrollments(s).await? {
        if filter
            .as_ref()
            .is_none_or(|f| f.iter().any(|x| x == st.state()))
        {
            out.insert(key, summary(&st));
        }
    }
    Ok(Reply::Data(Value::Object(out).to_string()))
}

async fn fetch(s: &mut Session, p: &EnrollRequest) -> CmdResult {
    let id = given(&p.enrollment_id)
        .ok_or_else(|| AtError::new(ErrorCode::IllegalArguments, "enrollmentId is mandatory"))?;
    if s.enrollment().is_some_and(|e| e.id != id) {
        may_manage(s, &BTreeMap::new())?;
    }
    let st = load(s, id).await?.ok_or_else(|| {
        AtError::handler(
            ErrorCode::TooManyRequests,
            format!("enrollment_id: {id} is expired or invalid"),
        )
    })?;
    Ok(Reply::Data(summary(&st).to_string()))
}

/// An OTP: six upper-case letters and digits, at least one digit, never `0` or `O`.
fn generate_otp() -> String {
    const CHARS: &[u8] = b"ABCDEFGHIJKLMNPQRSTUVWXYZ123456789";
    let mut rng = rand::thread_rng();
    loop {
        let otp: String = (0..6)
            .map(|_| CHARS[rng.gen_range(0..CHARS.len())] as char)
            .collect();
        if otp.bytes().any(|b| b.is_ascii_digit()) {
            return otp;
        }
    }
}

pub async fn otp(s: &mut Session, p: OtpParams) -> CmdResult {
    if s.enrollment().is_some() {
        may_manage(s, &BTreeMap::new())
            .map_err(|_| AtError::unauthorized("otp needs __manage access"))?;
    }
    let me = s.atsign().to_string();
    let ttl = p.ttl.and_then(|t| i64::try_from(t).ok());
    match p.operation {
        OtpOp::Get => {
            let code = generate_otp();
            let meta = MetaUpdate {
                ttl: Some(ttl.unwrap_or(OTP_TTL_MS)),
                ..Default::default()
            };
            let key = format!("private:{}.__otp{me}", code.to_lowercase());
            write::put(&s.shared, &key, Some(code.clone()), &meta, true).await?;
            Ok(Reply::Data(code))
        }
        OtpOp::Put(Some(spp)) => {
            let meta = MetaUpdate {
                ttl,
                ..Default::default()
            };
            write::put(
                &s.shared,
                &format!("private:spp.__otp{me}"),
                Some(spp),
                &meta,
                true,
            )
            .await?;
            Ok(Reply::data("ok"))
        }
        OtpOp::Put(None) => Err(AtError::syntax("otp:put needs a passcode")),
    }
}

/// `keys:put|get|delete` for APKAM connections.
pub async fn keys(s: &mut Session, p: KeysParams) -> CmdResult {
    let en = s
        .enrollment()
        .cloned()
        .ok_or_else(|| AtError::internal("Keys verb cannot be accessed without an enrollmentId"))?;
    let op = match p.operation {
        KeysOp::Put => "put",
        KeysOp::Get => "get",
        KeysOp::Delete => "delete",
    }
    .to_string();
    let visibility = p.visibility.map(|v| match v {
        KeysVisibility::Public => "public",
        KeysVisibility::Private => "private",
        KeysVisibility::SelfKeys => "self",
    });
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for (name, v) in [
        ("namespace", &p.namespace),
        ("appName", &p.app_name),
        ("deviceName", &p.device_name),
        ("keyType", &p.key_type),
        ("encryptionKeyName", &p.encryption_key_name),
    ] {
        if let Some(v) = v {
            fields.insert(name, v.clone());
        }
    }
    let key_name = p.key_name.map(|k| k.to_lowercase());
    let value = p.key_value.unwrap_or_default();
    let me = s.atsign().to_string();
    match op.as_str() {
        "get" => match (key_name, visibility) {
            (Some(k), _) => {
                if k.contains(".__manage@") && !k.starts_with(&format!("{}.", en.id)) {
                    return Err(AtError::unauthorized("keys of another enrollment"));
                }
                match write::read(&s.shared, &k).await? {
                    Read::Active(r) => Ok(Reply::Data(r.value.unwrap_or_else(|| "null".into()))),
                    _ => Err(AtError::not_found(&k)),
                }
            }
            (None, Some(vis)) => {
                let now = s.shared.clock.now_millis();
                let marker = match vis {
                    "public" => ".__public_keys.",
                    "private" => ".__private_keys.",
                    _ => ".__self_keys.",
                };
                let all: Vec<String> = s.shared.store.call(move |db| db.active_keys(now)).await?;
                let mut out = Vec::new();
                for k in all.into_iter().filter(|k| k.contains(marker)) {
                    if let Read::Active(r) = write::read(&s.shared, &k).await? {
                        let by_me = r
                            .value
                            .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                            .and_then(|v| {
                                v.get("enrollmentId")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                            })
                            .is_some_and(|e| e == en.id);
                        if by_me {
                            out.push(k);
                        }
                    }
                }
                match vis {
                    "private" => {
                        out.push(format!("{}.default_enc_private_key.__manage{me}", en.id))
                    }
                    "self" => out.push(format!("{}.default_self_enc_key.__manage{me}", en.id)),
                    _ => {}
                }
                Ok(Reply::Data(json!(out).to_string()))
            }
            _ => Err(AtError::syntax("keys:get needs keyName or a visibility")),
        },
        "put" => {
            let vis = visibility.ok_or_else(|| AtError::syntax("keys:put needs a visibility"))?;
            let name = key_name.ok_or_else(|| AtError::syntax("keys:put needs keyName"))?;
            let ns = fields
                .get("namespace")
                .cloned()
                .unwrap_or_else(|| "__global".into())
                .to_lowercase();
            let app = fields
                .get("appName")
                .cloned()
                .unwrap_or_default()
                .to_lowercase();
            let device = fields
                .get("deviceName")
                .cloned()
                .unwrap_or_default()
                .to_lowercase();
            let key = match vis {
                "public" => format!("public:{name}.__public_keys.{ns}{me}"),
                "private" => format!("private:{app}.{device}.{name}.__private_keys.{ns}{me}"),
                _ => format!("{app}.{device}.{name}.__self_keys.{ns}{me}"),
            };
            let stored = json!({
                "value": value.trim(),
                "keyType": fields.get("keyType"),
                "enrollmentId": en.id,
                "encryptionKeyName": fields.get("encryptionKeyName"),
            });
            write::put(
                &s.shared,
                &key,
                Some(stored.to_string()),
                &MetaUpdate::default(),
                true,
            )
            .await?;
            Ok(Reply::data("-1"))
        }
        "delete" => {
            let k = key_name.ok_or_else(|| AtError::syntax("keys:delete needs keyName"))?;
            write::delete(&s.shared, &k).await?;
            Ok(Reply::data("-1"))
        }
        _ => Err(AtError::syntax("invalid keys operation")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn otp_shape() {
        for _ in 0..50 {
            let o = generate_otp();
            assert_eq!(o.len(), 6);
            assert!(o.bytes().any(|b| b.is_ascii_digit()));
            assert!(!o.contains('0') && !o.contains('O'));
        }
    }
}
