//! The HTTP side: registration API (bearer token), OpenAPI document, health, readiness and metrics.

mod auth;
mod error;
mod handlers;
mod openapi;
mod router;
mod state;
mod validate;

pub use error::ApiError;
pub use openapi::OPENAPI;
pub use router::{router, ROUTES};
pub use state::ApiState;
