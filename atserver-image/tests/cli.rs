//! The binary's face: `--help` documents every flag with its environment variable, bad settings
//! fail fast with a one-line error naming them, JSON logs are JSON, SIGTERM exits cleanly.

use std::process::{Command, Stdio};

const BIN: &str = env!("CARGO_BIN_EXE_atserver");

#[test]
fn help_documents_every_flag_and_env_var() {
    let out = Command::new(BIN).arg("--help").output().unwrap();
    assert!(out.status.success());
    let help = String::from_utf8(out.stdout).unwrap();
    for (flag, env) in [
        ("--atsign", "ATSERVER_ATSIGN"),
        ("--listen", "ATSERVER_LISTEN"),
        ("--http-listen", "ATSERVER_HTTP_LISTEN"),
        ("--data-dir", "ATSERVER_DATA_DIR"),
        ("--tls-cert", "ATSERVER_TLS_CERT"),
        ("--tls-key", "ATSERVER_TLS_KEY"),
        ("--ca-bundle", "ATSERVER_CA_BUNDLE"),
        ("--root-server", "ATSERVER_ROOT_SERVER"),
        ("--cram-secret-file", "ATSERVER_CRAM_SECRET_FILE"),
        ("--log-format", "ATSERVER_LOG_FORMAT"),
        ("--max-connections", "ATSERVER_MAX_CONNECTIONS"),
        ("--idle-timeout-secs", "ATSERVER_IDLE_TIMEOUT_SECS"),
        (
            "--auth-idle-timeout-secs",
            "ATSERVER_AUTH_IDLE_TIMEOUT_SECS",
        ),
        ("--max-line-bytes", "ATSERVER_MAX_LINE_BYTES"),
        (
            "--handshake-timeout-secs",
            "ATSERVER_HANDSHAKE_TIMEOUT_SECS",
        ),
    ] {
        assert!(
            help.contains(flag) && help.contains(env),
            "{flag} / {env} missing from --help"
        );
    }
    // The CRAM secret is never a flag value.
    assert!(!help.contains("--cram-secret "));
}

fn fails_with(args: &[&str], envs: &[(&str, &str)], needle: &str) {
    let tmp = tempfile::tempdir().unwrap();
    let mut cmd = Command::new(BIN);
    cmd.args(args)
        .arg("--data-dir")
        .arg(tmp.path())
        .env("ATSERVER_LOG", "off");
    for (k, v) in envs {
        cmd.env(k, v);
    }
    let out = cmd.output().unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains(needle), "expected {needle:?} in {err}");
}

#[test]
fn bad_settings_fail_fast_naming_the_setting() {
    fails_with(
        &["--atsign", "@a:b", "--tls-cert", "c", "--tls-key", "k"],
        &[],
        "--atsign",
    );
    fails_with(
        &[
            "--atsign",
            "@alice",
            "--tls-cert",
            "c",
            "--tls-key",
            "k",
            "--cram-secret-file",
            "/nonexistent",
        ],
        &[],
        "--cram-secret-file",
    );
    // Environment fallback: the atSign comes from ATSERVER_ATSIGN.
    fails_with(
        &["--tls-cert", "/nonexistent.pem", "--tls-key", "k"],
        &[("ATSERVER_ATSIGN", "@alice")],
        "nonexistent.pem",
    );
}

#[test]
fn json_logs_and_sigterm() {
    let tmp = tempfile::tempdir().unwrap();
    let ca = rcgen::generate_simple_self_signed(vec!["localhost".to_string()]).unwrap();
    std::fs::write(tmp.path().join("cert.pem"), ca.cert.pem()).unwrap();
    std::fs::write(tmp.path().join("key.pem"), ca.signing_key.serialize_pem()).unwrap();
    let mut child = Command::new(BIN)
        .args([
            "--atsign",
            "@alice",
            "--listen",
            "127.0.0.1:0",
            "--http-listen",
            "127.0.0.1:0",
        ])
        .args(["--log-format", "json"])
        .arg("--data-dir")
        .arg(tmp.path().join("data"))
        .arg("--tls-cert")
        .arg(tmp.path().join("cert.pem"))
        .arg("--tls-key")
        .arg(tmp.path().join("key.pem"))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut line = String::new();
    std::io::BufRead::read_line(
        &mut std::io::BufReader::new(child.stdout.take().unwrap()),
        &mut line,
    )
    .unwrap();
    assert!(line.starts_with("listening tls=127.0.0.1:"), "{line}");
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "SIGTERM should exit 0");
    let stderr = String::from_utf8(out.stderr).unwrap();
    let lines: Vec<&str> = stderr.lines().filter(|l| !l.is_empty()).collect();
    assert!(!lines.is_empty());
    for l in lines {
        let v: serde_json::Value =
            serde_json::from_str(l).unwrap_or_else(|_| panic!("not JSON: {l}"));
        assert!(v.get("level").is_some());
    }
}
