//! Rotation of the built-in CA, in three moves so that no atServer ever meets a certificate it
//! does not trust (it reads its trust bundle only at start, and reloads only its own leaf):
//!
//! 1. **Begin** (asked for with the annotation `atfleet.dev/rotate-ca` on the CA Secret, or when
//!    the CA is past 80 % of its life): a new CA is generated into `next.crt`/`next.key`. Every
//!    Atsign's trust bundle gains it; the changed bundle rolls each pod.
//! 2. **Promote**, once every built-in-CA Atsign's pod runs on a bundle holding the new CA: it
//!    becomes the issuing CA and the old one moves to `previous.crt` (still trusted). Each leaf is
//!    re-issued from the new CA at its next reconcile (`IssuerChanged`), in the same Secret write
//!    as the bundle, whose order changes (issuing CA first), so the pod rolls onto it.
//! 3. **Retire**, once every TLS Secret holds a leaf of the new CA *and* every pod runs on that
//!    Secret's bundle, i.e. was started with the new leaf: `previous.crt` goes, and the bundles
//!    shrink back to one built-in CA. A leaf written to the Secret is not yet a leaf served: the
//!    running atServer sees it only once the kubelet has refreshed the Secret volume and its own
//!    30 s poll has run, and a pod already rolled onto the bundle without the old CA refuses a
//!    peer still presenting an old leaf (the failed handshakes `tests/ca_rotation_fleet.rs`
//!    measured when Retire waited for the Secrets alone).
//!
//! The fleet is read (Secrets and StatefulSets by the managed-by label) once per resync, by the
//! leader only.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Secret;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;

use super::ca_store::{CaState, NEXT_CERT_KEY, NEXT_KEY_KEY, PREVIOUS_CERT_KEY};
use super::context::Context;
use super::error::Cause;
use crate::build::{
    managed_selector, trust_checksum, LABEL_INSTANCE, TRUST_BUNDLE_KEY, TRUST_CHECKSUM_ANNOTATION,
};
use crate::tls::{inspect, BuiltInCa, CA_CERT_KEY, CA_KEY_KEY};

/// Annotation on the CA Secret that asks for a rotation.
pub const ROTATE_ANNOTATION: &str = "atfleet.dev/rotate-ca";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Move {
    None,
    Begin,
    Promote,
    Retire,
}

impl Move {
    pub fn as_str(self) -> &'static str {
        match self {
            Move::None => "None",
            Move::Begin => "Begin",
            Move::Promote => "Promote",
            Move::Retire => "Retire",
        }
    }
}

/// One built-in-CA Atsign as the rotation sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    /// The trust bundle its TLS Secret holds.
    pub trust: String,
    /// The issuing CA of its leaf (the Secret's `ca.crt`).
    pub leaf_ca: String,
    /// Its pod runs on exactly that bundle (or it has no pod to run).
    pub running_on_trust: bool,
}

/// What to do next, from the CA Secret's state and the fleet. Pure.
pub fn decide(state: &CaState, requested: bool, now: Timestamp, fleet: &[Member]) -> Move {
    if let Some((next, _)) = &state.next {
        let trusted_everywhere = fleet
            .iter()
            .all(|m| m.running_on_trust && contains(&m.trust, next));
        return if trusted_everywhere {
            Move::Promote
        } else {
            Move::None
        };
    }
    if state.previous.is_some() {
        let issuing = state.issuing.cert_pem();
        let serving_new = fleet
            .iter()
            .all(|m| m.leaf_ca.trim() == issuing.trim() && m.running_on_trust);
        return if serving_new {
            Move::Retire
        } else {
            Move::None
        };
    }
    if requested || aging(state, now) {
        Move::Begin
    } else {
        Move::None
    }
}

fn contains(bundle: &str, pem: &str) -> bool {
    bundle.contains(pem.trim())
}

/// The issuing CA is past 80 % of its life.
fn aging(state: &CaState, now: Timestamp) -> bool {
    inspect(state.issuing.cert_pem().as_bytes()).is_ok_and(|info| {
        let life = info.not_after.duration_since(info.not_before);
        now >= info.not_before + life * 4 / 5
    })
}

