//! Which handler serves which path, and which paths need the bearer token.

use axum::middleware;
use axum::routing::get;
use axum::Router;

use super::auth::require_token;
use super::handlers;
use super::state::ApiState;

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
