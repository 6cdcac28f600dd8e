//! The binary's command line: `migrate`, fail-fast configuration errors, documented flags.

mod common;

use std::process::Command;

use common::{fresh_database, Fixture};
use sqlx::Connection;

fn atdirectory() -> Command {
    let mut c = Command::new(env!("CARGO_BIN_EXE_atdirectory"));
    // Only what each test passes.
    c.env_remove("DATABASE_URL");
    c
}

#[tokio::test]
async fn migrate_subcommand_creates_the_schema_and_is_idempotent() {
    let url = fresh_database().await;
    for _ in 0..2 {
        let out = atdirectory()
            .args(["--database-url", &url, "migrate"])
            .output()
            .expect("run");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let mut conn = sqlx::PgConnection::connect(&url).await.expect("connect");
    let (count,): (i64,) = sqlx::query_as("SELECT count(*) FROM atsigns")
        .fetch_one(&mut conn)
        .await
        .expect("table");
    assert_eq!(count, 0);
    // The plain DATABASE_URL variable is honoured too.
    let out = atdirectory()
        .env("DATABASE_URL", &url)
        .arg("migrate")
        .output()
        .expect("run");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}

#[tokio::test]
async fn bad_configuration_fails_fast_naming_the_setting() {
    let fixture = Fixture::new().await;
    let out = atdirectory().arg("migrate").output().expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--database-url"),
        "{out:?}"
    );

    let mut args = fixture.args(&[]);
    let at = args
        .iter()
        .position(|a| a == "--api-token-file")
        .expect("flag");
    args[at + 1] = "/nonexistent/token".into();
    let out = atdirectory().args(&args).output().expect("run");
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(stderr.contains("/nonexistent/token"), "{out:?}");
    assert_eq!(stderr.trim().lines().count(), 1, "one line: {stderr}");

    let out = atdirectory()
        .args(["--listen", "not-an-address"])
        .output()
        .expect("run");
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("--listen"),
        "{out:?}"
    );
}

#[test]
fn help_documents_every_flag_with_its_environment_variable() {
    let out = atdirectory().arg("--help").output().expect("run");
    let help = String::from_utf8_lossy(&out.stdout);
    for flag in [
        "--listen",
        "--http-listen",
        "--tls-cert",
        "--tls-key",
        "--database-url",
        "--read-database-url",
        "--api-token-file",
        "--log-format",
        "--max-connections",
        "--rate-limit-per-second",
        "--miss-delay-ms",
        "--idle-timeout-ms",
        "--handshake-timeout-ms",
        "migrate",
    ] {
        assert!(help.contains(flag), "{flag} missing from --help");
    }
    let flags = help.lines().filter(|l| {
        l.trim_start().starts_with("--") && !l.contains("--help") && !l.contains("--version")
    });
    let env_lines = help.matches("[env: ATDIRECTORY_").count();
    assert_eq!(
        flags.count(),
        env_lines,
        "every flag names its ATDIRECTORY_* variable:\n{help}"
    );
    assert!(help.contains("DATABASE_URL variable"));
}
