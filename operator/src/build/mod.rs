//! Pure builders: from a resolved spec and the materials the reconciler gathered (secrets,
//! certificates) to the exact children that should exist. No IO, no clock, no randomness,
//! so the output is snapshot-tested.

mod certificate;
mod children;
mod names;
mod object;
mod secrets;
mod service;
mod statefulset;
mod storage;
mod trust;

/// The built-in CA's certificate and key, as the builders put them into the TLS Secret.
pub use crate::tls::TlsMaterial;
pub use certificate::certificate_api_resource;
pub use children::{build, Children, Materials};
pub use names::*;
pub use service::{tls_route_api_resource, TlsRouteVersion};
pub use trust::trust_bundle;
