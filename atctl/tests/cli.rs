//! The command line itself, without any server: environment handling and usage messages.

use std::process::{Command, Output};

fn atctl(env: &[(&str, &str)], args: &[&str]) -> Output {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atctl"));
    for (k, _) in std::env::vars() {
        if k.starts_with("ATCTL_") {
            c.env_remove(k);
        }
    }
    c.envs(env.iter().copied())
        .args(args)
        .output()
        .expect("run atctl")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).into_owned()
}

#[test]
fn an_empty_environment_variable_is_unset_not_a_usage_error() {
    let home = tempfile::tempdir().expect("home");
    let home = home.path().to_str().expect("utf-8");
    // `export ATCTL_CA_BUNDLE=` (and friends) must not be a clap error about a missing value.
    let out = atctl(
        &[
            ("HOME", home),
            ("ATCTL_CA_BUNDLE", ""),
            ("ATCTL_ROOT_SERVER", ""),
            ("ATCTL_KEYS_DIR", ""),
        ],
        &["lookup", "@alice"],
    );
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains("no directory: pass --root-server host:port"),
        "atctl's own message, as if the variables were unset: {err}"
    );
    assert!(!err.contains("a value is required"), "{err}");
}

#[test]
fn several_keys_files_are_listed() {
    let dir = tempfile::tempdir().expect("dir");
    for name in ["@bob_key.atKeys", "@alice_key.atKeys"] {
        std::fs::write(dir.path().join(name), "{}").expect("write");
    }
    let keys = dir.path().to_str().expect("utf-8");
    let out = atctl(&[], &["--keys-dir", keys, "auth", "check"]);
    let err = stderr(&out);
    assert_eq!(out.status.code(), Some(2), "{err}");
    assert!(
        err.contains(&format!(
            "several keys files in {keys} (@alice, @bob): pass --atsign to choose one"
        )),
        "{err}"
    );
}
