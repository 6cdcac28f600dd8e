//! The Atsign controller: watches, the reconcile pipeline, the finalizer and status.

mod absent;
mod apply;
mod apply_children;
mod ca_rotation;
mod ca_store;
mod cache;
mod claims;
mod cleanup;
mod conditions;
mod context;
mod deregistrations;
mod drift;
mod error;
mod gather;
mod materials;
mod observe;
mod orphans;
mod reconcile;
mod register;
mod rollout;
mod route_version;
mod run;
mod status;
mod step;
mod volume;

pub use ca_rotation::ROTATE_ANNOTATION;
pub use conditions::{compute_status, Observed};
pub use context::{jitter, Config, Context, FIELD_MANAGER, FINALIZER, SKIP_DEREGISTER_ANNOTATION};
pub use error::{ApplyError, Cause, ChildFailure, Error, OrphanError};
pub use run::run;
