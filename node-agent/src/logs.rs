//! The part of the kubelet's HTTPS API that `kubectl logs` uses:
//! `GET /containerLogs/{namespace}/{pod}/{container}` with `follow` and `tailLines`, read from the
//! process log files. It listens on 127.0.0.1 with a self-signed certificate and does not
//! authenticate callers (the API server does not verify kubelet certificates unless started with
//! `--kubelet-certificate-authority`).

use std::convert::Infallible;
use std::io::{Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use http_body_util::{combinators::BoxBody, BodyExt, Full, StreamBody};
use hyper::body::{Bytes, Frame};
use hyper::{Request, Response, StatusCode};
use hyper_util::rt::TokioIo;
use tokio::net::TcpListener;
use tokio_rustls::TlsAcceptor;
use tokio_util::sync::CancellationToken;

use super::error::AgentError;

type Body = BoxBody<Bytes, Infallible>;

/// A running kubelet API server.
pub struct LogServer {
    pub port: u16,
}

impl LogServer {
    /// Listens on `127.0.0.1:port` (0: any) and serves logs of the pods under `pods_dir` until
    /// `stop`.
    pub async fn start(
        port: u16,
        pods_dir: PathBuf,
        stop: CancellationToken,
    ) -> Result<Self, AgentError> {
        let acceptor = TlsAcceptor::from(Arc::new(tls_config()?));
        let listener = TcpListener::bind(("127.0.0.1", port))
            .await
            .map_err(super::error::io(format!("127.0.0.1:{port}")))?;
        let port = listener
            .local_addr()
            .map_err(super::error::io("kubelet API listener"))?
            .port();
        tracing::info!(
            port,
            "kubelet API (containerLogs) on https://127.0.0.1:{port}"
        );
        let pods_dir = Arc::new(pods_dir);
        tokio::spawn(async move {
            loop {
                let conn = tokio::select! {
                    _ = stop.cancelled() => return,
                    c = listener.accept() => c,
                };
                let Ok((tcp, _)) = conn else { continue };
                let (acceptor, pods_dir, stop) = (acceptor.clone(), pods_dir.clone(), stop.clone());
                tokio::spawn(async move {
                    let Ok(Ok(tls)) =
                        tokio::time::timeout(Duration::from_secs(10), acceptor.accept(tcp)).await
                    else {
                        return;
                    };
                    let service = hyper::service::service_fn(move |req| {
                        let (pods_dir, stop) = (pods_dir.clone(), stop.clone());
                        async move { Ok::<_, Infallible>(handle(&pods_dir, &req, stop)) }
                    });
                    let conn = hyper::server::conn::http1::Builder::new()
                        .serve_connection(TokioIo::new(tls), service);
                    let _ = conn.await;
                });
            }
        });
        Ok(Self { port })
    }
}

fn tls_config() -> Result<rustls::ServerConfig, AgentError> {
    let tls = |e: &dyn std::fmt::Display| AgentError::Tls(e.to_string());
    let key =
        rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned(), "localhost".to_owned()])
            .map_err(|e| tls(&e))?;
    let cert = key.cert.der().clone();
    let private = rustls::pki_types::PrivateKeyDer::Pkcs8(key.signing_key.serialize_der().into());
    rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .map_err(|e| tls(&e))?
        .with_no_client_auth()
        .with_single_cert(vec![cert], private)
        .map_err(|e| tls(&e))
}

fn text(status: StatusCode, body: String) -> Response<Body> {
    let mut resp = Response::new(Full::new(Bytes::from(body)).boxed());
    *resp.status_mut() = status;
    resp
}

/// The query parameters `kubectl logs` sends that this server honours.
#[derive(Debug, Default, PartialEq)]
struct LogQuery {
    follow: bool,
    tail_lines: Option<usize>,
}

fn parse_query(query: Option<&str>) -> LogQuery {
    let mut q = LogQuery::default();
    for pair in query.unwrap_or_default().split('&') {
        let (k, v) = pair.split_once('=').unwrap_or((pair, ""));
        match k {
            "follow" => q.follow = v == "true" || v == "1",
            "tailLines" => q.tail_lines = v.parse().ok(),
            _ => {}
        }
    }
    q
}

