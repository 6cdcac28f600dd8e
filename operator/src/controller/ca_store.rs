//! Loads the built-in CA from its Secret, creating the Secret on first use. Creation races
//! between replicas are settled by the API server: whoever loses reads the winner's CA.

use std::collections::BTreeMap;
use std::sync::Arc;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Secret;
use k8s_openapi::ByteString;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;
use tokio::sync::Mutex;

use super::Error;
use crate::build::{LABEL_MANAGED_BY, MANAGED_BY};
use crate::tls::{BuiltInCa, CA_CERT_KEY, CA_KEY_KEY};

pub struct CaStore {
    api: Api<Secret>,
    name: String,
    namespace: String,
    cached: Mutex<Option<Arc<BuiltInCa>>>,
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

    pub async fn get(&self) -> Result<Arc<BuiltInCa>, Error> {
        let mut cached = self.cached.lock().await;
        if let Some(ca) = cached.as_ref() {
            return Ok(ca.clone());
        }
        let ca = Arc::new(self.load_or_create().await?);
        *cached = Some(ca.clone());
        Ok(ca)
    }

    async fn load_or_create(&self) -> Result<BuiltInCa, Error> {
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
                Ok(ca)
            }
            Err(kube::Error::Api(s)) if s.code == 409 => {
                let secret = self.api.get(&self.name).await?;
                self.parse(&secret)
            }
            Err(e) => Err(e.into()),
        }
    }

    fn parse(&self, secret: &Secret) -> Result<BuiltInCa, Error> {
        let data = secret.data.as_ref();
        let field = |k: &str| {
            data.and_then(|d| d.get(k))
                .and_then(|b| String::from_utf8(b.0.clone()).ok())
                .ok_or_else(|| Error::CaSecret(format!("{}/{}", self.namespace, self.name)))
        };
        Ok(BuiltInCa::from_pem(
            &field(CA_CERT_KEY)?,
            &field(CA_KEY_KEY)?,
        )?)
    }
}
