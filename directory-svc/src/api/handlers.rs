//! Request handlers. Extractor rejections are turned into the API's JSON errors.

use axum::body::Bytes;
use axum::extract::rejection::QueryRejection;
use axum::extract::{Path, Query, State};
use axum::http::{header, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde::{Deserialize, Serialize};

use super::error::ApiError;
use super::openapi::OPENAPI;
use super::state::ApiState;
use super::validate;
use crate::cache::Address;
use crate::db::{DeleteOutcome, PutOutcome, Registration};

/// A registration as the API shows it.
#[derive(Debug, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct Record {
    atsign: String,
    host: String,
    port: u16,
    owner: String,
    created_at: String,
    updated_at: String,
}

impl From<Registration> for Record {
    fn from(r: Registration) -> Self {
        Self {
            atsign: format!("@{}", r.name),
            host: r.host,
            port: r.port,
            owner: r.owner,
            created_at: r.created_at.to_string(),
            updated_at: r.updated_at.to_string(),
        }
    }
}

#[derive(Debug, Deserialize)]
pub struct PutBody {
    host: String,
    port: i64,
    owner: String,
}

#[derive(Debug, Deserialize)]
pub struct WriteParams {
    force: Option<bool>,
    owner: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct ListParams {
    limit: Option<i64>,
    after: Option<String>,
}

#[derive(Debug, Serialize)]
pub struct Page {
    items: Vec<Record>,
    next: Option<String>,
}

const DEFAULT_PAGE: i64 = 100;
const MAX_PAGE: i64 = 1000;

fn query<T>(q: Result<Query<T>, QueryRejection>) -> Result<T, ApiError> {
    q.map(|Query(t)| t)
        .map_err(|e| ApiError::bad_request("invalid_query", e.body_text()))
}

pub async fn put_one(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    params: Result<Query<WriteParams>, QueryRejection>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let atsign = validate::atsign(&raw)?;
    let params = query(params)?;
    let body: PutBody = serde_json::from_slice(&body).map_err(|e| {
        ApiError::bad_request(
            "invalid_body",
            format!("expected {{\"host\", \"port\", \"owner\"}}: {e}"),
        )
    })?;
    let host = validate::host(&body.host)?;
    let port = validate::port(body.port)?;
    let owner = validate::owner(&body.owner)?;
    let force = params.force.unwrap_or(false);
    let metrics = &state.directory.metrics;
    let outcome = state
        .directory
        .db
        .put(atsign.name(), &host, port, &owner, force)
        .await
        .inspect_err(|_| {
            metrics.registration("put", "error");
        })?;
    let (status, registration) = match outcome {
        PutOutcome::Created(r) => (StatusCode::CREATED, r),
        PutOutcome::Updated(r) => (StatusCode::OK, r),
        PutOutcome::Conflict { current_owner } => {
            metrics.registration("put", "conflict");
            return Err(ApiError::conflict(atsign.as_str(), current_owner));
        }
    };
    metrics.registration(
        "put",
        if status == StatusCode::CREATED {
            "created"
        } else {
            "updated"
        },
    );
    tracing::info!(atsign = %atsign, %host, port, %owner, force, "registered");
    // This replica answers at once; the trigger's notification updates the others (and this one again).
    state
        .directory
        .cache
        .apply_upsert(atsign.name(), Address { host, port });
    Ok((status, Json(Record::from(registration))).into_response())
}

pub async fn get_one(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
) -> Result<Json<Record>, ApiError> {
    let atsign = validate::atsign(&raw)?;
    match state.directory.db.get(atsign.name()).await? {
        Some(r) => Ok(Json(r.into())),
        None => Err(ApiError::not_found(atsign.as_str())),
    }
}

pub async fn list(
    State(state): State<ApiState>,
    params: Result<Query<ListParams>, QueryRejection>,
) -> Result<Json<Page>, ApiError> {
    let params = query(params)?;
    let limit = params.limit.unwrap_or(DEFAULT_PAGE);
    if !(1..=MAX_PAGE).contains(&limit) {
        return Err(ApiError::bad_request(
            "invalid_query",
            format!("limit {limit} is not between 1 and {MAX_PAGE}"),
        ));
    }
    let after = params.after.as_deref().map(validate::atsign).transpose()?;
    let mut rows = state
        .directory
        .db
        .list(after.as_ref().map(|a| a.name()), limit + 1)
        .await?;
    let more = rows.len() as i64 > limit;
    rows.truncate(limit as usize);
    let next = if more {
        rows.last().map(|r| format!("@{}", r.name))
    } else {
        None
    };
    Ok(Json(Page {
        items: rows.into_iter().map(Record::from).collect(),
        next,
    }))
}

pub async fn delete_one(
    State(state): State<ApiState>,
    Path(raw): Path<String>,
    params: Result<Query<WriteParams>, QueryRejection>,
) -> Result<StatusCode, ApiError> {
    let atsign = validate::atsign(&raw)?;
    let params = query(params)?;
    let force = params.force.unwrap_or(false);
    let owner = params.owner.as_deref().map(validate::owner).transpose()?;
    if owner.is_none() && !force {
        return Err(ApiError::bad_request(
            "invalid_query",
            "owner=<owner id> is required unless force=true",
        ));
    }
    let metrics = &state.directory.metrics;
    let outcome = state
        .directory
        .db
        .delete(atsign.name(), owner.as_deref(), force)
        .await
        .inspect_err(|_| {
            metrics.registration("delete", "error");
        })?;
    match outcome {
        DeleteOutcome::Deleted => {
            metrics.registration("delete", "deleted");
            tracing::info!(atsign = %atsign, owner = owner.as_deref().unwrap_or(""), force, "deregistered");
            state.directory.cache.apply_delete(atsign.name());
            Ok(StatusCode::NO_CONTENT)
        }
        DeleteOutcome::NotFound => {
            metrics.registration("delete", "not_found");
            Err(ApiError::not_found(atsign.as_str()))
        }
        DeleteOutcome::Conflict { current_owner } => {
            metrics.registration("delete", "conflict");
            Err(ApiError::conflict(atsign.as_str(), current_owner))
        }
    }
}

pub async fn openapi() -> Response {
    ([(header::CONTENT_TYPE, "application/json")], OPENAPI).into_response()
}

pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

pub async fn readyz(State(state): State<ApiState>) -> Response {
    if state.directory.health.is_up() {
        (
            StatusCode::OK,
            Json(serde_json::json!({"status": "ready", "database": "up"})),
        )
            .into_response()
    } else {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(serde_json::json!({"status": "not_ready", "database": "down"})),
        )
            .into_response()
    }
}

pub async fn metrics(State(state): State<ApiState>) -> Response {
    match state.directory.metrics.encode() {
        Ok(text) => (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
            .into_response(),
        Err(_) => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal",
            "metrics could not be encoded",
        )
        .into_response(),
    }
}

pub async fn no_route() -> ApiError {
    ApiError::new(
        StatusCode::NOT_FOUND,
        "no_route",
        "no such route; see /v1/openapi.json",
    )
}

pub async fn no_method() -> ApiError {
    ApiError::new(
        StatusCode::METHOD_NOT_ALLOWED,
        "method_not_allowed",
        "method not allowed on this route",
    )
}
