//! Extra devices (atprotocol.md §6.4): `otp` and `enroll list|approve|deny|revoke` on an approved
//! device, `enroll request` on the new one.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, ClientError};
use at_protocol::command::{
    EnrollOp, EnrollParams, EnrollRequest, KeysOp, KeysParams, LookupOp, LookupParams, OtpOp,
    OtpParams,
};
use at_protocol::crypto::{
    public_key_from_b64, rsa_decrypt, rsa_encrypt, AesKey, AtKeys, Iv, RsaKeyPair,
};
use at_protocol::{AtSign, Command, ErrorCode};
use serde_json::{json, Value};

use crate::cli::{EnrollCmd, EnrollRequestArgs, OtpArgs};
use crate::error::{CtlError, Result};
use crate::keysfile::{self, PendingKeys};
use crate::output::Output;
use crate::session::{self, Context, Session};

/// Pause between checks of whether a pending enrollment was decided.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

fn enroll_command(op: EnrollOp, request: EnrollRequest, force: bool) -> String {
    let mut p = EnrollParams::new(op, Some(request));
    p.force = force;
    Command::Enroll(p).to_string()
}

fn json_reply(text: &str, what: &str) -> Result<Value> {
    serde_json::from_str(text.trim())
        .map_err(|_| CtlError::other(format!("{what}: unexpected reply {text}")))
}

pub async fn otp(ctx: &Context, out: Output, args: &OtpArgs) -> Result<()> {
    let me = ctx.me(None)?;
    let mut s = ctx.authenticated(&me).await?;
    let cmd = Command::Otp(OtpParams {
        operation: OtpOp::Get,
        ttl: args.ttl,
    });
    let otp = s.data(&cmd.to_string(), "getting an OTP").await?;
    let _ = s.conn.close().await;
    let otp = otp.trim().to_owned();
    out.emit(&otp, json!({"otp": otp}));
    Ok(())
}

pub async fn run(ctx: &Context, out: Output, cmd: &EnrollCmd) -> Result<()> {
    match cmd {
        EnrollCmd::Request(args) => request(ctx, out, args).await,
        EnrollCmd::List { status } => list(ctx, out, status).await,
        EnrollCmd::Approve { id } => approve(ctx, out, id).await,
        EnrollCmd::Deny { id } => decide(ctx, out, EnrollOp::Deny, id, false).await,
        EnrollCmd::Revoke { id, force } => decide(ctx, out, EnrollOp::Revoke, id, *force).await,
    }
}

async fn list(ctx: &Context, out: Output, status: &[String]) -> Result<()> {
    let me = ctx.me(None)?;
    let mut s = ctx.authenticated(&me).await?;
    let request = EnrollRequest {
        enrollment_status_filter: (!status.is_empty()).then(|| status.to_vec()),
        ..EnrollRequest::default()
    };
    let reply = s
        .data(
            &enroll_command(EnrollOp::List, request, false),
            "listing enrollments",
        )
        .await?;
    let _ = s.conn.close().await;
    let v = json_reply(&reply, "enroll list")?;
    let mut rows = Vec::new();
    let mut human = Vec::new();
    if let Some(map) = v.as_object() {
        for (key, e) in map {
            let id = key.split('.').next().unwrap_or(key).to_owned();
            let text = |k: &str| e.get(k).and_then(Value::as_str).unwrap_or("").to_owned();
            let namespaces = e.get("namespace").cloned().unwrap_or(Value::Null);
            human.push(format!(
                "{id}  {}  {}/{}  {}",
                text("status"),
                text("appName"),
                text("deviceName"),
                namespaces
            ));
            rows.push(json!({
                "enrollmentId": id,
                "status": text("status"),
                "appName": text("appName"),
                "deviceName": text("deviceName"),
                "namespaces": namespaces,
            }));
        }
    }
    out.emit(human.join("\n"), json!({"enrollments": rows}));
    Ok(())
}

async fn fetch(s: &mut Session, id: &str) -> Result<Value> {
    let request = EnrollRequest {
        enrollment_id: Some(id.to_owned()),
        ..EnrollRequest::default()
    };
    let reply = s
        .data(
            &enroll_command(EnrollOp::Fetch, request, false),
            &format!("reading enrollment {id}"),
        )
        .await?;
    json_reply(&reply, "enroll fetch")
}

