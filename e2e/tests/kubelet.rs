//! The process kubelet against kubesim: StatefulSet pods made and reported, containers run as
//! processes with Secret volumes, claims and env, scale-down stopping them with SIGTERM, and the
//! readiness-only mode.

use std::future::Future;
use std::path::Path;
use std::time::Duration;

use atfleet_e2e::kubelet::{Config, Kubelet};
use atfleet_e2e::kubesim::{Config as SimConfig, Server};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{Namespace, Pod, Secret};
use kube::api::{Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::json;

const NS: &str = "t";

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    atfleet_test_support::wait::eventually(what, Duration::from_secs(60), check).await;
}

async fn setup() -> (atfleet_e2e::kubesim::Handle, kube::Client) {
    let sim = Server::start(SimConfig::default()).await.expect("kubesim");
    let client = sim.client().expect("client");
    let ns: Namespace = serde_json::from_value(json!({"metadata": {"name": NS}})).expect("ns");
    Api::<Namespace>::all(client.clone())
        .create(&PostParams::default(), &ns)
        .await
        .expect("namespace");
    (sim, client)
}

/// Scales the `web` StatefulSet to `replicas`.
async fn scale_web(api: &Api<StatefulSet>, replicas: i32) {
    api.patch(
        "web",
        &PatchParams::default(),
        &Patch::Merge(json!({"spec": {"replicas": replicas}})),
    )
    .await
    .expect("scale");
}

fn statefulset(
    replicas: i32,
    container: serde_json::Value,
    volumes: serde_json::Value,
) -> StatefulSet {
    serde_json::from_value(json!({
        "apiVersion": "apps/v1", "kind": "StatefulSet",
        "metadata": {"name": "web", "namespace": NS},
        "spec": {
            "replicas": replicas,
            "serviceName": "web",
            "selector": {"matchLabels": {"app": "web"}},
            "template": {
                "metadata": {"labels": {"app": "web"}},
                "spec": {"terminationGracePeriodSeconds": 5, "containers": [container], "volumes": volumes},
            },
        },
    }))
    .expect("statefulset")
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

async fn ready_replicas(api: &Api<StatefulSet>) -> Option<i32> {
    api.get("web").await.ok()?.status?.ready_replicas
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn readiness_only_mode_makes_pods_ready_and_removes_them_on_scale_down() {
    let (sim, client) = setup().await;
    let kubelet = Kubelet::start(client.clone(), Config::simulate());
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    let sts = statefulset(
        2,
        json!({"name": "c", "image": "example.com/none:1"}),
        json!([]),
    );
    sts_api
        .create(&PostParams::default(), &sts)
        .await
        .expect("create");

    eventually("two ready replicas", || async {
        ready_replicas(&sts_api).await == Some(2)
    })
    .await;
    let pod = pods.get("web-1").await.expect("web-1");
    assert!(pod_ready(&pod));
    assert_eq!(pod.labels().get("app").map(String::as_str), Some("web"));
    let owner = pod.owner_references().first().cloned().expect("owner");
    assert_eq!(
        (owner.kind.as_str(), owner.controller),
        ("StatefulSet", Some(true))
    );
    let status = sts_api
        .get("web")
        .await
        .expect("sts")
        .status
        .expect("status");
    assert_eq!(status.replicas, 2);
    assert_eq!(status.observed_generation, Some(1));
    assert_eq!(status.current_revision, status.update_revision);

    scale_web(&sts_api, 1).await;
    eventually("web-1 removed", || async {
        matches!(pods.get_opt("web-1").await, Ok(None))
    })
    .await;
    eventually("one replica", || async {
        sts_api
            .get("web")
            .await
            .ok()
            .and_then(|s| s.status)
            .is_some_and(|s| {
                s.replicas == 1 && s.ready_replicas == Some(1) && s.observed_generation == Some(2)
            })
    })
    .await;
    assert!(pods.get_opt("web-0").await.expect("get").is_some());
    kubelet.shutdown().await;
    sim.shutdown().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn processes_get_secrets_claims_and_env_and_stop_on_scale_down() {
    let (sim, client) = setup().await;
    let state = tempfile::tempdir().expect("tempdir");
    let mut config = Config::processes(state.path(), state.path().join("bin"));
    config.images = config.images.with("sh", "/bin/sh");
    let kubelet = Kubelet::start(client.clone(), config);

    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": NS},
        "data": {"token": "czNjcmV0", "user": "YWxpY2U="},
    }))
    .expect("secret");
    Api::<Secret>::namespaced(client.clone(), NS)
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    // The script sees in-container paths, rewritten to local ones through env; SIGTERM is noted
    // in the claim so the test can see the graceful stop.
    let script = r#"cat "$CREDS/token" > "$OUT/token"; printf '%s' "$USER_NAME" > "$OUT/user"; printf '%s' "$POD" > "$OUT/pod"; trap 'echo term > "$OUT/terminated"; exit 0' TERM; while true; do sleep 0.1; done"#;
    let container = json!({
        "name": "c", "image": "example.com/sh:1",
        "command": ["sh", "-c", script],
        "env": [
            {"name": "CREDS", "value": "/etc/creds"},
            {"name": "OUT", "value": "/data"},
            {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [
            {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
            {"name": "data", "mountPath": "/data"},
        ],
    });
    let volumes = json!([
        {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o440}},
        {"name": "data", "persistentVolumeClaim": {"claimName": "data-web-0"}},
    ]);
    let sts_api: Api<StatefulSet> = Api::namespaced(client.clone(), NS);
    sts_api
        .create(&PostParams::default(), &statefulset(1, container, volumes))
        .await
        .expect("create");

    let claim = state.path().join("claims").join(NS).join("data-web-0");
    let read = |name: &str| std::fs::read_to_string(claim.join(name)).unwrap_or_default();
    eventually("the ready replica", || async {
        ready_replicas(&sts_api).await == Some(1)
    })
    .await;
    eventually("the process wrote its files", || async {
        Path::new(&claim.join("pod")).exists() && !read("pod").is_empty()
    })
    .await;
    assert_eq!(read("token"), "s3cret");
    assert_eq!(read("user"), "alice");
    assert_eq!(read("pod"), "web-0");
    let pod = Api::<Pod>::namespaced(client.clone(), NS)
        .get("web-0")
        .await
        .expect("pod");
    let container_id = pod
        .status
        .as_ref()
        .and_then(|s| s.container_statuses.as_ref())
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default();
    assert!(container_id.starts_with("process://"), "{container_id}");

    scale_web(&sts_api, 0).await;
    let pods: Api<Pod> = Api::namespaced(client.clone(), NS);
    eventually("web-0 removed", || async {
        matches!(pods.get_opt("web-0").await, Ok(None))
    })
    .await;
    assert_eq!(read("terminated").trim(), "term", "stopped with SIGTERM");
    assert_eq!(read("token"), "s3cret", "the claim outlives the pod");
    kubelet.shutdown().await;
    sim.shutdown().await;
}
