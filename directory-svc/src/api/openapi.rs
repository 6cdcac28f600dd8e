//! The API's contract, served as is; a test holds it to the router's `ROUTES`.

/// The OpenAPI document, checked in beside the crate and served at `/v1/openapi.json`.
pub const OPENAPI: &str = include_str!("../../openapi.json");