/// Approves `id`, handing the new device this atSign's encryption private key and self-encryption
/// key, encrypted with the APKAM symmetric key the device sent (itself encrypted for us).
async fn approve(ctx: &Context, out: Output, id: &str) -> Result<()> {
    let me = ctx.me(None)?;
    let mut s = ctx.authenticated(&me).await?;
    let record = fetch(&mut s, id).await?;
    let sealed = record
        .get("encryptedAPKAMSymmetricKey")
        .and_then(Value::as_str)
        .ok_or_else(|| {
            CtlError::other(format!("enrollment {id} carries no encrypted APKAM key"))
        })?;
    let apkam_key = AesKey::from_b64(&rsa_decrypt(s.keys.encryption.private_key(), sealed)?)?;
    let request = EnrollRequest {
        enrollment_id: Some(id.to_owned()),
        encrypted_default_encryption_private_key: Some(
            apkam_key.encrypt_b64(&Iv::zero(), &s.keys.encryption.private_b64()?),
        ),
        encrypted_default_self_encryption_key: Some(
            apkam_key.encrypt_b64(&Iv::zero(), &s.keys.self_encryption_key.to_b64()),
        ),
        ..EnrollRequest::default()
    };
    let reply = s
        .data(
            &enroll_command(EnrollOp::Approve, request, false),
            &format!("approving enrollment {id}"),
        )
        .await?;
    let _ = s.conn.close().await;
    let v = json_reply(&reply, "enroll approve")?;
    out.emit(format!("approved enrollment {id}"), v);
    Ok(())
}

async fn decide(ctx: &Context, out: Output, op: EnrollOp, id: &str, force: bool) -> Result<()> {
    let me = ctx.me(None)?;
    let mut s = ctx.authenticated(&me).await?;
    let request = EnrollRequest {
        enrollment_id: Some(id.to_owned()),
        ..EnrollRequest::default()
    };
    let what = format!("{} enrollment {id}", op.as_str());
    let reply = s.data(&enroll_command(op, request, force), &what).await?;
    let _ = s.conn.close().await;
    let v = json_reply(&reply, &what)?;
    let status = v.get("status").and_then(Value::as_str).unwrap_or("?");
    out.emit(format!("enrollment {id}: {status}"), v);
    Ok(())
}

fn parse_namespaces(specs: &[String]) -> Result<BTreeMap<String, String>> {
    let mut out = BTreeMap::new();
    for spec in specs {
        let (ns, access) = spec.split_once(':').unwrap_or((spec.as_str(), "rw"));
        let valid_ns = !ns.is_empty()
            && ns
                .chars()
                .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-' || c == '.');
        if !valid_ns || !matches!(access, "r" | "rw") {
            return Err(CtlError::usage(format!(
                "--namespace {spec:?}: expected name:r or name:rw"
            )));
        }
        out.insert(ns.to_lowercase(), access.to_owned());
    }
    Ok(out)
}

/// The new device's side: request, wait for a decision, then fetch the shared keys and write the
/// keys file.
async fn request(ctx: &Context, out: Output, args: &EnrollRequestArgs) -> Result<()> {
    let atsign = session::parse_atsign(&args.atsign)?;
    let namespaces = parse_namespaces(&args.namespaces)?;
    let dir = ctx.keys_dir()?;
    keysfile::check_writable(&keysfile::path_for(&dir, &atsign), args.force)?;
    let device = args
        .device_name
        .clone()
        .unwrap_or_else(crate::onboard::host_name);

    let mut conn = ctx.connect(&atsign, true).await?;
    let their_pub = public_encryption_key(&mut conn, &atsign).await?;
    let apkam = RsaKeyPair::generate()?;
    let apkam_key = AesKey::generate();
    let request = EnrollRequest {
        app_name: Some(args.app_name.clone()),
        device_name: Some(device.clone()),
        namespaces: Some(namespaces.clone()),
        otp: Some(args.otp.clone()),
        apkam_public_key: Some(apkam.public_b64()?),
        encrypted_apkam_symmetric_key: Some(rsa_encrypt(
            &public_key_from_b64(&their_pub)?,
            &apkam_key.to_b64(),
        )?),
        ..EnrollRequest::default()
    };
    let reply = conn
        .send_data(&enroll_command(EnrollOp::Request, request, false))
        .await
        .map_err(|e| {
            let mut err = CtlError::client("requesting an enrollment", e);
            if err.message.contains("otp") {
                err.class = crate::error::Class::Auth;
                err.message
                    .push_str("; get a fresh OTP with `atctl otp` on an approved device");
            }
            err
        })?;
    let _ = conn.close().await;
    let v = json_reply(&reply, "enroll request")?;
    let id = v
        .get("enrollmentId")
        .and_then(Value::as_str)
        .ok_or_else(|| CtlError::other(format!("enroll request: unexpected reply {reply}")))?
        .to_owned();
    eprintln!(
        "enrollment {id} requested for {atsign} ({}/{device}); waiting for approval: on an \
         approved device run `atctl enroll approve {id}`",
        args.app_name
    );

    let keys_partial = PartialKeys {
        apkam,
        apkam_key,
        id: id.clone(),
    };
    let conn = wait_for_decision(ctx, &atsign, &keys_partial, args.wait_secs).await?;
    let keys = fetch_keys(conn, &atsign, keys_partial).await?;
    let path = PendingKeys::prepare(&dir, &atsign, &keys)?.commit(args.force)?;
    out.emit(
        format!("enrollment {id} approved; keys file: {}", path.display()),
        json!({
            "atsign": atsign.as_str(),
            "enrollmentId": id,
            "namespaces": namespaces,
            "keysFile": path.display().to_string(),
        }),
    );
    Ok(())
}

