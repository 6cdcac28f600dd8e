//! `notify` (atprotocol.md §8.2) and `monitor` (§8.4).

use std::collections::HashMap;

use at_protocol::command::{MessageType, MonitorParams, NotifyOp, NotifyParams};
use at_protocol::crypto::{pub_key_cs, rsa_decrypt, AesKey, Iv};
use at_protocol::{AtSign, Command, Metadata, NotificationJson};
use serde_json::{json, Value};

use crate::atsign_arg::parse_atsign;
use crate::cli::{MonitorArgs, NotifyArgs};
use crate::error::{CtlError, Result};
use crate::keyref::{KeyRef, Scope};
use crate::output::Output;
use crate::session::{Context, Session};
use crate::sharing;

pub async fn notify(ctx: &Context, out: Output, args: &NotifyArgs) -> Result<()> {
    let id = uuid::Uuid::new_v4().to_string();
    let operation = Some(if args.delete {
        NotifyOp::Delete
    } else {
        NotifyOp::Update
    });
    let (me, params) = if args.text {
        let to = parse_atsign(&args.target)?;
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
    let mut decrypter = Decrypter {
        ctx,
        me,
        keys,
        lookups: None,
        received: HashMap::new(),
    };
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
                show(&mut decrypter, out, args.stats, &text).await;
            }
        }
    }
    drop(monitor);
    Ok(())
}

/// Decrypts notification values: self notes with the self-encryption key, others with the key the
/// sender shared (from `sharedKeyEnc` when it was made for our key, else `lookup:shared_key@sender`
/// on a second connection, as SDKs that send no `sharedKeyEnc` expect).
struct Decrypter<'a> {
    ctx: &'a Context,
    me: AtSign,
    keys: at_protocol::crypto::AtKeys,
    /// Opened on the first lookup; the monitor connection itself carries only notifications.
    lookups: Option<Session>,
    /// Keys senders shared with us, by sender.
    received: HashMap<String, AesKey>,
}

impl Decrypter<'_> {
    async fn decrypt(&mut self, n: &NotificationJson, raw: &Value) -> Option<String> {
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
            let mine = self.keys.encryption.public_b64().ok()?;
            let for_us = text("pubKeyCS").is_none_or(|cs| cs == pub_key_cs(&mine));
            match text("sharedKeyEnc").filter(|_| for_us) {
                Some(enc) => {
                    let k = rsa_decrypt(self.keys.encryption.private_key(), enc).ok()?;
                    AesKey::from_b64(&k).ok()?
                }
                None => self.received_key(&n.from).await?,
            }
        };
        key.decrypt_b64(&iv, value).ok()
    }

    /// The key `from` shared with us, looked up once per sender.
    async fn received_key(&mut self, from: &str) -> Option<AesKey> {
        if let Some(k) = self.received.get(from) {
            return Some(k.clone());
        }
        let sender = AtSign::parse(from).ok()?;
        if self.lookups.is_none() {
            self.lookups = self.ctx.authenticated(&self.me).await.ok();
        }
        let s = self.lookups.as_mut()?;
        match sharing::received_shared_key(s, &sender, &Metadata::default()).await {
            Ok(k) => {
                self.received.insert(from.to_owned(), k.clone());
                Some(k)
            }
            Err(e) => {
                eprintln!("cannot decrypt a notification from {from}: {e}");
                // A broken connection is reopened on the next try.
                if e.class == crate::error::Class::Connection {
                    self.lookups = None;
                }
                None
            }
        }
    }
}

async fn show(d: &mut Decrypter<'_>, out: Output, stats: bool, text: &str) {
    let raw: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let Ok(n) = serde_json::from_value::<NotificationJson>(raw.clone()) else {
        // Still show what arrived: a newer server may send fields this client does not know.
        out.emit(format!("(unparsed) {text}"), json!({"unparsed": text}));
        return;
    };
    if n.id == at_protocol::notification::STATS_NOTIFICATION_ID && !stats {
        return;
    }
    let op = raw.get("operation").and_then(Value::as_str).unwrap_or("?");
    let kind = kind_of(&n);
    let value = match kind {
        Shown::Value => d.decrypt(&n, &raw).await,
        _ => None,
    };
    let shown = shown(kind, &n, value.as_deref());
    let line = match kind {
        // The text is the key: no need to print it twice.
        Shown::Text => format!("{} {} text: {shown}", n.epoch_millis, n.from),
        _ => format!("{} {} {} {}: {shown}", n.epoch_millis, n.from, op, n.key),
    };
    out.emit(line, json!({"notification": raw, "decryptedValue": value}));
}

