//! Waiting until each component serves, failing early (with its log) when one exits.

use std::future::Future;
use std::time::{Duration, Instant};

use k8s_openapi::api::core::v1::{ConfigMap, ServiceAccount};
use kube::Api;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

use crate::{ClusterError, Proc};

const POLL: Duration = Duration::from_millis(100);

async fn until<F, Fut>(
    what: &str,
    procs: &mut [Proc],
    timeout: Duration,
    mut check: F,
) -> Result<(), ClusterError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let started = Instant::now();
    loop {
        for p in procs.iter_mut() {
            p.check_running()?;
        }
        if check().await {
            return Ok(());
        }
        if started.elapsed() > timeout {
            return Err(ClusterError::Timeout {
                what: what.to_owned(),
                seconds: timeout.as_secs(),
            });
        }
        tokio::time::sleep(POLL).await;
    }
}

/// A plain HTTP/1.0 GET: the body, or `None` on any failure.
pub(crate) async fn http_get(base: &str, path: &str) -> Option<String> {
    let authority = base.strip_prefix("http://")?;
    let mut stream = tokio::net::TcpStream::connect(authority).await.ok()?;
    let request = format!("GET {path} HTTP/1.0\r\nHost: {authority}\r\n\r\n");
    stream.write_all(request.as_bytes()).await.ok()?;
    let mut response = String::new();
    tokio::time::timeout(Duration::from_secs(5), stream.read_to_string(&mut response))
        .await
        .ok()?
        .ok()?;
    let (head, body) = response.split_once("\r\n\r\n")?;
    head.starts_with("HTTP/1.")
        .then_some(())
        .filter(|_| head.split_whitespace().nth(1) == Some("200"))?;
    Some(body.to_owned())
}

pub async fn etcd(url: &str, proc: &mut Proc, timeout: Duration) -> Result<(), ClusterError> {
    until(
        "etcd /health",
        std::slice::from_mut(proc),
        timeout,
        || async {
            http_get(url, "/health")
                .await
                .is_some_and(|b| b.contains("\"health\":\"true\""))
        },
    )
    .await
}

pub async fn apiserver(
    client: &kube::Client,
    proc: &mut Proc,
    timeout: Duration,
) -> Result<(), ClusterError> {
    until(
        "kube-apiserver /readyz",
        std::slice::from_mut(proc),
        timeout,
        || async {
            let req = http::Request::get("/readyz").body(Vec::new());
            match req {
                Ok(req) => client
                    .request_text(req)
                    .await
                    .is_ok_and(|t| t.trim() == "ok"),
                Err(_) => false,
            }
        },
    )
    .await
}

/// The service-account controller made `default/default` and the root-CA publisher made
/// `default/kube-root-ca.crt`: pods can be admitted and mount their token.
pub async fn controllers(
    client: &kube::Client,
    procs: &mut [Proc],
    timeout: Duration,
) -> Result<(), ClusterError> {
    let accounts: Api<ServiceAccount> = Api::namespaced(client.clone(), "default");
    let maps: Api<ConfigMap> = Api::namespaced(client.clone(), "default");
    until(
        "the controller manager (service account and root CA in namespace default)",
        procs,
        timeout,
        || async {
            matches!(accounts.get_opt("default").await, Ok(Some(_)))
                && matches!(maps.get_opt("kube-root-ca.crt").await, Ok(Some(_)))
        },
    )
    .await
}
