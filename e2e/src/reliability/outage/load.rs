//! The load: root-protocol lookups judged against the ledger, and registrations through the HTTP
//! API recorded in it.

use std::net::SocketAddr;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::Duration;

use at_protocol::client::{ClientConfig, RootClient};
use at_protocol::AtSign;
use rand::rngs::StdRng;
use rand::{Rng, SeedableRng};
use tokio::time::Instant;

use super::ledger::{Kind, Ledger, Tally};
use crate::bench::directory;
use crate::reliability::error::ReliabilityError;

/// A lookup or registration not answered within this counts as refused.
const ANSWER_WITHIN: Duration = Duration::from_secs(10);
/// Pauses between one client's requests, so the load leaves CPU to the processes under test.
const LOOKUP_PAUSE: Duration = Duration::from_millis(5);
const REGISTRATION_PAUSE: Duration = Duration::from_millis(50);

fn root_client(config: &ClientConfig, addr: SocketAddr) -> RootClient {
    RootClient::new(config.clone(), addr.ip().to_string(), addr.port()).with_sni("localhost")
}

fn atsign(name: &str) -> Result<AtSign, String> {
    AtSign::parse(&format!("@{name}")).map_err(|e| format!("{name}: {e}"))
}

/// Registers `n` Atsigns (`s0`…) alternating replicas, then looks each up on every replica so both
/// caches hold them.
pub async fn seed(
    ledger: &Ledger,
    apis: &[SocketAddr],
    roots: &[SocketAddr],
    config: &ClientConfig,
    n: usize,
) -> Result<(), ReliabilityError> {
    for i in 0..n {
        let name = format!("s{i}");
        let (host, port) = Ledger::address_for(&name);
        ledger.sending(&name, &host, port);
        let sent = Instant::now();
        directory::register_one(apis[i % apis.len()], &name, &host, port).await?;
        ledger.acked(&name, sent);
        ledger.seeded(&name);
    }
    for root in roots {
        let client = root_client(config, *root);
        for i in 0..n {
            let name = format!("s{i}");
            let answer = client
                .lookup(&atsign(&name).map_err(ReliabilityError::Setup)?)
                .await?;
            ledger
                .judge(Kind::Seeded, &name, &answer)
                .map_err(|why| ReliabilityError::Violated(format!("before any fault: {why}")))?;
        }
    }
    Ok(())
}

/// One lookup client on one replica until `stop`: half the names seeded, three in ten already
/// acknowledged, the rest never registered.
pub async fn lookups(
    worker: usize,
    root: SocketAddr,
    config: ClientConfig,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
    outage: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut client = root_client(&config, root);
    let mut rng = StdRng::seed_from_u64(worker as u64);
    let mut i = 0u64;
    while !stop.load(Ordering::SeqCst) {
        i += 1;
        let want = match rng.gen_range(0..10) {
            0..=4 => Kind::Seeded,
            5..=7 => Kind::Acked,
            _ => Kind::Unknown,
        };
        let (kind, name) = ledger.pick(want, &mut rng, worker, i);
        let at = match atsign(&name) {
            Ok(a) => a,
            Err(why) => {
                tally.violation(why);
                continue;
            }
        };
        let down_before = outage.load(Ordering::SeqCst);
        let refusal = match tokio::time::timeout(ANSWER_WITHIN, client.lookup(&at)).await {
            Ok(Ok(answer)) => {
                match ledger.judge(kind, &name, &answer) {
                    Ok(()) => {
                        tally.answered += 1;
                        if down_before && outage.load(Ordering::SeqCst) {
                            tally.answered_in_outage += 1;
                        }
                    }
                    Err(why) => {
                        tally.wrong += 1;
                        tally.violation(format!("replica {root}: {why}"));
                    }
                }
                None
            }
            Ok(Err(e)) => Some(e.to_string()),
            Err(_) => {
                // The timed-out lookup may have left a reply in flight on the connection: a new
                // client, so it is never read as the answer to the next name.
                client = root_client(&config, root);
                Some(format!("no answer within {} s", ANSWER_WITHIN.as_secs()))
            }
        };
        if let Some(why) = refusal {
            tally.refused += 1;
            if kind == Kind::Seeded {
                tally.cached_refused += 1;
                tally.violation(format!(
                    "replica {root}: cached {name} refused{}: {why}",
                    if down_before { " during an outage" } else { "" }
                ));
            }
        }
        tokio::time::sleep(LOOKUP_PAUSE).await;
    }
    tally
}

/// One registration client until `stop`: new Atsigns `r<worker>y<i>`, alternating replicas.
pub async fn registrations(
    worker: usize,
    apis: Vec<SocketAddr>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) -> Tally {
    let mut tally = Tally::default();
    let mut i = 0usize;
    while !stop.load(Ordering::SeqCst) {
        let name = format!("r{worker}y{i}");
        let api = apis[(worker + i) % apis.len()];
        i += 1;
        let (host, port) = Ledger::address_for(&name);
        ledger.sending(&name, &host, port);
        let sent = Instant::now();
        match tokio::time::timeout(
            ANSWER_WITHIN,
            directory::register_one(api, &name, &host, port),
        )
        .await
        {
            Ok(Ok(())) => ledger.acked(&name, sent),
            _ => tally.reg_refused += 1,
        }
        tokio::time::sleep(REGISTRATION_PAUSE).await;
    }
    tally
}

/// After recovery: a sample of the acknowledged registrations, each looked up on every replica on
/// a new connection, must be answered with its address.
pub async fn verify_all(
    ledger: &Ledger,
    roots: &[SocketAddr],
    config: &ClientConfig,
    tally: &mut Tally,
) {
    let names = ledger.acked_sample(1000);
    for root in roots {
        let client = root_client(config, *root);
        for name in &names {
            let Ok(at) = atsign(name) else { continue };
            match tokio::time::timeout(ANSWER_WITHIN, client.lookup(&at)).await {
                Ok(Ok(answer)) => match ledger.judge(Kind::Acked, name, &answer) {
                    Ok(()) => tally.answered += 1,
                    Err(why) => {
                        tally.wrong += 1;
                        tally.violation(format!("after recovery, replica {root}: {why}"));
                    }
                },
                Ok(Err(e)) => tally.violation(format!(
                    "after recovery, replica {root} did not answer {name}: {e}"
                )),
                Err(_) => {
                    tally.violation(format!(
                        "after recovery, replica {root} did not answer {name} within {} s",
                        ANSWER_WITHIN.as_secs()
                    ));
                    return;
                }
            }
        }
    }
}
