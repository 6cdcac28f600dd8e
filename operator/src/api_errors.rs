//! Counts the operator's failed Kubernetes API requests by verb and status code, as a layer of
//! the kube client, so every request is seen whichever part of the operator made it (the
//! reconciler, the watches, leader election, Events).

use std::sync::Arc;
use std::task::{Context, Poll};

use futures::future::BoxFuture;
use futures::FutureExt;
use http::{Request, Response};
use tower::{Layer, Service};

use crate::metrics::Metrics;

/// The layer to give `kube::client::ClientBuilder::with_layer`.
#[derive(Clone)]
pub struct ApiErrorsLayer {
    metrics: Arc<Metrics>,
}

impl ApiErrorsLayer {
    pub fn new(metrics: Arc<Metrics>) -> Self {
        Self { metrics }
    }
}

impl<S> Layer<S> for ApiErrorsLayer {
    type Service = ApiErrors<S>;

    fn layer(&self, inner: S) -> Self::Service {
        ApiErrors {
            inner,
            metrics: self.metrics.clone(),
        }
    }
}

#[derive(Clone)]
pub struct ApiErrors<S> {
    inner: S,
    metrics: Arc<Metrics>,
}

/// Whether a response status counts as a failed request. A 404 does not: the operator reads
/// objects that may be absent on purpose (a child not made yet, a kind not installed).
pub fn is_failure(status: u16) -> bool {
    status >= 400 && status != 404
}

impl<S, ReqBody, ResBody> Service<Request<ReqBody>> for ApiErrors<S>
where
    S: Service<Request<ReqBody>, Response = Response<ResBody>>,
    S::Future: Send + 'static,
{
    type Response = S::Response;
    type Error = S::Error;
    type Future = BoxFuture<'static, Result<Self::Response, Self::Error>>;

    fn poll_ready(&mut self, cx: &mut Context<'_>) -> Poll<Result<(), Self::Error>> {
        self.inner.poll_ready(cx)
    }

    fn call(&mut self, req: Request<ReqBody>) -> Self::Future {
        let verb = req.method().as_str().to_owned();
        let metrics = self.metrics.clone();
        self.inner
            .call(req)
            .map(move |result| {
                match &result {
                    Ok(response) if is_failure(response.status().as_u16()) => {
                        metrics.api_error(&verb, response.status().as_str());
                    }
                    Ok(_) => {}
                    // No answer at all: connection refused, reset, timed out.
                    Err(_) => metrics.api_error(&verb, "transport"),
                }
                result
            })
            .boxed()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn absent_objects_are_not_failures() {
        assert!(!is_failure(200));
        assert!(!is_failure(404));
        assert!(is_failure(403));
        assert!(is_failure(409));
        assert!(is_failure(500));
    }

    #[tokio::test]
    async fn failed_and_unanswered_requests_are_counted_by_verb_and_code() {
        let metrics = Arc::new(Metrics::new());
        let answer = |status: u16| {
            tower::service_fn(move |_req: Request<()>| async move {
                Response::builder()
                    .status(status)
                    .body(())
                    .map_err(|e| e.to_string())
            })
        };
        let layer = ApiErrorsLayer::new(metrics.clone());
        for status in [200, 404, 403, 403] {
            let mut svc = layer.layer(answer(status));
            let req = Request::builder()
                .method("PATCH")
                .body(())
                .expect("request");
            let _ = svc.call(req).await;
        }
        let mut refused = layer.layer(tower::service_fn(|_req: Request<()>| async {
            Err::<Response<()>, String>("connection refused".into())
        }));
        let _ = refused
            .call(Request::builder().method("GET").body(()).expect("request"))
            .await;
        let text = metrics.encode();
        assert!(
            text.contains("atfleet_operator_api_errors_total{verb=\"PATCH\",code=\"403\"} 2"),
            "{text}"
        );
        assert!(
            text.contains("atfleet_operator_api_errors_total{verb=\"GET\",code=\"transport\"} 1"),
            "{text}"
        );
        assert!(!text.contains("code=\"404\""), "{text}");
        assert!(!text.contains("code=\"200\""), "{text}");
    }
}
