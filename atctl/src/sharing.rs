//! The shared-key flow of atprotocol.md §7.2, done on this device: the AES key for a recipient is
//! made here, stored RSA-encrypted for the owner (`shared_key.bob@alice`) and for the recipient
//! (`@bob:shared_key@alice`); values are encrypted here. Private keys never leave the device.

use at_protocol::client::ClientError;
use at_protocol::command::{DeleteParams, LlookupParams, LookupOp, LookupParams, UpdateParams};
use at_protocol::crypto::{pub_key_cs, public_key_from_b64, rsa_decrypt, rsa_encrypt, AesKey};
use at_protocol::{AtKey, AtSign, Command, ErrorCode, Metadata};

use crate::error::{CtlError, Result};
use crate::session::{Context, Session};

/// How long recipients may cache the shared key (45 days, in seconds).
const SHARED_KEY_TTR: i64 = 3_888_000;

/// The recipient's public encryption key, as its base64 text.
pub async fn recipient_public_key(ctx: &Context, s: &mut Session, with: &AtSign) -> Result<String> {
    // A copy our server cached earlier, else straight from the recipient's server.
    let cached = AtKey::parse(&format!("cached:public:publickey{with}"))
        .map_err(|e| CtlError::other(e.to_string()))?;
    let llookup = Command::Llookup(LlookupParams {
        operation: LookupOp::Value,
        key: cached,
    });
    match s.conn.send_data(&llookup.to_string()).await {
        Ok(v) if !v.trim().is_empty() && v.trim() != "null" => return Ok(v.trim().to_owned()),
        Ok(_) => {}
        Err(e) if is_not_found(&e) => {}
        Err(e) => return Err(CtlError::client("reading the cached public key", e)),
    }
    let mut conn = ctx.connect(with, false).await?;
    let lookup = Command::Lookup(LookupParams {
        bypass_cache: None,
        operation: LookupOp::Value,
        key: "publickey".into(),
        owner: with.clone(),
    });
    let value = conn.send_data(&lookup.to_string()).await.map_err(|e| {
        let mut err = CtlError::client(&format!("reading {with}'s public key"), e);
        err.message.push_str(&format!(
            "; {with} must be onboarded before anyone can share with it"
        ));
        err
    })?;
    let _ = conn.close().await;
    let value = value.trim().to_owned();
    if value.is_empty() || value == "null" {
        return Err(CtlError::not_found(format!(
            "{with} has no public key yet: it must be onboarded before anyone can share with it"
        )));
    }
    Ok(value)
}

pub fn is_not_found(e: &ClientError) -> bool {
    e.server_code() == Some(ErrorCode::KeyNotFound)
}

fn own_copy_key(s: &Session, with: &AtSign) -> Result<AtKey> {
    AtKey::self_key(&format!("shared_key.{}", with.name()), s.me.clone())
        .map_err(|e| CtlError::other(e.to_string()))
}

/// The AES key `s.me` uses with `with`, if one exists (decrypted from `shared_key.<with>@me`).
pub async fn existing_shared_key(s: &mut Session, with: &AtSign) -> Result<Option<AesKey>> {
    let llookup = Command::Llookup(LlookupParams {
        operation: LookupOp::Value,
        key: own_copy_key(s, with)?,
    });
    match s.conn.send_data(&llookup.to_string()).await {
        Ok(v) if v.trim().is_empty() || v.trim() == "null" => Ok(None),
        Ok(v) => {
            let text = rsa_decrypt(s.keys.encryption.private_key(), v.trim())?;
            Ok(Some(AesKey::from_b64(&text)?))
        }
        Err(e) if is_not_found(&e) => Ok(None),
        Err(e) => Err(CtlError::client("reading the shared key", e)),
    }
}

/// The shared key and the recipient's public key, creating and storing the shared key if needed.
pub async fn shared_key_for(
    ctx: &Context,
    s: &mut Session,
    with: &AtSign,
) -> Result<(AesKey, String)> {
    let their_pub = recipient_public_key(ctx, s, with).await?;
    if let Some(k) = existing_shared_key(s, with).await? {
        return Ok((k, their_pub));
    }
    let k = AesKey::generate();
    let k_text = k.to_b64();
    let theirs = public_key_from_b64(&their_pub)?;
    let for_them = AtKey::shared("shared_key", with.clone(), s.me.clone())
        .map_err(|e| CtlError::other(e.to_string()))?;
    // Defensive, as the reference clients do: an old copy for the recipient would not match.
    let delete = Command::Delete(DeleteParams {
        deleted_at: None,
        no_commit: false,
        force: false,
        priority: None,
        key: for_them.clone(),
    });
    s.data(&delete.to_string(), "removing an old shared key")
        .await?;
    let mine = Command::Update(UpdateParams {
        no_commit: false,
        metadata: Metadata::default(),
        key: own_copy_key(s, with)?,
        value: rsa_encrypt(&s.keys.encryption.public_key(), &k_text)?,
    });
    s.data(&mine.to_string(), "storing your copy of the shared key")
        .await?;
    let theirs_cmd = Command::Update(UpdateParams {
        no_commit: false,
        metadata: Metadata {
            ttr: Some(SHARED_KEY_TTR),
            ..Metadata::default()
        },
        key: for_them,
        value: rsa_encrypt(&theirs, &k_text)?,
    });
    s.data(
        &theirs_cmd.to_string(),
        "storing the recipient's copy of the shared key",
    )
    .await?;
    Ok((k, their_pub))
}

/// Metadata for a value encrypted with the shared key (§7.2 step 3).
pub fn shared_metadata(k: &AesKey, their_pub: &str, iv_b64: String) -> Result<Metadata> {
    let theirs = public_key_from_b64(their_pub)?;
    Ok(Metadata {
        is_encrypted: Some(true),
        shared_key_enc: Some(rsa_encrypt(&theirs, &k.to_b64())?),
        pub_key_cs: Some(pub_key_cs(their_pub)),
        iv_nonce: Some(iv_b64),
        ..Metadata::default()
    })
}

/// The shared key for a value shared with `s.me`: from its `sharedKeyEnc` (when it was made for our
/// current public key), else `lookup:shared_key@owner`.
pub async fn received_shared_key(
    s: &mut Session,
    owner: &AtSign,
    meta: &Metadata,
) -> Result<AesKey> {
    let my_pub = s.keys.encryption.public_b64()?;
    if let (Some(enc), Some(cs)) = (&meta.shared_key_enc, &meta.pub_key_cs) {
        if *cs == pub_key_cs(&my_pub) {
            let text = rsa_decrypt(s.keys.encryption.private_key(), enc)?;
            return Ok(AesKey::from_b64(&text)?);
        }
    }
    let lookup = Command::Lookup(LookupParams {
        bypass_cache: None,
        operation: LookupOp::Value,
        key: "shared_key".into(),
        owner: owner.clone(),
    });
    let enc = s
        .data(
            &lookup.to_string(),
            &format!("reading the key {owner} shared with you"),
        )
        .await?;
    let text = rsa_decrypt(s.keys.encryption.private_key(), enc.trim())?;
    Ok(AesKey::from_b64(&text)?)
}
