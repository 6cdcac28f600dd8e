//! The real control plane a test runs against (started once per `make test` by
//! scripts/with-controlplane), isolated per test by namespace, and the operator's identity on it:
//! its ServiceAccount's token under exactly the RBAC `helm template` renders for the chart,
//! reached through a fault-injecting proxy that also logs every request it makes.
//!
//! Each test is its own process under nextest, so the test's namespaces are process-wide.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::time::Duration;

use atfleet_cluster::{ControlPlane, FaultProxy, Kubeconfig, Options, SharedCluster};
use k8s_openapi::api::authentication::v1::TokenRequest;
use k8s_openapi::api::core::v1::{Namespace, ServiceAccount};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{DeleteParams, DynamicObject, Patch, PatchParams, PostParams};
use kube::core::GroupVersionKind;
use kube::discovery::ApiResource;
use kube::{Api, ResourceExt};
use serde::Deserialize;
use serde_json::{json, Value};

struct Names {
    ns: String,
    system_ns: String,
}

static NAMES: OnceLock<Names> = OnceLock::new();
static OPERATOR_CLIENT: OnceLock<kube::Client> = OnceLock::new();

/// The namespace this test's Atsigns live in (the operator watches only it).
pub fn ns() -> &'static str {
    &NAMES.get().expect("cluster() first").ns
}

/// The operator's own namespace in this test: its Lease and CA Secret.
pub fn system_ns() -> &'static str {
    &NAMES.get().expect("cluster() first").system_ns
}

/// The operator's client: its ServiceAccount token, through the test's fault proxy.
pub fn operator_client() -> kube::Client {
    OPERATOR_CLIENT.get().expect("cluster() first").clone()
}

pub fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

/// How the chart's rendered RBAC is changed before it is applied (to show a refusal).
#[derive(Clone, Copy, Default)]
pub struct RbacEdit<'a> {
    /// Remove this verb from every rule naming this resource: (resource, verb).
    pub drop_verb: Option<(&'a str, &'a str)>,
}

/// What `cluster()` sets up.
#[derive(Clone, Copy)]
pub struct Setup<'a> {
    /// The node agent reports the namespace's pods Ready without running them.
    pub simulate: bool,
    pub rbac: RbacEdit<'a>,
}

impl Default for Setup<'_> {
    fn default() -> Self {
        Self {
            simulate: true,
            rbac: RbacEdit::default(),
        }
    }
}

pub struct TestCluster {
    pub shared: SharedCluster,
    pub admin: kube::Client,
    /// Between the operator and the apiserver.
    pub proxy: FaultProxy,
    /// The Helm release name the RBAC was rendered for (also the cluster-scoped objects' prefix).
    pub release: String,
    /// The operator's ServiceAccount.
    pub service_account: String,
}

impl TestCluster {
    /// The fault proxy in front of the operator's requests.
    pub fn faults(&self) -> &FaultProxy {
        &self.proxy
    }

    /// The operator's requests the apiserver refused as forbidden (RBAC's answer).
    pub fn forbidden(&self) -> Vec<atfleet_cluster::Logged> {
        self.proxy
            .log()
            .into_iter()
            .filter(|l| l.status == 403)
            .collect()
    }

    /// Deletes the test's namespaces and its cluster-scoped RBAC (the namespace controller
    /// finishes the rest in the background).
    pub async fn shutdown(self) {
        let namespaces: Api<Namespace> = Api::all(self.admin.clone());
        for ns in [ns(), system_ns()] {
            let _ = namespaces.delete(ns, &DeleteParams::background()).await;
        }
        for (kind, plural) in [
            ("ClusterRole", "clusterroles"),
            ("ClusterRoleBinding", "clusterrolebindings"),
        ] {
            let api: Api<DynamicObject> =
                Api::all_with(self.admin.clone(), &rbac_resource(kind, plural));
            let _ = api
                .delete(
                    &format!("{}-operator", self.release),
                    &DeleteParams::background(),
                )
                .await;
        }
    }
}

fn rbac_resource(kind: &str, plural: &str) -> ApiResource {
    ApiResource::from_gvk_with_plural(
        &GroupVersionKind::gvk("rbac.authorization.k8s.io", "v1", kind),
        plural,
    )
}

