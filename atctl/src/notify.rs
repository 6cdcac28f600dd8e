//! `notify` (atprotocol.md §8.2) and `monitor` (§8.4).

use at_protocol::command::{MessageType, MonitorParams, NotifyOp, NotifyParams};
use at_protocol::crypto::{pub_key_cs, rsa_decrypt, AesKey, Iv};
use at_protocol::{AtSign, Command, Metadata, NotificationJson};
use serde_json::{json, Value};

use crate::cli::{MonitorArgs, NotifyArgs};
use crate::error::{CtlError, Result};
use crate::keyref::{KeyRef, Scope};
use crate::output::Output;
use crate::session::{self, Context, Session};
use crate::sharing;

pub async fn notify(ctx: &Context, out: Output, args: &NotifyArgs) -> Result<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let operation = Some(if args.delete {
        NotifyOp::Delete
    } else {
        NotifyOp::Update
    });
    let (me, params) = if args.text {
        let to = session::parse_atsign(&args.target)?;
        let text = args
            .value
            .clone()
            .ok_or_else(|| CtlError::usage("--text needs the message"))?;
        if text.contains(['\n', '\r']) {
            return Err(CtlError::usage("a text message must be one line"));
        }
        let me = ctx.me(None)?;
        let params = NotifyParams {
            id: Some(id.clone()),
            operation,
            message_type: Some(MessageType::Text),
            ttln: args.ttln,
            to: Some(to),
            key: text,
            ..NotifyParams::default()
        };
        (me, params)
    } else {
        let r = KeyRef::parse(&args.target, args.namespace.as_deref())?;
        let Scope::SharedWith(to) = r.scope.clone() else {
            return Err(CtlError::usage(
                "a key notification names the recipient: @bob:name@you (or use --text)",
            ));
        };
        let me = ctx.me(r.owner.as_ref())?;
        let key = r.resolve(&me)?;
        if key.owner() != Some(&me) {
            return Err(CtlError::usage(format!(
                "you ({me}) can only notify about your own keys"
            )));
        }
        let params = NotifyParams {
            id: Some(id.clone()),
            operation,
            message_type: Some(MessageType::Key),
            ttln: args.ttln,
            to: Some(to),
            key: key.name().to_owned(),
            owner: Some(me.clone()),
            ..NotifyParams::default()
        };
        (me, params)
    };
    let mut s = ctx.authenticated(&me).await?;
    let params = if args.text {
        params
    } else {
        encrypt_value(ctx, &mut s, params, args.value.as_deref()).await?
    };
    let cmd = Command::Notify(params);
    let reply = s.data(&cmd.to_string(), "sending the notification").await?;
    let _ = s.conn.close().await;
    let sent_id = reply.trim().to_owned();
    out.emit(
        format!("notification {sent_id} sent"),
        json!({"id": sent_id}),
    );
    Ok(())
}

/// Encrypts a key notification's value: with the self-encryption key for notes to oneself, else with
/// the key shared with the recipient (as the SDKs do).
async fn encrypt_value(
    ctx: &Context,
    s: &mut Session,
    mut params: NotifyParams,
    value: Option<&str>,
) -> Result<NotifyParams> {
    let Some(value) = value else {
        return Ok(params);
    };
    let iv = Iv::random();
    let to = params.to.clone().unwrap_or_else(|| s.me.clone());
    let (cipher, metadata) = if to == s.me {
        let meta = Metadata {
            is_encrypted: Some(true),
            iv_nonce: Some(iv.to_b64()),
            ..Metadata::default()
        };
        (s.keys.self_encryption_key.encrypt_b64(&iv, value), meta)
    } else {
        let (k, their_pub) = sharing::shared_key_for(ctx, s, &to).await?;
        let meta = sharing::shared_metadata(&k, &their_pub, iv.to_b64())?;
        (k.encrypt_b64(&iv, value), meta)
    };
    params.metadata = metadata;
    params.value = Some(cipher);
    Ok(params)
}

pub async fn monitor(ctx: &Context, out: Output, args: &MonitorArgs) -> Result<()> {
    let me = ctx.me(None)?;
    let s = ctx.authenticated(&me).await?;
    let Session { me, keys, conn } = s;
    let params = MonitorParams {
        self_notifications: args.self_notifications,
        epoch_millis: args.since,
        regex: args.regex.clone(),
        ..MonitorParams::default()
    };
    let mut monitor = conn
        .monitor(&Command::Monitor(params).to_string())
        .await
        .map_err(|e| CtlError::client("starting the monitor", e))?;
    let mut stream = monitor
        .take_notifications()
        .ok_or_else(|| CtlError::other("monitor stream unavailable"))?;
    eprintln!("monitoring {me} (Ctrl-C to stop)");
    let decrypter = Decrypter { me, keys };
    // One listener for the whole stream, so an interrupt between two notifications is not missed.
    let interrupted = tokio::signal::ctrl_c();
    tokio::pin!(interrupted);
    loop {
        tokio::select! {
            _ = &mut interrupted => break,
            next = stream.recv() => {
                let Some(text) = next else {
                    return Err(CtlError::new(
                        crate::error::Class::Connection,
                        "the server closed the monitor connection",
                    ));
                };
                show(&decrypter, out, args.stats, &text);
            }
        }
    }
    drop(monitor);
    Ok(())
}

/// What this device can decrypt in notifications without further round trips.
struct Decrypter {
    me: AtSign,
    keys: at_protocol::crypto::AtKeys,
}

impl Decrypter {
    fn decrypt(&self, n: &NotificationJson, raw: &Value) -> Option<String> {
        let value = n.value.as_deref()?;
        if !n.is_encrypted {
            return Some(value.to_owned());
        }
        let meta = raw.get("metadata")?;
        let text = |k: &str| meta.get(k).and_then(Value::as_str).filter(|s| *s != "null");
        let iv = Iv::from_iv_nonce(text("ivNonce")).ok()?;
        let key = if n.from == self.me.as_str() && n.to == self.me.as_str() {
            self.keys.self_encryption_key.clone()
        } else {
            let enc = text("sharedKeyEnc")?;
            let mine = self.keys.encryption.public_b64().ok()?;
            if text("pubKeyCS").is_some_and(|cs| cs != pub_key_cs(&mine)) {
                return None;
            }
            AesKey::from_b64(&rsa_decrypt(self.keys.encryption.private_key(), enc).ok()?).ok()?
        };
        key.decrypt_b64(&iv, value).ok()
    }
}

fn show(d: &Decrypter, out: Output, stats: bool, text: &str) {
    let raw: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let Ok(n) = serde_json::from_value::<NotificationJson>(raw.clone()) else {
        // Still show what arrived: a newer server may send fields this client does not know.
        out.emit(format!("(unparsed) {text}"), json!({"unparsed": text}));
        return;
    };
    if n.id == at_protocol::notification::STATS_NOTIFICATION_ID && !stats {
        return;
    }
    let value = d.decrypt(&n, &raw);
    let op = raw.get("operation").and_then(Value::as_str).unwrap_or("?");
    out.emit(
        format!(
            "{} {} {} {}: {}",
            n.epoch_millis,
            n.from,
            op,
            n.key,
            value.as_deref().unwrap_or("(encrypted)")
        ),
        json!({"notification": raw, "decryptedValue": value}),
    );
}
