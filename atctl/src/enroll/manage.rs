//! The approved device's side of enrollment: `otp`, and `enroll list|approve|deny|revoke`.

use at_protocol::command::{EnrollOp, EnrollRequest, OtpOp, OtpParams};
use at_protocol::crypto::{rsa_decrypt, AesKey, Iv};
use at_protocol::Command;
use serde_json::{json, Value};

use super::wire::{enroll_command, json_reply};
use crate::cli::OtpArgs;
use crate::error::{CtlError, Result};
use crate::output::Output;
use crate::session::{Context, Session};

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

pub(super) async fn list(ctx: &Context, out: Output, status: &[String]) -> Result<()> {
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
pub(super) async fn approve(ctx: &Context, out: Output, id: &str) -> Result<()> {
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

pub(super) async fn decide(
    ctx: &Context,
    out: Output,
    op: EnrollOp,
    id: &str,
    force: bool,
) -> Result<()> {
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
