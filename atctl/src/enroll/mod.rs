//! Extra devices (atprotocol.md §6.4): `otp` and `enroll list|approve|deny|revoke` on an approved
//! device; the new device's side (`enroll request`) is in [`request`].

pub mod request;

use at_protocol::command::{EnrollOp, EnrollParams, EnrollRequest, OtpOp, OtpParams};
use at_protocol::crypto::{rsa_decrypt, AesKey, Iv};
use at_protocol::Command;
use serde_json::{json, Value};

use crate::cli::{EnrollCmd, OtpArgs};
use crate::error::{CtlError, Result};
use crate::output::Output;
use crate::session::{Context, Session};

pub(crate) fn enroll_command(op: EnrollOp, request: EnrollRequest, force: bool) -> String {
    let mut p = EnrollParams::new(op, Some(request));
    p.force = force;
    Command::Enroll(p).to_string()
}

pub(crate) fn json_reply(text: &str, what: &str) -> Result<Value> {
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
        EnrollCmd::Request(args) => request::run(ctx, out, args).await,
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
