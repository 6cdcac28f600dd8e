//! Client for the atDirectory's registration REST API (`/v1/atsigns/{atsign}`), over HTTP or
//! HTTPS (rustls, ring), with a bearer token.

use std::sync::Arc;
use std::time::Duration;

use http_body_util::BodyExt;
use hyper::{Method, Request, StatusCode};
use hyper_rustls::HttpsConnector;
use hyper_util::client::legacy::connect::HttpConnector;
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;
use serde::{Deserialize, Serialize};

type Body = http_body_util::Full<hyper::body::Bytes>;

/// A registration as the directory reports it.
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Registration {
    pub atsign: String,
    pub host: String,
    pub port: u16,
    pub owner: String,
    #[serde(default)]
    pub created_at: Option<String>,
    #[serde(default)]
    pub updated_at: Option<String>,
}

#[derive(Debug, Serialize)]
struct RegisterBody<'a> {
    host: &'a str,
    port: u16,
    owner: &'a str,
}

#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
struct ErrorBody {
    #[serde(default)]
    error: String,
    #[serde(default)]
    message: String,
    #[serde(default)]
    current_owner: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum DirectoryError {
    #[error("directory unavailable: {0}")]
    Unavailable(String),
    #[error("directory rejected the token")]
    Unauthorized,
    #[error(
        "the atSign is registered to {}: {message}",
        .current_owner.as_deref().map_or("another owner".to_owned(), |o| format!("owner {o:?}"))
    )]
    Conflict {
        current_owner: Option<String>,
        message: String,
    },
    #[error("directory refused the request ({status} {code}): {message}")]
    Rejected {
        status: u16,
        code: String,
        message: String,
    },
    #[error("unexpected answer from the directory: {0}")]
    Protocol(String),
    #[error("bad directory configuration: {0}")]
    Config(String),
}

impl DirectoryError {
    /// Short PascalCase reason for conditions and metrics.
    pub fn reason(&self) -> &'static str {
        match self {
            DirectoryError::Unavailable(_) => "DirectoryUnavailable",
            DirectoryError::Unauthorized => "DirectoryUnauthorized",
            DirectoryError::Conflict { .. } => "OwnerConflict",
            DirectoryError::Rejected { .. } => "DirectoryRejected",
            DirectoryError::Protocol(_) => "DirectoryProtocolError",
            DirectoryError::Config(_) => "DirectoryConfig",
        }
    }
}

/// Outcome of a deregistration.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Deregistered {
    Removed,
    NotRegistered,
}

#[derive(Clone)]
pub struct DirectoryClient {
    base: String,
    token: Option<String>,
    client: Client<HttpsConnector<HttpConnector>, Body>,
    timeout: Duration,
}

impl std::fmt::Debug for DirectoryClient {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("DirectoryClient")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl DirectoryClient {
    /// `base_url` is `http://…` or `https://…`; `ca_pem` replaces the platform's trust roots for
    /// HTTPS when given.
    pub fn new(
        base_url: &str,
        token: Option<String>,
        ca_pem: Option<&[u8]>,
    ) -> Result<Self, DirectoryError> {
        let base = base_url.trim_end_matches('/').to_owned();
        base.parse::<hyper::Uri>()
            .map_err(|e| DirectoryError::Config(format!("directory URL {base_url:?}: {e}")))?;
        let provider = Arc::new(rustls::crypto::ring::default_provider());
        let builder = rustls::ClientConfig::builder_with_provider(provider)
            .with_safe_default_protocol_versions()
            .map_err(|e| DirectoryError::Config(e.to_string()))?;
        let tls = match ca_pem {
            Some(pem) => {
                use rustls_pki_types::pem::PemObject;
                let mut roots = rustls::RootCertStore::empty();
                for cert in rustls_pki_types::CertificateDer::pem_slice_iter(pem) {
                    let cert =
                        cert.map_err(|e| DirectoryError::Config(format!("CA bundle: {e}")))?;
                    roots
                        .add(cert)
                        .map_err(|e| DirectoryError::Config(format!("CA bundle: {e}")))?;
                }
                builder.with_root_certificates(roots).with_no_client_auth()
            }
            None => {
                use rustls_platform_verifier::BuilderVerifierExt;
                builder
                    .with_platform_verifier()
                    .map_err(|e| DirectoryError::Config(e.to_string()))?
                    .with_no_client_auth()
            }
        };
        let connector = hyper_rustls::HttpsConnectorBuilder::new()
            .with_tls_config(tls)
            .https_or_http()
            .enable_http1()
            .build();
        Ok(Self {
            base,
            token,
            client: Client::builder(TokioExecutor::new()).build(connector),
            timeout: Duration::from_secs(10),
        })
    }

    pub fn with_timeout(mut self, timeout: Duration) -> Self {
        self.timeout = timeout;
        self
    }

    /// The current registration, if any.
    pub async fn get(&self, atsign: &str) -> Result<Option<Registration>, DirectoryError> {
        let (status, body) = self
            .call(Method::GET, &self.path(atsign, &[]), None)
            .await?;
        match status {
            StatusCode::OK => parse(&body).map(Some),
            StatusCode::NOT_FOUND => Ok(None),
            _ => Err(error_from(status, &body)),
        }
    }

