//! `atctl onboard` (atprotocol.md §6.3): CRAM once, keys made on this device, public halves to the
//! server, PKAM proven on a fresh connection, CRAM disabled, keys file moved into place last.

use at_protocol::client::AtConnection;
use at_protocol::command::{DeleteParams, EnrollOp, EnrollParams, EnrollRequest, UpdateParams};
use at_protocol::crypto::{AesKey, AtKeys, Iv};
use at_protocol::response::Reply;
use at_protocol::{AtKey, AtSign, Command, ErrorCode, Metadata};
use serde_json::{json, Value};

use crate::atsign_arg::parse_atsign;
use crate::cli::OnboardArgs;
use crate::error::{Class, CtlError, Result};
use crate::keysfile::{self, PendingKeys};
use crate::output::Output;
use crate::session::{self, Context};

pub async fn run(ctx: &Context, out: Output, args: &OnboardArgs) -> Result<()> {
    let atsign = parse_atsign(&args.atsign)?;
    let dir = ctx.keys_dir()?;
    // Refuse before anything changes on the server.
    let path = keysfile::path_for(&dir, &atsign);
    if path.exists() && !args.force {
        return Err(CtlError::usage(format!(
            "{atsign} is already onboarded on this device: its keys file {} exists. Use it (e.g. \
             `atctl auth check`); --force replaces it, which only works while the server still \
             accepts a CRAM secret",
            path.display()
        )));
    }
    let secret = crate::secret::read(&args.secret).await?;
    let mut keys = AtKeys::generate()?;

    let mut conn = ctx.connect(&atsign, true).await?;
    conn.authenticate_cram(&atsign, &secret)
        .await
        .map_err(|e| cram_error(&atsign, e))?;

    let device = args.device_name.clone().unwrap_or_else(host_name);
    let flow = if args.legacy {
        store_pkam_key_legacy(&mut conn, &keys).await?;
        "legacy"
    } else {
        match request_enrollment(&mut conn, &keys, &args.app_name, &device).await? {
            Some((id, apkam_key)) => {
                keys.enrollment_id = Some(id);
                keys.apkam_symmetric_key = Some(apkam_key);
                "apkam"
            }
            None => {
                store_pkam_key_legacy(&mut conn, &keys).await?;
                "legacy"
            }
        }
    };
    let pending = PendingKeys::prepare(&dir, &atsign, &keys)?;

    // Prove the new keys on a fresh connection before CRAM is given up.
    let mut conn = ctx.connect(&atsign, true).await?;
    session::pkam(&mut conn, &atsign, &keys).await?;
    let publickey =
        AtKey::public("publickey", atsign.clone()).map_err(|e| CtlError::other(e.to_string()))?;
    let update = Command::Update(UpdateParams {
        no_commit: false,
        metadata: Metadata {
            is_encrypted: Some(false),
            ..Metadata::default()
        },
        key: publickey,
        value: keys.encryption.public_b64()?,
    });
    send(&mut conn, &update, "storing the public encryption key").await?;
    let at_secret =
        AtKey::parse("privatekey:at_secret").map_err(|e| CtlError::other(e.to_string()))?;
    let delete = Command::Delete(DeleteParams {
        deleted_at: None,
        no_commit: false,
        force: false,
        priority: None,
        key: at_secret,
    });
    send(
        &mut conn,
        &delete,
        "disabling CRAM (deleting the CRAM secret)",
    )
    .await?;
    let _ = conn.close().await;

    let path = pending.commit(args.force)?;
    out.emit(
        format!(
            "onboarded {atsign} ({flow} flow{}); keys file: {}",
            keys.enrollment_id
                .as_deref()
                .map(|id| format!(", enrollment {id}"))
                .unwrap_or_default(),
            path.display()
        ),
        json!({
            "atsign": atsign.as_str(),
            "flow": flow,
            "enrollmentId": keys.enrollment_id,
            "keysFile": path.display().to_string(),
        }),
    );
    Ok(())
}

fn cram_error(atsign: &AtSign, e: at_protocol::client::ClientError) -> CtlError {
    let mut err = CtlError::client("CRAM authentication", e);
    if err.code == Some(ErrorCode::KeyNotFound) {
        // The server has no CRAM secret any more: onboarding deleted it.
        err.class = Class::Auth;
        err.message = already_onboarded(atsign);
    } else if err.code.is_some() {
        let code = err.code.map_or("AT0401", |c| c.as_str());
        err.class = Class::Auth;
        err.message = format!(
            "{code} authentication failed: the CRAM secret is wrong or onboarding already disabled \
             CRAM for {atsign}; check the secret (e.g. --from-secret <namespace>/<name>), or if \
             {atsign} was onboarded before, use its keys file or enroll this device with `atctl \
             enroll request` ({})",
            err.message
        );
    }
    err
}

