//! `put`, `get`, `delete`, `share` and `scan`: public values are plain and signed, self values are
//! encrypted with the self-encryption key, shared values with the key shared with the recipient.

use at_protocol::command::{
    DeleteParams, LlookupParams, LookupOp, LookupParams, ScanParams, UpdateParams,
};
use at_protocol::crypto::{sign_data, AesKey, Iv};
use at_protocol::key::KeyKind;
use at_protocol::{AtKey, AtSign, Command, Metadata};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::cli::{KeyArgs, MetaArgs, PutArgs, ScanArgs, ShareArgs};
use crate::error::{CtlError, Result};
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
    let with = crate::session::parse_atsign(&args.with)?;
    let own = r.resolve(&me)?;
    owned_by(&own, &me, "share")?;
    let mut s = ctx.authenticated(&me).await?;
    let value = match &args.value {
        Some(v) => v.clone(),
        None => read_own(&mut s, &own).await?.0,
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

/// `{"key","data","metaData"}` of a lookup reply.
fn parse_all(text: &str, what: &str) -> Result<(Option<String>, Metadata)> {
    let v: Value = serde_json::from_str(text.trim())
        .map_err(|_| CtlError::other(format!("{what}: the server's reply is not JSON")))?;
    let data = match v.get("data") {
        Some(Value::String(s)) => Some(s.clone()),
        Some(Value::Null) | None => None,
        Some(other) => Some(other.to_string()),
    };
    let meta = v.get("metaData").map(metadata_of).unwrap_or_default();
    Ok((data, meta))
}

/// The metadata fields a client needs, read leniently (servers differ in how they format the rest,
/// e.g. dates), with the full grammar as the first choice.
fn metadata_of(m: &Value) -> Metadata {
    if let Ok(meta) = Metadata::from_json(m) {
        return meta;
    }
    let text = |k: &str| {
        m.get(k)
            .and_then(Value::as_str)
            .filter(|s| *s != "null")
            .map(str::to_owned)
    };
    Metadata {
        is_encrypted: m.get("isEncrypted").and_then(Value::as_bool),
        iv_nonce: text("ivNonce"),
        shared_key_enc: text("sharedKeyEnc"),
        pub_key_cs: text("pubKeyCS"),
        encoding: text("encoding"),
        data_signature: text("dataSignature"),
        ..Metadata::default()
    }
}

fn decrypt_with(k: &AesKey, data: &str, meta: &Metadata) -> Result<String> {
    let iv = Iv::from_iv_nonce(meta.iv_nonce.as_deref())?;
    Ok(k.decrypt_b64(&iv, data)?)
}

fn decode_plain(data: String, meta: &Metadata) -> Result<String> {
    if meta.encoding.as_deref() == Some("base64") {
        let bytes = B64
            .decode(data.trim())
            .map_err(|_| CtlError::other("value marked base64 is not base64"))?;
        return String::from_utf8(bytes).map_err(|_| CtlError::other("value is not UTF-8"));
    }
    Ok(data)
}

fn null_is_missing(data: Option<String>, key: &str) -> Result<String> {
    data.ok_or_else(|| {
        CtlError::not_found(format!(
            "{key} has no value now (expired, not yet born, or deleted)"
        ))
    })
}

/// Reads and decrypts one of `s.me`'s own keys.
async fn read_own(s: &mut Session, key: &AtKey) -> Result<(String, Metadata)> {
    let display = key.to_string();
    let cmd = Command::Llookup(LlookupParams {
        operation: LookupOp::All,
        key: key.clone(),
    });
    let reply = s
        .data(&cmd.to_string(), &format!("reading {display}"))
        .await?;
    let (data, meta) = parse_all(&reply, &display)?;
    let data = null_is_missing(data, &display)?;
    let value = match key.kind() {
        KeyKind::Public => decode_plain(data, &meta)?,
        _ if meta.is_encrypted != Some(true) => data,
        KeyKind::Shared(with) if *with != s.me => {
            let k = sharing::existing_shared_key(s, with)
                .await?
                .ok_or_else(|| {
                    CtlError::not_found(format!(
                        "no shared key with {with}: cannot decrypt {display}"
                    ))
                })?;
            decrypt_with(&k, &data, &meta)?
        }
        _ => decrypt_with(&s.keys.self_encryption_key, &data, &meta)?,
    };
    Ok((value, meta))
}

pub async fn get(ctx: &Context, out: Output, args: &KeyArgs) -> Result<()> {
    let r = KeyRef::parse(&args.key, args.namespace.as_deref())?;
    let me_known = ctx.me(r.owner.as_ref()).ok();
    let (value, meta, display) = match (&r.scope, &me_known) {
        // Public data needs no keys: ask the owner's server directly.
        (Scope::Public, me) => {
            let owner = match (&r.owner, me) {
                (Some(o), _) => o.clone(),
                (None, Some(m)) => m.clone(),
                (None, None) => return Err(CtlError::usage("give the owner: public:name@owner")),
            };
            let key = r.resolve(&owner)?;
            let own = me.as_ref() == Some(&owner);
            let mut conn = ctx.connect(&owner, own).await?;
            let cmd = Command::Lookup(LookupParams {
                bypass_cache: None,
                operation: LookupOp::All,
                key: key.name().to_owned(),
                owner: owner.clone(),
            });
            let display = key.to_string();
            let reply = conn
                .send_data(&cmd.to_string())
                .await
                .map_err(|e| CtlError::client(&format!("reading {display}"), e))?;
            let _ = conn.close().await;
            let (data, meta) = parse_all(&reply, &display)?;
            let value = decode_plain(null_is_missing(data, &display)?, &meta)?;
            (value, meta, display)
        }
        (_, None) => {
            return Err(CtlError::usage(
                "cannot tell who you are: pass --atsign (or keep one keys file in --keys-dir)",
            ))
        }
        (_, Some(me)) => {
            let key = r.resolve(me)?;
            let display = key.to_string();
            let mut s = ctx.authenticated(me).await?;
            let result = if key.owner() == Some(me) {
                read_own(&mut s, &key).await?
            } else {
                read_received(&mut s, &key).await?
            };
            let _ = s.conn.close().await;
            (result.0, result.1, display)
        }
    };
    out.emit(
        value.clone(),
        json!({"key": display, "value": value, "metadata": meta.to_lookup_json()}),
    );
    Ok(())
}

/// A value another atSign shared with `s.me`, through `s.me`'s own server (§7.2 "Bob reads").
async fn read_received(s: &mut Session, key: &AtKey) -> Result<(String, Metadata)> {
    let owner = key
        .owner()
        .cloned()
        .ok_or_else(|| CtlError::usage("the key needs an owner"))?;
    if let Some(with) = key.shared_with() {
        if *with != s.me {
            return Err(CtlError::usage(format!(
                "{key} is shared with {with}, not with you ({})",
                s.me
            )));
        }
    }
    let display = key.to_string();
    let cmd = Command::Lookup(LookupParams {
        bypass_cache: None,
        operation: LookupOp::All,
        key: key.name().to_owned(),
        owner: owner.clone(),
    });
    let reply = s
        .data(&cmd.to_string(), &format!("reading {display}"))
        .await?;
    let (data, meta) = parse_all(&reply, &display)?;
    let data = null_is_missing(data, &display)?;
    if meta.is_encrypted != Some(true) {
        return Ok((data, meta));
    }
    let k = sharing::received_shared_key(s, &owner, &meta).await?;
    Ok((decrypt_with(&k, &data, &meta)?, meta))
}

pub async fn delete(ctx: &Context, out: Output, args: &KeyArgs) -> Result<()> {
    let (key, me) = key_and_me(ctx, args)?;
    owned_by(&key, &me, "delete")?;
    let mut s = ctx.authenticated(&me).await?;
    let display = key.to_string();
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

pub async fn scan(ctx: &Context, out: Output, args: &ScanArgs) -> Result<()> {
    let me = ctx.me(None)?;
    let mut s = ctx.authenticated(&me).await?;
    let cmd = Command::Scan(ScanParams {
        show_hidden: args.show_hidden.then_some(true),
        regex: args.regex.clone(),
        ..ScanParams::default()
    });
    let reply = s.data(&cmd.to_string(), "listing keys").await?;
    let _ = s.conn.close().await;
    let keys: Vec<String> = serde_json::from_str(reply.trim())
        .map_err(|_| CtlError::other(format!("scan: unexpected reply {reply}")))?;
    out.emit(keys.join("\n"), json!({"keys": keys}));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lookup_all_replies() {
        let (data, meta) = parse_all(
            r#"{"key":"x@alice","data":"abc","metaData":{"ivNonce":"AAAAAAAAAAAAAAAAAAAAAA==","isEncrypted":true,"createdAt":"2024-10-24 10:35:19.123Z"}}"#,
            "x",
        )
        .unwrap();
        assert_eq!(data.as_deref(), Some("abc"));
        assert_eq!(meta.is_encrypted, Some(true));
        assert!(meta.iv_nonce.is_some());
        let (data, _) = parse_all(r#"{"key":"x@alice","data":null}"#, "x").unwrap();
        assert!(null_is_missing(data, "x").is_err());
        assert!(parse_all("not json", "x").is_err());
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

    #[test]
    fn base64_values_decode() {
        let meta = Metadata {
            encoding: Some("base64".into()),
            ..Metadata::default()
        };
        assert_eq!(decode_plain(B64.encode("a\nb"), &meta).unwrap(), "a\nb");
    }
}
