//! The delivery worker. Each pass reads the queued sent notifications from the store, groups
//! them per recipient and starts one task per recipient that is neither busy nor quarantined.
//! A task sends that recipient's due notifications in priority order (high first, oldest first
//! within a priority) over one pol-authenticated connection and persists every outcome. A
//! notification queued while its recipient's task runs is picked up by that task before it ends,
//! so a steady stream to one peer never waits for a task to finish and a new pass to start.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use at_protocol::{AtSign, Reply as WireReply};
use tokio::sync::Notify;
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::context::{PeerDelivery, Shared};
use crate::notifications::{Notification, Status};
use crate::peer::connector::timed;
use crate::peer::{PeerError, Pooled};

use super::command::delivery_command;
use super::settings::DeliverySettings;

#[derive(Default)]
struct State {
    /// Recipients with a task running.
    busy: HashSet<String>,
    /// Busy recipients with notifications queued after their task read the queue.
    more: HashSet<String>,
    /// Recipient → (not before, consecutive connection failures).
    quarantine: HashMap<String, (Instant, u32)>,
    /// Notification id → not before (retry backoff; empty after a restart: all due).
    retry_at: HashMap<String, Instant>,
}

pub struct Engine {
    settings: DeliverySettings,
    nudge: Notify,
    state: Mutex<State>,
}

/// Lets the write path hand new notifications to the engine.
pub struct EngineHandle(pub Arc<Engine>);

impl PeerDelivery for EngineHandle {
    fn enqueue(&self, _notification_id: &str, _recipient: &str) {
        self.0.nudge.notify_one();
    }
}

/// How one attempt ended.
enum Outcome {
    Delivered,
    /// The peer answered with something other than `data:success`.
    Refused(String),
    /// The connection broke or timed out: stop this round for the recipient.
    Broken(PeerError),
}

/// Drops from `list` the notifications still in their retry backoff and orders the rest (high
/// priority first, oldest first within a priority); returns the earliest backoff end dropped.
fn due_only(st: &State, list: &mut Vec<Notification>, now: Instant) -> Option<Instant> {
    let mut next: Option<Instant> = None;
    list.retain(|n| match st.retry_at.get(&n.id) {
        Some(at) if *at > now => {
            next = Some(next.map_or(*at, |x| x.min(*at)));
            false
        }
        _ => true,
    });
    list.sort_by(|a, b| {
        b.priority
            .cmp(&a.priority)
            .then(a.created_at.cmp(&b.created_at))
    });
    next
}

impl Engine {
    pub fn new(settings: DeliverySettings) -> Arc<Self> {
        Arc::new(Engine {
            settings,
            nudge: Notify::new(),
            state: Mutex::new(State::default()),
        })
    }