/// Reads the fleet, decides, and makes the move. Returns the move made.
pub async fn advance(ctx: &Context) -> Result<Move, Cause> {
    let Some(secret) = ctx.ca.api.get_opt(&ctx.ca.name).await? else {
        // No built-in CA yet: nothing issued, nothing to rotate.
        return Ok(Move::None);
    };
    let state = ctx.ca.parse(&secret)?;
    let requested = secret.annotations().contains_key(ROTATE_ANNOTATION);
    let fleet = if state.next.is_some() || state.previous.is_some() {
        members(ctx).await?
    } else {
        Vec::new()
    };
    let now = Timestamp::now();
    let chosen = decide(&state, requested, now, &fleet);
    let data = match chosen {
        Move::None => {
            // Another replica moved meanwhile, or this one restarted: serve what the Secret says.
            ctx.ca.set(&secret).await?;
            return Ok(Move::None);
        }
        Move::Begin => {
            let next = BuiltInCa::generate(now)?;
            json!({ NEXT_CERT_KEY: b64(next.cert_pem()), NEXT_KEY_KEY: b64(&next.key_pem()) })
        }
        Move::Promote => {
            let Some((cert, key)) = &state.next else {
                return Ok(Move::None);
            };
            json!({
                CA_CERT_KEY: b64(cert), CA_KEY_KEY: b64(key),
                PREVIOUS_CERT_KEY: b64(state.issuing.cert_pem()),
                NEXT_CERT_KEY: null, NEXT_KEY_KEY: null,
            })
        }
        Move::Retire => json!({ PREVIOUS_CERT_KEY: null }),
    };
    // Conditional on the version read: two moves never interleave.
    let patch = json!({
        "metadata": {
            "resourceVersion": secret.resource_version(),
            "annotations": { ROTATE_ANNOTATION: null },
        },
        "data": data,
    });
    let written = ctx
        .ca
        .api
        .patch(&ctx.ca.name, &PatchParams::default(), &Patch::Merge(&patch))
        .await?;
    ctx.ca.set(&written).await?;
    tracing::info!(step = chosen.as_str(), "built-in CA rotation");
    ctx.metrics.ca_rotation(chosen.as_str());
    Ok(chosen)
}

fn b64(pem: &str) -> String {
    use base64::Engine;
    base64::engine::general_purpose::STANDARD.encode(pem.as_bytes())
}

/// Every Atsign whose TLS Secret the built-in CA wrote, in the watched namespaces.
async fn members(ctx: &Context) -> Result<Vec<Member>, Cause> {
    let scopes: Vec<Option<&str>> = if ctx.config.watch_namespaces.is_empty() {
        vec![None]
    } else {
        ctx.config
            .watch_namespaces
            .iter()
            .map(|n| Some(n.as_str()))
            .collect()
    };
    let params = ListParams::default().labels(&managed_selector());
    let mut out = Vec::new();
    for scope in scopes {
        let (secrets, statefulsets): (Api<Secret>, Api<StatefulSet>) = match scope {
            Some(ns) => (
                Api::namespaced(ctx.client.clone(), ns),
                Api::namespaced(ctx.client.clone(), ns),
            ),
            None => (Api::all(ctx.client.clone()), Api::all(ctx.client.clone())),
        };
        let statefulsets = statefulsets.list(&params).await?.items;
        for secret in secrets.list(&params).await?.items {
            let text = |k: &str| {
                secret
                    .data
                    .as_ref()
                    .and_then(|d| d.get(k))
                    .and_then(|b| String::from_utf8(b.0.clone()).ok())
            };
            let (Some(trust), Some(leaf_ca)) = (text(TRUST_BUNDLE_KEY), text("ca.crt")) else {
                continue;
            };
            let instance = secret.labels().get(LABEL_INSTANCE).cloned();
            let sts = statefulsets
                .iter()
                .find(|s| Some(s.name_any()) == instance && s.namespace() == secret.namespace());
            let running_on_trust = sts.is_none_or(|s| runs_on(s, &trust));
            out.push(Member {
                trust,
                leaf_ca,
                running_on_trust,
            });
        }
    }
    Ok(out)
}

