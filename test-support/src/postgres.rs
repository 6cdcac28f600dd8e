//! A database of its own for each test on the cluster `DATABASE_URL` names (scripts/with-postgres),
//! so tests run in parallel.

use sqlx::Connection;

/// Creates an empty database named `<prefix>_<random>` and returns its URL.
pub async fn fresh_database(prefix: &str) -> String {
    let base = match std::env::var("DATABASE_URL") {
        Ok(u) if !u.is_empty() => u,
        _ => panic!(
            "DATABASE_URL is not set: run under scripts/with-postgres (scripts/with-postgres -- cargo test -p <crate>)"
        ),
    };
    let name = format!("{prefix}_{:016x}", rand::random::<u64>());
    let mut admin = sqlx::PgConnection::connect(&base)
        .await
        .expect("connect to Postgres");
    sqlx::raw_sql(sqlx::AssertSqlSafe(format!("CREATE DATABASE {name}")))
        .execute(&mut admin)
        .await
        .expect("create database");
    admin.close().await.ok();
    with_database(&base, &name)
}

/// `base` with its database path replaced by `name`, keeping any query.
fn with_database(base: &str, name: &str) -> String {
    let (path, query) = match base.split_once('?') {
        Some((p, q)) => (p, Some(q)),
        None => (base, None),
    };
    let (server, _) = path.rsplit_once('/').expect("database URL has a path");
    match query {
        Some(q) => format!("{server}/{name}?{q}"),
        None => format!("{server}/{name}"),
    }
}

#[cfg(test)]
mod tests {
    use super::with_database;

    #[test]
    fn replaces_the_database_and_keeps_the_query() {
        assert_eq!(
            with_database("postgres://u@127.0.0.1:5/postgres?sslmode=disable", "t_1"),
            "postgres://u@127.0.0.1:5/t_1?sslmode=disable"
        );
        assert_eq!(with_database("postgres://h/db", "t_2"), "postgres://h/t_2");
    }
}
