//! Ports and readiness: a free local port, and waiting for a process's HTTP endpoint.

use std::time::Duration;

use atfleet_cluster::process::Proc;
use http_body_util::Empty;
use hyper::body::Bytes;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

use super::error::LocalError;

pub(crate) fn free_port() -> Result<u16, LocalError> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(LocalError::io("127.0.0.1:0"))?;
    Ok(l.local_addr()
        .map_err(LocalError::io("127.0.0.1:0"))?
        .port())
}

/// Polls `url` until it answers 200, failing early if `proc` exits.
pub(super) async fn wait_http(url: &str, proc: &mut Proc) -> Result<(), LocalError> {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let uri: hyper::Uri = url
        .parse()
        .map_err(|_| LocalError::Timeout(format!("{url} (bad URL)")))?;
    let deadline = tokio::time::Instant::now() + Duration::from_secs(120);
    loop {
        if let Ok(Ok(resp)) =
            tokio::time::timeout(Duration::from_secs(2), client.get(uri.clone())).await
        {
            if resp.status().is_success() {
                return Ok(());
            }
        }
        proc.check_running()?;
        if tokio::time::Instant::now() > deadline {
            return Err(LocalError::Timeout(format!("{} at {url}", proc.name)));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}
