//! Loads the built-in CA from its Secret, creating the Secret on first use. Creation races
//! between replicas are settled by the API server: whoever loses reads the winner's CA.
//!
//! During a rotation (see [`super::ca_rotation`]) the Secret also holds the incoming CA
//! (`next.crt`/`next.key`: trusted, not yet issuing) or the outgoing one (`previous.crt`:
//! trusted until every leaf it issued is replaced).

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::Mutex;

use super::error::Cause;
use crate::build::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::tls::{BuiltInCa, CA_CERT_KEY, CA_KEY_KEY};

/// Keys of the incoming and outgoing CAs in the CA Secret.
pub const NEXT_CERT_KEY: &str = "next.crt";
pub const NEXT_KEY_KEY: &str = "next.key";
pub const PREVIOUS_CERT_KEY: &str = "previous.crt";

/// The built-in CA as the Secret holds it.
pub struct CaState {
    /// The CA that issues leaves now.
    pub issuing: BuiltInCa,
    /// Being rotated in: trusted everywhere before it issues.
    pub next: Option<(String, String)>,
    /// Rotated out: trusted until no leaf of it is left.
    pub previous: Option<String>,
}

impl CaState {
    /// Every CA an atServer must trust now, the issuing one first. Promoting the incoming CA
    /// therefore changes the bundle's text (the same two CAs, the other one first), which rolls
    /// every pod in the same Secret write that re-issues its leaf: each atServer then serves a
    /// leaf of the new CA before [`super::ca_rotation`] retires the old one, whether or not the
    /// running process has reloaded the re-issued files yet (the kubelet refreshes Secret
    /// volumes only after a delay, and the atServer polls its files every 30 s).
    pub fn trusted(&self) -> Vec<String> {
        std::iter::once(self.issuing.cert_pem().to_owned())
            .chain(self.next.as_ref().map(|(c, _)| c.clone()))
            .chain(self.previous.clone())
            .collect()
    }
}

pub struct CaStore {
    pub(super) api: Api<Secret>,
    pub(super) name: String,
    namespace: String,
    cached: Mutex<Option<Arc<CaState>>>,
}

impl CaStore {
    pub fn new(client: kube::Client, namespace: &str, name: &str) -> Self {
        Self {
            api: Api::namespaced(client, namespace),
            name: name.to_owned(),
            namespace: namespace.to_owned(),
            cached: Mutex::new(None),
        }
    }

    pub async fn get(&self) -> Result<Arc<CaState>, Cause> {
        let mut cached = self.cached.lock().await;
        if let Some(ca) = cached.as_ref() {
            return Ok(ca.clone());
        }
        let ca = Arc::new(self.load_or_create().await?);
        *cached = Some(ca.clone());
        Ok(ca)
    }

    /// Replaces the cached state with what `secret` (just written by the rotation) holds.
    pub async fn set(&self, secret: &Secret) -> Result<Arc<CaState>, Cause> {
        let state = Arc::new(self.parse(secret)?);
        *self.cached.lock().await = Some(state.clone());
        Ok(state)
    }

    async fn load_or_create(&self) -> Result<CaState, Cause> {
        if let Some(secret) = self.api.get_opt(&self.name).await? {
            return self.parse(&secret);
        }
        let ca = BuiltInCa::generate(Timestamp::now())?;
        let secret = Secret {
            metadata: ObjectMeta {
                name: Some(self.name.clone()),
                namespace: Some(self.namespace.clone()),
                labels: Some(BTreeMap::from([(
                    LABEL_MANAGED_BY.to_owned(),
                    MANAGED_BY.to_owned(),
                )])),
                ..ObjectMeta::default()
            },
            type_: Some("Opaque".into()),
            data: Some(BTreeMap::from([
                (
                    CA_CERT_KEY.to_owned(),
                    ByteString(ca.cert_pem().as_bytes().to_vec()),
                ),
                (CA_KEY_KEY.to_owned(), ByteString(ca.key_pem().into_bytes())),
            ])),
            ..Secret::default()
        };
        match self.api.create(&PostParams::default(), &secret).await {
            Ok(_) => {
                tracing::info!(namespace = %self.namespace, name = %self.name, "created the built-in CA");
                Ok(CaState {
                    issuing: ca,
                    next: None,
                    previous: None,
                })
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let secret = self.api.get(&self.name).await?;
                self.parse(&secret)
            }
            Err(e) => Err(e.into()),
        }
    }

    pub(super) fn parse(&self, secret: &Secret) -> Result<CaState, Cause> {
        let data = secret.data.as_ref();
        let optional = |k: &str| {
            data.and_then(|d| d.get(k))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .filter(|s| !s.trim().is_empty())
        };
        let field = |k: &str| {
            optional(k).ok_or_else(|| Cause::CaSecret(format!("{}/{}", self.namespace, self.name)))
        };
        let next = match (optional(NEXT_CERT_KEY), optional(NEXT_KEY_KEY)) {
            (Some(c), Some(k)) => Some((c, k)),
            _ => None,
        };
        Ok(CaState {
            issuing: BuiltInCa::from_pem(&field(CA_CERT_KEY)?, &field(CA_KEY_KEY)?)?,
            next,
            previous: optional(PREVIOUS_CERT_KEY),
        })
    }
}
