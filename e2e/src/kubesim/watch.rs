//! Watch streams: newline-delimited JSON events, resumable from any resourceVersion still in the
//! history window (older ones get an ERROR event with a 410 Status), with periodic bookmarks and a
//! server-side timeout.

use std::sync::Arc;
use std::time::Duration;

use axum::body::Body;
use axum::response::Response;
use bytes::Bytes;
use futures::channel::mpsc;
use futures::SinkExt;
use serde_json::{json, Value};
use tokio::sync::mpsc::UnboundedReceiver;

use super::error::ApiError;
use super::objects::view;
use super::resources::ResourceType;
use super::selectors::Selectors;
use super::store::{Event, EventType};
use super::Shared;

/// What a watch asks for.
#[derive(Debug, Clone, Default)]
pub struct WatchRequest {
    pub namespace: Option<String>,
    pub selectors: Selectors,
    pub resource_version: Option<String>,
    pub bookmarks: bool,
    pub send_initial_events: bool,
    pub timeout: Option<Duration>,
}

struct Filter {
    rt: ResourceType,
    namespace: Option<String>,
    selectors: Selectors,
}

impl Filter {
    fn selects(&self, object: &Value) -> bool {
        let ns_ok = self
            .namespace
            .as_deref()
            .is_none_or(|ns| object["metadata"]["namespace"].as_str() == Some(ns));
        if !ns_ok {
            return false;
        }
        // Labels read the same in every view; only field selectors need the served shape, and
        // copying every object for every watcher made event fan-out expensive.
        if self.selectors.fields.is_empty() {
            return self.selectors.labels.matches(object);
        }
        self.selectors.matches(&view(&self.rt, object.clone()))
    }

    /// The event a watcher sees, translating moves into and out of the selection.
    fn translate(&self, event: &Event) -> Option<Value> {
        let now = self.selects(&event.object);
        let before = event.old.as_ref().is_some_and(|o| self.selects(o));
        let kind = match event.kind {
            EventType::Added if now => EventType::Added,
            EventType::Modified if now && before => EventType::Modified,
            EventType::Modified if now => EventType::Added,
            EventType::Modified if before => EventType::Deleted,
            EventType::Deleted if now || before => EventType::Deleted,
            _ => return None,
        };
        Some(line(kind.as_str(), view(&self.rt, event.object.clone())))
    }

    fn bookmark(&self, rv: u64, initial_end: bool) -> Value {
        let mut metadata = json!({"resourceVersion": rv.to_string()});
        if initial_end {
            metadata["annotations"] = json!({"k8s.io/initial-events-end": "true"});
        }
        line(
            "BOOKMARK",
            json!({"kind": self.rt.kind, "apiVersion": self.rt.api_version(), "metadata": metadata}),
        )
    }
}

fn line(kind: &str, object: Value) -> Value {
    json!({"type": kind, "object": object})
}

fn response(body: Body) -> Response {
    Response::builder()
        .header("content-type", "application/json")
        .body(body)
        .unwrap_or_default()
}

/// Starts a watch; the events before the live stream are computed under the lock, so nothing is
/// missed or repeated between history replay and live delivery.
pub fn start(
    shared: Arc<Shared>,
    rt: ResourceType,
    req: WatchRequest,
) -> Result<Response, ApiError> {
    let filter = Filter {
        rt,
        namespace: req.namespace.clone(),
        selectors: req.selectors.clone(),
    };
    let gr = filter.rt.group_resource();
    let requested: Option<u64> = match req.resource_version.as_deref() {
        None | Some("") => None,
        Some(rv) => Some(
            rv.parse()
                .map_err(|_| ApiError::bad_request(format!("invalid resourceVersion {rv:?}")))?,
        ),
    };
    let (initial, live) = {
        let mut state = shared.lock();
        let mut initial: Vec<Value> = Vec::new();
        match requested {
            None | Some(0) => {
                for (_, object) in state.store.list(&gr, filter.namespace.as_deref()) {
                    if filter.selects(object) {
                        initial.push(line("ADDED", view(&filter.rt, object.clone())));
                    }
                }
                if req.send_initial_events {
                    initial.push(filter.bookmark(state.store.current_rv(), true));
                }
            }
            Some(rv) => match state.store.events_since(&gr, rv) {
                Ok(events) => {
                    initial.extend(events.iter().filter_map(|e| filter.translate(e)));
                    if req.send_initial_events {
                        initial.push(filter.bookmark(state.store.current_rv(), true));
                    }
                }
                Err(too_old) => {
                    let gone = ApiError::gone(format!(
                        "too old resource version: {} ({})",
                        too_old.requested, too_old.oldest
                    ));
                    let body = format!("{}\n", line("ERROR", gone.status()));
                    return Ok(response(Body::from(body)));
                }
            },
        }
        (initial, state.store.subscribe(&gr))
    };
    let (tx, rx) = mpsc::channel::<Result<Bytes, std::io::Error>>(64);
    let timeout = req.timeout.unwrap_or(Duration::from_secs(1800));
    let bookmarks = req.bookmarks.then_some(shared.config.bookmark_interval);
    tokio::spawn(pump(shared, filter, initial, live, tx, timeout, bookmarks));
    Ok(response(Body::from_stream(rx)))
}

async fn pump(
    shared: Arc<Shared>,
    filter: Filter,
    initial: Vec<Value>,
    mut live: UnboundedReceiver<Arc<Event>>,
    mut tx: mpsc::Sender<Result<Bytes, std::io::Error>>,
    timeout: Duration,
    bookmarks: Option<Duration>,
) {
    let deadline = tokio::time::sleep(timeout);
    tokio::pin!(deadline);
    let period = bookmarks.unwrap_or(Duration::from_secs(3600));
    let mut ticker = tokio::time::interval_at(tokio::time::Instant::now() + period, period);
    let send = |v: Value| Ok(Bytes::from(format!("{v}\n")));
    for v in initial {
        if tx.send(send(v)).await.is_err() {
            return;
        }
    }
    loop {
        let out: Vec<Value> = tokio::select! {
            _ = &mut deadline => return,
            _ = shared.shutdown.cancelled() => return,
            event = live.recv() => match event {
                Some(e) => filter.translate(&e).into_iter().collect(),
                None => return,
            },
            _ = ticker.tick(), if bookmarks.is_some() => {
                // Drain under the lock so the bookmark's resourceVersion never precedes an undelivered event.
                let _state = shared.lock();
                let rv = _state.store.current_rv();
                let mut batch = Vec::new();
                while let Ok(e) = live.try_recv() {
                    batch.extend(filter.translate(&e));
                }
                batch.push(filter.bookmark(rv, false));
                batch
            }
        };
        for v in out {
            if tx.send(send(v)).await.is_err() {
                return;
            }
        }
    }
}
