//! `get` and `scan`: reads decrypt self values with the self-encryption key and shared values with
//! the shared key; public values need no keys at all.

use at_protocol::command::{LlookupParams, LookupOp, LookupParams, ScanParams};
use at_protocol::crypto::{AesKey, Iv};
use at_protocol::key::KeyKind;
use at_protocol::{AtKey, Command, Metadata};
use base64::engine::general_purpose::STANDARD as B64;
use base64::Engine;
use serde_json::{json, Value};

use crate::cli::{KeyArgs, ScanArgs};
use crate::error::{CtlError, Result};
use crate::keyref::{KeyRef, Scope};
use crate::output::Output;
use crate::session::{Context, Session};
use crate::sharing;

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
pub(crate) async fn read_own(s: &mut Session, key: &AtKey) -> Result<(String, Metadata)> {
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
    fn base64_values_decode() {
        let meta = Metadata {
            encoding: Some("base64".into()),
            ..Metadata::default()
        };
        assert_eq!(decode_plain(B64.encode("a\nb"), &meta).unwrap(), "a\nb");
    }
}
