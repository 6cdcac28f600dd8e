//! The real `kubectl` (from `$KUBECTL` or `PATH`) against kubesim: get, apply --server-side
//! (including conflicts), delete, wait --for=condition=Ready and describe.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;
use std::time::Duration;

use atfleet_e2e::kubesim::Handle;
use common::{eventually, start};
use kube::api::{Api, ApiResource, DynamicObject, GroupVersionKind, Patch, PatchParams};
use kube::runtime::events::{Event, EventType, Recorder};
use kube::Resource;
use serde_json::json;
use tokio::process::Command;

struct Kubectl {
    dir: tempfile::TempDir,
}

const CRD: &str = r#"
apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
spec:
  group: example.com
  scope: Namespaced
  names: {plural: widgets, singular: widget, kind: Widget, shortNames: [wd]}
  versions:
  - name: v1
    served: true
    storage: true
    subresources: {status: {}}
    additionalPrinterColumns:
    - {name: Size, type: integer, jsonPath: .spec.size}
    schema:
      openAPIV3Schema:
        type: object
        properties:
          spec:
            type: object
            properties:
              size: {type: integer, minimum: 1}
              color: {type: string}
          status:
            type: object
            properties:
              conditions:
                type: array
                items:
                  type: object
                  properties:
                    type: {type: string}
                    status: {type: string}
"#;

fn kubectl_binary() -> PathBuf {
    std::env::var_os("KUBECTL")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("kubectl"))
}

impl Kubectl {
    fn new(sim: &Handle) -> Self {
        let dir = tempfile::tempdir().expect("tempdir");
        sim.write_kubeconfig(&dir.path().join("config"))
            .expect("kubeconfig");
        Self { dir }
    }

    fn command(&self, args: &[&str]) -> Command {
        let mut cmd = Command::new(kubectl_binary());
        let config = self.dir.path().join("config");
        let cache = self.dir.path().join("cache");
        cmd.arg("--kubeconfig")
            .arg(config)
            .arg("--cache-dir")
            .arg(cache)
            .args(args);
        cmd.env("HOME", self.dir.path()).kill_on_drop(true);
        cmd
    }

    async fn run(&self, args: &[&str]) -> Output {
        self.command(args).output().await.unwrap_or_else(|e| {
            panic!(
                "cannot run {:?} (set KUBECTL or install kubectl): {e}",
                kubectl_binary()
            )
        })
    }

    /// Runs and asserts success; returns stdout.
    async fn ok(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        let (stdout, stderr) = (
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
        );
        assert!(
            out.status.success(),
            "kubectl {args:?} failed: {stdout}\n{stderr}"
        );
        stdout.into_owned()
    }

    /// Runs and asserts failure; returns stderr.
    async fn fails(&self, args: &[&str]) -> String {
        let out = self.run(args).await;
        assert!(
            !out.status.success(),
            "kubectl {args:?} unexpectedly succeeded"
        );
        String::from_utf8_lossy(&out.stderr).into_owned()
    }

    fn file(&self, name: &str, content: &str) -> String {
        let path: &Path = self.dir.path();
        let file = path.join(name);
        std::fs::write(&file, content).expect("write manifest");
        file.display().to_string()
    }
}

async fn with_crd(k: &Kubectl) {
    let crd = k.file("crd.yaml", CRD);
    k.ok(&["apply", "--server-side", "-f", &crd]).await;
    k.ok(&[
        "wait",
        "--for=condition=Established",
        "crd/widgets.example.com",
        "--timeout=30s",
    ])
    .await;
}

