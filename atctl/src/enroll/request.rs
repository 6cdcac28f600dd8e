//! `enroll request` on a new device: ask with an OTP, wait for the decision, then fetch the keys the
//! approver sealed for this device and write its keys file.

use std::collections::BTreeMap;
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, ClientError};
use at_protocol::command::{EnrollOp, EnrollRequest, KeysOp, KeysParams, LookupOp, LookupParams};
use at_protocol::crypto::{public_key_from_b64, rsa_encrypt, AesKey, AtKeys, Iv, RsaKeyPair};
use at_protocol::{AtSign, Command, ErrorCode};
use serde_json::{json, Value};

use super::wire::{enroll_command, json_reply};
use crate::atsign_arg::parse_atsign;
use crate::cli::EnrollRequestArgs;
use crate::error::{CtlError, Result};
use crate::keysfile::{self, PendingKeys};
use crate::output::Output;
use crate::session::Context;

/// Pause between checks of whether a pending enrollment was decided.
const POLL_INTERVAL: Duration = Duration::from_secs(1);

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
pub async fn run(ctx: &Context, out: Output, args: &EnrollRequestArgs) -> Result<()> {
    let atsign = parse_atsign(&args.atsign)?;
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
            } else if let Some(hint) = duplicate_hint(&err.message, &args.app_name, &device) {
                err.message.push_str(&hint);
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

/// The server keeps one live enrollment per (app, device), and the device name defaults to the
/// host name: a second request from one host needs its own name.
fn duplicate_hint(message: &str, app: &str, device: &str) -> Option<String> {
    message.contains("already exists").then(|| {
        format!(
            "; this host already has an enrollment as {app}/{device}: name this one with \
             --device-name (e.g. --device-name {device}-2), or deny/revoke the old one with \
             `atctl enroll` on an approved device"
        )
    })
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
    fn a_second_request_from_one_host_hints_at_device_name() {
        let server = "AT0011 requesting an enrollment: the server refused the request (server \
                      said: an enrollment for atctl/laptop already exists)";
        assert_eq!(
            duplicate_hint(server, "atctl", "laptop").as_deref(),
            Some(
                "; this host already has an enrollment as atctl/laptop: name this one with \
                 --device-name (e.g. --device-name laptop-2), or deny/revoke the old one with \
                 `atctl enroll` on an approved device"
            )
        );
        assert_eq!(
            duplicate_hint("AT0011 something else", "atctl", "laptop"),
            None
        );
    }

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
