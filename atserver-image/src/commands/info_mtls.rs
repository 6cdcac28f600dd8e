//! `info:mtls` and `info:mtlsbrief` (reference 3.9): the certificate chain this atServer presents
//! to peers as its client certificate (it presents its serving certificate), and when the chain
//! and key files last changed — what an operator checks after a renewal. The files are read on
//! each request, so a renewal shows at once. A file that cannot be read is left out, as the
//! reference leaves out a missing one.

use std::path::Path;

use serde_json::{json, Map, Value};

use crate::reply::{CmdResult, Reply};
use crate::session::Session;

/// Dart's `toIso8601String()` of a UTC time: milliseconds, or microseconds when there are any.
fn dart_iso(ts: jiff::Timestamp) -> String {
    if ts.subsec_microsecond() % 1000 == 0 {
        ts.strftime("%Y-%m-%dT%H:%M:%S.%3fZ").to_string()
    } else {
        ts.strftime("%Y-%m-%dT%H:%M:%S.%6fZ").to_string()
    }
}

async fn modified(path: &Path) -> Option<String> {
    let time = tokio::fs::metadata(path).await.ok()?.modified().ok()?;
    jiff::Timestamp::try_from(time).ok().map(dart_iso)
}

pub async fn mtls(s: &mut Session, brief: bool) -> CmdResult {
    let config = &s.shared.config;
    let mut out = Map::new();
    out.insert("version".into(), json!(crate::COMPAT_VERSION));
    if brief {
        if let Some(t) = modified(&config.tls_cert).await {
            out.insert("mtls_fullchain_last_modified".into(), Value::String(t));
        }
        if let Some(t) = modified(&config.tls_key).await {
            out.insert("mtls_privkey_last_modified".into(), Value::String(t));
        }
    } else if let Ok(pem) = tokio::fs::read_to_string(&config.tls_cert).await {
        out.insert("mtls_fullchain".into(), Value::String(pem));
    }
    Ok(Reply::Data(Value::Object(out).to_string()))
}
