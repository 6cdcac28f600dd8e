//! Honest clients: a steady workload (one exchange per tick, not as fast as possible, so the
//! latency is the server's responsiveness rather than a queue) tagged with the phase it ran in.

use std::sync::atomic::{AtomicU8, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use at_protocol::client::{AtConnection, RootClient};
use at_protocol::AtSign;
use tokio::time::MissedTickBehavior;

/// Before and after the attack.
pub const QUIET: u8 = 0;
pub const ATTACK: u8 = 1;
pub const STOP: u8 = 2;

/// Latencies in ms by phase (`[quiet, attack]`) and what went wrong.
#[derive(Debug, Default)]
pub struct Samples {
    pub ms: [Vec<f64>; 2],
    pub failures: Vec<String>,
}

impl Samples {
    pub fn merge(&mut self, other: Samples) {
        let [q, a] = other.ms;
        self.ms[0].extend(q);
        self.ms[1].extend(a);
        self.failures.extend(other.failures);
    }
}

/// What one honest client does per tick.
pub enum Work {
    /// An owner connection: `llookup` of its own key, every tenth tick an `update` of it.
    AtServer { conn: AtConnection, key: String },
    /// Root lookups on one kept connection.
    Directory { root: RootClient, atsign: AtSign },
}

pub async fn run(mut work: Work, every: Duration, phase: Arc<AtomicU8>) -> Samples {
    let mut out = Samples::default();
    let mut tick = tokio::time::interval(every);
    tick.set_missed_tick_behavior(MissedTickBehavior::Delay);
    for n in 0u64.. {
        tick.tick().await;
        let now = phase.load(Ordering::SeqCst);
        if now == STOP {
            break;
        }
        let started = Instant::now();
        let result = match &mut work {
            Work::AtServer { conn, key } => {
                let command = if n % 10 == 9 {
                    format!("update:{key} value{n}")
                } else {
                    format!("llookup:{key}")
                };
                match conn.send_raw(&command).await {
                    Ok(r) if r.starts_with("data:") => Ok(()),
                    Ok(r) => Err(format!("`{command}` got {r:?}")),
                    Err(e) => Err(format!("`{command}`: {e}")),
                }
            }
            Work::Directory { root, atsign } => match root.lookup(atsign).await {
                Ok(Some(_)) => Ok(()),
                Ok(None) => Err(format!("lookup of {atsign}: not found")),
                Err(e) => Err(format!("lookup of {atsign}: {e}")),
            },
        };
        let ms = started.elapsed().as_secs_f64() * 1000.0;
        match result {
            Ok(()) => out.ms[usize::from(now == ATTACK)].push(ms),
            Err(e) => {
                out.failures.push(format!(
                    "an honest client failed {}: {e}",
                    if now == ATTACK {
                        "during the attack"
                    } else {
                        "without an attack"
                    }
                ));
                // One connection's failure is reported once; a broken connection stays broken.
                if matches!(work, Work::AtServer { .. }) {
                    break;
                }
            }
        }
    }
    out
}