/// The shared control plane with this test's namespaces, the CRDs, and the operator's identity.
pub async fn cluster_with(setup: Setup<'_>) -> (TestCluster, kube::Client) {
    let shared = SharedCluster::from_env().unwrap_or_else(|e| panic!("{e}"));
    let admin = shared.client().await.expect("admin client");
    install_crds(&admin).await;
    let ns = shared
        .namespace(&admin, "fleet", setup.simulate)
        .await
        .expect("namespace");
    let system_ns = shared
        .namespace(&admin, "atfleet-system", false)
        .await
        .expect("namespace");
    let release = format!("t{}", &ns[ns.len() - 8..]);
    assert!(
        NAMES
            .set(Names {
                ns: ns.clone(),
                system_ns: system_ns.clone()
            })
            .is_ok(),
        "one cluster() per test process (run these tests with cargo nextest)"
    );
    let service_account = apply_chart_rbac(&admin, &release, setup.rbac).await;
    let token = service_account_token(&admin, &service_account).await;
    let server = shared.server().expect("server");
    let upstream = Kubeconfig::token(&server, &shared.ca_cert(), &token)
        .client()
        .await
        .expect("operator identity");
    let proxy = FaultProxy::start(upstream).await.expect("fault proxy");
    let _ = OPERATOR_CLIENT.set(proxy.client().expect("proxy client"));
    (
        TestCluster {
            shared,
            admin: admin.clone(),
            proxy,
            release,
            service_account,
        },
        admin,
    )
}

/// The CRDs as the chart ships them (`crds/`), applied server-side by every test (the same
/// content, so concurrent tests agree), and Established.
pub async fn install_crds(admin: &kube::Client) {
    for file in ["crds/atsign.yaml", "crds/atserverclass.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(file)).expect("CRD file");
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text).expect("CRD YAML");
        apply_crd(admin, &crd).await;
    }
}

/// Applies a CRD server-side (forced: concurrent tests apply the same content) and waits until
/// it is Established.
pub async fn apply_crd(admin: &kube::Client, crd: &CustomResourceDefinition) {
    atfleet_cluster::apply_crd(admin, crd, "atfleet-tests", Duration::from_secs(60))
        .await
        .unwrap_or_else(|e| panic!("the apiserver refused CRD {}: {e}", crd.name_any()));
}

/// helm from the packaging tools (`make test` exports their directory as ATFLEET_TOOLS_BIN).
pub fn helm() -> PathBuf {
    if let Some(bin) = std::env::var_os("ATFLEET_TOOLS_BIN").filter(|b| !b.is_empty()) {
        return PathBuf::from(bin).join("helm");
    }
    let out = std::process::Command::new(repo_root().join("scripts/tools-env"))
        .output()
        .expect("scripts/tools-env runs");
    assert!(
        out.status.success(),
        "scripts/tools-env: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()).join("helm")
}

/// The chart's operator RBAC as `helm template` renders it for `release` in this test's system
/// namespace, watching only this test's namespace.
pub fn render_rbac(release: &str, set: &[String]) -> Vec<Value> {
    let mut cmd = std::process::Command::new(helm());
    cmd.args(["template", release])
        .arg(repo_root().join("charts/atfleet"))
        .args(["--namespace", system_ns()])
        .args(["--show-only", "templates/operator-rbac.yaml"])
        .args(["--set", &format!("operator.watchNamespaces[0]={}", ns())]);
    for s in set {
        cmd.args(["--set", s]);
    }
    let out = cmd.output().expect("helm runs");
    assert!(
        out.status.success(),
        "helm template: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    let text = String::from_utf8(out.stdout).expect("utf-8");
    serde_yaml::Deserializer::from_str(&text)
        .map(|doc| Value::deserialize(doc).expect("rendered YAML"))
        .filter(|v| !v.is_null())
        .collect()
}

/// Applies the rendered RBAC (edited as asked) and creates the ServiceAccount it binds; returns
/// the ServiceAccount's name.
async fn apply_chart_rbac(admin: &kube::Client, release: &str, edit: RbacEdit<'_>) -> String {
    let mut objects = render_rbac(release, &[]);
    if let Some((resource, verb)) = edit.drop_verb {
        for rule in objects
            .iter_mut()
            .filter(|o| o["kind"] == "Role" || o["kind"] == "ClusterRole")
            .flat_map(|o| o["rules"].as_array_mut().into_iter().flatten())
        {
            if rule["resources"]
                .as_array()
                .is_some_and(|r| r.iter().any(|x| x == resource))
            {
                if let Some(verbs) = rule["verbs"].as_array_mut() {
                    verbs.retain(|v| v != verb);
                }
            }
        }
    }
    let service_account = objects
        .iter()
        .filter(|o| o["kind"] == "ClusterRoleBinding")
        .flat_map(|o| o["subjects"].as_array().cloned().unwrap_or_default())
        .find(|s| s["kind"] == "ServiceAccount")
        .and_then(|s| s["name"].as_str().map(str::to_owned))
        .expect("the rendered RBAC binds a ServiceAccount");
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), system_ns());
    let sa: ServiceAccount =
        serde_json::from_value(json!({ "metadata": { "name": service_account } })).expect("sa");
    accounts
        .create(&PostParams::default(), &sa)
        .await
        .expect("ServiceAccount");
    for object in objects {
        let kind = object["kind"].as_str().expect("kind").to_owned();
        let plural = format!("{}s", kind.to_lowercase());
        let resource = rbac_resource(&kind, &plural);
        let obj: DynamicObject = serde_json::from_value(object).expect("object");
        let api: Api<DynamicObject> = match obj.namespace() {
            Some(ns) => Api::namespaced_with(admin.clone(), &ns, &resource),
            None => Api::all_with(admin.clone(), &resource),
        };
        api.patch(
            &obj.name_any(),
            &PatchParams::apply("atfleet-tests").force(),
            &Patch::Apply(&obj),
        )
        .await
        .unwrap_or_else(|e| panic!("applying the chart's {kind} {}: {e}", obj.name_any()));
    }
    service_account
}

