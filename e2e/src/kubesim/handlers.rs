//! HTTP entry point: routes every request by its path, decodes bodies and query parameters, and
//! turns results into Kubernetes-shaped responses.

use std::collections::HashMap;
use std::sync::Arc;
use std::time::Duration;

use axum::body::Bytes;
use axum::extract::{Request, State};
use axum::http::{HeaderMap, Method, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::Json;
use serde_json::{json, Value};

use super::audit::AuditEvent;
use super::deletion::{self, DeleteOptions};
use super::discovery;
use super::error::{ApiError, ApiResult};
use super::listing;
use super::lists::ListTypes;
use super::objects::{self, WriteOptions};
use super::openapi;
use super::patch;
use super::patch::PatchType;
use super::resources::{ResourceType, ScalePaths};
use super::routes::{self, ResourcePath, Route};
use super::scale;
use super::selectors::{FieldSelector, LabelSelector, Selectors};
use super::table;
use super::watch::{self, WatchRequest};
use super::Shared;

type Query = HashMap<String, String>;

fn query_of(uri: &axum::http::Uri) -> Query {
    uri.query()
        .map(|q| {
            q.split('&')
                .map(|pair| {
                    let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
                    let decode = |s: &str| percent_decode(&s.replace('+', " "));
                    (decode(k), decode(v))
                })
                .collect()
        })
        .unwrap_or_default()
}

fn percent_decode(s: &str) -> String {
    let bytes = s.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            if let Some(b) = s
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
            {
                out.push(b);
                i += 3;
                continue;
            }
        }
        out.push(bytes[i]);
        i += 1;
    }
    String::from_utf8_lossy(&out).into_owned()
}

fn truthy(q: &Query, key: &str) -> bool {
    matches!(q.get(key).map(String::as_str), Some("true" | "1"))
}