struct PartialKeys {
    apkam: RsaKeyPair,
    apkam_key: AesKey,
    id: String,
}

/// `lookup:publickey@alice`, unauthenticated.
async fn public_encryption_key(conn: &mut AtConnection, atsign: &AtSign) -> Result<String> {
    let cmd = Command::Lookup(LookupParams {
        bypass_cache: None,
        operation: LookupOp::Value,
        key: "publickey".into(),
        owner: atsign.clone(),
    });
    let v = conn
        .send_data(&cmd.to_string())
        .await
        .map_err(|e| CtlError::client(&format!("reading {atsign}'s public key"), e))?;
    let v = v.trim().to_owned();
    if v.is_empty() || v == "null" {
        return Err(CtlError::not_found(format!(
            "{atsign} has no public key: onboard it first"
        )));
    }
    Ok(v)
}

/// PKAM with the enrollment id until the server says approved (or denied, revoked, expired).
async fn wait_for_decision(
    ctx: &Context,
    atsign: &AtSign,
    partial: &PartialKeys,
    wait_secs: u64,
) -> Result<AtConnection> {
    let deadline = Instant::now() + Duration::from_secs(wait_secs);
    let signer = at_protocol::crypto::PkamSigner::rsa(partial.apkam.private_key().clone());
    loop {
        let mut conn = ctx.connect(atsign, true).await?;
        match conn
            .authenticate_pkam(atsign, &signer, Some(&partial.id))
            .await
        {
            Ok(()) => return Ok(conn),
            Err(e) if e.server_code() == Some(ErrorCode::ApkamAuthFailed) => {}
            Err(e @ ClientError::Server { .. }) => {
                let mut err = CtlError::client(&format!("enrollment {}", partial.id), e);
                err.class = crate::error::Class::Auth;
                return Err(err);
            }
            Err(e) => return Err(CtlError::client("waiting for approval", e)),
        }
        let _ = conn.close().await;
        if Instant::now() >= deadline {
            return Err(CtlError::auth(format!(
                "AT0026 enrollment {} is still pending after {wait_secs} s; approve it with \
                 `atctl enroll approve {}` and run this command again",
                partial.id, partial.id
            )));
        }
        tokio::time::sleep(POLL_INTERVAL).await;
    }
}

async fn read_sealed(
    conn: &mut AtConnection,
    atsign: &AtSign,
    partial: &PartialKeys,
    suffix: &str,
) -> Result<String> {
    let cmd = Command::Keys(KeysParams {
        operation: KeysOp::Get,
        visibility: None,
        namespace: None,
        app_name: None,
        device_name: None,
        key_type: None,
        encryption_key_name: None,
        key_name: Some(format!("{}.{suffix}.__manage{atsign}", partial.id)),
        key_value: None,
    });
    let raw = conn
        .send_data(&cmd.to_string())
        .await
        .map_err(|e| CtlError::client(&format!("fetching {suffix}"), e))?;
    // Stored as {"value": "<sealed>"}; older servers return the sealed text itself.
    let sealed = serde_json::from_str::<Value>(raw.trim())
        .ok()
        .and_then(|v| v.get("value").and_then(Value::as_str).map(str::to_owned))
        .unwrap_or_else(|| raw.trim().to_owned());
    Ok(partial.apkam_key.decrypt_b64(&Iv::zero(), &sealed)?)
}

/// `keys:get` of the two default keys the approver stored for us, decrypted with our APKAM key.
async fn fetch_keys(
    mut conn: AtConnection,
    atsign: &AtSign,
    partial: PartialKeys,
) -> Result<AtKeys> {
    let enc_private = read_sealed(&mut conn, atsign, &partial, "default_enc_private_key").await?;
    let self_key = read_sealed(&mut conn, atsign, &partial, "default_self_enc_key").await?;
    let _ = conn.close().await;
    Ok(AtKeys {
        pkam: partial.apkam,
        encryption: RsaKeyPair::from_private_b64(&enc_private)?,
        self_encryption_key: AesKey::from_b64(&self_key)?,
        apkam_symmetric_key: Some(partial.apkam_key),
        enrollment_id: Some(partial.id),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn namespace_specs() {
        let ns = parse_namespaces(&["buzz:rw".into(), "Wavi:r".into(), "x".into()]).unwrap();
        assert_eq!(ns.get("buzz").map(String::as_str), Some("rw"));
        assert_eq!(ns.get("wavi").map(String::as_str), Some("r"));
        assert_eq!(ns.get("x").map(String::as_str), Some("rw"));
        assert!(parse_namespaces(&["buzz:w".into()]).is_err());
        assert!(parse_namespaces(&[":rw".into()]).is_err());
    }
}
