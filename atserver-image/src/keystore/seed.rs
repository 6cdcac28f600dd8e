//! Start-up seeding of the keystore: the CRAM secret and the server's signing key pair.

use at_protocol::crypto::CryptoError;

use crate::context::Shared;
use crate::error::AtError;
use crate::metadata::MetaUpdate;

use super::{put, read, Read, AT_SECRET, AT_SECRET_DELETED};

/// Marks that the signing key pair exists, so a restart does not generate another.
pub const SIGNING_GENERATED: &str = "privatekey:signing_keypair_generated";

/// A signing key pair being generated in the background, as (public, private) base64.
pub type PendingKeyPair = tokio::task::JoinHandle<Result<(String, String), CryptoError>>;

/// Start-up: seed the CRAM secret unless onboarding disabled CRAM, and create the server's
/// signing key pair on first start (§4.3, §12.1), taking it from `pending` when the caller started
/// generating it early.
pub async fn initialise(shared: &Shared, pending: Option<PendingKeyPair>) -> Result<(), AtError> {
    let me = shared.config.atsign.clone();
    if let Some(secret) = shared.config.cram_secret.clone() {
        let deleted = matches!(read(shared, AT_SECRET_DELETED).await?, Read::Active(_));
        if !deleted {
            put(
                shared,
                AT_SECRET,
                Some(secret),
                &MetaUpdate::default(),
                true,
            )
            .await?;
        }
    }
    if matches!(read(shared, SIGNING_GENERATED).await?, Read::Missing) {
        let pending = pending
            .unwrap_or_else(|| tokio::task::spawn_blocking(crate::crypto::generate_rsa_keypair));
        let (public, private) = pending
            .await
            .map_err(|_| AtError::internal("key generation task failed"))?
            .map_err(|e| AtError::internal(e.to_string()))?;
        let none = MetaUpdate::default();
        put(
            shared,
            &format!("public:signing_publickey{me}"),
            Some(public),
            &none,
            false,
        )
        .await?;
        let private_key = format!("@{}:signing_privatekey{me}", me.trim_start_matches('@'));
        put(shared, &private_key, Some(private), &none, false).await?;
        put(shared, SIGNING_GENERATED, Some("true".into()), &none, true).await?;
        tracing::info!("server signing key pair generated");
    }
    Ok(())
}