/// Records every request in the audit log and applies injected faults to writes.
pub async fn audit_and_faults(
    State(shared): State<Arc<Shared>>,
    request: Request,
    next: Next,
) -> Response {
    let method = request.method().as_str().to_string();
    let path = request.uri().path().to_string();
    let q = query_of(request.uri());
    let user_agent = request
        .headers()
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_string();
    let resource = match routes::parse(&path) {
        Some(Route::Resource(p)) => Some(p),
        _ => None,
    };
    let faults = shared.faults.get();
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    let is_write = matches!(method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE");
    let injected = if is_write && resource.is_some() {
        shared.faults.write_failure()
    } else {
        None
    };
    let response = match injected {
        Some(e) => e.into_response(),
        None => next.run(request).await,
    };
    let p = resource.unwrap_or_default();
    let verb = if p.plural.is_empty() {
        method.to_lowercase()
    } else {
        routes::verb(&method, &p, truthy(&q, "watch")).to_string()
    };
    shared.audit.record(AuditEvent {
        verb,
        group: p.group,
        resource: p.plural,
        subresource: p.subresource.unwrap_or_default(),
        namespace: p.namespace.unwrap_or_default(),
        name: p.name.unwrap_or_default(),
        path,
        user_agent,
        code: response.status().as_u16(),
    });
    response
}

pub async fn handle(
    State(shared): State<Arc<Shared>>,
    method: Method,
    uri: axum::http::Uri,
    headers: HeaderMap,
    body: Bytes,
) -> Response {
    let q = query_of(&uri);
    let Some(route) = routes::parse(uri.path()) else {
        return ApiError::path_not_found(uri.path()).into_response();
    };
    let result = match route {
        Route::Resource(path) => {
            return resource(shared, method, path, q, headers, body)
                .await
                .unwrap_or_else(IntoResponse::into_response)
        }
        Route::Health => return (StatusCode::OK, "ok").into_response(),
        Route::Version => Some(discovery::version()),
        Route::CoreVersions => Some(discovery::core_versions(&shared.addr.to_string())),
        Route::GroupList => Some(discovery::group_list(&shared.lock().registry)),
        Route::Group(g) => discovery::group(&shared.lock().registry, &g),
        Route::ResourceList { group, version } => {
            discovery::resource_list(&shared.lock().registry, &group, &version)
        }
        Route::OpenApiV3Root => Some(openapi::root(&shared.lock().registry)),
        Route::OpenApiV3 { group, version } => {
            openapi::group_version(&shared.lock().registry, &group, &version)
        }
        Route::OpenApiV2 => None,
    };
    match result {
        Some(doc) if method == Method::GET => Json(doc).into_response(),
        Some(_) => {
            ApiError::method_not_allowed(format!("{method} is not supported here")).into_response()
        }
        None => ApiError::path_not_found(uri.path()).into_response(),
    }
}

fn decode_body(headers: &HeaderMap, body: &Bytes) -> ApiResult<Value> {
    let ct = headers
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("application/json");
    if ct.contains("protobuf") || ct.contains("cbor") {
        // Clients fall back to JSON when the server refuses a binary encoding with 415.
        return Err(ApiError::unsupported_media_type(ct));
    }
    if ct.contains("yaml") {
        serde_yaml::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid YAML body: {e}")))
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid JSON body: {e}")))
    }
}

fn manager(q: &Query, headers: &HeaderMap, default_from_agent: bool) -> String {
    if let Some(m) = q.get("fieldManager").filter(|m| !m.is_empty()) {
        return m.clone();
    }
    if !default_from_agent {
        return String::new();
    }
    let agent = headers
        .get("user-agent")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("unknown");
    agent.split('/').next().unwrap_or("unknown").to_string()
}

fn selectors(q: &Query) -> ApiResult<Selectors> {
    let labels = LabelSelector::parse(
        q.get("labelSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    let fields = FieldSelector::parse(
        q.get("fieldSelector")
            .map(String::as_str)
            .unwrap_or_default(),
    )
    .map_err(ApiError::bad_request)?;
    Ok(Selectors { labels, fields })
}

fn wants_table(headers: &HeaderMap) -> bool {
    headers
        .get("accept")
        .and_then(|v| v.to_str().ok())
        .is_some_and(|a| a.split(',').next().unwrap_or_default().contains("as=Table"))
}

async fn resource(
    shared: Arc<Shared>,
    method: Method,
    path: ResourcePath,
    q: Query,
    headers: HeaderMap,
    body: Bytes,
) -> ApiResult<Response> {
    let rt: ResourceType = shared
        .lock()
        .registry
        .lookup(&path.group, &path.version, &path.plural)
        .cloned()
        .ok_or_else(|| {
            ApiError::path_not_found(&format!("{}/{}/{}", path.group, path.version, path.plural))
        })?;
    if rt.namespaced != path.namespace.is_some() && !(path.name.is_none() && method == Method::GET)
    {
        return Err(ApiError::path_not_found(&rt.plural));
    }
    if path.subresource.as_deref() == Some("scale") {
        let paths = rt
            .scale
            .clone()
            .ok_or_else(|| ApiError::path_not_found(&format!("{}/scale", rt.plural)))?;
        return scale_request(&shared, &rt, &paths, &method, &path, &q, &headers, &body);
    }
    let status = match path.subresource.as_deref() {
        None => false,
        Some("status") if rt.status => true,
        Some("finalize") if rt.kind == "Namespace" => false,
        Some(other) => return Err(ApiError::path_not_found(&format!("{}/{other}", rt.plural))),
    };
    let namespace = path.namespace.clone().unwrap_or_default();
    let dry_run = q.get("dryRun").is_some_and(|d| d == "All");
    let strict = q.get("fieldValidation").is_some_and(|v| v == "Strict");
    let table = wants_table(&headers);
    let respond = |code: StatusCode, v: Value| -> Response {
        if table && v.get("kind").and_then(Value::as_str) != Some("Status") {
            return (code, Json(table::single(&rt, &v))).into_response();
        }
        (code, Json(v)).into_response()
    };
    match (&method, path.name.as_deref()) {
        (&Method::GET, Some(name)) => Ok(respond(
            StatusCode::OK,
            objects::get(&shared.lock(), &rt, &namespace, name)?,
        )),
        (&Method::GET, None) if truthy(&q, "watch") => {
            let req = WatchRequest {
                namespace: path.namespace.clone(),
                selectors: selectors(&q)?,
                resource_version: q.get("resourceVersion").cloned(),
                bookmarks: truthy(&q, "allowWatchBookmarks"),
                send_initial_events: truthy(&q, "sendInitialEvents"),
                timeout: q
                    .get("timeoutSeconds")
                    .and_then(|t| t.parse().ok())
                    .map(Duration::from_secs),
            };
            watch::start(shared.clone(), rt.clone(), req)
        }
        (&Method::GET, None) => {
            let sel = selectors(&q)?;
            let limit = q
                .get("limit")
                .and_then(|l| l.parse().ok())
                .filter(|l| *l > 0);
            let token = q
                .get("continue")
                .map(String::as_str)
                .filter(|c| !c.is_empty());
            let list = listing::list(
                &shared.lock(),
                &rt,
                path.namespace.as_deref(),
                &sel,
                limit,
                token,
            )?;
            if table {
                return Ok(Json(table::list(&rt, &list)).into_response());
            }
            Ok(Json(list).into_response())
        }
        (&Method::POST, None) => {
            let opts = WriteOptions {
                manager: manager(&q, &headers, true),
                dry_run,
                strict,
            };
            let created = objects::create(
                &mut shared.lock(),
                &rt,
                &namespace,
                decode_body(&headers, &body)?,
                &opts,
            )?;
            Ok(respond(StatusCode::CREATED, created))
        }
        (&Method::PUT, Some(name)) => {
            let opts = WriteOptions {
                manager: manager(&q, &headers, true),
                dry_run,
                strict,
            };
            let updated = objects::update(
                &mut shared.lock(),
                &rt,
                &namespace,
                name,
                decode_body(&headers, &body)?,
                status,
                &opts,
            )?;
            Ok(respond(StatusCode::OK, updated))
        }
        (&Method::PATCH, Some(name)) => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = PatchType::from_content_type(ct)
                .ok_or_else(|| ApiError::unsupported_media_type(ct))?;
            let opts = WriteOptions {
                manager: manager(&q, &headers, kind != PatchType::Apply),
                dry_run,
                strict,
            };
            let body = decode_body(&headers, &body)?;
            let force = truthy(&q, "force");
            let mut state = shared.lock();
            let existed = state
                .store
                .get(&rt.group_resource(), &objects::key(&rt, &namespace, name))
                .is_some();
            let patched = objects::patch(
                &mut state, &rt, &namespace, name, kind, body, status, force, &opts,
            )?;
            Ok(respond(
                if existed {
                    StatusCode::OK
                } else {
                    StatusCode::CREATED
                },
                patched,
            ))
        }
        (&Method::DELETE, Some(name)) => {
            let options = delete_options(&q, &body)?;
            Ok(respond(
                StatusCode::OK,
                deletion::delete(&mut shared.lock(), &rt, &namespace, name, &options)?,
            ))
        }
        (&Method::DELETE, None) => {
            let options = delete_options(&q, &body)?;
            let sel = selectors(&q)?;
            let mut state = shared.lock();
            let names: Vec<String> = state
                .store
                .list(&rt.group_resource(), path.namespace.as_deref())
                .filter(|(_, o)| sel.matches(&objects::view(&rt, (*o).clone())))
                .map(|((_, n), _)| n.clone())
                .collect();
            let mut items = Vec::new();
            for name in names {
                items.push(deletion::delete(
                    &mut state, &rt, &namespace, &name, &options,
                )?);
            }
            Ok(Json(json!({"kind": format!("{}List", rt.kind), "apiVersion": rt.api_version(), "metadata": {}, "items": items})).into_response())
        }
        _ => Err(ApiError::method_not_allowed(format!(
            "{method} is not supported on {}",
            rt.plural
        ))),
    }
}

fn delete_options(q: &Query, body: &Bytes) -> ApiResult<DeleteOptions> {
    let mut options: DeleteOptions = if body.iter().all(u8::is_ascii_whitespace) {
        DeleteOptions::default()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| ApiError::bad_request(format!("invalid DeleteOptions: {e}")))?
    };
    if let Some(p) = q.get("propagationPolicy") {
        options.propagation_policy = Some(p.clone());
    }
    if let Some(g) = q.get("gracePeriodSeconds").and_then(|g| g.parse().ok()) {
        options.grace_period_seconds = Some(g);
    }
    if q.get("dryRun").is_some_and(|d| d == "All") {
        options.dry_run = vec!["All".into()];
    }
    Ok(options)
}

