//! The node agent against the upstream control plane: the StatefulSet controller makes the pods,
//! the scheduler binds them to the agent's node, the agent runs them as processes (Secret volume,
//! env, a service-account kubeconfig that authenticates, a provisioned claim), honours deletion
//! grace, provisions, expands and reclaims local-path volumes, simulates labelled namespaces,
//! serves `kubectl logs`, and rewrites a running pod's Secret and ConfigMap volumes when their
//! objects change.
//!
//! Uses the shared cluster of `scripts/with-controlplane` (`ATFLEET_KUBECONFIG`) when set, else
//! starts a control plane of its own. Every test registers its own tainted node (so no other
//! workload lands on it) and pins its pods there.

use std::future::Future;
use std::path::PathBuf;
use std::time::{Duration, Instant};

use atfleet_cluster::{ControlPlane, Options, SharedCluster};
use atfleet_node_agent::{Config, Handle, NodeAgent, PROVISIONER_NAME, SIMULATE_LABEL};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::authentication::v1::SelfSubjectReview;
use k8s_openapi::api::coordination::v1::Lease;
use k8s_openapi::api::core::v1::{
    ConfigMap, Namespace, Node, PersistentVolume, PersistentVolumeClaim, Pod, Secret,
    ServiceAccount,
};
use k8s_openapi::api::storage::v1::StorageClass;
use kube::api::{DeleteParams, LogParams, Patch, PatchParams, PostParams};
use kube::{Api, ResourceExt};
use serde_json::{json, Value};

const LIMIT: Duration = Duration::from_secs(120);
const TAINT: &str = "node-agent.atfleet.dev/test";

async fn eventually<F, Fut>(what: &str, check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    atfleet_test_support::wait::eventually(what, LIMIT, check).await;
}

/// A cluster (shared or our own) with a node agent of this test's own.
struct TestCluster {
    client: kube::Client,
    namespace: String,
    node: String,
    state: tempfile::TempDir,
    agent: Option<Handle>,
    own: Option<ControlPlane>,
}

fn suffix() -> String {
    let nanos = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.subsec_nanos())
        .unwrap_or_default();
    format!("{:08x}", nanos ^ std::process::id().rotate_left(16))
}

impl TestCluster {
    /// A control plane, a namespace `<name>-<random>` (labelled simulated when asked) and a node
    /// agent for node `<name>-<random>` tainted so only this test's pods go there.
    async fn start(
        name: &str,
        simulated_namespace: bool,
        configure: impl FnOnce(&mut Config),
    ) -> Self {
        let _ = tracing_subscriber::fmt()
            .with_env_filter(
                tracing_subscriber::EnvFilter::try_from_default_env()
                    .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
            )
            .with_test_writer()
            .try_init();
        let state = tempfile::tempdir().expect("tempdir");
        let (client, server, own) = match SharedCluster::from_env() {
            Ok(shared) => (
                shared.client().await.expect("shared cluster client"),
                shared.server().expect("shared cluster server"),
                None,
            ),
            Err(_) => {
                let bin = atfleet_cluster::binaries().expect("control-plane binaries");
                let cp = ControlPlane::start(Options::new(state.path().join("cluster"), bin))
                    .await
                    .expect("control plane");
                let client = cp.client().await.expect("client");
                (client, cp.server.clone(), Some(cp))
            }
        };
        let id = suffix();
        let namespace = format!("{name}-{id}");
        let node = format!("{name}-{id}");
        let mut labels = json!({"atfleet.dev/test": "true"});
        if simulated_namespace {
            labels[SIMULATE_LABEL] = json!("true");
        }
        let ns: Namespace =
            serde_json::from_value(json!({"metadata": {"name": namespace, "labels": labels}}))
                .expect("namespace");
        Api::<Namespace>::all(client.clone())
            .create(&PostParams::default(), &ns)
            .await
            .expect("create namespace");
        // Pods are refused until the service-account controller made `default`.
        let sas: Api<ServiceAccount> = Api::namespaced(client.clone(), &namespace);
        eventually("the default service account", || async {
            matches!(sas.get_opt("default").await, Ok(Some(_)))
        })
        .await;
        let mut config = Config::processes(state.path().join("node"), state.path().join("bin"));
        config.node_name = node.clone();
        config.api_server = Some(server.clone());
        config.images = config.images.with("sh", "/bin/sh");
        config.register_with_taints = vec![serde_json::from_value(
            json!({"key": TAINT, "value": node, "effect": "NoSchedule"}),
        )
        .expect("taint")];
        configure(&mut config);
        let agent = NodeAgent::start(client.clone(), config)
            .await
            .expect("node agent");
        Self {
            client,
            namespace,
            node,
            state,
            agent: Some(agent),
            own,
        }
    }

