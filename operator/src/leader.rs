//! Leader election through a `coordination.k8s.io/v1` Lease, so several operator replicas can
//! run and only one reconciles. Optimistic concurrency (resourceVersion) decides races.
//!
//! Whether another holder's lease has expired is judged on this replica's monotonic clock: from
//! when this replica last saw the lease record change, as client-go does. The `renewTime` the
//! holder writes comes from the holder's wall clock, so comparing it with ours would let clock
//! skew between nodes decide leadership.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::coordination::v1::{Lease, LeaseSpec};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::MicroTime;
use kube::api::{ObjectMeta, PostParams};
use kube::Api;

#[derive(Debug, Clone)]
pub struct LeaseConfig {
    pub namespace: String,
    pub name: String,
    /// Unique per replica (pod name plus a random suffix).
    pub identity: String,
    /// How long a lease stays valid without renewal.
    pub lease_duration: Duration,
    /// How often the holder renews; well under `lease_duration`.
    pub renew_interval: Duration,
}

/// The other holder's lease record as last read, and when (on this replica's clock) it last
/// changed.
#[derive(Debug, Clone, PartialEq)]
struct Observed {
    record: (Option<String>, Option<String>, Option<i32>),
    since: tokio::time::Instant,
}

#[derive(Clone)]
pub struct LeaderElector {
    api: Api<Lease>,
    config: LeaseConfig,
    observed: Arc<Mutex<Option<Observed>>>,
}

impl LeaderElector {
    pub fn new(client: kube::Client, config: LeaseConfig) -> Self {
        Self {
            api: Api::namespaced(client, &config.namespace),
            config,
            observed: Arc::default(),
        }
    }

    /// Whether the lease another replica holds has gone unrenewed for its whole duration, as
    /// seen from here: any change of holder, renew time or duration restarts the count.
    fn expired_here(&self, spec: &LeaseSpec) -> bool {
        let record = (
            spec.holder_identity.clone(),
            spec.renew_time.as_ref().map(|t| t.0.to_string()),
            spec.lease_duration_seconds,
        );
        let now = tokio::time::Instant::now();
        let mut observed = self.observed.lock().unwrap_or_else(|p| p.into_inner());
        let since = match observed.as_ref() {
            Some(o) if o.record == record => o.since,
            _ => {
                *observed = Some(Observed { record, since: now });
                now
            }
        };
        let duration = Duration::from_secs(
            u64::try_from(spec.lease_duration_seconds.unwrap_or(0)).unwrap_or(0),
        );
        now.duration_since(since) >= duration
    }

    pub fn identity(&self) -> &str {
        &self.config.identity
    }

    pub fn config(&self) -> &LeaseConfig {
        &self.config
    }

    fn duration_secs(&self) -> i32 {
        i32::try_from(self.config.lease_duration.as_secs().max(1)).unwrap_or(i32::MAX)
    }

    /// One attempt to take or renew the lease. `Ok(true)` when this replica holds it afterwards.
    pub async fn try_acquire_or_renew(&self) -> Result<bool, kube::Error> {
        let now = Timestamp::now();
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            let lease = Lease {
                metadata: ObjectMeta {
                    name: Some(self.config.name.clone()),
                    namespace: Some(self.config.namespace.clone()),
                    ..ObjectMeta::default()
                },
                spec: Some(LeaseSpec {
                    holder_identity: Some(self.config.identity.clone()),
                    lease_duration_seconds: Some(self.duration_secs()),
                    acquire_time: Some(MicroTime(now)),
                    renew_time: Some(MicroTime(now)),
                    lease_transitions: Some(0),
                    ..LeaseSpec::default()
                }),
            };
            return conflict_is_false(self.api.create(&PostParams::default(), &lease).await);
        };
        let spec = lease.spec.get_or_insert_with(LeaseSpec::default);
        let holder = spec.holder_identity.clone().filter(|h| !h.is_empty());
        let mine = holder.as_deref() == Some(self.config.identity.as_str());
        if !mine {
            let free = holder.is_none() || self.expired_here(spec);
            if !free {
                return Ok(false);
            }
            spec.holder_identity = Some(self.config.identity.clone());
            spec.acquire_time = Some(MicroTime(now));
            spec.lease_transitions = Some(spec.lease_transitions.unwrap_or(0).saturating_add(1));
        }
        spec.renew_time = Some(MicroTime(now));
        spec.lease_duration_seconds = Some(self.duration_secs());
        // replace() carries the resourceVersion we read: a concurrent writer makes it fail with 409.
        conflict_is_false(
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await,
        )
    }

    /// Gives the lease up so a standby takes over at once instead of waiting for expiry.
    pub async fn release(&self) -> Result<(), kube::Error> {
        let Some(mut lease) = self.api.get_opt(&self.config.name).await? else {
            return Ok(());
        };
        let Some(spec) = lease.spec.as_mut() else {
            return Ok(());
        };
        if spec.holder_identity.as_deref() != Some(self.config.identity.as_str()) {
            return Ok(());
        }
        spec.holder_identity = None;
        spec.renew_time = None;
        conflict_is_false(
            self.api
                .replace(&self.config.name, &PostParams::default(), &lease)
                .await,
        )
        .map(|_| ())
    }

    /// Waits until this replica holds the lease, or `None` if `stop` resolves first.
    pub async fn acquire(&self, stop: impl std::future::Future<Output = ()>) -> Option<()> {
        tokio::pin!(stop);
        loop {
            match self.try_acquire_or_renew().await {
                Ok(true) => return Some(()),
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "leader election: lease request failed"),
            }
            tokio::select! {
                _ = &mut stop => return None,
                _ = tokio::time::sleep(self.config.renew_interval) => {}
            }
        }
    }

    /// Renews until renewal fails for longer than the lease lasts or another replica holds it
    /// (`Lost`), or `stop` resolves (`Stopped`; the caller releases once its work has stopped).
    pub async fn hold(&self, stop: impl std::future::Future<Output = ()>) -> Held {
        tokio::pin!(stop);
        let mut last_renewed = tokio::time::Instant::now();
        loop {
            tokio::select! {
                _ = &mut stop => return Held::Stopped,
                _ = tokio::time::sleep(self.config.renew_interval) => {}
            }
            match self.try_acquire_or_renew().await {
                Ok(true) => last_renewed = tokio::time::Instant::now(),
                Ok(false) => return Held::Lost,
                Err(e) => {
                    tracing::warn!(error = %e, "leader election: renewal failed");
                    // Stop leading before another replica may legitimately take over.
                    if last_renewed.elapsed() + self.config.renew_interval
                        >= self.config.lease_duration
                    {
                        return Held::Lost;
                    }
                }
            }
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Held {
    Lost,
    Stopped,
}

fn conflict_is_false(r: Result<Lease, kube::Error>) -> Result<bool, kube::Error> {
    match r {
        Ok(_) => Ok(true),
        Err(kube::Error::Api(e)) if e.code == 409 => Ok(false),
        Err(e) => Err(e),
    }
}