/// The StatefulSet's template carries `trust` and every replica it wants runs that template.
pub fn runs_on(sts: &StatefulSet, trust: &str) -> bool {
    let template_trust = sts
        .spec
        .template
        .metadata
        .as_ref()
        .and_then(|m| m.annotations.as_ref())
        .and_then(|a| a.get(TRUST_CHECKSUM_ANNOTATION));
    if template_trust != Some(&trust_checksum(trust)) {
        return false;
    }
    let want = sts.spec.replicas.unwrap_or(1);
    let Some(status) = &sts.status else {
        return want == 0;
    };
    status.observed_generation >= sts.metadata.generation
        && (want == 0 || status.updated_replicas.unwrap_or(0) >= want)
}

#[cfg(test)]
mod tests {
    use super::*;
    use jiff::SignedDuration;

    fn ca() -> BuiltInCa {
        BuiltInCa::generate(Timestamp::now()).expect("ca")
    }

    fn member(trust: &[&str], leaf_ca: &str, running: bool) -> Member {
        Member {
            trust: trust.join("\n"),
            leaf_ca: leaf_ca.to_owned(),
            running_on_trust: running,
        }
    }

    #[test]
    fn begin_only_when_asked_or_aging() {
        let state = CaState {
            issuing: ca(),
            next: None,
            previous: None,
        };
        let now = Timestamp::now();
        assert_eq!(decide(&state, false, now, &[]), Move::None);
        assert_eq!(decide(&state, true, now, &[]), Move::Begin);
        let old = now + SignedDuration::from_hours(24 * 365 * 9);
        assert_eq!(decide(&state, false, old, &[]), Move::Begin);
    }

    #[test]
    fn promote_only_once_every_pod_runs_on_a_bundle_with_the_new_ca() {
        let (old, new) = (ca(), ca());
        let state = CaState {
            issuing: BuiltInCa::from_pem(old.cert_pem(), &old.key_pem()).expect("ca"),
            next: Some((new.cert_pem().to_owned(), new.key_pem())),
            previous: None,
        };
        let now = Timestamp::now();
        let both = [old.cert_pem(), new.cert_pem()];
        let ready = member(&both, old.cert_pem(), true);
        let rolling = member(&both, old.cert_pem(), false);
        let stale = member(&[old.cert_pem()], old.cert_pem(), true);
        assert_eq!(
            decide(&state, false, now, std::slice::from_ref(&ready)),
            Move::Promote
        );
        assert_eq!(decide(&state, false, now, &[]), Move::Promote);
        assert_eq!(
            decide(&state, true, now, &[ready.clone(), rolling]),
            Move::None
        );
        assert_eq!(decide(&state, false, now, &[ready, stale]), Move::None);
    }

    #[test]
    fn retire_only_once_every_pod_started_with_a_leaf_of_the_new_ca() {
        let (old, new) = (ca(), ca());
        let state = CaState {
            issuing: BuiltInCa::from_pem(new.cert_pem(), &new.key_pem()).expect("ca"),
            next: None,
            previous: Some(old.cert_pem().to_owned()),
        };
        let now = Timestamp::now();
        let both = [new.cert_pem(), old.cert_pem()];
        let renewed = member(&both, new.cert_pem(), true);
        let waiting = member(&both, old.cert_pem(), true);
        // Re-issued in the Secret, but the pod still runs the process started with the old leaf.
        let rolling = member(&both, new.cert_pem(), false);
        assert_eq!(
            decide(&state, false, now, &[renewed.clone(), waiting]),
            Move::None
        );
        assert_eq!(
            decide(&state, false, now, &[renewed.clone(), rolling]),
            Move::None
        );
        assert_eq!(decide(&state, false, now, &[renewed]), Move::Retire);
    }
}