    fn api<K>(&self) -> Api<K>
    where
        K: kube::Resource<Scope = k8s_openapi::NamespaceResourceScope, DynamicType = ()>,
    {
        Api::namespaced(self.client.clone(), &self.namespace)
    }

    /// nodeSelector and toleration that put a pod on this test's node.
    fn placement(&self) -> Value {
        json!({
            "nodeSelector": {"kubernetes.io/hostname": self.node},
            "tolerations": [{"key": TAINT, "operator": "Equal", "value": self.node, "effect": "NoSchedule"}],
        })
    }

    /// Creates the pod `name` with `spec`, pinned to this test's node.
    async fn create_pod(&self, name: &str, mut spec: Value) -> Api<Pod> {
        for (k, v) in self.placement().as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": name, "namespace": self.namespace},
            "spec": spec,
        }))
        .expect("pod");
        let pods: Api<Pod> = self.api();
        pods.create(&PostParams::default(), &pod)
            .await
            .expect("create pod");
        pods
    }

    /// A StatefulSet `web` with `containers`, `volumes` and claim templates, pinned here.
    fn statefulset(
        &self,
        replicas: i32,
        containers: Value,
        volumes: Value,
        claims: Value,
    ) -> StatefulSet {
        let mut spec = json!({
            "terminationGracePeriodSeconds": 5,
            "containers": containers,
            "volumes": volumes,
        });
        for (k, v) in self.placement().as_object().into_iter().flatten() {
            spec[k] = v.clone();
        }
        serde_json::from_value(json!({
            "apiVersion": "apps/v1", "kind": "StatefulSet",
            "metadata": {"name": "web", "namespace": self.namespace},
            "spec": {
                "replicas": replicas,
                "serviceName": "web",
                "selector": {"matchLabels": {"app": "web"}},
                "template": {"metadata": {"labels": {"app": "web"}}, "spec": spec},
                "volumeClaimTemplates": claims,
            },
        }))
        .expect("statefulset")
    }

    async fn ready_replicas(&self) -> Option<i32> {
        self.api::<StatefulSet>()
            .get("web")
            .await
            .ok()?
            .status?
            .ready_replicas
    }

    async fn scale(&self, replicas: i32) {
        self.api::<StatefulSet>()
            .patch(
                "web",
                &PatchParams::default(),
                &Patch::Merge(json!({"spec": {"replicas": replicas}})),
            )
            .await
            .expect("scale");
    }

    async fn pod_gone(&self, name: &str) -> bool {
        matches!(self.api::<Pod>().get_opt(name).await, Ok(None))
    }

    /// Deletes this test's namespace (the agent ends its pods, and reclaims its volumes), stops
    /// the agent, checks the Node went NotReady, and removes the Node.
    async fn finish(mut self) {
        let namespaces: Api<Namespace> = Api::all(self.client.clone());
        let _ = namespaces
            .delete(&self.namespace, &DeleteParams::default())
            .await;
        eventually("the test namespace removed", || async {
            matches!(namespaces.get_opt(&self.namespace).await, Ok(None))
        })
        .await;
        if let Some(agent) = self.agent.take() {
            agent.shutdown().await;
        }
        let nodes: Api<Node> = Api::all(self.client.clone());
        let node = nodes.get(&self.node).await.expect("node");
        assert_eq!(
            condition(&node, "Ready").as_deref(),
            Some("False"),
            "NotReady after shutdown"
        );
        let _ = nodes.delete(&self.node, &DeleteParams::default()).await;
        if let Some(cp) = self.own.take() {
            cp.shutdown().await;
        }
    }
}