/// `<pods_dir>/<ns>/<pod>-<uid>/<container>.log` of the newest pod directory of that name.
fn log_file(pods_dir: &Path, ns: &str, pod: &str, container: &str) -> Option<PathBuf> {
    let safe = |s: &str| !s.is_empty() && !s.contains('/') && s != "." && s != "..";
    if !(safe(ns) && safe(pod) && safe(container)) {
        return None;
    }
    let prefix = format!("{pod}-");
    std::fs::read_dir(pods_dir.join(ns))
        .ok()?
        .filter_map(Result::ok)
        .filter(|e| {
            e.file_name().to_str().is_some_and(|n| {
                // The uid suffix is 36 characters: a pod named `<pod>-x` is another pod.
                n.strip_prefix(&prefix).is_some_and(|uid| uid.len() == 36)
            })
        })
        .map(|e| e.path().join(format!("{container}.log")))
        .filter(|p| p.is_file())
        .max_by_key(|p| p.metadata().and_then(|m| m.modified()).ok())
}

/// The last `n` lines of `data`.
fn tail(data: &[u8], n: usize) -> &[u8] {
    if n == 0 {
        return &[];
    }
    let body = data.strip_suffix(b"\n").unwrap_or(data);
    let mut seen = 0;
    for (i, b) in body.iter().enumerate().rev() {
        if *b == b'\n' {
            seen += 1;
            if seen == n {
                return &data[i + 1..];
            }
        }
    }
    data
}

fn handle(
    pods_dir: &Path,
    req: &Request<hyper::body::Incoming>,
    stop: CancellationToken,
) -> Response<Body> {
    let path = req.uri().path();
    let parts: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    let ["containerLogs", ns, pod, container] = parts.as_slice() else {
        return text(
            StatusCode::NOT_FOUND,
            format!("{path}: not served by the atfleet node agent\n"),
        );
    };
    let query = parse_query(req.uri().query());
    let Some(file) = log_file(pods_dir, ns, pod, container) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("no log for container {container} of pod {ns}/{pod} on this node\n"),
        );
    };
    let Ok(data) = std::fs::read(&file) else {
        return text(
            StatusCode::NOT_FOUND,
            format!("cannot read {}\n", file.display()),
        );
    };
    let first = match query.tail_lines {
        Some(n) => tail(&data, n).to_vec(),
        None => data.clone(),
    };
    if !query.follow {
        return Response::new(Full::new(Bytes::from(first)).boxed());
    }
    // Follow: what is there, then whatever is appended, until the client goes or the agent stops.
    let (tx, rx) = tokio::sync::mpsc::channel::<Bytes>(16);
    let offset = u64::try_from(data.len()).unwrap_or(u64::MAX);
    tokio::spawn(async move {
        if tx.send(Bytes::from(first)).await.is_err() {
            return;
        }
        let mut offset = offset;
        loop {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tx.closed() => return,
                _ = tokio::time::sleep(Duration::from_millis(250)) => {}
            }
            let Ok(mut f) = std::fs::File::open(&file) else {
                return;
            };
            let mut more = Vec::new();
            if f.seek(SeekFrom::Start(offset)).is_err() || f.read_to_end(&mut more).is_err() {
                return;
            }
            if more.is_empty() {
                continue;
            }
            offset += u64::try_from(more.len()).unwrap_or(0);
            if tx.send(Bytes::from(more)).await.is_err() {
                return;
            }
        }
    });
    let stream = futures::stream::unfold(rx, |mut rx| async move {
        let chunk = rx.recv().await?;
        Some((Ok::<_, Infallible>(Frame::data(chunk)), rx))
    });
    Response::new(BodyExt::boxed(StreamBody::new(stream)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn queries_and_tails() {
        assert_eq!(
            parse_query(Some("follow=true&tailLines=2&timestamps=false")),
            LogQuery {
                follow: true,
                tail_lines: Some(2)
            }
        );
        assert_eq!(parse_query(None), LogQuery::default());
        assert_eq!(tail(b"a\nb\nc\n", 2), b"b\nc\n");
        assert_eq!(tail(b"a\nb\nc", 2), b"b\nc");
        assert_eq!(tail(b"a\nb\n", 5), b"a\nb\n");
        assert_eq!(tail(b"a\nb\n", 0), b"");
    }

    #[test]
    fn finds_the_pods_log() {
        let dir = tempfile::tempdir().expect("tempdir");
        let uid = "0123456789abcdef0123456789abcdef0123";
        let pod_dir = dir.path().join("ns").join(format!("web-0-{uid}"));
        std::fs::create_dir_all(&pod_dir).expect("mkdir");
        std::fs::write(pod_dir.join("c.log"), "hello\n").expect("write");
        assert_eq!(
            log_file(dir.path(), "ns", "web-0", "c"),
            Some(pod_dir.join("c.log"))
        );
        assert_eq!(log_file(dir.path(), "ns", "web", "c"), None, "another pod");
        assert_eq!(log_file(dir.path(), "ns", "web-0", "../c"), None);
    }
}
