//! The finalizer: deregister first, then stop the pod, then keep or delete the volume and
//! Secrets per the retention policy, then let the Atsign go.

use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolumeClaim, Pod, Secret};
use kube::api::{DeleteParams, ListParams, Patch, PatchParams};
use kube::runtime::controller::Action;
use kube::{Api, ResourceExt};
use serde_json::json;

use super::context::{jitter, Context, FINALIZER, SKIP_DEREGISTER_ANNOTATION};
use super::error::Cause;
use super::register::{describe_owner, result_label};
use super::status::publish;
use crate::build;
use crate::crd::{AtServerClass, Atsign, RetentionPolicy};
use crate::directory::{Deregistered, DirectoryError};
use crate::resolve::resolve;

pub async fn cleanup(atsign: &Atsign, ctx: &Context, api: &Api<Atsign>) -> Result<Action, Cause> {
    let name = atsign.name_any();
    let ns = atsign.namespace().unwrap_or_default();

    // 1. Deregister, so clients stop being sent to a server that is going away.
    let skip = atsign
        .annotations()
        .get(SKIP_DEREGISTER_ANNOTATION)
        .map(String::as_str)
        == Some("true");
    let uid = atsign.uid().unwrap_or_default();
    // The finalizer runs several passes while the pod stops; the directory is told once.
    let done = ctx.deregistered.contains(&uid);
    if let (Some(directory), false, false) = (&ctx.directory, skip, done) {
        let owner = ctx.owner_for(&ns, &name);
        let result = directory
            .deregister(&atsign.spec.at_sign, &owner, false)
            .await;
        ctx.metrics
            .directory_call("deregister", result_label(&result));
        match result {
            Ok(Deregistered::Removed) => {
                publish(
                    ctx,
                    atsign,
                    false,
                    "Deregistered",
                    "Delete",
                    "removed from the directory".into(),
                )
                .await;
            }
            Ok(Deregistered::NotRegistered) => {}
            // Someone else holds the record: it was never ours to remove.
            Err(DirectoryError::Conflict { current_owner, .. }) => {
                publish(
                    ctx,
                    atsign,
                    false,
                    "NotOwner",
                    "Delete",
                    format!(
                        "the directory record of {} belongs to {}; left in place",
                        atsign.spec.at_sign,
                        describe_owner(current_owner.as_deref(), &ctx.config.owner_id)
                    ),
                )
                .await;
            }
            Err(e) => {
                publish(
                    ctx,
                    atsign,
                    true,
                    e.reason(),
                    "Delete",
                    format!("cannot deregister yet: {e}"),
                )
                .await;
                return Err(e.into());
            }
        }
        ctx.deregistered.insert(&uid);
    }

    // 2. Stop the pod and wait until it is gone.
    let statefulsets: Api<StatefulSet> = Api::namespaced(ctx.client.clone(), &ns);
    if statefulsets
        .get_opt(&build::statefulset_name(&name))
        .await?
        .is_some()
    {
        ignore_not_found(
            statefulsets
                .delete(&build::statefulset_name(&name), &DeleteParams::foreground())
                .await,
        )?;
    }
    let pods: Api<Pod> = Api::namespaced(ctx.client.clone(), &ns);
    let selector = format!(
        "{}={},{}=atserver",
        build::LABEL_INSTANCE,
        name,
        build::LABEL_NAME
    );
    let remaining = pods.list(&ListParams::default().labels(&selector)).await?;
    if !remaining.items.is_empty()
        || statefulsets
            .get_opt(&build::statefulset_name(&name))
            .await?
            .is_some()
    {
        return Ok(Action::requeue(jitter(ctx.config.poll)));
    }

    // 3. Retention.
    let retention = retention(atsign, ctx).await;
    if retention == RetentionPolicy::Delete {
        let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(ctx.client.clone(), &ns);
        ignore_not_found(
            pvcs.delete(&build::pvc_name(&name), &DeleteParams::default())
                .await,
        )?;
        let secrets: Api<Secret> = Api::namespaced(ctx.client.clone(), &ns);
        for secret in [
            build::cram_secret_name(&name),
            build::tls_secret_name(&name),
        ] {
            ignore_not_found(secrets.delete(&secret, &DeleteParams::default()).await)?;
        }
        publish(
            ctx,
            atsign,
            false,
            "DataDeleted",
            "Delete",
            "deleted the volume claim and Secrets".into(),
        )
        .await;
    }

    // 4. Release the Atsign.
    ctx.metrics.set_phase(&ns, &name, None);
    ctx.metrics.set_certificate_days_left(&ns, &name, None);
    ctx.claims.forget(&ns, &build::pvc_name(&name));
    remove_finalizer(atsign, api).await?;
    ctx.deregistered.forget(&uid);
    Ok(Action::await_change())
}

/// The retention policy from the Atsign and its class; `Retain` when in doubt.
async fn retention(atsign: &Atsign, ctx: &Context) -> RetentionPolicy {
    let class = match &atsign.spec.class_name {
        Some(c) => Api::<AtServerClass>::all(ctx.client.clone())
            .get_opt(c)
            .await
            .ok()
            .flatten(),
        None => None,
    };
    match resolve(
        atsign,
        class.as_ref().map(|c| &c.spec),
        &ctx.config.defaults,
    ) {
        Ok(r) => r.retention,
        Err(_) => atsign
            .spec
            .storage
            .as_ref()
            .and_then(|s| s.retention)
            .unwrap_or_default(),
    }
}

fn ignore_not_found<T>(r: Result<T, kube::Error>) -> Result<(), Cause> {
    match r {
        Ok(_) => Ok(()),
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}

async fn remove_finalizer(atsign: &Atsign, api: &Api<Atsign>) -> Result<(), Cause> {
    let Some(index) = atsign.finalizers().iter().position(|f| f == FINALIZER) else {
        return Ok(());
    };
    let path = format!("/metadata/finalizers/{index}");
    let patch: json_patch::Patch = serde_json::from_value(json!([
        { "op": "test", "path": path, "value": FINALIZER },
        { "op": "remove", "path": path },
    ]))?;
    match api
        .patch(
            &atsign.name_any(),
            &PatchParams::default(),
            &Patch::Json::<()>(patch),
        )
        .await
    {
        Ok(_) => Ok(()),
        // Already gone: nothing left to release.
        Err(kube::Error::Api(s)) if s.code == 404 => Ok(()),
        Err(e) => Err(e.into()),
    }
}
