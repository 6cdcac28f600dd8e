//! `put`, `share` and `delete`: public values go out plain and signed, self values encrypted with the
//! self-encryption key, shared values with the key shared with the recipient.

use at_protocol::command::{DeleteParams, LlookupParams, LookupOp, UpdateParams};
use at_protocol::crypto::{sign_data, Iv};
use at_protocol::key::KeyKind;
use at_protocol::{AtKey, AtSign, Command, Metadata};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::json;

use crate::cli::{KeyArgs, MetaArgs, PutArgs, ShareArgs};
use crate::error::{Class, CtlError, Result};
use crate::keyref::{KeyRef, Scope};
use crate::output::Output;
use crate::session::{Context, Session};
use crate::sharing;

fn base_metadata(m: &MetaArgs) -> Result<Metadata> {
    for (flag, v) in [("--ttl", m.ttl), ("--ttb", m.ttb)] {
        if v.is_some_and(|v| v < 0) {
            return Err(CtlError::usage(format!("{flag} must be >= 0")));
        }
    }
    if m.ttr.is_some_and(|v| v < -1) {
        return Err(CtlError::usage("--ttr must be -1 (forever) or more"));
    }
    Ok(Metadata {
        ttl: m.ttl,
        ttb: m.ttb,
        ttr: m.ttr,
        ccd: m.ccd,
        ..Metadata::default()
    })
}

/// The key a command names, with the acting atSign (the owner when none is given).
fn key_and_me(ctx: &Context, args: &KeyArgs) -> Result<(AtKey, AtSign)> {
    let r = KeyRef::parse(&args.key, args.namespace.as_deref())?;
    let me = ctx.me(r.owner.as_ref())?;
    Ok((r.resolve(&me)?, me))
}

fn owned_by(key: &AtKey, me: &AtSign, verb: &str) -> Result<()> {
    if key.owner() != Some(me) {
        return Err(CtlError::usage(format!(
            "you ({me}) can only {verb} your own keys, and {key} belongs to {}",
            key.owner().map_or("nobody", |o| o.as_str())
        )));
    }
    Ok(())
}

/// Encrypts `value` for `key` and returns the update command.
async fn build_update(
    ctx: &Context,
    s: &mut Session,
    key: AtKey,
    value: &str,
    meta: &MetaArgs,
) -> Result<Command> {
    let mut metadata = base_metadata(meta)?;
    let iv = Iv::random();
    let value = match key.kind().clone() {
        KeyKind::Public => {
            metadata.data_signature =
                Some(sign_data(s.keys.encryption.private_key(), value.as_bytes()));
            metadata.is_encrypted = Some(false);
            if value.contains(['\n', '\r']) {
                metadata.encoding = Some("base64".into());
                B64.encode(value)
            } else {
                value.to_owned()
            }
        }
        KeyKind::Shared(with) if with != s.me => {
            let (k, their_pub) = sharing::shared_key_for(ctx, s, &with).await?;
            let enc = sharing::shared_metadata(&k, &their_pub, iv.to_b64())?;
            metadata.is_encrypted = enc.is_encrypted;
            metadata.shared_key_enc = enc.shared_key_enc;
            metadata.pub_key_cs = enc.pub_key_cs;
            metadata.iv_nonce = enc.iv_nonce;
            k.encrypt_b64(&iv, value)
        }
        _ => {
            metadata.data_signature =
                Some(sign_data(s.keys.encryption.private_key(), value.as_bytes()));
            metadata.is_encrypted = Some(true);
            metadata.iv_nonce = Some(iv.to_b64());
            s.keys.self_encryption_key.encrypt_b64(&iv, value)
        }
    };
    Ok(Command::Update(UpdateParams {
        no_commit: false,
        metadata,
        key,
        value,
    }))
}

pub async fn put(ctx: &Context, out: Output, args: &PutArgs) -> Result<()> {
    let (key, me) = key_and_me(ctx, &args.key)?;
    owned_by(&key, &me, "put")?;
    let mut s = ctx.authenticated(&me).await?;
    let display = key.to_string();
    let cmd = build_update(ctx, &mut s, key, &args.value, &args.meta).await?;
    let commit = s
        .data(&cmd.to_string(), &format!("storing {display}"))
        .await?;
    let _ = s.conn.close().await;
    out.emit(
        format!("stored {display} (commit {})", commit.trim()),
        json!({"key": display, "commitId": commit.trim()}),
    );
    Ok(())
}