    fn state(&self) -> std::sync::MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|p| p.into_inner())
    }

    /// Runs until shutdown: a pass at start (resuming what a restart left queued), then after
    /// every nudge, finished task or timer.
    pub async fn run(self: Arc<Self>, shared: Arc<Shared>) {
        let mut tasks = JoinSet::new();
        loop {
            let wait = match self.pass(&shared, &mut tasks).await {
                Ok(wait) => wait,
                Err(e) => {
                    tracing::warn!(error = %e, "delivery pass failed");
                    self.settings.poll_interval
                }
            };
            tokio::select! {
                _ = shared.shutdown.cancelled() => break,
                _ = self.nudge.notified() => {}
                Some(_) = tasks.join_next(), if !tasks.is_empty() => {}
                _ = tokio::time::sleep(wait) => {}
            }
        }
        tasks.shutdown().await;
    }

    /// Starts tasks for due recipients; returns how long until something else becomes due.
    async fn pass(
        self: &Arc<Self>,
        shared: &Arc<Shared>,
        tasks: &mut JoinSet<()>,
    ) -> Result<Duration, crate::store::StoreError> {
        let now_ms = shared.clock.now_millis();
        let queued = shared.store.call(move |db| db.queued_sent(now_ms)).await?;
        shared.peers.expire_idle();
        let mut per_recipient: BTreeMap<String, Vec<Notification>> = BTreeMap::new();
        let mut nowhere = Vec::new();
        for n in queued {
            if n.to.starts_with('@') {
                per_recipient.entry(n.to.clone()).or_default().push(n);
            } else {
                // `notify:public:…` names no atServer to deliver to.
                nowhere.push(n.id);
            }
        }
        if !nowhere.is_empty() {
            shared
                .store
                .call(move |db| {
                    nowhere
                        .iter()
                        .try_for_each(|id| db.set_notification_status(id, Status::Errored))
                })
                .await?;
        }
        // `latest` notifications superseded by newer ones are retired before anything is
        // counted or sent; a busy recipient's own task does it for its queue.
        let busy = self.state().busy.clone();
        for (recipient, list) in per_recipient.iter_mut() {
            if !busy.contains(recipient) {
                super::latest::trim(shared, list).await;
            }
        }
        shared.peers.metrics.set_queue_depths(
            per_recipient
                .iter()
                .map(|(peer, list)| (peer.clone(), list.len() as i64))
                .collect(),
        );
        let now = Instant::now();
        let mut next = now + self.settings.poll_interval;
        let mut st = self.state();
        let queued: HashSet<&str> = per_recipient
            .values()
            .flatten()
            .map(|n| n.id.as_str())
            .collect();
        st.retry_at.retain(|id, _| queued.contains(id.as_str()));
        for (recipient, mut list) in per_recipient {
            if st.busy.contains(&recipient) {
                continue;
            }
            if let Some((until, _)) = st.quarantine.get(&recipient) {
                if *until > now {
                    next = next.min(*until);
                    continue;
                }
            }
            if let Some(at) = due_only(&st, &mut list, now) {
                next = next.min(at);
            }
            if list.is_empty() || st.busy.len() >= self.settings.parallel_recipients {
                continue;
            }
            st.busy.insert(recipient.clone());
            let (engine, shared) = (self.clone(), shared.clone());
            tasks.spawn(async move { engine.serve(&shared, recipient, list).await });
        }
        Ok(next.saturating_duration_since(now))
    }

    /// One recipient's task: delivers `list`, then whatever was queued for the recipient
    /// meanwhile, until nothing more is due or the connection broke.
    async fn serve(&self, shared: &Shared, recipient: String, mut list: Vec<Notification>) {
        loop {
            super::latest::trim(shared, &mut list).await;
            if !list.is_empty() && !self.serve_recipient(shared, &recipient, list).await {
                break;
            }
            if !self.release_or_continue(&recipient) {
                // No longer ours: a new pass may already run a task for the recipient.
                return;
            }
            let now_ms = shared.clock.now_millis();
            let queued = shared.store.call(move |db| db.queued_sent(now_ms)).await;
            list = match queued {
                Ok(all) => {
                    let mut mine: Vec<Notification> =
                        all.into_iter().filter(|n| n.to == recipient).collect();
                    due_only(&self.state(), &mut mine, Instant::now());
                    mine
                }
                Err(e) => {
                    tracing::warn!(error = %e, "reading the delivery queue failed");
                    Vec::new()
                }
            };
        }
        self.release(&recipient);
    }

    /// After a round: true when notifications were queued for `recipient` during it (the task
    /// continues), else the recipient is no longer busy. One lock, so `enqueue` either sees the
    /// task still busy (and leaves the work to it) or not busy (and nudges a new pass).
    fn release_or_continue(&self, recipient: &str) -> bool {
        let mut st = self.state();
        if st.more.remove(recipient) {
            return true;
        }
        st.busy.remove(recipient);
        false
    }

    fn release(&self, recipient: &str) {
        let mut st = self.state();
        st.more.remove(recipient);
        st.busy.remove(recipient);
    }

    /// Sends `list` over one pooled connection; false when the recipient was unreachable or the
    /// connection broke (it is quarantined then).
    async fn serve_recipient(
        &self,
        shared: &Shared,
        recipient: &str,
        list: Vec<Notification>,
    ) -> bool {
        let peers = &shared.peers;
        let connected = match AtSign::parse(recipient) {
            Ok(peer) => crate::peer::handshake::checkout(shared, &peer).await,
            Err(_) => Err(PeerError::NotRegistered(recipient.to_string())),
        };
        let mut pooled = match connected {
            Ok(p) => {
                self.state().quarantine.remove(recipient);
                p
            }
            Err(e) => {
                tracing::info!(%recipient, error = %e, "recipient unreachable; quarantined");
                self.quarantine(recipient);
                for n in list {
                    self.failed_attempt(shared, n, false).await;
                }
                return false;
            }
        };
        let mut broken = false;
        for n in list {
            if broken {
                break;
            }
            let mut outcome = self.attempt(shared, &mut pooled, &n).await;
            if pooled.reused && matches!(&outcome, Outcome::Broken(e) if e.transport()) {
                // The idle connection died while pooled (the peer restarted, say): reconnect.
                if let Ok(peer) = AtSign::parse(recipient) {
                    match crate::peer::handshake::checkout_fresh(shared, &peer).await {
                        Ok(fresh) => {
                            pooled = fresh;
                            outcome = self.attempt(shared, &mut pooled, &n).await;
                        }
                        Err(e) => outcome = Outcome::Broken(e),
                    }
                }
            }
            match outcome {
                Outcome::Delivered => {
                    let id = n.id.clone();
                    // Not synced on its own: losing it in a crash only means one more delivery,
                    // which the peer acknowledges without storing it twice (same id). The next
                    // synced commit or checkpoint makes it durable.
                    let stored = shared
                        .store
                        .call(move |db| {
                            db.unsynced(|db| db.set_notification_status(&id, Status::Delivered))
                        })
                        .await;
                    if let Err(e) = stored {
                        tracing::error!(error = %e, "recording a delivery failed");
                    }
                    self.state().retry_at.remove(&n.id);
                    let latency = shared.clock.now_millis().saturating_sub(n.created_at);
                    peers.metrics.delivery("delivered");
                    peers
                        .metrics
                        .delivery_latency
                        .observe(latency.max(0) as f64 / 1000.0);
                }
                Outcome::Refused(reply) => {
                    tracing::info!(%recipient, id = %n.id, %reply, "notification refused by peer");
                    self.failed_attempt(shared, n, true).await;
                }
                Outcome::Broken(e) => {
                    tracing::info!(%recipient, error = %e, "delivery connection broke");
                    broken = true;
                    self.quarantine(recipient);
                    self.failed_attempt(shared, n, false).await;
                }
            }
        }
        if !broken {
            peers.checkin(pooled);
        }
        !broken
    }

    async fn attempt(&self, shared: &Shared, pooled: &mut Pooled, n: &Notification) -> Outcome {
        let Some(command) = delivery_command(n) else {
            return Outcome::Refused(format!("cannot build a delivery line for {}", n.key));
        };
        let limit = shared.peers.settings.notify_timeout;
        let sent = timed(limit, "delivering a notification", async {
            pooled
                .conn
                .send(&command)
                .await
                .map_err(|source| PeerError::Peer {
                    atsign: n.to.clone(),
                    source,
                })
        })
        .await;
        match sent {
            Ok(WireReply::Data(d)) if d.trim() == "success" => Outcome::Delivered,
            Ok(other) => Outcome::Refused(format!("{other:?}")),
            Err(e) => Outcome::Broken(e),
        }
    }

    fn quarantine(&self, recipient: &str) {
        let mut st = self.state();
        let failures = st.quarantine.get(recipient).map_or(0, |(_, f)| *f) + 1;
        let wait = self.settings.backoff(self.settings.quarantine, failures);
        st.quarantine
            .insert(recipient.to_string(), (Instant::now() + wait, failures));
    }

    /// Counts an attempt; past the limit the notification becomes `errored`. A refused one waits
    /// its own backoff (`own_backoff`); after a connection failure the recipient's quarantine
    /// holds them all back together, so they leave again in priority order. Persisted, so a
    /// restart keeps the count.
    async fn failed_attempt(&self, shared: &Shared, mut n: Notification, own_backoff: bool) {
        n.retry_count += 1;
        let give_up = n.retry_count >= self.settings.max_attempts;
        if give_up {
            n.status = Status::Errored;
            shared.peers.metrics.delivery("errored");
            self.state().retry_at.remove(&n.id);
        } else if own_backoff {
            shared.peers.metrics.delivery("retry");
            let failures = u32::try_from(n.retry_count).unwrap_or(u32::MAX);
            let wait = self
                .settings
                .backoff(self.settings.initial_backoff, failures);
            self.state()
                .retry_at
                .insert(n.id.clone(), Instant::now() + wait);
        } else {
            shared.peers.metrics.delivery("retry");
        }
        let stored = shared.store.call(move |db| db.put_notification(&n)).await;
        if let Err(e) = stored {
            tracing::error!(error = %e, "recording a failed delivery failed");
        }
    }
}
