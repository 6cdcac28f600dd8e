//! Plain HTTP against the services' health and REST endpoints.

use std::net::SocketAddr;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper::{Method, Request};
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use tokio::io::{AsyncReadExt, AsyncWriteExt};

/// Sends one request, with a bearer token and a JSON body when given; `(0, "")` when the
/// connection fails (so callers can poll).
pub async fn request(
    method: Method,
    url: &str,
    bearer: Option<&str>,
    json_body: Option<String>,
) -> (u16, String) {
    let client: Client<HttpConnector, Full<Bytes>> =
        Client::builder(TokioExecutor::new()).build_http();
    let mut req = Request::builder().method(method).uri(url);
    if let Some(t) = bearer {
        req = req.header("authorization", format!("Bearer {t}"));
    }
    if json_body.is_some() {
        req = req.header("content-type", "application/json");
    }
    let req = req
        .body(Full::new(Bytes::from(json_body.unwrap_or_default())))
        .expect("a well-formed request");
    match client.request(req).await {
        Ok(resp) => {
            let status = resp.status().as_u16();
            let bytes = resp.into_body().collect().await.map(|b| b.to_bytes());
            let text = bytes
                .map(|b| String::from_utf8_lossy(&b).into_owned())
                .unwrap_or_default();
            (status, text)
        }
        Err(_) => (0, String::new()),
    }
}

/// Polls `http://addr/readyz` until it answers 200, for at most [`crate::STARTUP`].
pub async fn wait_ready(addr: SocketAddr) {
    let url = format!("http://{addr}/readyz");
    tokio::time::timeout(crate::STARTUP, async {
        loop {
            if request(Method::GET, &url, None, None).await.0 == 200 {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("{url} never became ready"));
}

/// The whole raw HTTP/1.0 response (status line, headers, body) to `GET path` on
/// `127.0.0.1:port`; `None` while nothing answers.
pub async fn get_raw(port: u16, path: &str) -> Option<String> {
    raw_exchange(
        port,
        &format!("GET {path} HTTP/1.0\r\nHost: localhost\r\n\r\n"),
    )
    .await
}

/// Writes `request` (a complete HTTP/1.0 request) to `127.0.0.1:port` and reads the response
/// until the server closes; `None` while nothing answers.
pub async fn raw_exchange(port: u16, request: &str) -> Option<String> {
    let mut s = tokio::net::TcpStream::connect(("127.0.0.1", port))
        .await
        .ok()?;
    s.write_all(request.as_bytes()).await.ok()?;
    let mut out = String::new();
    s.read_to_string(&mut out).await.ok()?;
    Some(out)
}
