//! The Observe step: the rollout and the pod's readiness as the StatefulSet controller reports
//! them, the recovery of a pod stuck on a broken revision, and the certificate's days left.

use jiff::Timestamp;
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::Pod;
use kube::api::DeleteParams;
use kube::{Api, ResourceExt};

use super::context::Context;
use super::error::Cause;
use super::rollout;
use super::status::publish;
use crate::crd::{Atsign, RolloutStrategy};
use crate::resolve::Resolved;
use crate::tls::CertInfo;

/// What the Observe step saw.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Seen {
    /// The atServer is ready (and meant to run).
    pub ready: bool,
    pub rolling_out: bool,
}

/// The Observe step. `parked`: the atServer is held at zero replicas.
pub async fn observe(
    ctx: &Context,
    atsign: &Atsign,
    r: &Resolved,
    sts: Option<&StatefulSet>,
    cert: Option<&CertInfo>,
    parked: bool,
    now: Timestamp,
) -> Result<Seen, Cause> {
    let (ready, rolling) = sts.map(rollout::state).unwrap_or((false, false));
    if let (Some(sts), true, RolloutStrategy::RollingUpdate) = (sts, rolling, r.rollout) {
        recover_stuck_pod(ctx, atsign, &r.namespace, sts, now).await?;
    }
    if let Some(info) = cert {
        let days = info.not_after.duration_since(now).as_secs_f64() / 86_400.0;
        ctx.metrics
            .set_certificate_days_left(&r.namespace, &r.name, Some(days));
    }
    Ok(Seen {
        ready: ready && !r.suspend && !parked,
        rolling_out: rolling && !r.suspend,
    })
}

/// Deletes the atServer's pod when it is stuck on an older, broken revision (see
/// [`rollout::stuck`]); the StatefulSet controller recreates it on the current one.
async fn recover_stuck_pod(
    ctx: &Context,
    atsign: &Atsign,
    ns: &str,
    sts: &StatefulSet,
    now: Timestamp,
) -> Result<(), Cause> {
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), ns);
    let name = format!("{}-0", sts.name_any());
    let Some(pod) = pods.get_opt(&name).await? else {
        return Ok(());
    };
    if !rollout::stuck(sts, &pod, now) {
        return Ok(());
    }
    let params = DeleteParams {
        preconditions: pod.uid().map(|u| kube::api::Preconditions {
            uid: Some(u),
            resource_version: None,
        }),
        ..DeleteParams::default()
    };
    match pods.delete(&name, &params).await {
        Ok(_) => {}
        Err(kube::Error::Api(s)) if s.code == 404 || s.code == 409 => return Ok(()),
        Err(e) => return Err(e.into()),
    }
    publish(
        ctx,
        atsign,
        true,
        "StuckPodReplaced",
        "Rollout",
        format!(
            "pod {ns}/{name} ran an older revision and was not Ready for {}s; deleted so the \
             StatefulSet recreates it on the current one",
            rollout::STUCK_AFTER.as_secs()
        ),
    )
    .await;
    Ok(())
}
