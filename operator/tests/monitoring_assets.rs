//! The Grafana dashboards and Prometheus alert rules under `deploy/` only use metrics the binaries
//! really export: atserver, atdirectory (against the Postgres in `DATABASE_URL`, as `make test`
//! provides through scripts/with-postgres) and the operator (against the real control plane) are started from the
//! target directory, their `/metrics` scraped, and every metric name in every PromQL expression
//! must be one of them. A family with no sample yet is not exported at all, so the test makes
//! each one count something (the operator's drift corrections: a hand edit of a child).

mod common;

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::sync::Arc;
use std::time::Duration;

use atfleet_cluster::FaultConfig;
use atfleet_operator::tls::BuiltInCa;
use atfleet_test_support::bins::workspace_bin;
use atfleet_test_support::http::{get_raw as http_get, raw_exchange};
use atfleet_test_support::net::free_port;
use common::*;
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::Service;
use kube::api::{Patch, PatchParams};
use kube::Api;
use serde::Deserialize;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::process::{Child, Command};

// ---------------------------------------------------------------------------------------------
// Metric names in PromQL.

/// Words that never name a metric: operators, modifiers, and aggregations (which may be followed
/// by `by (...)` rather than a parenthesis).
const KEYWORDS: &[&str] = &[
    "sum",
    "avg",
    "min",
    "max",
    "count",
    "group",
    "stddev",
    "stdvar",
    "topk",
    "bottomk",
    "quantile",
    "count_values",
    "limitk",
    "limit_ratio",
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
    "and",
    "or",
    "unless",
    "bool",
    "offset",
    "inf",
    "nan",
    "atan2",
];
/// Keywords followed by a parenthesised list of label names, not expressions.
const LABEL_LISTS: &[&str] = &[
    "by",
    "without",
    "on",
    "ignoring",
    "group_left",
    "group_right",
];

/// The metric names an expression selects: identifiers that are neither functions, keywords,
/// label names (in matchers or grouping lists), numbers, durations nor strings.
fn metric_names(expr: &str) -> BTreeSet<String> {
    let chars: Vec<char> = expr.chars().collect();
    let mut names = BTreeSet::new();
    let mut i = 0;
    let next_non_space = |from: usize| chars[from..].iter().copied().find(|c| !c.is_whitespace());
    while i < chars.len() {
        let c = chars[i];
        match c {
            '"' | '\'' | '`' => {
                i += 1;
                while i < chars.len() && chars[i] != c {
                    i += if chars[i] == '\\' { 2 } else { 1 };
                }
                i += 1;
            }
            // Label matchers and range/subquery durations: nothing in them names a metric.
            '{' | '[' => {
                let close = if c == '{' { '}' } else { ']' };
                while i < chars.len() && chars[i] != close {
                    if matches!(chars[i], '"' | '\'' | '`') {
                        let q = chars[i];
                        i += 1;
                        while i < chars.len() && chars[i] != q {
                            i += if chars[i] == '\\' { 2 } else { 1 };
                        }
                    }
                    i += 1;
                }
                i += 1;
            }
            '0'..='9' | '.' => {
                while i < chars.len() && (chars[i].is_ascii_alphanumeric() || chars[i] == '.') {
                    // An exponent's sign: 1e-9.
                    let exp = matches!(chars[i], 'e' | 'E')
                        && matches!(chars.get(i + 1), Some('+' | '-'));
                    i += if exp { 2 } else { 1 };
                }
            }
            c if c.is_ascii_alphabetic() || c == '_' || c == ':' => {
                let start = i;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || chars[i] == '_' || chars[i] == ':')
                {
                    i += 1;
                }
                let word: String = chars[start..i].iter().collect();
                let call = next_non_space(i) == Some('(');
                if LABEL_LISTS.contains(&word.as_str()) && call {
                    while i < chars.len() && chars[i] != ')' {
                        i += 1;
                    }
                    i += 1;
                } else if !call && !KEYWORDS.contains(&word.as_str()) {
                    names.insert(word);
                }
            }
            // Grafana variables ($datasource, ${x}) outside strings.
            '$' => {
                i += 1;
                while i < chars.len()
                    && (chars[i].is_ascii_alphanumeric() || matches!(chars[i], '_' | '{' | '}'))
                {
                    i += 1;
                }
            }
            _ => i += 1,
        }
    }
    names
}

