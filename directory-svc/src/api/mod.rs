//! The HTTP side: registration API (bearer token), OpenAPI document, health, readiness and metrics.

mod error;
mod handlers;
mod validate;

use std::sync::Arc;

use axum::extract::{Request, State};
use axum::http::header;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::Router;
use subtle::ConstantTimeEq;

use crate::directory::Directory;

pub use error::ApiError;

/// The OpenAPI document, checked in beside the crate and served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");

/// Every route the router serves, as (method, path template); a test holds the OpenAPI document to it.
pub const ROUTES: &[(&str, &str)] = &[
    ("get", "/v1/atsigns"),
    ("put", "/v1/atsigns/{atsign}"),
    ("get", "/v1/atsigns/{atsign}"),
    ("delete", "/v1/atsigns/{atsign}"),
    ("get", "/v1/openapi.json"),
    ("get", "/healthz"),
    ("get", "/readyz"),
    ("get", "/metrics"),
];

#[derive(Clone)]
pub struct ApiState {
    pub directory: Directory,
    pub token: Arc<str>,
}

async fn require_token(State(state): State<ApiState>, request: Request, next: Next) -> Response {
    let presented = request
        .headers()
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .map(str::trim);
    match presented {
        Some(token) if bool::from(token.as_bytes().ct_eq(state.token.as_bytes())) => {
            next.run(request).await
        }
        _ => ApiError::unauthorized().into_response(),
    }
}

pub fn router(state: ApiState) -> Router {
    let registrations = Router::new()
        .route("/v1/atsigns", get(handlers::list))
        .route(
            "/v1/atsigns/{atsign}",
            get(handlers::get_one)
                .put(handlers::put_one)
                .delete(handlers::delete_one),
        )
        .route_layer(middleware::from_fn_with_state(state.clone(), require_token));
    Router::new()
        .merge(registrations)
        .route("/v1/openapi.json", get(handlers::openapi))
        .route("/healthz", get(handlers::healthz))
        .route("/readyz", get(handlers::readyz))
        .route("/metrics", get(handlers::metrics))
        .fallback(handlers::no_route)
        .method_not_allowed_fallback(handlers::no_method)
        .with_state(state)
}