    /// Registers or moves `atsign` to `host:port`, fenced by `owner`.
    pub async fn register(
        &self,
        atsign: &str,
        host: &str,
        port: u16,
        owner: &str,
        force: bool,
    ) -> Result<Registration, DirectoryError> {
        let query: &[(&str, &str)] = if force { &[("force", "true")] } else { &[] };
        let body = serde_json::to_vec(&RegisterBody { host, port, owner })
            .map_err(|e| DirectoryError::Protocol(e.to_string()))?;
        let (status, body) = self
            .call(Method::PUT, &self.path(atsign, query), Some(body))
            .await?;
        match status {
            StatusCode::OK | StatusCode::CREATED => parse(&body),
            _ => Err(error_from(status, &body)),
        }
    }

    /// Removes the registration if `owner` holds it.
    pub async fn deregister(
        &self,
        atsign: &str,
        owner: &str,
        force: bool,
    ) -> Result<Deregistered, DirectoryError> {
        let mut query = vec![("owner", owner)];
        if force {
            query.push(("force", "true"));
        }
        let (status, body) = self
            .call(Method::DELETE, &self.path(atsign, &query), None)
            .await?;
        match status {
            StatusCode::NO_CONTENT | StatusCode::OK => Ok(Deregistered::Removed),
            StatusCode::NOT_FOUND => Ok(Deregistered::NotRegistered),
            _ => Err(error_from(status, &body)),
        }
    }

    fn path(&self, atsign: &str, query: &[(&str, &str)]) -> String {
        let mut url = format!("{}/v1/atsigns/{}", self.base, encode(atsign, true));
        for (i, (k, v)) in query.iter().enumerate() {
            url.push(if i == 0 { '?' } else { '&' });
            url.push_str(&encode(k, false));
            url.push('=');
            url.push_str(&encode(v, false));
        }
        url
    }

    async fn call(
        &self,
        method: Method,
        url: &str,
        body: Option<Vec<u8>>,
    ) -> Result<(StatusCode, Vec<u8>), DirectoryError> {
        let mut req = Request::builder().method(method).uri(url);
        if let Some(token) = &self.token {
            req = req.header(hyper::header::AUTHORIZATION, format!("Bearer {token}"));
        }
        if body.is_some() {
            req = req.header(hyper::header::CONTENT_TYPE, "application/json");
        }
        let req = req
            .body(Body::from(body.unwrap_or_default()))
            .map_err(|e| DirectoryError::Config(e.to_string()))?;
        let exchange = async {
            let resp = self
                .client
                .request(req)
                .await
                .map_err(|e| DirectoryError::Unavailable(error_chain(&e)))?;
            let status = resp.status();
            let bytes = resp
                .into_body()
                .collect()
                .await
                .map_err(|e| DirectoryError::Unavailable(e.to_string()))?
                .to_bytes();
            Ok((status, bytes.to_vec()))
        };
        tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| DirectoryError::Unavailable("request timed out".into()))?
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut source = e.source();
    while let Some(inner) = source {
        s.push_str(": ");
        s.push_str(&inner.to_string());
        source = inner.source();
    }
    s
}

fn parse(body: &[u8]) -> Result<Registration, DirectoryError> {
    serde_json::from_slice(body).map_err(|e| DirectoryError::Protocol(e.to_string()))
}

fn error_from(status: StatusCode, body: &[u8]) -> DirectoryError {
    let parsed: Option<ErrorBody> = serde_json::from_slice(body).ok();
    let (code, message, current_owner) = match parsed {
        Some(b) => (b.error, b.message, b.current_owner),
        None => (
            String::new(),
            String::from_utf8_lossy(body).chars().take(200).collect(),
            None,
        ),
    };
    match status {
        StatusCode::UNAUTHORIZED | StatusCode::FORBIDDEN => DirectoryError::Unauthorized,
        StatusCode::CONFLICT => DirectoryError::Conflict {
            current_owner,
            message,
        },
        s if s.is_server_error() => {
            DirectoryError::Unavailable(format!("{} {code} {message}", s.as_u16()))
        }
        s => DirectoryError::Rejected {
            status: s.as_u16(),
            code,
            message,
        },
    }
}

/// Percent-encodes everything but RFC 3986 unreserved characters (and `@` in a path segment).
fn encode(s: &str, path: bool) -> String {
    let mut out = String::with_capacity(s.len());
    for b in s.bytes() {
        if b.is_ascii_alphanumeric()
            || matches!(b, b'-' | b'.' | b'_' | b'~')
            || (path && b == b'@')
        {
            out.push(char::from(b));
        } else {
            out.push_str(&format!("%{b:02X}"));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::encode;

    #[test]
    fn encodes_path_and_query() {
        assert_eq!(encode("@alice", true), "@alice");
        assert_eq!(encode("@alice", false), "%40alice");
        assert_eq!(encode("@a🛠", true), "@a%F0%9F%9B%A0");
        assert_eq!(encode("atfleet/ns/a b", false), "atfleet%2Fns%2Fa%20b");
    }
}