pub async fn share(ctx: &Context, out: Output, args: &ShareArgs) -> Result<()> {
    let r = KeyRef::parse(&args.key.key, args.key.namespace.as_deref())?;
    if r.scope != Scope::SelfOrReceived {
        return Err(CtlError::usage(
            "share takes a plain key name (e.g. phone.wavi); the recipient comes from --with",
        ));
    }
    let me = ctx.me(r.owner.as_ref())?;
    let with = crate::atsign_arg::parse_atsign(&args.with)?;
    let own = r.resolve(&me)?;
    owned_by(&own, &me, "share")?;
    let mut s = ctx.authenticated(&me).await?;
    let value = match &args.value {
        Some(v) => v.clone(),
        None => crate::read::read_own(&mut s, &own).await?.0,
    };
    let key = AtKey::shared(own.name(), with.clone(), me.clone())
        .map_err(|e| CtlError::usage(e.to_string()))?;
    let display = key.to_string();
    let cmd = build_update(ctx, &mut s, key, &value, &args.meta).await?;
    let commit = s
        .data(&cmd.to_string(), &format!("storing {display}"))
        .await?;
    let _ = s.conn.close().await;
    out.emit(
        format!(
            "shared {} with {with} as {display} (commit {})",
            own.name(),
            commit.trim()
        ),
        json!({"key": display, "sharedWith": with.as_str(), "commitId": commit.trim()}),
    );
    Ok(())
}

pub async fn delete(ctx: &Context, out: Output, args: &KeyArgs) -> Result<()> {
    let (key, me) = key_and_me(ctx, args)?;
    owned_by(&key, &me, "delete")?;
    let mut s = ctx.authenticated(&me).await?;
    let display = key.to_string();
    // The server commits a delete entry (and answers with its commit id) even for a key it does
    // not have, so ask first: deleting nothing is reported as such.
    let exists = Command::Llookup(LlookupParams {
        operation: LookupOp::Meta,
        key: key.clone(),
    });
    let checked = s
        .data(&exists.to_string(), &format!("looking up {display}"))
        .await;
    nothing_to_delete(checked, &display, &me)?;
    let cmd = Command::Delete(DeleteParams {
        deleted_at: None,
        no_commit: false,
        force: false,
        priority: None,
        key,
    });
    let commit = s
        .data(&cmd.to_string(), &format!("deleting {display}"))
        .await?;
    let _ = s.conn.close().await;
    out.emit(
        format!("deleted {display} (commit {})", commit.trim()),
        json!({"key": display, "commitId": commit.trim()}),
    );
    Ok(())
}

/// The answer to the existence check before a delete: a missing key is an error (exit code 4)
/// saying nothing was deleted; any other failure is left to the delete itself to report.
fn nothing_to_delete(checked: Result<String>, display: &str, me: &AtSign) -> Result<()> {
    match checked {
        Err(e) if e.class == Class::NotFound => Err(CtlError {
            message: format!(
                "AT0015 {display} does not exist on {me}'s server: nothing was deleted"
            ),
            ..e
        }),
        _ => Ok(()),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use at_protocol::ErrorCode;

    #[test]
    fn deleting_a_missing_key_says_nothing_was_deleted() {
        let me = AtSign::parse("@alice").expect("atSign");
        let missing = Err(CtlError::server(
            "looking up nope@alice",
            Some(ErrorCode::KeyNotFound),
            "nope@alice does not exist",
        ));
        let e = nothing_to_delete(missing, "nope@alice", &me).expect_err("missing");
        assert_eq!(e.class, Class::NotFound);
        assert_eq!(e.class.exit_code(), 4);
        assert_eq!(
            e.message,
            "AT0015 nope@alice does not exist on @alice's server: nothing was deleted"
        );
        assert!(nothing_to_delete(Ok("{}".into()), "k@alice", &me).is_ok());
        // Not allowed to read but perhaps to delete: the delete's own answer decides.
        let denied = Err(CtlError::server(
            "looking up",
            Some(ErrorCode::Unauthorized),
            "no",
        ));
        assert!(nothing_to_delete(denied, "k@alice", &me).is_ok());
    }

    #[test]
    fn metadata_flags_are_checked() {
        let bad = MetaArgs {
            ttl: Some(-1),
            ..MetaArgs::default()
        };
        assert!(base_metadata(&bad).is_err());
        let ok = MetaArgs {
            ttl: Some(1000),
            ttr: Some(-1),
            ccd: Some(true),
            ..MetaArgs::default()
        };
        let m = base_metadata(&ok).unwrap();
        assert_eq!(m.to_fragment(), ":ttl:1000:ttr:-1:ccd:true");
    }
}
