//! Operations HTTP: `/healthz`, `/readyz`, `/metrics`.

use std::sync::atomic::Ordering;
use std::sync::Arc;

use axum::extract::State;
use axum::http::{header, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;
use axum::Router;
use tokio::net::TcpListener;

use crate::context::Shared;
use crate::limits::ConnKind;
use crate::metrics::{StatusLabel, TypeLabel};

pub async fn serve(listener: TcpListener, shared: Arc<Shared>) {
    let app = Router::new()
        .route("/healthz", get(|| async { "ok" }))
        .route("/readyz", get(readyz))
        .route("/metrics", get(metrics))
        .with_state(shared.clone());
    let stop = shared.shutdown.clone();
    if let Err(e) = axum::serve(listener, app)
        .with_graceful_shutdown(async move { stop.cancelled().await })
        .await
    {
        tracing::error!(error = %e, "HTTP server failed");
    }
}

async fn readyz(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    let store_ok = shared.store.call(|db| db.schema_version()).await.is_ok();
    let tls_ok = shared.tls_up.load(Ordering::SeqCst);
    if store_ok && tls_ok {
        (StatusCode::OK, "ready")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "not ready")
    }
}

async fn metrics(State(shared): State<Arc<Shared>>) -> impl IntoResponse {
    // Point-in-time values are refreshed on scrape.
    let m = &shared.metrics;
    let conns = shared.registry.snapshot();
    for kind in [ConnKind::Anonymous, ConnKind::Owner, ConnKind::Peer] {
        let n = conns.iter().filter(|c| c.kind() == kind).count();
        m.connections
            .get_or_create(&TypeLabel {
                r#type: kind.as_str().into(),
            })
            .set(n as i64);
    }
    let facts = shared
        .store
        .call(|db| {
            Ok((
                db.size_bytes()?,
                db.last_commit_id()?,
                db.notification_status_counts()?,
            ))
        })
        .await;
    if let Ok((size, last, statuses)) = facts {
        m.store_bytes.set(size);
        m.last_commit_id.set(last.unwrap_or(-1));
        for status in ["queued", "delivered", "errored", "expired"] {
            let n = statuses
                .iter()
                .find(|(s, _)| s == status)
                .map_or(0, |(_, n)| *n);
            m.notifications
                .get_or_create(&StatusLabel {
                    status: status.into(),
                })
                .set(n);
        }
    }
    let mut body = String::new();
    if prometheus_client::encoding::text::encode(&mut body, &m.registry).is_err() {
        return (
            StatusCode::INTERNAL_SERVER_ERROR,
            [(header::CONTENT_TYPE, "text/plain")],
            String::new(),
        );
    }
    (
        StatusCode::OK,
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        body,
    )
}