fn condition(node: &Node, type_: &str) -> Option<String> {
    node.status
        .as_ref()?
        .conditions
        .as_ref()?
        .iter()
        .find(|c| c.type_ == type_)
        .map(|c| c.status.clone())
}

fn pod_ready(p: &Pod) -> bool {
    p.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

fn storage(pv: &PersistentVolume) -> Option<String> {
    pv.spec
        .as_ref()?
        .capacity
        .as_ref()?
        .get("storage")
        .map(|q| q.0.clone())
}

/// The local directory of the PV bound to claim `name`.
async fn claim_dir(tc: &TestCluster, name: &str) -> (String, PathBuf) {
    let claims: Api<PersistentVolumeClaim> = tc.api();
    let pv_name = atfleet_test_support::wait::until("the claim bound", LIMIT, || async {
        let c = claims.get(name).await.map_err(|e| e.to_string())?;
        // Only a Bound claim may grow.
        if c.status.as_ref().and_then(|s| s.phase.as_deref()) != Some("Bound") {
            return Err("not bound".to_owned());
        }
        c.spec
            .and_then(|s| s.volume_name)
            .filter(|v| !v.is_empty())
            .ok_or_else(|| "not bound".to_owned())
    })
    .await;
    let pv = Api::<PersistentVolume>::all(tc.client.clone())
        .get(&pv_name)
        .await
        .expect("pv");
    let path = pv
        .spec
        .and_then(|s| s.local)
        .map(|l| PathBuf::from(l.path))
        .expect("a local PV");
    (pv_name, path)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn statefulset_pods_run_as_processes_with_tokens_claims_and_logs() {
    let tc = TestCluster::start("procs", false, |c| c.kubelet_port = Some(0)).await;
    let nodes: Api<Node> = Api::all(tc.client.clone());
    let node = nodes.get(&tc.node).await.expect("node");
    assert_eq!(condition(&node, "Ready").as_deref(), Some("True"));
    let status = node.status.clone().expect("node status");
    assert_eq!(
        status
            .capacity
            .as_ref()
            .and_then(|c| c.get("pods"))
            .map(|q| q.0.as_str()),
        Some("110")
    );
    assert_eq!(
        status
            .node_info
            .as_ref()
            .map(|i| i.kubelet_version.as_str()),
        Some("v1.37.2")
    );
    let lease = Api::<Lease>::namespaced(tc.client.clone(), "kube-node-lease")
        .get(&tc.node)
        .await
        .expect("node lease");
    assert_eq!(
        lease.spec.and_then(|s| s.holder_identity).as_deref(),
        Some(tc.node.as_str())
    );

    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": tc.namespace},
        "data": {"token": "czNjcmV0", "user": "YWxpY2U="},
    }))
    .expect("secret");
    tc.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    // The script sees in-container paths, rewritten to local ones through env; SIGTERM is noted
    // in the claim so the test can see the graceful stop.
    let script = r#"cat "$CREDS/token" > "$OUT/token"; printf '%s' "$USER_NAME" > "$OUT/user"; printf '%s' "$POD" > "$OUT/pod"; printf '%s' "$KUBECONFIG" > "$OUT/kubeconfig"; cat "$SA/namespace" > "$OUT/namespace"; echo started; trap 'echo term > "$OUT/terminated"; exit 0' TERM; while true; do sleep 0.1; done"#;
    let container = json!({
        "name": "c", "image": "example.com/sh:1",
        "command": ["sh", "-c", script],
        "env": [
            {"name": "CREDS", "value": "/etc/creds"},
            {"name": "OUT", "value": "/data"},
            {"name": "SA", "value": "/var/run/secrets/kubernetes.io/serviceaccount"},
            {"name": "USER_NAME", "valueFrom": {"secretKeyRef": {"name": "creds", "key": "user"}}},
            {"name": "POD", "valueFrom": {"fieldRef": {"fieldPath": "metadata.name"}}},
        ],
        "volumeMounts": [
            {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
            {"name": "data", "mountPath": "/data"},
        ],
    });
    let volumes =
        json!([{"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o440}}]);
    let claims = json!([{
        "metadata": {"name": "data"},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }]);
    tc.api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &tc.statefulset(1, json!([container]), volumes, claims),
        )
        .await
        .expect("create");

    eventually("the ready replica", || async {
        tc.ready_replicas().await == Some(1)
    })
    .await;
    let (pv_name, dir) = claim_dir(&tc, "data-web-0").await;
    assert!(
        dir.starts_with(tc.state.path()),
        "{} in the agent's state",
        dir.display()
    );
    let pv = Api::<PersistentVolume>::all(tc.client.clone())
        .get(&pv_name)
        .await
        .expect("pv");
    assert_eq!(
        pv.annotations()
            .get("pv.kubernetes.io/provisioned-by")
            .map(String::as_str),
        Some(PROVISIONER_NAME)
    );
    let read = |name: &str| std::fs::read_to_string(dir.join(name)).unwrap_or_default();
    eventually("the process wrote its files", || async {
        !read("namespace").is_empty()
    })
    .await;
    assert_eq!(read("token"), "s3cret");
    assert_eq!(read("user"), "alice");
    assert_eq!(read("pod"), "web-0");
    assert_eq!(read("namespace"), tc.namespace);
    let pod = tc.api::<Pod>().get("web-0").await.expect("pod");
    assert!(pod_ready(&pod));
    let st = pod.status.clone().expect("status");
    assert_eq!(st.pod_ip.as_deref(), Some("127.0.0.1"));
    assert_eq!(st.phase.as_deref(), Some("Running"));
    let cid = st
        .container_statuses
        .as_ref()
        .and_then(|c| c.first())
        .and_then(|c| c.container_id.clone())
        .unwrap_or_default();
    assert!(cid.starts_with("process://"), "{cid}");
    println!(
        "web-0 ready on {} as {cid}, claim in {}",
        tc.node,
        dir.display()
    );

    // The kubeconfig the process got authenticates as the pod's service account.
    let kubeconfig = PathBuf::from(read("kubeconfig"));
    let kc = kube::config::Kubeconfig::read_from(&kubeconfig).expect("the pod's kubeconfig");
    let config =
        kube::Config::from_custom_kubeconfig(kc, &kube::config::KubeConfigOptions::default())
            .await
            .expect("kubeconfig");
    let as_pod = kube::Client::try_from(config).expect("client");
    let review: SelfSubjectReview = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "SelfSubjectReview", "metadata": {}
    }))
    .expect("review");
    let who = Api::<SelfSubjectReview>::all(as_pod)
        .create(&PostParams::default(), &review)
        .await
        .expect("self subject review with the pod's token");
    let user = who.status.and_then(|s| s.user_info).expect("user info");
    assert_eq!(
        user.username.as_deref(),
        Some(format!("system:serviceaccount:{}:default", tc.namespace).as_str())
    );
    let bound_pod = user
        .extra
        .as_ref()
        .and_then(|e| e.get("authentication.kubernetes.io/pod-name"))
        .cloned()
        .unwrap_or_default();
    assert_eq!(
        bound_pod,
        vec!["web-0".to_owned()],
        "a token bound to the pod"
    );
    println!("the pod's token authenticates as {:?}", user.username);

    // kubectl logs, through the API server to the agent.
    let logs = tc
        .api::<Pod>()
        .logs(
            "web-0",
            &LogParams {
                container: Some("c".into()),
                tail_lines: Some(1),
                ..LogParams::default()
            },
        )
        .await
        .expect("logs");
    assert_eq!(logs, "started\n");

    tc.scale(0).await;
    eventually("web-0 removed", || async { tc.pod_gone("web-0").await }).await;
    assert_eq!(read("terminated").trim(), "term", "stopped with SIGTERM");
    assert_eq!(read("token"), "s3cret", "the claim outlives the pod");

    // The class says Delete: deleting the claim removes the directory and then the PV.
    tc.api::<PersistentVolumeClaim>()
        .delete("data-web-0", &DeleteParams::default())
        .await
        .expect("delete claim");
    let pvs: Api<PersistentVolume> = Api::all(tc.client.clone());
    eventually("the PV reclaimed", || async {
        matches!(pvs.get_opt(&pv_name).await, Ok(None))
    })
    .await;
    assert!(!dir.exists(), "{} removed", dir.display());
    tc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn deletion_waits_for_the_grace_period_then_kills() {
    let tc = TestCluster::start("grace", false, |_| {}).await;
    let out = tc.state.path().join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    // Ignores SIGTERM: only SIGKILL after the grace period ends it.
    let script = format!(
        r#"trap 'echo term >> {0}/signals' TERM; echo $$ > {0}/pid; while true; do sleep 0.1; done"#,
        out.display()
    );
    let pods = tc.create_pod("stubborn", json!({
        "terminationGracePeriodSeconds": 3,
        "containers": [{"name": "c", "image": "example.com/sh:1", "command": ["sh", "-c", script]}],
    })).await;
    eventually("the pod ready", || async {
        pods.get("stubborn").await.is_ok_and(|p| pod_ready(&p)) && out.join("pid").exists()
    })
    .await;
    let pid: i32 = std::fs::read_to_string(out.join("pid"))
        .expect("pid")
        .trim()
        .parse()
        .expect("pid number");
    let started = Instant::now();
    pods.delete("stubborn", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("the pod object removed", || async {
        tc.pod_gone("stubborn").await
    })
    .await;
    let took = started.elapsed();
    assert!(
        took >= Duration::from_secs(3),
        "removed after {took:?}, before the 3 s grace"
    );
    let alive = rustix::process::Pid::from_raw(pid)
        .is_some_and(|p| rustix::process::test_kill_process(p).is_ok());
    assert!(!alive, "the process was killed");
    assert_eq!(
        std::fs::read_to_string(out.join("signals"))
            .unwrap_or_default()
            .trim(),
        "term",
        "SIGTERM first"
    );
    println!("deletion with a 3 s grace took {took:?}: SIGTERM, then SIGKILL");
    tc.finish().await;
}

/// A running pod sees its Secret and ConfigMap change, as with the kubelet: the volume is
/// rewritten in the `..data` layout while the process keeps running; a `subPath` mount keeps
/// what it had at the container's start.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secret_and_config_map_volumes_follow_their_objects_without_a_restart() {
    let tc = TestCluster::start("refresh", false, |_| {}).await;
    let out = tc.state.path().join("out");
    std::fs::create_dir_all(&out).expect("out dir");
    let secret: Secret = serde_json::from_value(json!({
        "metadata": {"name": "creds", "namespace": tc.namespace},
        "stringData": {"token": "one"},
    }))
    .expect("secret");
    tc.api::<Secret>()
        .create(&PostParams::default(), &secret)
        .await
        .expect("secret");
    let cm: ConfigMap = serde_json::from_value(json!({
        "metadata": {"name": "conf", "namespace": tc.namespace},
        "data": {"greeting": "hello"},
    }))
    .expect("configmap");
    tc.api::<ConfigMap>()
        .create(&PostParams::default(), &cm)
        .await
        .expect("configmap");
    // Copies what it reads through the in-container paths, over and over.
    let script = r#"echo $$ > "$OUT/pid"; while true; do for f in token:$CREDS/token greeting:$CONF/greeting pinned:$PINNED; do cat "${f#*:}" > "$OUT/${f%%:*}.tmp" && mv "$OUT/${f%%:*}.tmp" "$OUT/${f%%:*}"; done; sleep 0.1; done"#;
    let pods = tc.create_pod("reader", json!({
        "terminationGracePeriodSeconds": 1,
        "containers": [{
            "name": "c", "image": "example.com/sh:1", "command": ["sh", "-c", script],
            "env": [
                {"name": "OUT", "value": out.display().to_string()},
                {"name": "CREDS", "value": "/etc/creds"},
                {"name": "CONF", "value": "/etc/conf"},
                {"name": "PINNED", "value": "/etc/pinned"},
            ],
            "volumeMounts": [
                {"name": "creds", "mountPath": "/etc/creds", "readOnly": true},
                {"name": "conf", "mountPath": "/etc/conf", "readOnly": true},
                {"name": "creds", "mountPath": "/etc/pinned", "subPath": "token", "readOnly": true},
            ],
        }],
        "volumes": [
            {"name": "creds", "secret": {"secretName": "creds", "defaultMode": 0o440}},
            {"name": "conf", "configMap": {"name": "conf"}},
        ],
    })).await;
    let read = |name: &str| std::fs::read_to_string(out.join(name)).unwrap_or_default();
    eventually("the pod ready and reading", || async {
        pods.get("reader").await.is_ok_and(|p| pod_ready(&p)) && read("pinned") == "one"
    })
    .await;
    assert_eq!(read("token"), "one");
    assert_eq!(read("greeting"), "hello");
    let pid = read("pid");
    let before = pods.get("reader").await.expect("pod");
    let uid = before.uid().expect("uid");
    let volume = tc
        .state
        .path()
        .join("node/pods")
        .join(&tc.namespace)
        .join(format!("reader-{uid}"))
        .join("volumes/creds");
    let version = std::fs::read_link(volume.join("..data")).expect("the ..data link");
    assert_eq!(
        std::fs::read_link(volume.join("token")).expect("the key is a link"),
        PathBuf::from("..data/token")
    );

    let changed = Instant::now();
    tc.api::<Secret>()
        .patch(
            "creds",
            &PatchParams::default(),
            &Patch::Merge(json!({"stringData": {"token": "two"}})),
        )
        .await
        .expect("patch secret");
    tc.api::<ConfigMap>()
        .patch(
            "conf",
            &PatchParams::default(),
            &Patch::Merge(json!({"data": {"greeting": "hello again"}})),
        )
        .await
        .expect("patch configmap");
    eventually("the process reads the new Secret and ConfigMap", || async {
        read("token") == "two" && read("greeting") == "hello again"
    })
    .await;
    println!(
        "the running process read the changed Secret and ConfigMap {:?} after the change",
        changed.elapsed()
    );
    assert_ne!(
        std::fs::read_link(volume.join("..data")).expect("the ..data link"),
        version,
        "a new version directory"
    );
    assert_eq!(read("pinned"), "one", "a subPath mount is not refreshed");
    let after = pods.get("reader").await.expect("pod");
    let restarts = |p: &Pod| {
        p.status
            .as_ref()
            .and_then(|s| s.container_statuses.as_ref())
            .map(|cs| cs.iter().map(|c| c.restart_count).sum::<i32>())
    };
    assert_eq!(after.uid(), Some(uid));
    assert_eq!(restarts(&after), Some(0));
    assert_eq!(read("pid"), pid, "the same process");
    tc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn simulated_namespace_pods_are_ready_without_processes() {
    let tc = TestCluster::start("sim", true, |c| c.max_pods = 20000).await;
    let node = Api::<Node>::all(tc.client.clone())
        .get(&tc.node)
        .await
        .expect("node");
    let pods_capacity = node
        .status
        .and_then(|s| s.allocatable)
        .and_then(|a| a.get("pods").map(|q| q.0.clone()));
    // The API server writes quantities canonically.
    assert_eq!(pods_capacity.as_deref(), Some("20k"));
    let container = json!({"name": "c", "image": "example.com/does-not-exist:1"});
    tc.api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &tc.statefulset(3, json!([container]), json!([]), json!([])),
        )
        .await
        .expect("create");
    eventually("three ready replicas", || async {
        tc.ready_replicas().await == Some(3)
    })
    .await;
    let pod = tc.api::<Pod>().get("web-2").await.expect("web-2");
    assert!(pod_ready(&pod));
    assert_eq!(
        pod.spec.and_then(|s| s.node_name).as_deref(),
        Some(tc.node.as_str())
    );
    assert!(
        !tc.state
            .path()
            .join("node/pods")
            .join(&tc.namespace)
            .exists(),
        "no pod directory for a simulated pod"
    );
    // The lease is renewed (every 10 s), so the node lifecycle controller keeps the node Ready.
    let leases: Api<Lease> = Api::namespaced(tc.client.clone(), "kube-node-lease");
    let renewed = |l: &Lease| {
        l.spec
            .as_ref()
            .and_then(|s| s.renew_time.clone())
            .map(|t| t.0)
    };
    let first = renewed(&leases.get(&tc.node).await.expect("lease")).expect("renewTime");
    eventually("the lease renewed", || async {
        leases
            .get(&tc.node)
            .await
            .ok()
            .and_then(|l| renewed(&l))
            .is_some_and(|t| t > first)
    })
    .await;
    let node = Api::<Node>::all(tc.client.clone())
        .get(&tc.node)
        .await
        .expect("node");
    assert_eq!(condition(&node, "Ready").as_deref(), Some("True"));
    assert!(
        node.spec
            .and_then(|s| s.taints)
            .unwrap_or_default()
            .iter()
            .all(|t| t.key == TAINT),
        "no not-ready or unreachable taint"
    );
    tc.scale(1).await;
    eventually("web-1 and web-2 removed", || async {
        tc.pod_gone("web-2").await && tc.pod_gone("web-1").await
    })
    .await;
    eventually("one ready replica", || async {
        tc.ready_replicas().await == Some(1)
    })
    .await;
    println!("3 simulated replicas Ready on {}, scaled to 1", tc.node);
    tc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn claims_expand_and_retain_keeps_directory_and_volume() {
    let tc = TestCluster::start("retain", true, |_| {}).await;
    let class_name = format!("local-retain-{}", suffix());
    let class: StorageClass = serde_json::from_value(json!({
        "metadata": {"name": class_name},
        "provisioner": PROVISIONER_NAME,
        "reclaimPolicy": "Retain",
        "volumeBindingMode": "WaitForFirstConsumer",
        "allowVolumeExpansion": true,
    }))
    .expect("class");
    let classes: Api<StorageClass> = Api::all(tc.client.clone());
    classes
        .create(&PostParams::default(), &class)
        .await
        .expect("class");
    let claim: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "keep", "namespace": tc.namespace},
        "spec": {"storageClassName": class_name, "accessModes": ["ReadWriteOnce"],
                 "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    let claims: Api<PersistentVolumeClaim> = tc.api();
    claims
        .create(&PostParams::default(), &claim)
        .await
        .expect("claim");
    let pods = tc
        .create_pod(
            "user",
            json!({
                "containers": [{"name": "c", "image": "example.com/none:1"}],
                "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "keep"}}],
            }),
        )
        .await;
    let (pv_name, dir) = claim_dir(&tc, "keep").await;
    assert!(dir.is_dir(), "{} made", dir.display());
    std::fs::write(dir.join("data"), "kept").expect("write into the volume");

    // Expansion: 1Gi → 2Gi.
    claims
        .patch(
            "keep",
            &PatchParams::default(),
            &Patch::Merge(json!({"spec": {"resources": {"requests": {"storage": "2Gi"}}}})),
        )
        .await
        .expect("grow the claim");
    let pvs: Api<PersistentVolume> = Api::all(tc.client.clone());
    eventually("the PV and the claim at 2Gi", || async {
        let pv_ok = pvs
            .get(&pv_name)
            .await
            .is_ok_and(|pv| storage(&pv).as_deref() == Some("2Gi"));
        let claim_ok = claims.get("keep").await.is_ok_and(|c| {
            c.status
                .and_then(|s| s.capacity)
                .and_then(|c| c.get("storage").map(|q| q.0.clone()))
                .as_deref()
                == Some("2Gi")
        });
        pv_ok && claim_ok
    })
    .await;

    // Retain: the claim goes, the PV is Released and stays, and so does the directory.
    pods.delete("user", &DeleteParams::default())
        .await
        .expect("delete pod");
    eventually("the pod removed", || async { tc.pod_gone("user").await }).await;
    claims
        .delete("keep", &DeleteParams::default())
        .await
        .expect("delete claim");
    eventually("the PV released", || async {
        pvs.get(&pv_name)
            .await
            .is_ok_and(|pv| pv.status.and_then(|s| s.phase).as_deref() == Some("Released"))
    })
    .await;
    eventually("the claim gone", || async {
        matches!(claims.get_opt("keep").await, Ok(None))
    })
    .await;
    // A later claim provisioned means the provisioner has synced since the PV was Released.
    let later: PersistentVolumeClaim = serde_json::from_value(json!({
        "metadata": {"name": "later", "namespace": tc.namespace},
        "spec": {"accessModes": ["ReadWriteOnce"], "resources": {"requests": {"storage": "1Gi"}}},
    }))
    .expect("claim");
    claims
        .create(&PostParams::default(), &later)
        .await
        .expect("later claim");
    tc.create_pod(
        "user2",
        json!({
            "containers": [{"name": "c", "image": "example.com/none:1"}],
            "volumes": [{"name": "v", "persistentVolumeClaim": {"claimName": "later"}}],
        }),
    )
    .await;
    let (later_pv, _) = claim_dir(&tc, "later").await;
    let kept = pvs.get_opt(&pv_name).await.expect("get pv");
    assert!(kept.is_some(), "a Retain PV stays");
    assert_eq!(
        std::fs::read_to_string(dir.join("data")).expect("kept data"),
        "kept"
    );
    println!(
        "{pv_name} expanded to 2Gi and retained with its directory {}",
        dir.display()
    );
    let _ = pvs.delete(&pv_name, &DeleteParams::default()).await;
    let _ = pvs.delete(&later_pv, &DeleteParams::default()).await;
    let _ = classes.delete(&class_name, &DeleteParams::default()).await;
    tc.finish().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn node_ports_forward_to_a_ready_pod() {
    let tc = TestCluster::start("nodeport", false, |c| {
        c.images = c.images.clone().with("python3", "/usr/bin/python3");
    })
    .await;
    // Listens where its argument says; the agent rewrites `0.0.0.0:8080` to a loopback port and
    // probes it.
    let server = "import sys, http.server as h; host, port = sys.argv[1].rsplit(':', 1); \
                  h.HTTPServer((host, int(port)), h.SimpleHTTPRequestHandler).serve_forever()";
    let container = json!({
        "name": "http", "image": "example.com/python3:1",
        "command": ["python3", "-c", server, "0.0.0.0:8080"],
        "ports": [{"name": "http", "containerPort": 8080}],
        "readinessProbe": {"tcpSocket": {"port": "http"}, "periodSeconds": 1},
    });
    tc.api::<StatefulSet>()
        .create(
            &PostParams::default(),
            &tc.statefulset(1, json!([container]), json!([]), json!([])),
        )
        .await
        .expect("create");
    let svc: k8s_openapi::api::core::v1::Service = serde_json::from_value(json!({
        "metadata": {"name": "web", "namespace": tc.namespace},
        "spec": {"type": "NodePort", "selector": {"app": "web"},
                 "ports": [{"port": 80, "targetPort": "http"}]},
    }))
    .expect("service");
    let svc = tc
        .api::<k8s_openapi::api::core::v1::Service>()
        .create(&PostParams::default(), &svc)
        .await
        .expect("service");
    let node_port = svc
        .spec
        .and_then(|s| s.ports)
        .and_then(|p| p.first().and_then(|p| p.node_port))
        .and_then(|p| u16::try_from(p).ok())
        .expect("a node port");
    eventually("the ready replica", || async {
        tc.ready_replicas().await == Some(1)
    })
    .await;
    let reply = atfleet_test_support::wait::until("an answer on the node port", LIMIT, || async {
        atfleet_test_support::http::get_raw(node_port, "/")
            .await
            .filter(|r| r.starts_with("HTTP/1.0 200"))
            .ok_or_else(|| "no answer yet".to_owned())
    })
    .await;
    println!(
        "127.0.0.1:{node_port} answered: {}",
        reply.lines().next().unwrap_or_default()
    );
    tc.finish().await;
}
