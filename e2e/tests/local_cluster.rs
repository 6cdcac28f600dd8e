//! The local cluster end to end: real PostgreSQL, the upstream control plane, the node agent,
//! atDirectory, operator (as its ServiceAccount under the chart's RBAC)
//! and atServer processes, driven through the Kubernetes API and `atctl` as a user would. The
//! demo's story as assertions, then recovery of a crashed atServer and of a deleted pod, then
//! deletion through the operator.
//!
//! Needs the binaries in the target directory (`cargo nextest run --workspace` builds them) and
//! PostgreSQL: `DATABASE_URL` (as `scripts/with-postgres` sets it) or the server binaries.

use std::future::Future;
use std::path::PathBuf;
use std::process::{Output, Stdio};
use std::time::Duration;

use atfleet_e2e::local::{bin_dir_of_current_exe, LocalCluster, Options, CLASS, NAMESPACE};
use k8s_openapi::api::apps::v1::StatefulSet;
use k8s_openapi::api::core::v1::{PersistentVolume, PersistentVolumeClaim, Pod};
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams};
use kube::core::{ApiResource, GroupVersionKind};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::io::AsyncBufReadExt;

const PATIENCE: Duration = Duration::from_secs(180);

async fn eventually<F, Fut>(what: &str, mut check: F)
where
    F: FnMut() -> Fut,
    Fut: Future<Output = bool>,
{
    let deadline = tokio::time::Instant::now() + PATIENCE;
    while !check().await {
        assert!(
            tokio::time::Instant::now() < deadline,
            "timed out waiting for {what}"
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

fn atsigns(client: &kube::Client) -> Api<DynamicObject> {
    let ar = ApiResource::from_gvk(&GroupVersionKind::gvk("atfleet.dev", "v1alpha1", "Atsign"));
    Api::namespaced_with(client.clone(), NAMESPACE, &ar)
}

async fn atsign_ready(api: &Api<DynamicObject>, name: &str) -> bool {
    let Ok(Some(a)) = api.get_opt(name).await else {
        return false;
    };
    a.data["status"]["conditions"]
        .as_array()
        .into_iter()
        .flatten()
        .any(|c| c["type"] == "Ready" && c["status"] == "True")
}

fn ready(pod: &Pod) -> bool {
    pod.status
        .as_ref()
        .and_then(|s| s.conditions.as_ref())
        .is_some_and(|cs| cs.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
}

/// (pid, restart count) of the pod's atserver container.
fn process(pod: &Pod) -> Option<(i32, i32)> {
    let c = pod.status.as_ref()?.container_statuses.as_ref()?.first()?;
    let pid = c
        .container_id
        .as_deref()?
        .strip_prefix("process://")?
        .parse()
        .ok()?;
    Some((pid, c.restart_count))
}

fn lines_to(
    from: impl tokio::io::AsyncRead + Unpin + Send + 'static,
    to: tokio::sync::mpsc::UnboundedSender<String>,
) {
    tokio::spawn(async move {
        let mut lines = tokio::io::BufReader::new(from).lines();
        while let Ok(Some(line)) = lines.next_line().await {
            let _ = to.send(line);
        }
    });
}

async fn wait_line(
    rx: &mut tokio::sync::mpsc::UnboundedReceiver<String>,
    needle: &str,
    seen: &mut Vec<String>,
) {
    let found = tokio::time::timeout(PATIENCE, async {
        while let Some(line) = rx.recv().await {
            let hit = line.contains(needle);
            seen.push(line);
            if hit {
                return true;
            }
        }
        false
    })
    .await;
    assert!(
        matches!(found, Ok(true)),
        "monitor never showed {needle}: {seen:?}"
    );
}

struct Atctl {
    program: PathBuf,
    env: Vec<(&'static str, String)>,
}

impl Atctl {
    async fn run(&self, args: &[&str]) -> Output {
        tokio::process::Command::new(&self.program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .output()
            .await
            .expect("atctl runs")
    }

    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            out.status.success(),
            "atctl {args:?} failed: {}",
            String::from_utf8_lossy(&out.stderr)
        );
        String::from_utf8_lossy(&out.stdout).trim().to_owned()
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn demo_story_crash_recovery_and_deletion() {
    let state = tempfile::tempdir().expect("tempdir");
    let bin_dir = bin_dir_of_current_exe().expect("bin dir");
    let mut opts = Options::new(state.path(), &bin_dir);
    opts.database_url = std::env::var("DATABASE_URL").ok();
    let mut cluster = LocalCluster::up(opts).await.expect("local cluster starts");
    let client = cluster.client.clone();
    let api = atsigns(&client);

    // Two Atsigns, applied as a user would, become Ready.
    for name in ["alice", "bob"] {
        let atsign = json!({
            "apiVersion": "atfleet.dev/v1alpha1", "kind": "Atsign",
            "metadata": {"name": name, "namespace": NAMESPACE},
            "spec": {"atSign": format!("@{name}"), "className": CLASS},
        });
        api.patch(name, &PatchParams::apply("test"), &Patch::Apply(&atsign))
            .await
            .expect("Atsign applied");
    }
    for name in ["alice", "bob"] {
        eventually(&format!("{name} Ready"), || atsign_ready(&api, name)).await;
    }
    let mut env = cluster.env();
    env.push((
        "ATCTL_KEYS_DIR",
        state.path().join("keys").display().to_string(),
    ));
    let atctl = Atctl {
        program: bin_dir.join("atctl"),
        env,
    };

    // The directory answers with the endpoint the Atsign reports.
    let alice = api.get("alice").await.expect("alice");
    let endpoint = alice.data["status"]["endpoint"]
        .as_str()
        .unwrap_or_default()
        .to_owned();
    assert!(endpoint.starts_with("127.0.0.1:"), "endpoint {endpoint}");
    assert_eq!(atctl.ok(&["lookup", "@alice"]).await, endpoint);

    // Onboarding with the operator's CRAM Secrets, then data and sharing on @alice's side.
    for name in ["alice", "bob"] {
        atctl
            .ok(&[
                "onboard",
                &format!("@{name}"),
                "--from-secret",
                &format!("{NAMESPACE}/{name}-cram"),
            ])
            .await;
    }
    atctl
        .ok(&["-a", "@alice", "put", "phone", "-n", "demo", "+1 555 0100"])
        .await;
    assert_eq!(
        atctl.ok(&["-a", "@alice", "get", "phone.demo@alice"]).await,
        "+1 555 0100"
    );
    atctl
        .ok(&["-a", "@alice", "share", "phone.demo", "--with", "@bob"])
        .await;
    assert_eq!(
        atctl
            .ok(&["-a", "@alice", "get", "@bob:phone.demo@alice"])
            .await,
        "+1 555 0100"
    );
    // @bob reads it through his own server, which fetches it from @alice's (server-to-server).
    assert_eq!(
        atctl
            .ok(&["-a", "@bob", "get", "@bob:phone.demo@alice"])
            .await,
        "+1 555 0100"
    );

    // @bob's monitor receives notifications.
    let mut monitor = tokio::process::Command::new(&atctl.program)
        .args(["-a", "@bob", "monitor"])
        .envs(atctl.env.iter().map(|(k, v)| (*k, v)))
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .expect("monitor starts");
    // "monitoring @bob" (connected) comes on stderr, notifications on stdout.
    let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
    let stdout = monitor.stdout.take().expect("stdout");
    let stderr = monitor.stderr.take().expect("stderr");
    lines_to(stdout, tx.clone());
    lines_to(stderr, tx);
    let mut seen = Vec::new();
    wait_line(&mut rx, "monitoring", &mut seen).await;
    atctl
        .ok(&["-a", "@bob", "notify", "@bob:ping.demo@bob", "live"])
        .await;
    wait_line(&mut rx, "ping.demo", &mut seen).await;
    // @alice's notification reaches @bob's monitor through the same server-to-server path.
    atctl
        .ok(&[
            "-a",
            "@alice",
            "notify",
            "@bob:greeting.demo@alice",
            "hello",
        ])
        .await;
    wait_line(&mut rx, "greeting.demo@alice", &mut seen).await;
    let _ = monitor.kill().await;

    // A crashed atServer is restarted by the node agent, with its data.
    let pods: Api<Pod> = Api::namespaced(client.clone(), NAMESPACE);
    let pod = pods.get("alice-0").await.expect("pod");
    let (pid, restarts) = process(&pod).expect("running process reported");
    let pid_ref = rustix::process::Pid::from_raw(pid).expect("pid");
    rustix::process::kill_process(pid_ref, rustix::process::Signal::KILL).expect("kill");
    eventually("the atServer restarted and Ready", || async {
        pods.get("alice-0").await.is_ok_and(|p| {
            ready(&p) && process(&p).is_some_and(|(new, r)| new != pid && r > restarts)
        })
    })
    .await;
    eventually("alice Ready again", || atsign_ready(&api, "alice")).await;
    assert_eq!(
        atctl.ok(&["-a", "@alice", "get", "phone.demo@alice"]).await,
        "+1 555 0100"
    );

    // A deleted pod is made again by the StatefulSet controller, and the Atsign returns to Ready.
    let old_uid = pods.get("alice-0").await.expect("pod").uid();
    pods.delete("alice-0", &DeleteParams::default())
        .await
        .expect("pod deleted");
    eventually("a new alice-0 Ready", || async {
        pods.get("alice-0")
            .await
            .is_ok_and(|p| p.uid() != old_uid && ready(&p))
    })
    .await;
    eventually("alice Ready after the new pod", || {
        atsign_ready(&api, "alice")
    })
    .await;
    assert_eq!(
        atctl.ok(&["-a", "@alice", "get", "phone.demo@alice"]).await,
        "+1 555 0100"
    );
    let (last_pid, _) = process(&pods.get("alice-0").await.expect("pod")).expect("process");

    // The volume behind alice's claim, and the directory that holds her store.
    let claims: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    let volumes: Api<PersistentVolume> = Api::all(client.clone());
    let volume = claims
        .get("alice-data")
        .await
        .expect("alice's claim")
        .spec
        .and_then(|s| s.volume_name)
        .expect("the claim is bound");
    let data_dir = volumes
        .get(&volume)
        .await
        .expect("alice's volume")
        .spec
        .and_then(|s| s.local.map(|l| l.path).or(s.host_path.map(|h| h.path)))
        .expect("a local path");
    assert!(std::path::Path::new(&data_dir).exists(), "{data_dir}");

    // Deleting the Atsign: the operator deregisters and cleans up; the process is gone.
    api.delete("alice", &DeleteParams::default())
        .await
        .expect("delete");
    eventually("alice gone", || async {
        matches!(api.get_opt("alice").await, Ok(None))
    })
    .await;
    let out = atctl.run(&["lookup", "@alice"]).await;
    assert_eq!(
        out.status.code(),
        Some(4),
        "lookup @alice after deletion: {out:?}"
    );
    let sts: Api<StatefulSet> = Api::namespaced(client.clone(), NAMESPACE);
    let pvcs: Api<PersistentVolumeClaim> = Api::namespaced(client.clone(), NAMESPACE);
    assert!(sts.get_opt("alice").await.expect("get").is_none());
    assert!(pods.get_opt("alice-0").await.expect("get").is_none());
    // Retention Delete: the PVC protection controller lets the claim go once the pod is gone.
    eventually("alice's claim deleted (retention Delete)", || async {
        matches!(pvcs.get_opt("alice-data").await, Ok(None))
    })
    .await;
    // The class says Delete: the provisioner removes the data with the volume, so a new @alice
    // would start on an empty store, not on the old keys.
    eventually("alice's volume and its data removed", || async {
        matches!(volumes.get_opt(&volume).await, Ok(None))
            && !std::path::Path::new(&data_dir).exists()
    })
    .await;
    assert!(
        !std::path::Path::new(&format!("/proc/{last_pid}")).exists(),
        "the atServer process is stopped"
    );
    assert!(atctl
        .ok(&["lookup", "@bob"])
        .await
        .starts_with("127.0.0.1:"));
    cluster
        .check()
        .expect("directory and operator still running");
    cluster.shutdown().await;
}