#[tokio::test]
async fn kubectl_get_apply_describe_delete() {
    let sim = start().await;
    let k = Kubectl::new(&sim);
    assert!(k.ok(&["get", "namespaces"]).await.contains("kube-system"));
    with_crd(&k).await;

    let widget = k.file("w.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {size: 3, color: red}\n");
    assert!(k
        .ok(&["apply", "--server-side", "-f", &widget])
        .await
        .contains("widget.example.com/w1 serverside-applied"));
    let table = k.ok(&["get", "widgets"]).await;
    let row: Vec<&str> = table
        .lines()
        .nth(1)
        .unwrap_or_default()
        .split_whitespace()
        .collect();
    assert_eq!(row.get(..2), Some(&["w1", "3"][..]), "{table}");
    assert_eq!(
        k.ok(&["get", "wd", "w1", "-o", "jsonpath={.spec.color}"])
            .await,
        "red"
    );

    // Another manager changing the colour conflicts until it forces.
    let other = k.file(
        "w2.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: w1}\nspec: {color: blue}\n",
    );
    let conflict = k
        .fails(&[
            "apply",
            "--server-side",
            "--field-manager=painter",
            "-f",
            &other,
        ])
        .await;
    assert!(
        conflict.contains("conflict") && conflict.contains(".spec.color"),
        "{conflict}"
    );
    k.ok(&[
        "apply",
        "--server-side",
        "--field-manager=painter",
        "--force-conflicts",
        "-f",
        &other,
    ])
    .await;
    assert_eq!(
        k.ok(&["get", "widget", "w1", "-o", "jsonpath={.spec.color}"])
            .await,
        "blue"
    );
    let managed = k
        .ok(&[
            "get",
            "widget",
            "w1",
            "--show-managed-fields",
            "-o",
            "jsonpath={.metadata.managedFields[*].manager}",
        ])
        .await;
    assert_eq!(managed, "kubectl painter");

    let invalid = k.file(
        "bad.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: bad}\nspec: {size: 0}\n",
    );
    let rejected = k.fails(&["apply", "--server-side", "-f", &invalid]).await;
    assert!(
        rejected.contains("is invalid") && rejected.contains("spec.size"),
        "{rejected}"
    );

    // kubectl asks for strict field validation: undeclared fields are refused unless validation is off.
    let typo = k.file("typo.yaml", "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: typo}\nspec: {size: 1, colour: red}\n");
    let refused = k.fails(&["apply", "--server-side", "-f", &typo]).await;
    assert!(
        refused.contains("unknown field \"spec.colour\""),
        "{refused}"
    );
    k.ok(&["apply", "--server-side", "--validate=false", "-f", &typo])
        .await;
    assert_eq!(
        k.ok(&["get", "widget", "typo", "-o", "jsonpath={.spec}"])
            .await,
        r#"{"size":1}"#
    );

    let pod = k.file("pod.yaml", "apiVersion: v1\nkind: Pod\nmetadata: {name: p, labels: {app: demo}}\nspec:\n  containers:\n  - {name: app, image: demo:1}\n");
    k.ok(&["apply", "--server-side", "-f", &pod]).await;
    let pods = k.ok(&["get", "pods"]).await;
    assert!(
        pods.starts_with("NAME") && pods.contains("STATUS") && pods.contains("Pending"),
        "{pods}"
    );
    let described = k.ok(&["describe", "pod", "p"]).await;
    assert!(
        described.contains("app=demo") && described.contains("demo:1"),
        "{described}"
    );
    // kube-runtime records events.k8s.io/v1 Events; kubectl describe reads them as core/v1 Events.
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let ar = ApiResource::from_gvk_with_plural(&gvk, "widgets");
    let client = sim.client().expect("client");
    let w1 = Api::<DynamicObject>::default_namespaced_with(client.clone(), &ar)
        .get("w1")
        .await
        .expect("w1");
    let recorder = Recorder::new(client, "widget-controller".into());
    let event = Event {
        type_: EventType::Normal,
        reason: "Painted".into(),
        note: Some("painted blue".into()),
        action: "Paint".into(),
        secondary: None,
    };
    for _ in 0..2 {
        recorder
            .publish(&event, &w1.object_ref(&ar))
            .await
            .expect("event recorded");
    }
    let described = k.ok(&["describe", "widget", "w1"]).await;
    assert!(described.contains("Color:  blue"), "{described}");
    let event_line = described
        .lines()
        .find(|l| l.contains("Painted"))
        .unwrap_or_default()
        .to_string();
    assert!(
        event_line.contains("widget-controller") && event_line.contains("painted blue"),
        "{described}"
    );

    let sts = k.file("sts.yaml", "apiVersion: apps/v1\nkind: StatefulSet\nmetadata: {name: web}\nspec:\n  serviceName: web\n  selector: {matchLabels: {app: web}}\n  template:\n    metadata: {labels: {app: web}}\n    spec: {containers: [{name: c, image: web:1}]}\n");
    k.ok(&["apply", "--server-side", "-f", &sts]).await;
    assert!(k
        .ok(&["scale", "statefulset", "web", "--replicas=3"])
        .await
        .contains("scaled"));
    assert_eq!(
        k.ok(&["get", "sts", "web", "-o", "jsonpath={.spec.replicas}"])
            .await,
        "3"
    );

    assert!(k.ok(&["delete", "widget", "w1"]).await.contains("deleted"));
    assert!(k.fails(&["get", "widget", "w1"]).await.contains("NotFound"));
    let agents: Vec<String> = sim
        .audit()
        .events()
        .into_iter()
        .filter(|e| e.verb == "delete")
        .map(|e| e.user_agent)
        .collect();
    assert!(
        agents.iter().all(|a| a.starts_with("kubectl")),
        "{agents:?}"
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn kubectl_waits_for_a_condition() {
    let sim = start().await;
    let k = Kubectl::new(&sim);
    with_crd(&k).await;
    let widget = k.file(
        "w.yaml",
        "apiVersion: example.com/v1\nkind: Widget\nmetadata: {name: slow}\nspec: {size: 1}\n",
    );
    k.ok(&["apply", "--server-side", "-f", &widget]).await;

    let waiting = k
        .command(&[
            "wait",
            "--for=condition=Ready",
            "widget/slow",
            "--timeout=60s",
        ])
        .output();
    let waiter = tokio::spawn(waiting);
    // Become ready only once kubectl is watching, so the wait has to see the change.
    eventually("kubectl watching widgets", || async {
        sim.audit().events().iter().any(|e| {
            e.verb == "watch" && e.resource == "widgets" && e.user_agent.starts_with("kubectl")
        })
    })
    .await;
    let gvk = GroupVersionKind::gvk("example.com", "v1", "Widget");
    let api: Api<DynamicObject> = Api::default_namespaced_with(
        sim.client().expect("client"),
        &ApiResource::from_gvk_with_plural(&gvk, "widgets"),
    );
    let ready =
        Patch::Merge(json!({"status": {"conditions": [{"type": "Ready", "status": "True"}]}}));
    api.patch_status("slow", &PatchParams::default(), &ready)
        .await
        .expect("ready");
    let out = tokio::time::timeout(Duration::from_secs(60), waiter)
        .await
        .expect("kubectl wait returns")
        .expect("join")
        .expect("ran");
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(
        out.status.success() && stdout.contains("condition met"),
        "{stdout}\n{}",
        String::from_utf8_lossy(&out.stderr)
    );
    sim.shutdown().await;
}

#[tokio::test]
async fn the_kubesim_binary_serves_kubectl() {
    let dir = tempfile::tempdir().expect("tempdir");
    let config = dir.path().join("kubeconfig");
    let mut server = Command::new(env!("CARGO_BIN_EXE_kubesim"))
        .args(["--listen", "127.0.0.1:0", "--kubeconfig-out"])
        .arg(&config)
        .stdout(std::process::Stdio::null())
        .kill_on_drop(true)
        .spawn()
        .expect("kubesim starts");
    eventually("the kubeconfig", || async { config.exists() }).await;
    let out = Command::new(kubectl_binary())
        .arg("--kubeconfig")
        .arg(&config)
        .arg("--cache-dir")
        .arg(dir.path().join("cache"))
        .args(["get", "namespace", "default", "-o", "name"])
        .output()
        .await
        .expect("kubectl runs");
    assert_eq!(
        String::from_utf8_lossy(&out.stdout),
        "namespace/default\n",
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    server.kill().await.expect("stop kubesim");
}