/// What a notification's value is, for showing it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Shown {
    /// A deletion: there is no value.
    Deleted,
    /// A text message: the text is the key after `@recipient:`.
    Text,
    /// `@me:shared_key@sender`: the sender's AES key for us, RSA-encrypted. Never a value to print.
    SharedKey,
    /// A key's value, plain or encrypted.
    Value,
}

fn kind_of(n: &NotificationJson) -> Shown {
    if n.operation == at_protocol::notification::NotificationOperation::Delete {
        return Shown::Deleted;
    }
    if n.message_type == at_protocol::notification::NotificationMessageType::Text {
        return Shown::Text;
    }
    let name = n
        .key
        .strip_prefix(&format!("{}:", n.to))
        .unwrap_or(&n.key)
        .strip_suffix(n.from.as_str())
        .unwrap_or(&n.key);
    if name == "shared_key" {
        return Shown::SharedKey;
    }
    Shown::Value
}

/// The text after the key in a monitor line.
fn shown(kind: Shown, n: &NotificationJson, decrypted: Option<&str>) -> String {
    match kind {
        Shown::Deleted => "(deleted)".into(),
        Shown::Text => n
            .key
            .strip_prefix(&format!("{}:", n.to))
            .unwrap_or(&n.key)
            .to_owned(),
        Shown::SharedKey => "(the key this sender encrypts what it shares with you)".into(),
        Shown::Value => match (decrypted, &n.value) {
            (Some(v), _) => v.to_owned(),
            (None, None) => "(no value)".into(),
            (None, Some(_)) if n.is_encrypted => "(encrypted)".into(),
            // Plain but not shown by decrypt: cannot happen, shown as it came.
            (None, Some(v)) => v.clone(),
        },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn note(
        key: &str,
        op: &str,
        kind: &str,
        value: Option<&str>,
        encrypted: bool,
    ) -> NotificationJson {
        serde_json::from_value(json!({
            "id": "n1",
            "from": "@alice",
            "to": "@bob",
            "key": key,
            "value": value,
            "operation": op,
            "epochMillis": 1,
            "messageType": kind,
            "isEncrypted": encrypted,
        }))
        .expect("notification")
    }

    fn line(n: &NotificationJson, _op: &str, decrypted: Option<&str>) -> String {
        shown(kind_of(n), n, decrypted)
    }

    #[test]
    fn text_messages_show_their_text() {
        let n = note(
            "@bob:remember the milk",
            "update",
            "MessageType.text",
            None,
            false,
        );
        assert_eq!(line(&n, "update", None), "remember the milk");
    }

    #[test]
    fn deletions_show_as_deleted() {
        let n = note(
            "@bob:phone.wavi@alice",
            "delete",
            "MessageType.key",
            None,
            false,
        );
        assert_eq!(line(&n, "delete", None), "(deleted)");
    }

    #[test]
    fn a_shared_key_is_never_printed() {
        let n = note(
            "@bob:shared_key@alice",
            "update",
            "MessageType.key",
            Some("RSA-WRAPPED-AES-KEY=="),
            false,
        );
        let shown = line(&n, "update", Some("RSA-WRAPPED-AES-KEY=="));
        assert!(!shown.contains("RSA-WRAPPED"), "{shown}");
        assert_eq!(kind_of(&n), Shown::SharedKey);
    }

    #[test]
    fn values_show_decrypted_plain_or_encrypted() {
        let n = note(
            "@bob:phone.wavi@alice",
            "update",
            "MessageType.key",
            Some("c1ph3r"),
            true,
        );
        assert_eq!(line(&n, "update", Some("+234")), "+234");
        assert_eq!(line(&n, "update", None), "(encrypted)");
        let plain = note(
            "@bob:note@alice",
            "update",
            "MessageType.key",
            Some("hi"),
            false,
        );
        assert_eq!(line(&plain, "update", Some("hi")), "hi");
        let empty = note("@bob:note@alice", "update", "MessageType.key", None, false);
        assert_eq!(line(&empty, "update", None), "(no value)");
    }
}
