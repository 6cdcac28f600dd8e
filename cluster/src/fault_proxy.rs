//! A proxy in front of the real apiserver that injects API faults and keeps a log of requests.
//!
//! Clients speak plain HTTP to it on loopback without credentials; it forwards each request
//! through an upstream [`kube::Client`] (the identity whose permissions are under test), so the
//! real authentication, authorization, admission and storage answer everything it does not fail
//! on purpose. Faults: writes refused with 500 or 409, any request throttled with 429 and
//! `Retry-After`, watches cut after a while, added latency.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::body::Body as AxumBody;
use axum::extract::{Request, State};
use axum::response::{IntoResponse, Response};
use axum::Router;
use futures::StreamExt;
use http::{Method, StatusCode};
use http_body_util::BodyExt;
use rand::Rng;
use serde_json::json;

use crate::ClusterError;

#[derive(Debug, Clone, Default, PartialEq)]
pub struct FaultConfig {
    /// Probability (0.0–1.0) that a write (POST, PUT, PATCH, DELETE) fails with 500.
    pub error_rate: f64,
    /// Probability that a write fails with 409 Conflict.
    pub conflict_rate: f64,
    /// Probability that any request is refused with 429 and `Retry-After: 1`.
    pub throttle_rate: f64,
    /// Watches end (cleanly, as an apiserver's timeout would) after this long.
    pub cut_watches_after: Option<Duration>,
    /// Added before every request is forwarded.
    pub latency: Duration,
    /// When set, only requests whose path contains this are subject to the faults above (to
    /// refuse the writes of one object and no other).
    pub only_paths_containing: Option<String>,
}

/// One request that reached the proxy.
#[derive(Debug, Clone, PartialEq)]
pub struct Logged {
    pub method: String,
    /// Path and query.
    pub uri: String,
    /// The status the client got (injected or the apiserver's).
    pub status: u16,
    pub injected: bool,
}

impl Logged {
    pub fn is_write(&self) -> bool {
        matches!(self.method.as_str(), "POST" | "PUT" | "PATCH" | "DELETE")
    }
    pub fn is_watch(&self) -> bool {
        self.uri.contains("watch=true") || self.uri.contains("watch=1")
    }
}

#[derive(Default)]
struct Shared {
    faults: FaultConfig,
    log: Vec<Logged>,
}

#[derive(Clone)]
struct ProxyState {
    upstream: kube::Client,
    shared: Arc<Mutex<Shared>>,
}

pub struct FaultProxy {
    /// `http://127.0.0.1:<port>`
    pub url: String,
    shared: Arc<Mutex<Shared>>,
    task: tokio::task::JoinHandle<()>,
}

impl FaultProxy {
    /// Listens on a free loopback port and forwards through `upstream`.
    pub async fn start(upstream: kube::Client) -> Result<Self, ClusterError> {
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
            .await
            .map_err(ClusterError::io("127.0.0.1:0"))?;
        let addr = listener
            .local_addr()
            .map_err(ClusterError::io("127.0.0.1:0"))?;
        let shared = Arc::new(Mutex::new(Shared::default()));
        let app = Router::new().fallback(forward).with_state(ProxyState {
            upstream,
            shared: shared.clone(),
        });
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app).await;
        });
        Ok(Self {
            url: format!("http://{addr}"),
            shared,
            task,
        })
    }

    /// A client that talks to the apiserver through this proxy.
    pub fn client(&self) -> Result<kube::Client, ClusterError> {
        let url = self
            .url
            .parse()
            .map_err(|e| ClusterError::Kubeconfig(format!("{}: {e}", self.url)))?;
        Ok(kube::Client::try_from(kube::Config::new(url))?)
    }

    /// Writes a kubeconfig for a process to reach the apiserver through this proxy (plain HTTP
    /// on loopback, no credentials: the proxy adds the upstream identity).
    pub fn write_kubeconfig(&self, path: &std::path::Path) -> Result<(), ClusterError> {
        let doc = json!({
            "apiVersion": "v1", "kind": "Config",
            "clusters": [{ "name": "proxy", "cluster": { "server": self.url } }],
            "users": [{ "name": "proxy", "user": {} }],
            "contexts": [{ "name": "proxy", "context": { "cluster": "proxy", "user": "proxy" } }],
            "current-context": "proxy",
        });
        std::fs::write(path, doc.to_string()).map_err(ClusterError::io(path))
    }

    pub fn set(&self, faults: FaultConfig) {
        lock(&self.shared).faults = faults;
    }

    /// Every request so far, oldest first.
    pub fn log(&self) -> Vec<Logged> {
        lock(&self.shared).log.clone()
    }

    /// Forgets the log.
    pub fn clear_log(&self) {
        lock(&self.shared).log.clear();
    }

    /// How many responses were injected rather than forwarded.
    pub fn injected(&self) -> usize {
        lock(&self.shared).log.iter().filter(|l| l.injected).count()
    }
}