/// What to say when the server has CRAM disabled: the atSign was onboarded (here or elsewhere).
fn already_onboarded(atsign: &AtSign) -> String {
    format!(
        "AT0015 {atsign} is already onboarded (its server has CRAM disabled): use your keys file \
         for {atsign}, or add this device with `atctl enroll request {atsign} --otp <OTP>` (get \
         the OTP with `atctl otp` on a device that has the keys)"
    )
}

async fn send(conn: &mut AtConnection, command: &Command, what: &str) -> Result<String> {
    conn.send_data(&command.to_string())
        .await
        .map_err(|e| CtlError::client(what, e))
}

/// Legacy step 2: `update:privatekey:at_pkam_publickey <pub>`.
async fn store_pkam_key_legacy(conn: &mut AtConnection, keys: &AtKeys) -> Result<()> {
    let key =
        AtKey::parse("privatekey:at_pkam_publickey").map_err(|e| CtlError::other(e.to_string()))?;
    let update = Command::Update(UpdateParams {
        no_commit: false,
        metadata: Metadata::default(),
        key,
        value: keys.pkam.public_b64()?,
    });
    send(conn, &update, "storing the PKAM public key").await?;
    Ok(())
}

/// The APKAM step 2: an enrollment request on the CRAM connection, which the server approves at
/// once. `None` when the server does not know `enroll` (then the legacy flow applies).
async fn request_enrollment(
    conn: &mut AtConnection,
    keys: &AtKeys,
    app: &str,
    device: &str,
) -> Result<Option<(String, AesKey)>> {
    let apkam_key = AesKey::generate();
    let request = EnrollRequest {
        app_name: Some(app.to_owned()),
        device_name: Some(device.to_owned()),
        apkam_public_key: Some(keys.pkam.public_b64()?),
        encrypted_default_encryption_private_key: Some(
            apkam_key.encrypt_b64(&Iv::zero(), &keys.encryption.private_b64()?),
        ),
        encrypted_default_self_encryption_key: Some(
            apkam_key.encrypt_b64(&Iv::zero(), &keys.self_encryption_key.to_b64()),
        ),
        ..EnrollRequest::default()
    };
    let command = Command::Enroll(EnrollParams::new(EnrollOp::Request, Some(request)));
    let reply = conn
        .send(&command.to_string())
        .await
        .map_err(|e| CtlError::client("requesting this device's enrollment", e))?;
    match reply {
        Reply::Data(data) => {
            let v: Value = serde_json::from_str(data.trim())
                .map_err(|_| CtlError::other(format!("unexpected enrollment reply: {data}")))?;
            let id = v.get("enrollmentId").and_then(Value::as_str);
            let status = v.get("status").and_then(Value::as_str);
            match (id, status) {
                (Some(id), Some("approved")) => Ok(Some((id.to_owned(), apkam_key))),
                _ => Err(CtlError::other(format!(
                    "the server did not approve this device's enrollment: {data}"
                ))),
            }
        }
        Reply::Error {
            code: Some(ErrorCode::InvalidSyntax),
            ..
        } => Ok(None),
        Reply::Error { code, message } => {
            let mut err = CtlError::server("requesting this device's enrollment", code, &message);
            if message.contains("already exists") {
                err.message.push_str(
                    "; an earlier onboarding attempt enrolled this app/device name: pass another \
                     --device-name",
                );
            }
            Err(err)
        }
        other => Err(CtlError::other(format!(
            "unexpected enrollment reply: {other:?}"
        ))),
    }
}

/// This machine's name, for enrollment records.
pub fn host_name() -> String {
    std::env::var("HOSTNAME")
        .ok()
        .or_else(|| std::fs::read_to_string("/etc/hostname").ok())
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "device".to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;
    use at_protocol::client::ClientError;

    fn alice() -> AtSign {
        AtSign::parse("@alice").expect("atSign")
    }

    #[test]
    fn a_second_onboarding_is_told_it_is_already_onboarded() {
        // What our server (and the reference) answers once CRAM is disabled.
        let e = cram_error(
            &alice(),
            ClientError::Server {
                code: Some(ErrorCode::KeyNotFound),
                message: "privatekey:at_secret does not exist".into(),
            },
        );
        assert_eq!(e.class, Class::Auth);
        assert_eq!(
            e.message,
            "AT0015 @alice is already onboarded (its server has CRAM disabled): use your keys \
             file for @alice, or add this device with `atctl enroll request @alice --otp <OTP>` \
             (get the OTP with `atctl otp` on a device that has the keys)"
        );
        assert!(!e.message.contains("is wrong"), "{}", e.message);
    }

    #[test]
    fn a_wrong_secret_is_still_called_wrong() {
        let e = cram_error(
            &alice(),
            ClientError::Server {
                code: Some(ErrorCode::Unauthenticated),
                message: "Authentication Failed".into(),
            },
        );
        assert_eq!(e.class, Class::Auth);
        assert!(e.message.contains("CRAM secret is wrong"), "{}", e.message);
    }
}
