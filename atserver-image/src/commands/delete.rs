//! `delete` (atprotocol.md §3.5).

use at_protocol::command::DeleteParams;
use at_protocol::KeyKind;

use crate::error::AtError;
use crate::keystore::{self, AT_SECRET, AT_SECRET_DELETED};
use crate::metadata::MetaUpdate;
use crate::notifications::Priority;
use crate::reply::{CmdResult, Reply};
use crate::session::{Access, Session};

pub async fn delete(s: &mut Session, p: DeleteParams) -> CmdResult {
    let cached = p.key.is_cached();
    let key = p.key.to_string();
    if key == AT_SECRET {
        keystore::put(
            &s.shared,
            AT_SECRET_DELETED,
            Some("true".into()),
            &MetaUpdate::default(),
            true,
        )
        .await?;
        let id = keystore::delete(&s.shared, AT_SECRET).await?;
        return Ok(Reply::Data(id.to_string()));
    }
    if matches!(p.key.kind(), KeyKind::Private | KeyKind::Reserved) {
        return Err(AtError::invalid_key(format!("invalid key {key}")));
    }
    if !cached && is_protected(&key, s.atsign()) {
        return Err(AtError::unauthorized(format!(
            "Cannot delete protected key {key}"
        )));
    }
    s.authorize(&key, Access::Write)?;
    if !p.force {
        if let keystore::Read::Active(r) | keystore::Read::Unborn(r) =
            keystore::read(&s.shared, &key).await?
        {
            if r.meta.immutable {
                return Err(AtError::unauthorized(format!(
                    "{key} is immutable; use delete:force"
                )));
            }
        }
    }
    let priority = Priority::from_wire(p.priority);
    let id = keystore::delete_notifying(&s.shared, &key, priority).await?;
    Ok(Reply::Data(id.to_string()))
}

/// Keys the owner may not delete (§3.5).
fn is_protected(key: &str, me: &str) -> bool {
    let bare = key.strip_prefix("public:").unwrap_or(key);
    let bare = match bare.strip_prefix('@') {
        Some(r) => r.split_once(':').map_or(bare, |(_, e)| e),
        None => bare,
    };
    bare == format!("signing_publickey{me}")
        || bare == format!("signing_privatekey{me}")
        || bare == format!("publickey{me}")
        || key == keystore::PKAM_PUBLIC_KEY
        || key == "privatekey:signing_keypair_generated"
}
