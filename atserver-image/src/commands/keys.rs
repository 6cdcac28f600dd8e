//! `keys:put|get|delete`: an APKAM client's own key records.

use std::collections::BTreeMap;

use at_protocol::command::{KeysOp, KeysParams, KeysVisibility};
use serde_json::{json, Value};

use crate::error::AtError;
use crate::keystore::{self, Read};
use crate::metadata::MetaUpdate;
use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// `keys:put|get|delete` for APKAM connections.
pub async fn keys(s: &mut Session, p: KeysParams) -> CmdResult {
    let en = s
        .enrollment()
        .cloned()
        .ok_or_else(|| AtError::internal("Keys verb cannot be accessed without an enrollmentId"))?;
    let op = match p.operation {
        KeysOp::Put => "put",
        KeysOp::Get => "get",
        KeysOp::Delete => "delete",
    }
    .to_string();
    let visibility = p.visibility.map(|v| match v {
        KeysVisibility::Public => "public",
        KeysVisibility::Private => "private",
        KeysVisibility::SelfKeys => "self",
    });
    let mut fields: BTreeMap<&str, String> = BTreeMap::new();
    for (name, v) in [
        ("namespace", &p.namespace),
        ("appName", &p.app_name),
        ("deviceName", &p.device_name),
        ("keyType", &p.key_type),
        ("encryptionKeyName", &p.encryption_key_name),
    ] {
        if let Some(v) = v {
            fields.insert(name, v.clone());
        }
    }
    let key_name = p.key_name.map(|k| k.to_lowercase());
    let value = p.key_value.unwrap_or_default();
    let me = s.atsign().to_string();
    match op.as_str() {
        "get" => match (key_name, visibility) {
            (Some(k), _) => {
                if k.contains(".__manage@") && !k.starts_with(&format!("{}.", en.id)) {
                    return Err(AtError::unauthorized("keys of another enrollment"));
                }
                match keystore::read(&s.shared, &k).await? {
                    Read::Active(r) => Ok(Reply::Data(r.value.unwrap_or_else(|| "null".into()))),
                    _ => Err(AtError::not_found(&k)),
                }
            }
            (None, Some(vis)) => {
                let now = s.shared.clock.now_millis();
                let marker = match vis {
                    "public" => ".__public_keys.",
                    "private" => ".__private_keys.",
                    _ => ".__self_keys.",
                };
                let all: Vec<String> = s.shared.store.call(move |db| db.active_keys(now)).await?;
                let mut out = Vec::new();
                for k in all.into_iter().filter(|k| k.contains(marker)) {
                    if let Read::Active(r) = keystore::read(&s.shared, &k).await? {
                        let by_me = r
                            .value
                            .and_then(|v| serde_json::from_str::<Value>(&v).ok())
                            .and_then(|v| {
                                v.get("enrollmentId")
                                    .and_then(Value::as_str)
                                    .map(str::to_string)
                            })
                            .is_some_and(|e| e == en.id);
                        if by_me {
                            out.push(k);
                        }
                    }
                }
                match vis {
                    "private" => {
                        out.push(format!("{}.default_enc_private_key.__manage{me}", en.id))
                    }
                    "self" => out.push(format!("{}.default_self_enc_key.__manage{me}", en.id)),
                    _ => {}
                }
                Ok(Reply::Data(json!(out).to_string()))
            }
            _ => Err(AtError::syntax("keys:get needs keyName or a visibility")),
        },
        "put" => {
            let vis = visibility.ok_or_else(|| AtError::syntax("keys:put needs a visibility"))?;
            let name = key_name.ok_or_else(|| AtError::syntax("keys:put needs keyName"))?;
            let ns = fields
                .get("namespace")
                .cloned()
                .unwrap_or_else(|| "__global".into())
                .to_lowercase();
            let app = fields
                .get("appName")
                .cloned()
                .unwrap_or_default()
                .to_lowercase();
            let device = fields
                .get("deviceName")
                .cloned()
                .unwrap_or_default()
                .to_lowercase();
            let key = match vis {
                "public" => format!("public:{name}.__public_keys.{ns}{me}"),
                "private" => format!("private:{app}.{device}.{name}.__private_keys.{ns}{me}"),
                _ => format!("{app}.{device}.{name}.__self_keys.{ns}{me}"),
            };
            let stored = json!({
                "value": value.trim(),
                "keyType": fields.get("keyType"),
                "enrollmentId": en.id,
                "encryptionKeyName": fields.get("encryptionKeyName"),
            });
            keystore::put(
                &s.shared,
                &key,
                Some(stored.to_string()),
                &MetaUpdate::default(),
                true,
            )
            .await?;
            Ok(Reply::data("-1"))
        }
        "delete" => {
            let k = key_name.ok_or_else(|| AtError::syntax("keys:delete needs keyName"))?;
            keystore::delete(&s.shared, &k).await?;
            Ok(Reply::data("-1"))
        }
        _ => Err(AtError::syntax("invalid keys operation")),
    }
}