/// A Grafana variable query: `label_values(selector, label)` selects `selector` only;
/// `query_result(expr)` and plain expressions select what their PromQL does.
fn variable_query_names(query: &str) -> BTreeSet<String> {
    let q = query.trim();
    if let Some(inner) = q
        .strip_prefix("label_values(")
        .and_then(|r| r.strip_suffix(')'))
    {
        return match inner.rsplit_once(',') {
            Some((selector, _label)) => metric_names(selector),
            // label_values(label): no metric.
            None => BTreeSet::new(),
        };
    }
    let q = q
        .strip_prefix("query_result(")
        .and_then(|r| r.strip_suffix(')'))
        .unwrap_or(q);
    metric_names(q)
}

#[test]
fn metric_names_are_found_and_nothing_else() {
    let names = |e: &str| metric_names(e).into_iter().collect::<Vec<_>>();
    assert_eq!(
        names(r#"sum by (reason) (rate(a_total{x="y", z=~"$v|w"}[5m])) > 0.05"#),
        ["a_total"]
    );
    assert_eq!(
        names("histogram_quantile(0.99, sum by (le) (rate(b_seconds_bucket[10m]))) > 30"),
        ["b_seconds_bucket"]
    );
    assert_eq!(
        names("x / clamp_min(sum(rate(y[5m])), 1e-9) and on (pod) z offset 5m unless w"),
        ["w", "x", "y", "z"]
    );
    assert_eq!(
        names("sort(c < 30) * ignoring(a) group_left(b) d"),
        ["c", "d"]
    );
    assert_eq!(
        variable_query_names(r#"label_values(m{namespace="$namespace"}, name)"#)
            .into_iter()
            .collect::<Vec<_>>(),
        ["m"]
    );
}

// ---------------------------------------------------------------------------------------------
// The assets.

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn files(dir: &str, ext: &str) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = std::fs::read_dir(repo_root().join(dir))
        .unwrap_or_else(|e| panic!("{dir}: {e}"))
        .map(|e| e.expect("dir entry").path())
        .filter(|p| p.extension().is_some_and(|x| x == ext))
        .collect();
    out.sort();
    out
}

/// Every PromQL expression in the dashboards and alert rules, with where it comes from.
fn expressions() -> Vec<(String, BTreeSet<String>)> {
    let mut out = Vec::new();
    for path in files("deploy/dashboards", "json") {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let dashboard: Value = serde_json::from_str(&std::fs::read_to_string(&path).expect("read"))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for panel in dashboard["panels"].as_array().expect("panels") {
            for target in panel["targets"].as_array().into_iter().flatten() {
                let expr = target["expr"].as_str().expect("target expr");
                out.push((
                    format!("{name}: {}: {expr}", panel["title"]),
                    metric_names(expr),
                ));
            }
        }
        for var in dashboard["templating"]["list"]
            .as_array()
            .into_iter()
            .flatten()
        {
            if var["type"] != "query" {
                continue;
            }
            let query = var["query"]["query"]
                .as_str()
                .or_else(|| var["query"].as_str())
                .expect("variable query");
            out.push((
                format!("{name}: variable {}: {query}", var["name"]),
                variable_query_names(query),
            ));
        }
    }
    for path in files("deploy/alerts", "yaml") {
        let name = path
            .file_name()
            .expect("name")
            .to_string_lossy()
            .into_owned();
        let text = std::fs::read_to_string(&path).expect("read");
        let rules = Value::deserialize(serde_yaml::Deserializer::from_str(&text))
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        for group in rules["groups"].as_array().expect("groups") {
            for rule in group["rules"].as_array().expect("rules") {
                let expr = rule["expr"].as_str().expect("rule expr");
                let title = rule["alert"].as_str().or(rule["record"].as_str());
                out.push((format!("{name}: {title:?}: {expr}"), metric_names(expr)));
            }
        }
    }
    out
}

// ---------------------------------------------------------------------------------------------
// The binaries and their /metrics.

/// Metric families by name, with their type, from a text exposition.
fn families(exposition: &str) -> BTreeMap<String, String> {
    exposition
        .lines()
        .filter_map(|l| {
            let mut parts = l.strip_prefix("# TYPE ")?.split_whitespace();
            Some((parts.next()?.to_owned(), parts.next()?.to_owned()))
        })
        .collect()
}

/// Whether a series name belongs to an exported family: counters are stored as `<name>_total`,
/// histograms as `<name>_bucket`, `_sum` and `_count`.
fn exported(families: &BTreeMap<String, String>, series: &str) -> bool {
    let is = |name: &str, kind: &str| families.get(name).is_some_and(|k| k == kind);
    if let Some(base) = ["_bucket", "_sum", "_count"]
        .iter()
        .find_map(|s| series.strip_suffix(s))
    {
        if is(base, "histogram") {
            return true;
        }
    }
    if let Some(base) = series.strip_suffix("_total") {
        if is(base, "counter") {
            return true;
        }
    }
    families
        .get(series)
        .is_some_and(|k| k != "counter" && k != "histogram")
}

fn target_bin(name: &str) -> PathBuf {
    workspace_bin(
        name,
        "cargo build -p atserver -p atdirectory; `make test` does",
    )
}

/// Scrapes `/metrics` until `done` holds for its families (or a deadline passes: the caller's
/// assertion then names what is missing); fails if the process exits.
async fn scrape_until(
    child: &mut Child,
    what: &str,
    port: u16,
    done: impl Fn(&BTreeMap<String, String>) -> bool,
) -> BTreeMap<String, String> {
    // Generous: the machine may be loaded, and the directory migrates its database first.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(60);
    let mut last = None;
    loop {
        if let Some(status) = child.try_wait().expect("process status") {
            panic!("{what} exited: {status}");
        }
        if let Some(reply) = http_get(port, "/metrics").await {
            if let Some((head, body)) = reply.split_once("\r\n\r\n") {
                if head.starts_with("HTTP/1.0 200") || head.starts_with("HTTP/1.1 200") {
                    let f = families(body);
                    if done(&f) {
                        return f;
                    }
                    last = Some(f);
                }
            }
        }
        if tokio::time::Instant::now() >= deadline {
            return last.unwrap_or_else(|| panic!("{what} did not serve /metrics"));
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Everything the assets name with this prefix is exported.
fn covers(prefix: &str, wanted: &BTreeSet<String>) -> impl Fn(&BTreeMap<String, String>) -> bool {
    let wanted: Vec<String> = wanted
        .iter()
        .filter(|n| n.starts_with(prefix))
        .cloned()
        .collect();
    move |f| wanted.iter().all(|n| exported(f, n))
}

/// One line over TLS (trusting `ca_pem`, server name localhost): reads the prompt, sends `line`,
/// reads the reply or the close. What the reply says does not matter here, only that the server
/// counted it.
async fn tls_line(port: u16, ca_pem: &str, line: &str) {
    use rustls::pki_types::pem::PemObject;
    let mut roots = rustls::RootCertStore::empty();
    for cert in rustls::pki_types::CertificateDer::pem_slice_iter(ca_pem.as_bytes()) {
        roots.add(cert.expect("CA PEM")).expect("CA");
    }
    let config = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots)
    .with_no_client_auth();
    let connector = tokio_rustls::TlsConnector::from(Arc::new(config));
    let exchange = async {
        let tcp = tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .ok()?;
        let name = rustls::pki_types::ServerName::try_from("localhost").ok()?;
        let mut tls = connector.connect(name, tcp).await.ok()?;
        let mut buf = [0u8; 1024];
        // The prompt, then the reply: each arrives as at least one byte.
        let prompt = tls.read(&mut buf).await.ok().filter(|n| *n > 0)?;
        tls.write_all(format!("{line}\n").as_bytes()).await.ok()?;
        // A reply, or the close the atDirectory answers a lookup it cannot resolve with (a
        // database that is down): either way the server has read and counted the line.
        let reply = tls.read(&mut buf[prompt..]).await.unwrap_or(0);
        Some(String::from_utf8_lossy(&buf[..prompt + reply]).into_owned())
    };
    let transcript = tokio::time::timeout(Duration::from_secs(10), exchange)
        .await
        .ok()
        .flatten();
    assert!(transcript.is_some(), "no TLS exchange on port {port}");
}

/// An HTTP/1.0 request with a JSON body and a bearer token.
async fn http_put(port: u16, path: &str, token: &str, body: &str) -> Option<String> {
    let request = format!(
        "PUT {path} HTTP/1.0\r\nHost: localhost\r\nAuthorization: Bearer {token}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        body.len()
    );
    raw_exchange(port, &request).await
}

fn spawn(bin: &Path, args: &[&str], envs: &[(&str, &str)]) -> Child {
    Command::new(bin)
        .args(args)
        .envs(envs.iter().copied())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .unwrap_or_else(|e| panic!("{}: {e}", bin.display()))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dashboards_and_alerts_use_only_exported_metrics() {
    let database_url = match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("DATABASE_URL is not set: run under scripts/with-postgres (`make test` does)"),
    };
    let expressions = expressions();
    assert!(expressions.len() > 40, "the dashboards and rules were read");
    let wanted: BTreeSet<String> = expressions.iter().flat_map(|(_, n)| n.clone()).collect();

    let tmp = tempfile::tempdir().expect("tempdir");
    let write = |name: &str, text: &str| {
        let path = tmp.path().join(name);
        std::fs::write(&path, text).expect("write");
        path.to_string_lossy().into_owned()
    };
    let ca = BuiltInCa::generate(Timestamp::now()).expect("CA");
    let issue = || {
        ca.issue("localhost", Timestamp::now(), SignedDuration::from_hours(1))
            .expect("leaf")
    };
    let leaf = issue();
    let cert = write("tls.crt", &leaf.cert_pem);
    let key = write("tls.key", &leaf.key_pem);
    let bundle = write("ca.crt", &leaf.ca_pem);
    let cram = write("cram", &"ab".repeat(64));
    let api_token = "monitoring-test-token";
    let token = write("token", api_token);
    let data = tmp.path().join("data");
    std::fs::create_dir(&data).expect("data dir");
    let mut exports: BTreeMap<&str, BTreeMap<String, String>> = BTreeMap::new();

    // atserver: one command over TLS, so the per-verb families have samples.
    let (port, tls_port) = (free_port(), free_port());
    let mut atserver = spawn(
        &target_bin("atserver"),
        &[
            "--atsign",
            "@monitoring",
            "--listen",
            &format!("127.0.0.1:{tls_port}"),
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--data-dir",
            &data.to_string_lossy(),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--ca-bundle",
            &bundle,
            "--cram-secret-file",
            &cram,
        ],
        &[],
    );
    scrape_until(&mut atserver, "atserver", port, |_| true).await;
    tls_line(tls_port, &leaf.ca_pem, "scan").await;
    exports.insert(
        "atserver",
        scrape_until(
            &mut atserver,
            "atserver",
            port,
            covers("atserver_", &wanted),
        )
        .await,
    );

    // atdirectory: a registration, a lookup against a read replica that is down (errors), a
    // connection that never handshakes (rejected), and a certificate reload.
    let (port, root_port) = (free_port(), free_port());
    let mut atdirectory = spawn(
        &target_bin("atdirectory"),
        &[
            "--listen",
            &format!("127.0.0.1:{root_port}"),
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--tls-cert",
            &cert,
            "--tls-key",
            &key,
            "--api-token-file",
            &token,
            "--read-database-url",
            "postgres://nobody@127.0.0.1:1/unreachable",
            "--handshake-timeout-ms",
            "200",
            "--tls-reload-interval-ms",
            "200",
            "--db-timeout-ms",
            "500",
        ],
        &[("DATABASE_URL", &database_url)],
    );
    scrape_until(&mut atdirectory, "atdirectory", port, |_| true).await;
    let body = r#"{"host":"localhost","port":6464,"owner":"monitoring-test"}"#;
    let atsign = format!("@monitoring{:08x}", rand::random::<u32>());
    http_put(port, &format!("/v1/atsigns/{atsign}"), api_token, body)
        .await
        .expect("registration API answers");
    tls_line(root_port, &leaf.ca_pem, "nobody-here").await;
    let idle = tokio::net::TcpStream::connect(("127.0.0.1", root_port))
        .await
        .expect("root port");
    let renewed = issue();
    write("tls.key.new", &renewed.key_pem);
    write("tls.crt.new", &renewed.cert_pem);
    std::fs::rename(tmp.path().join("tls.key.new"), &key).expect("key");
    std::fs::rename(tmp.path().join("tls.crt.new"), &cert).expect("cert");
    exports.insert(
        "atdirectory",
        scrape_until(
            &mut atdirectory,
            "atdirectory",
            port,
            covers("atdirectory_", &wanted),
        )
        .await,
    );
    drop(idle);

    // The operator against the real control plane, through the fault proxy: an Atsign fails to reconcile while the API server fails
    // every write, then is provisioned and registered with a directory once it recovers, and a
    // hand edit of its Service is put back (a drift correction).
    let (sim, client) = cluster().await;
    let dir = directory(client.clone()).await;
    create_atsign(&client, "mona", serde_json::json!({})).await;
    sim.faults().set(FaultConfig {
        error_rate: 1.0,
        ..FaultConfig::default()
    });
    let kubeconfig = tmp.path().join("kubeconfig");
    sim.faults()
        .write_kubeconfig(&kubeconfig)
        .expect("kubeconfig");
    let operator_token = write("operator-token", TOKEN);
    let port = free_port();
    let mut operator = spawn(
        Path::new(env!("CARGO_BIN_EXE_atfleet-operator")),
        &[
            "--http-listen",
            &format!("127.0.0.1:{port}"),
            "--namespace",
            system_ns(),
            "--watch-namespace",
            ns(),
            "--directory-url",
            &dir.url,
            "--directory-token-file",
            &operator_token,
        ],
        &[("KUBECONFIG", &kubeconfig.to_string_lossy())],
    );
    scrape_until(&mut operator, "atfleet-operator", port, |f| {
        f.contains_key("atfleet_operator_reconcile_errors")
    })
    .await;
    sim.faults().set(FaultConfig::default());
    // Someone else edits a child the operator applied: a label of its own on mona's Service. The
    // operator applies the Service again (and leaves the label, which it does not own).
    let services: Api<Service> = Api::namespaced(client.clone(), ns());
    let mut tries = 0;
    tokio::time::timeout(Duration::from_secs(90), async {
        loop {
            if let Ok(Some(_)) = services.get_opt("mona").await {
                let edit = serde_json::json!({ "metadata": { "labels": { "edited-by": "monitoring-test" } } });
                if services
                    .patch("mona", &PatchParams::default(), &Patch::Merge(&edit))
                    .await
                    .is_ok()
                {
                    return;
                }
            }
            tries += 1;
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    })
    .await
    .unwrap_or_else(|_| panic!("the operator never made mona's Service ({tries} looks)"));
    exports.insert(
        "atfleet-operator",
        scrape_until(
            &mut operator,
            "atfleet-operator",
            port,
            covers("atfleet_operator_", &wanted),
        )
        .await,
    );

    let mut used = BTreeSet::new();
    let mut unknown = Vec::new();
    for (source, names) in &expressions {
        assert!(!names.is_empty(), "no metric in {source}");
        for name in names {
            match exports.iter().find(|(_, f)| exported(f, name)) {
                Some((bin, _)) => {
                    used.insert(*bin);
                }
                None => unknown.push(format!("{name}  ({source})")),
            }
        }
    }
    assert!(
        unknown.is_empty(),
        "metrics no binary exports:\n  {}",
        unknown.join("\n  ")
    );
    assert_eq!(
        used.len(),
        3,
        "the assets cover all three binaries: {used:?}"
    );

    for child in [&mut atserver, &mut atdirectory, &mut operator] {
        let _ = child.start_kill();
        let _ = child.wait().await;
    }
    sim.shutdown().await;
}