/// A bound token for the ServiceAccount from the TokenRequest API, as the kubelet gets one.
async fn service_account_token(admin: &kube::Client, name: &str) -> String {
    let accounts: Api<ServiceAccount> = Api::namespaced(admin.clone(), system_ns());
    let request: TokenRequest = serde_json::from_value(json!({
        "apiVersion": "authentication.k8s.io/v1", "kind": "TokenRequest",
        "spec": { "expirationSeconds": 3600 }
    }))
    .expect("token request");
    let issued: TokenRequest = accounts
        .create_subresource("token", name, &PostParams::default(), &request)
        .await
        .expect("a token for the operator's ServiceAccount");
    issued
        .status
        .and_then(|s| s.token)
        .expect("the TokenRequest's status carries a token")
}

/// A control plane of the test's own, for what the shared one must not see: an Atsign CRD other
/// than the chart's. A node agent in-process reports pods Ready; the operator runs as
/// cluster-admin (this is about the operator's error boundary, not its grants).
pub struct PrivateCluster {
    pub control_plane: ControlPlane,
    agent: atfleet_node_agent::Handle,
    _state: tempfile::TempDir,
}

impl PrivateCluster {
    pub async fn shutdown(self) {
        self.agent.shutdown().await;
        self.control_plane.shutdown().await;
    }
}

pub async fn private_cluster_with(
    atsign_crd: CustomResourceDefinition,
) -> (PrivateCluster, kube::Client) {
    use kube::CustomResourceExt;
    let state = tempfile::tempdir().expect("tempdir");
    let bin = atfleet_cluster::binaries().unwrap_or_else(|e| panic!("{e}"));
    let control_plane = ControlPlane::start(Options::new(state.path().join("cluster"), bin))
        .await
        .unwrap_or_else(|e| panic!("{e}"));
    let admin = control_plane.client().await.expect("admin client");
    let agent = atfleet_node_agent::NodeAgent::start(
        admin.clone(),
        atfleet_node_agent::Config::simulate(state.path().join("node")),
    )
    .await
    .unwrap_or_else(|e| panic!("node agent: {e}"));
    for crd in [atsign_crd, atfleet_operator::crd::AtServerClass::crd()] {
        apply_crd(&admin, &crd).await;
    }
    let namespaces: Api<Namespace> = Api::all(admin.clone());
    for name in ["fleet", "atfleet-system"] {
        let ns: Namespace =
            serde_json::from_value(json!({ "metadata": { "name": name } })).expect("namespace");
        namespaces
            .create(&PostParams::default(), &ns)
            .await
            .expect("namespace");
    }
    assert!(
        NAMES
            .set(Names {
                ns: "fleet".into(),
                system_ns: "atfleet-system".into()
            })
            .is_ok(),
        "one cluster per test process (run these tests with cargo nextest)"
    );
    let _ = OPERATOR_CLIENT.set(admin.clone());
    (
        PrivateCluster {
            control_plane,
            agent,
            _state: state,
        },
        admin,
    )
}
