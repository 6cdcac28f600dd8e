//! The mixed load on the atServer between kills. Each worker owns one connection and runs until
//! the kill cuts it; what it had sent without a reply is kept as "may or may not have happened".

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use std::net::SocketAddr;

use at_protocol::client::{AtConnection, ClientConfig};
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};

use super::ledger::{Ledger, State};
use super::sync::SyncClient;

/// The section's keys all end in this (the sync check compares only these).
pub const SUFFIX: &str = ".crash@alice";
/// The peer notifications and shares go to.
pub const PEER: &str = "@bob";

/// The key `i` of the pool: self, public and shared-with-the-peer keys in turn.
pub fn pool_key(i: usize) -> String {
    match i % 3 {
        0 => format!("k{i}{SUFFIX}"),
        1 => format!("public:k{i}{SUFFIX}"),
        _ => format!("{PEER}:k{i}{SUFFIX}"),
    }
}

/// Updates and deletes over a fixed pool of keys, one at a time, recorded in the ledger.
pub async fn writer(
    cycle: usize,
    mut conn: AtConnection,
    mut ledger: Ledger,
    pool: usize,
    seed: u64,
) -> Ledger {
    let mut rng = StdRng::seed_from_u64(seed);
    for n in 0.. {
        let key = pool_key(rng.gen_range(0..pool));
        let (command, state) = if rng.gen_bool(0.75) {
            let value = format!("v{cycle}.{n}");
            (format!("update:{key} {value}"), State::Value(value))
        } else {
            (format!("delete:{key}"), State::Absent)
        };
        match conn.send_raw(&command).await {
            Ok(reply) => match reply.strip_prefix("data:") {
                Some(id) => ledger.acked(cycle, &key, state, id.trim().parse().ok()),
                // Deleting a key that is not there: nothing to do, and nothing was done.
                None if state == State::Absent && reply.contains("AT0015") => {}
                None => {
                    ledger
                        .violations
                        .push(format!("cycle {cycle}: `{command}` got {reply:?}"));
                    ledger.unacked(&key, state);
                }
            },
            Err(_) => {
                ledger.unacked(&key, state);
                return ledger;
            }
        }
    }
    ledger
}

/// Notifications sent to the peer, by id.
#[derive(Debug, Default)]
pub struct Sent {
    pub acked: HashSet<String>,
    /// Cut off by a kill: may arrive, at most once.
    pub maybe: HashSet<String>,
    pub refused: Vec<String>,
}

/// Notifications to the peer every `every`, ids `crash-<cycle>-<n>`.
pub async fn notifier(
    cycle: usize,
    mut conn: AtConnection,
    mut sent: Sent,
    every: Duration,
) -> Sent {
    for n in 0.. {
        tokio::time::sleep(every).await;
        let id = format!("crash-{cycle}-{n}");
        let command = format!("notify:id:{id}:{PEER}:n{n}{SUFFIX}:hello");
        match conn.send_raw(&command).await {
            Ok(reply) if reply.starts_with("data:") => {
                sent.acked.insert(id);
            }
            Ok(reply) => {
                sent.refused
                    .push(format!("cycle {cycle}: `{command}` got {reply:?}"));
            }
            Err(_) => {
                sent.maybe.insert(id);
                return sent;
            }
        }
    }
    sent
}

/// Enrollment requests, as a new device sends them: the owner issues an OTP, then an
/// unauthenticated connection requests an enrollment with it.
#[derive(Debug, Default)]
pub struct Enrollments {
    /// Acknowledged enrollment ids, in order; checked after the next restart, and all at the end.
    pub acked: Vec<String>,
    /// How many of `acked` have been checked after a restart.
    pub checked: usize,
    pub refused: Vec<String>,
}

pub async fn enroller(
    cycle: usize,
    mut owner: AtConnection,
    server: SocketAddr,
    config: ClientConfig,
    mut out: Enrollments,
    every: Duration,
) -> Enrollments {
    let host = server.ip().to_string();
    for n in 0.. {
        tokio::time::sleep(every).await;
        let otp = match owner.send_raw("otp:get").await {
            Ok(r) => match r.strip_prefix("data:") {
                Some(otp) => otp.trim().to_owned(),
                None => {
                    out.refused
                        .push(format!("cycle {cycle}: `otp:get` got {r:?}"));
                    continue;
                }
            },
            Err(_) => return out,
        };
        let Ok(mut device) =
            AtConnection::connect_with_sni(&config, &host, server.port(), &host).await
        else {
            return out;
        };
        let request = serde_json::json!({
            "appName": "crash",
            "deviceName": format!("d{cycle}x{n}"),
            "namespaces": {"crash": "rw"},
            "otp": otp,
            "apkamPublicKey": "MIIBIjANBgkqhkiG9w0BAQEFAAOCAQ8AMIIBCgKCAQEAcrashcrashcrash",
            "encryptedAPKAMSymmetricKey": "c3ltbWV0cmljLWtleS1jcmFzaA==",
        });
        match device.send_raw(&format!("enroll:request:{request}")).await {
            Ok(r) => {
                let id = r
                    .strip_prefix("data:")
                    .and_then(|d| serde_json::from_str::<serde_json::Value>(d).ok())
                    .and_then(|v| v["enrollmentId"].as_str().map(str::to_owned));
                match id {
                    Some(id) => out.acked.push(id),
                    None => out
                        .refused
                        .push(format!("cycle {cycle}: `enroll:request` got {r:?}")),
                }
            }
            Err(_) => return out,
        }
    }
    out
}

/// Pulls the commit log as it grows.
pub async fn syncer(cycle: usize, mut conn: AtConnection, mut client: SyncClient) -> SyncClient {
    loop {
        match client.pull(cycle, &mut conn).await {
            Ok(0) => tokio::time::sleep(Duration::from_millis(20)).await,
            Ok(_) => {}
            Err(_) => return client,
        }
    }
}

/// Notification ids the peer's monitor saw, with how often.
pub type Seen = std::sync::Arc<std::sync::Mutex<HashMap<String, u32>>>;
