//! Shared test plumbing: a fresh database per test, a test PKI, the server started in-process, and
//! clients that speak the real root protocol over TLS and HTTP.
#![allow(dead_code)]

pub mod http;
pub mod pg;
pub mod pki;
pub mod process;
pub mod root;

use std::path::PathBuf;

use atdirectory::{Cli, Running};
use clap::Parser;
use sqlx::Connection;

pub use pki::Pki;

pub const TOKEN: &str = "test-token-0123456789";

/// The value of an unlabelled metric in a Prometheus text exposition (0 when absent).
pub fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find_map(|l| l.strip_prefix(name)?.strip_prefix(' ')?.trim().parse().ok())
        .unwrap_or(0.0)
}

/// The throwaway cluster's URL, or a failure that says how to get one.
pub fn base_database_url() -> String {
    match std::env::var("DATABASE_URL") {
        Ok(url) if !url.is_empty() => url,
        _ => panic!("DATABASE_URL is not set: run under scripts/with-postgres (scripts/with-postgres -- cargo test -p atdirectory)"),
    }
}

/// `url` with its database name replaced.
pub fn with_database(url: &str, name: &str) -> String {
    let (base, query) = match url.split_once('?') {
        Some((b, q)) => (b, Some(q)),
        None => (url, None),
    };
    let (server, _) = base.rsplit_once('/').expect("database URL has a path");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

/// Creates an empty database with a random name on the cluster at `base_url`, so tests run in parallel.
pub async fn fresh_database_on(base_url: &str) -> String {
    let name = format!("atd_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(base_url)
        .await
        .expect("connect to the test cluster");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create a test database");
    admin.close().await.ok();
    with_database(base_url, &name)
}

pub async fn fresh_database() -> String {
    fresh_database_on(&base_database_url()).await
}

/// Everything a directory process needs on disk: certificate, key, token file, database.
pub struct Fixture {
    pub pki: Pki,
    pub database_url: String,
    pub token_file: PathBuf,
}

impl Fixture {
    pub async fn new() -> Self {
        Self::with_database(fresh_database().await)
    }

    pub fn with_database(database_url: String) -> Self {
        let pki = Pki::new();
        let token_file = pki.dir.path().join("token");
        std::fs::write(&token_file, format!("{TOKEN}\n")).expect("write token");
        Self {
            pki,
            database_url,
            token_file,
        }
    }

    /// The flags of a directory on loopback ports chosen by the OS, plus `extra`.
    pub fn args(&self, extra: &[&str]) -> Vec<String> {
        let mut args: Vec<String> = vec![
            "--listen".into(),
            "127.0.0.1:0".into(),
            "--http-listen".into(),
            "127.0.0.1:0".into(),
            "--tls-cert".into(),
            self.pki.cert_path().display().to_string(),
            "--tls-key".into(),
            self.pki.key_path().display().to_string(),
            "--database-url".into(),
            self.database_url.clone(),
            "--api-token-file".into(),
            self.token_file.display().to_string(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        args
    }

    /// Starts the real server in this process.
    pub async fn start(&self, extra: &[&str]) -> Running {
        let mut argv = vec!["atdirectory".to_string()];
        argv.extend(self.args(extra));
        let cli = Cli::try_parse_from(argv).expect("valid flags");
        atdirectory::start(cli.config).await.expect("server starts")
    }
}
