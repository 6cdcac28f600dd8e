//! Bounded waits on a condition instead of fixed sleeps.

use std::future::Future;
use std::time::Duration;

const POLL: Duration = Duration::from_millis(50);

/// Polls `check` until it holds; fails after `limit` naming `what`.
pub async fn eventually<F, Fut>(what: &str, limit: Duration, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + limit;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out after {limit:?} waiting for {what}"
        );
        tokio::time::sleep(POLL).await;
    }
}

/// Polls `probe` until it yields a value; fails after `limit` with its last complaint.
pub async fn until<T, F, Fut>(what: &str, limit: Duration, mut probe: F) -> T
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, String>>,
{
    let deadline = tokio::time::Instant::now() + limit;
    loop {
        match probe().await {
            Ok(v) => return v,
            Err(e) => assert!(
                tokio::time::Instant::now() < deadline,
                "timed out after {limit:?} waiting for {what}; last: {e}"
            ),
        }
        tokio::time::sleep(POLL).await;
    }
}
