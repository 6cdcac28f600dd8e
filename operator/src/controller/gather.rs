//! The Validate and Gather steps.
//!
//! Validate resolves the spec against its class; an unusable spec stops the pipeline with a
//! reason (a status, not an error). Gather reads everything the build and the applies decide on
//! that the spec does not hold: the current children (from the watch caches, read on a miss),
//! the CRAM secret, the built-in CA, the endpoint the current Service publishes, the TLSRoute
//! version the cluster serves, and whether another owner holds the atSign.
//!
//! The endpoint comes from the Service as it is. A new Service gets its node port or balancer
//! address from the cluster, and its change (watched) reconciles again, now with an endpoint to
//! issue the certificate for: each child is built once per reconcile, from what was read.

use std::sync::Arc;

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Secret, Service};
use kube::runtime::controller::Action;
use kube::runtime::reflector::{ObjectRef, Store};
use kube::{Api, Resource};
use serde::de::DeserializeOwned;

use super::absent::Optional;
use super::ca_store::CaState;
use super::cache::{self, Caches};
use super::conditions::RegistrationState;
use super::context::{jitter, Context};
use super::error::{Cause, Error};
use super::materials;
use super::register;
use crate::build::{self, TlsRouteVersion};
use crate::crd::{AtServerClass, Atsign, ExposureMode};
use crate::endpoint::{self, Endpoint};
use crate::resolve::{resolve, Resolved};

/// Why the pipeline stopped at Validate, and when to look again.
#[derive(Debug)]
pub struct Invalid {
    pub reason: &'static str,
    pub message: String,
    pub then: Action,
}

/// The Validate step: the class, then the spec against it.
pub async fn validate(
    atsign: &Atsign,
    ctx: &Context,
    caches: &Caches,
) -> Result<Result<Resolved, Invalid>, Error> {
    let class = match &atsign.spec.class_name {
        Some(class_name) => match class(ctx, caches, class_name).await? {
            Some(c) => Some(c),
            None => {
                return Ok(Err(Invalid {
                    reason: "ClassNotFound",
                    message: format!("AtServerClass {class_name:?} does not exist"),
                    // Classes are watched; the resync is the safety net.
                    then: Action::requeue(jitter(ctx.config.resync)),
                }));
            }
        },
        None => None,
    };
    Ok(resolve(
        atsign,
        class.as_ref().map(|c| &c.spec),
        &ctx.config.defaults,
    )
    .map_err(|e| {
        Invalid {
            reason: e.reason(),
            message: e.to_string(),
            // Nothing changes until the spec does.
            then: Action::await_change(),
        }
    }))
}

/// The class from the cache, or read when the cache has not seen it (yet): a class created just
/// before its Atsign must not be reported missing.
async fn class(ctx: &Context, caches: &Caches, name: &str) -> Result<Option<AtServerClass>, Error> {
    match caches.classes.get(&ObjectRef::new(name)) {
        Some(c) => Ok(Some(AtServerClass::clone(&c))),
        None => Api::<AtServerClass>::all(ctx.client.clone())
            .get_opt(name)
            .await
            .map_err(|e| Error::Validate(e.into())),
    }
}

/// What the Gather step read.
pub struct Gathered {
    pub resolved: Resolved,
    /// The CRAM secret: the stored one, or one generated now (`cram_created`).
    pub cram: String,
    pub cram_created: bool,
    pub cram_secret: Option<Secret>,
    pub tls_secret: Option<Secret>,
    pub service: Option<Service>,
    pub statefulset: Option<StatefulSet>,
    /// The built-in CA, when it issues this Atsign's certificate (no issuer named).
    pub ca: Option<Arc<CaState>>,
    /// Where the current Service publishes the atServer, once the cluster assigned it.
    pub endpoint: Option<Endpoint>,
    pub route_version: TlsRouteVersion,
    /// Set while another owner holds the atSign: the atServer stays at zero replicas.
    pub parked: Option<RegistrationState>,
}

/// The Gather step.
pub async fn gather(
    atsign: &Atsign,
    ctx: &Context,
    caches: &Caches,
    resolved: Resolved,
) -> Result<Gathered, Error> {
    let (ns, name) = (resolved.namespace.as_str(), resolved.name.as_str());
    let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), ns);
    let cram_secret = cached_or_read(
        &caches.secrets,
        &secrets,
        ns,
        &build::cram_secret_name(name),
    )
    .await?;
    let tls_secret =
        cached_or_read(&caches.secrets, &secrets, ns, &build::tls_secret_name(name)).await?;
    let service = cached_or_read(
        &caches.services,
        &Api::namespaced(ctx.client.clone(), ns),
        ns,
        &build::service_name(name),
    )
    .await?;
    let statefulset = cache::lookup(&caches.statefulsets, ns, &build::statefulset_name(name));
    let ca = match resolved.issuer {
        None => Some(
            ctx.ca
                .get()
                .await
                .map_err(Error::gather("the built-in CA"))?,
        ),
        Some(_) => None,
    };
    // Gateway API's served TLSRoute version, only looked up when a route is or was in play.
    let route_version = if resolved.exposure.mode == ExposureMode::TLSRoute
        || !ctx.absent.is_absent(ns, name, Optional::TlsRoute)
    {
        ctx.routes.get(&ctx.client).await
    } else {
        TlsRouteVersion::default()
    };
    let parked = register::still_in_conflict(atsign, ctx, &resolved).await;
    let (cram, cram_created) = materials::cram_secret(cram_secret.as_ref());
    let endpoint = endpoint::published(&resolved, service.as_ref());
    Ok(Gathered {
        resolved,
        cram,
        cram_created,
        cram_secret,
        tls_secret,
        service,
        statefulset,
        ca,
        endpoint,
        route_version,
        parked,
    })
}

/// A child from the cache; one the cache has not seen (yet) is read. For the Secrets a miss
/// would mean generating a CRAM secret or issuing a certificate afresh; for the Service, writing
/// it again when it was only created a moment ago.
async fn cached_or_read<K>(
    store: &Store<K>,
    api: &Api<K>,
    ns: &str,
    name: &str,
) -> Result<Option<K>, Error>
where
    K: Resource<DynamicType = ()> + Clone + DeserializeOwned + std::fmt::Debug,
{
    match cache::lookup(store, ns, name) {
        Some(o) => Ok(Some(o)),
        None => api.get_opt(name).await.map_err(|e| Error::Gather {
            what: format!("the {} {ns}/{name}", K::kind(&())),
            cause: Cause::from(e),
        }),
    }
}
