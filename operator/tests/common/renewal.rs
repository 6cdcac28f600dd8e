//! Certificate renewal on a fleet, shared by the simulated and the real-process runs: every TLS
//! Secret aged past its renewal point, a count of the renewed ones, and the pods' identities and
//! restart counts to show a renewal replaced or restarted none.

use std::collections::BTreeMap;

use atfleet_operator::tls::{inspect, BuiltInCa};
use jiff::{SignedDuration, Timestamp};
use k8s_openapi::api::core::v1::{Pod, Secret};
use k8s_openapi::ByteString;
use kube::api::{ListParams, Patch, PatchParams};
use kube::Api;
use serde_json::json;

use super::{condition, ns, secret_text, system_ns};

/// Every Atsign in `names` has `Ready=True`.
pub async fn all_ready(client: &kube::Client, names: &[String]) -> bool {
    for name in names {
        if condition(client, name, "Ready")
            .await
            .map(|c| c.0)
            .as_deref()
            != Some("True")
        {
            return false;
        }
    }
    true
}

/// Pod name → (uid, restarts summed over its containers) in the test's namespace.
pub async fn pod_restarts(client: &kube::Client) -> BTreeMap<String, (String, i32)> {
    let pods: Api<Pod> = Api::namespaced(client.clone(), ns());
    pods.list(&ListParams::default())
        .await
        .expect("pods")
        .items
        .into_iter()
        .filter_map(|p| {
            let restarts = p
                .status
                .as_ref()
                .and_then(|s| s.container_statuses.as_ref())
                .map(|c| c.iter().map(|c| c.restart_count).sum())
                .unwrap_or(0);
            Some((p.metadata.name?, (p.metadata.uid?, restarts)))
        })
        .collect()
}

/// How many pods of `before` are gone, replaced (another uid) or restarted since.
pub fn replaced_or_restarted(
    before: &BTreeMap<String, (String, i32)>,
    after: &BTreeMap<String, (String, i32)>,
) -> usize {
    before
        .iter()
        .filter(|(k, v)| after.get(*k) != Some(*v))
        .count()
}

/// Replaces the leaf of each `<name>-tls` Secret with one of the same CA and host that was
/// issued ten hours ago and expires in ten minutes: past any renewal point, so the operator
/// renews it. Returns the moment the aged leaves count from.
pub async fn age_certificates(client: &kube::Client, names: &[String]) -> Timestamp {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let ca_secret = Api::<Secret>::namespaced(client.clone(), system_ns())
        .get("atfleet-ca")
        .await
        .expect("CA");
    let ca = BuiltInCa::from_pem(
        &secret_text(&ca_secret, "ca.crt").unwrap_or_default(),
        &secret_text(&ca_secret, "ca.key").unwrap_or_default(),
    )
    .expect("CA");
    let now = Timestamp::now();
    for name in names {
        let tls = secrets.get(&format!("{name}-tls")).await.expect("tls");
        let host = inspect(secret_text(&tls, "tls.crt").unwrap_or_default().as_bytes())
            .expect("cert")
            .names[0]
            .clone();
        let aged = ca
            .issue(
                &host,
                now - SignedDuration::from_hours(10),
                SignedDuration::from_hours(10) + SignedDuration::from_mins(10),
            )
            .expect("leaf");
        let patch = json!({ "data": {
            "tls.crt": ByteString(aged.cert_pem.into_bytes()),
            "tls.key": ByteString(aged.key_pem.into_bytes()),
        } });
        secrets
            .patch(
                &format!("{name}-tls"),
                &PatchParams::default(),
                &Patch::Merge(&patch),
            )
            .await
            .expect("age");
    }
    now
}

/// How many `-tls` Secrets of the test's namespace hold a leaf valid for a day after `aged`
/// (renewed since [`age_certificates`]).
pub async fn renewed_count(client: &kube::Client, aged: Timestamp) -> usize {
    let secrets: Api<Secret> = Api::namespaced(client.clone(), ns());
    let Ok(list) = secrets.list(&ListParams::default()).await else {
        return 0;
    };
    list.items
        .iter()
        .filter(|s| {
            s.metadata
                .name
                .as_deref()
                .is_some_and(|n| n.ends_with("-tls"))
        })
        .filter(|s| {
            inspect(secret_text(s, "tls.crt").unwrap_or_default().as_bytes())
                .is_ok_and(|c| c.not_after > aged + SignedDuration::from_hours(24))
        })
        .count()
}
