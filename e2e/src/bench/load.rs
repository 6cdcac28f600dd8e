//! The load driver: N connections, each doing request/response exchanges in turn, either a fixed
//! number of them or as many as fit in a time window.

use std::future::Future;
use std::time::{Duration, Instant};

use super::error::BenchError;

/// One connection (or connection factory) that can do one request/response exchange.
pub trait Exchange: Send + 'static {
    fn exchange(&mut self, i: usize) -> impl Future<Output = Result<(), BenchError>> + Send;
}

/// What one timed run gives: the rate over all connections and every exchange's latency.
pub struct Run<C> {
    pub conns: Vec<C>,
    pub per_second: f64,
    pub latencies_ms: Vec<f64>,
}

/// How long one run lasts.
#[derive(Debug, Clone, Copy)]
pub enum Amount {
    /// This many exchanges on every connection.
    Exchanges(usize),
    /// Exchanges on every connection until the window has passed (the last one may overrun it;
    /// the rate uses the real elapsed time).
    Window(Duration),
}

/// Runs `per_conn` exchanges on every connection concurrently; the clock covers all of them.
pub async fn drive<C: Exchange>(conns: Vec<C>, per_conn: usize) -> Result<Run<C>, BenchError> {
    drive_amount(conns, Amount::Exchanges(per_conn)).await
}

/// Runs every connection concurrently for `amount`; the clock covers all of them.
pub async fn drive_amount<C: Exchange>(
    conns: Vec<C>,
    amount: Amount,
) -> Result<Run<C>, BenchError> {
    let (per_conn, deadline) = match amount {
        Amount::Exchanges(n) => (n, None),
        Amount::Window(w) => (usize::MAX, Some(Instant::now() + w)),
    };
    let started = Instant::now();
    let tasks: Vec<_> = conns
        .into_iter()
        .enumerate()
        .map(|(n, mut c)| {
            tokio::spawn(async move {
                let mut lat = Vec::with_capacity(per_conn.min(1 << 16));
                for i in 0..per_conn {
                    let t = Instant::now();
                    if deadline.is_some_and(|d| t >= d) {
                        break;
                    }
                    c.exchange(n.saturating_mul(per_conn).saturating_add(i))
                        .await?;
                    lat.push(t.elapsed().as_secs_f64() * 1000.0);
                }
                Ok::<_, BenchError>((c, lat))
            })
        })
        .collect();
    let mut conns = Vec::with_capacity(tasks.len());
    let mut latencies_ms = Vec::new();
    for t in tasks {
        let (c, lat) = t
            .await
            .map_err(|e| BenchError::Setup(format!("load task: {e}")))??;
        conns.push(c);
        latencies_ms.extend(lat);
    }
    let elapsed = started.elapsed().as_secs_f64();
    let total = latencies_ms.len() as f64;
    Ok(Run {
        conns,
        per_second: if elapsed > 0.0 { total / elapsed } else { 0.0 },
        latencies_ms,
    })
}

/// Warm-up (untimed), then `reps` timed runs; returns each run's rate and all latencies of the runs.
pub async fn repeat<C: Exchange>(
    conns: Vec<C>,
    warmup: usize,
    per_conn: usize,
    reps: usize,
) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
    repeat_amount(
        conns,
        Amount::Exchanges(warmup),
        Amount::Exchanges(per_conn),
        reps,
    )
    .await
}

/// [`repeat`] with either amount given as a count or a time window.
pub async fn repeat_amount<C: Exchange>(
    conns: Vec<C>,
    warmup: Amount,
    each: Amount,
    reps: usize,
) -> Result<(Vec<f64>, Vec<f64>), BenchError> {
    let mut conns = drive_amount(conns, warmup).await?.conns;
    let mut rates = Vec::with_capacity(reps);
    let mut latencies = Vec::new();
    for _ in 0..reps {
        let run = drive_amount(conns, each).await?;
        conns = run.conns;
        rates.push(run.per_second);
        latencies.extend(run.latencies_ms);
    }
    Ok((rates, latencies))
}
