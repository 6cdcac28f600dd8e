//! atfleet's Kubernetes operator: `Atsign` and `AtServerClass` resources reconciled into a
//! registered, TLS-secured atServer per atSign.

pub mod api_errors;
pub mod atsign;
pub mod build;
pub mod controller;
pub mod crd;
pub mod default_class;
pub mod directory;
pub mod endpoint;
pub mod events;
pub mod http;
pub mod leader;
pub mod metrics;
pub mod operator;
pub mod quantity;
pub mod resolve;
pub mod tls;