/// GET, PUT or PATCH of `/scale`: reads and writes the replica count through the main resource.
#[allow(clippy::too_many_arguments)]
fn scale_request(
    shared: &Shared,
    rt: &ResourceType,
    paths: &ScalePaths,
    method: &Method,
    path: &ResourcePath,
    q: &Query,
    headers: &HeaderMap,
    body: &Bytes,
) -> ApiResult<Response> {
    let name = path
        .name
        .as_deref()
        .ok_or_else(|| ApiError::method_not_allowed("scale needs an object name"))?;
    let namespace = path.namespace.clone().unwrap_or_default();
    let mut state = shared.lock();
    let current = scale::view(paths, &objects::get(&state, rt, &namespace, name)?);
    let wanted = match *method {
        Method::GET => return Ok(Json(current).into_response()),
        Method::PUT => decode_body(headers, body)?,
        Method::PATCH => {
            let ct = headers
                .get("content-type")
                .and_then(|v| v.to_str().ok())
                .unwrap_or_default();
            let kind = match PatchType::from_content_type(ct) {
                Some(PatchType::Json) => PatchType::Json,
                Some(PatchType::Merge | PatchType::Strategic) => PatchType::Merge,
                _ => return Err(ApiError::unsupported_media_type(ct)),
            };
            let mut scale = current;
            patch::patch(
                &mut scale,
                kind,
                &decode_body(headers, body)?,
                ListTypes::new(None),
            )
            .map_err(|e| ApiError::bad_request(e.to_string()))?;
            scale
        }
        _ => {
            return Err(ApiError::method_not_allowed(format!(
                "{method} is not supported on scale"
            )))
        }
    };
    let merge = scale::merge_patch(paths, &wanted)
        .ok_or_else(|| ApiError::bad_request("spec.replicas must be an integer"))?;
    let opts = WriteOptions {
        manager: manager(q, headers, true),
        dry_run: q.get("dryRun").is_some_and(|d| d == "All"),
        strict: false,
    };
    let updated = objects::patch(
        &mut state,
        rt,
        &namespace,
        name,
        PatchType::Merge,
        merge,
        false,
        false,
        &opts,
    )?;
    Ok(Json(scale::view(paths, &updated)).into_response())
}