impl Drop for FaultProxy {
    fn drop(&mut self) {
        self.task.abort();
    }
}

fn lock(shared: &Mutex<Shared>) -> std::sync::MutexGuard<'_, Shared> {
    shared.lock().unwrap_or_else(|p| p.into_inner())
}

fn status_body(code: StatusCode, reason: &str, message: &str) -> Response {
    let body = json!({
        "kind": "Status", "apiVersion": "v1", "metadata": {}, "status": "Failure",
        "message": message, "reason": reason, "code": code.as_u16(),
    });
    (
        code,
        [("content-type", "application/json")],
        body.to_string(),
    )
        .into_response()
}

/// What the dice say for this request, if anything.
fn injected_fault(faults: &FaultConfig, method: &Method, uri: &str) -> Option<Response> {
    if let Some(part) = &faults.only_paths_containing {
        if !uri
            .split('?')
            .next()
            .unwrap_or_default()
            .contains(part.as_str())
        {
            return None;
        }
    }
    let write = matches!(
        *method,
        Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    let mut rng = rand::thread_rng();
    if faults.throttle_rate > 0.0 && rng.gen::<f64>() < faults.throttle_rate {
        let mut r = status_body(
            StatusCode::TOO_MANY_REQUESTS,
            "TooManyRequests",
            "injected by the fault proxy: too many requests",
        );
        r.headers_mut()
            .insert("retry-after", http::HeaderValue::from_static("1"));
        return Some(r);
    }
    if write && faults.error_rate > 0.0 && rng.gen::<f64>() < faults.error_rate {
        return Some(status_body(
            StatusCode::INTERNAL_SERVER_ERROR,
            "InternalError",
            "injected by the fault proxy: internal error",
        ));
    }
    if write && faults.conflict_rate > 0.0 && rng.gen::<f64>() < faults.conflict_rate {
        return Some(status_body(
            StatusCode::CONFLICT,
            "Conflict",
            "injected by the fault proxy: the object has been modified",
        ));
    }
    None
}

async fn forward(State(state): State<ProxyState>, req: Request) -> Response {
    let faults = lock(&state.shared).faults.clone();
    let method = req.method().clone();
    let uri = req
        .uri()
        .path_and_query()
        .map(|p| p.as_str().to_owned())
        .unwrap_or_else(|| "/".into());
    let record = |status: u16, injected: bool| {
        lock(&state.shared).log.push(Logged {
            method: method.to_string(),
            uri: uri.clone(),
            status,
            injected,
        });
    };
    if !faults.latency.is_zero() {
        tokio::time::sleep(faults.latency).await;
    }
    if let Some(response) = injected_fault(&faults, &method, &uri) {
        record(response.status().as_u16(), true);
        return response;
    }
    let (parts, body) = req.into_parts();
    let body = match body.collect().await {
        Ok(b) => b.to_bytes().to_vec(),
        Err(e) => return status_body(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let mut upstream = http::Request::builder().method(parts.method).uri(&uri);
    for (name, value) in &parts.headers {
        // The upstream client adds its own credentials and host.
        if name != http::header::HOST && name != http::header::AUTHORIZATION {
            upstream = upstream.header(name, value);
        }
    }
    let upstream = match upstream.body(kube::client::Body::from(body)) {
        Ok(r) => r,
        Err(e) => return status_body(StatusCode::BAD_REQUEST, "BadRequest", &e.to_string()),
    };
    let response = match state.upstream.send(upstream).await {
        Ok(r) => r,
        Err(e) => {
            record(502, false);
            return status_body(StatusCode::BAD_GATEWAY, "BadGateway", &e.to_string());
        }
    };
    record(response.status().as_u16(), false);
    let (parts, body) = response.into_parts();
    let watch = uri.contains("watch=true") || uri.contains("watch=1");
    let stream = body.into_data_stream();
    let body = match (watch, faults.cut_watches_after) {
        (true, Some(after)) => {
            AxumBody::from_stream(stream.take_until(tokio::time::sleep(after)).boxed())
        }
        _ => AxumBody::from_stream(stream),
    };
    Response::from_parts(parts, body)
}
