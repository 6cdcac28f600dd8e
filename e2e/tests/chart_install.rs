//! The Helm chart installed for real on the shared upstream control plane (scripts/with-controlplane),
//! then the story of deploy/kind/e2e.sh on it.
//!
//! `helm install` of charts/atfleet into a fresh namespace: the operator and the atDirectory run as
//! pods of the node agent (images mapped to the workspace binaries), PostgreSQL is the throwaway
//! one of scripts/with-postgres (a fresh database, given to the chart as an external URL Secret).
//! Processes cannot resolve cluster DNS, so what the atServers, the operator and atctl reach goes
//! through NodePorts on 127.0.0.1, set through chart values: the directory's root port
//! (`directory.service`), its registration API (`directory.apiService`, `operator.directoryUrl`),
//! and the address atServers resolve peers through (`operator.rootServer`). The directory's
//! certificate is the chart's own (its generated CA, not the operator's): @bob reading what @alice
//! shared, through his own atServer, works only because every atServer trusts the fleet's trust
//! bundle (issue 14, defect 1).
//!
//! Then: a class and two Atsigns applied with kubectl, `kubectl wait` Ready, `atctl onboard` both,
//! @alice shares and @bob reads, a notification reaches @bob's monitor, `helm upgrade` keeps the
//! API token, CRAM secrets and certificates (and rolls no atServer), a second upgrade that extends
//! the trust bundle (chart `trustBundle.extraCAs`, class `spec.tls.extraTrustedCAs`) rolls both
//! atServers onto it and sharing still works, `kubectl delete atsign alice` deregisters her, and
//! `helm uninstall` removes the release and keeps what the chart documents as kept.
//!
//! The CRDs are applied from crds/ like every other test of the shared cluster (`crds.install=false`):
//! they are cluster-wide and shared, so one release must not own them.

use std::collections::{BTreeMap, BTreeSet};
use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{anyhow, bail, ensure, Context as _, Result};
use atfleet_cluster::SharedCluster;
use atfleet_operator::build::{trust_checksum, TRUST_CHECKSUM_ANNOTATION};
use atfleet_operator::crd::AtServerClass;
use k8s_openapi::api::core::v1::{ConfigMap, Pod, Secret, Service};
use k8s_openapi::apiextensions_apiserver::pkg::apis::apiextensions::v1::CustomResourceDefinition;
use kube::api::{ListParams, Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde::Deserialize as _;
use serde_json::json;
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::Command;

/// Upper bound for one command; the loaded 2-core machine is the reason it is generous.
const COMMAND_TIMEOUT: Duration = Duration::from_secs(300);

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("workspace root")
        .to_path_buf()
}

fn target_bin() -> PathBuf {
    std::env::var_os("CARGO_TARGET_DIR")
        .filter(|d| !d.is_empty())
        .map(PathBuf::from)
        .unwrap_or_else(|| repo_root().join("target"))
        .join("debug")
}

/// The output of a script that prints a directory.
fn script_dir(script: &str) -> Result<PathBuf> {
    let out = std::process::Command::new(repo_root().join(script))
        .output()
        .with_context(|| format!("running {script}"))?;
    ensure!(
        out.status.success(),
        "{script}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    Ok(PathBuf::from(String::from_utf8_lossy(&out.stdout).trim()))
}

/// helm from the packaging tools (`make test` exports their directory as ATFLEET_TOOLS_BIN).
fn helm() -> Result<PathBuf> {
    match std::env::var_os("ATFLEET_TOOLS_BIN").filter(|b| !b.is_empty()) {
        Some(bin) => Ok(PathBuf::from(bin).join("helm")),
        None => Ok(script_dir("scripts/tools-env")?.join("helm")),
    }
}

/// The kubectl built with the control plane (same release as the apiserver).
fn kubectl() -> Result<PathBuf> {
    Ok(script_dir("scripts/controlplane-build")?.join("kubectl"))
}

struct Output {
    status: std::process::ExitStatus,
    stdout: String,
    stderr: String,
}

impl Output {
    fn ok(self, what: &str) -> Result<String> {
        ensure!(
            self.status.success(),
            "{what} exited with {}\nstdout: {}\nstderr: {}",
            self.status,
            self.stdout.trim(),
            self.stderr.trim()
        );
        Ok(self.stdout)
    }
}

/// Runs a command to completion within [`COMMAND_TIMEOUT`] (killed when it overruns).
async fn run(cmd: &mut Command, what: &str) -> Result<Output> {
    cmd.kill_on_drop(true).stdin(Stdio::null());
    let out = tokio::time::timeout(COMMAND_TIMEOUT, cmd.output())
        .await
        .map_err(|_| anyhow!("{what}: no answer within {COMMAND_TIMEOUT:?}"))?
        .with_context(|| format!("{what}: could not start"))?;
    Ok(Output {
        status: out.status,
        stdout: String::from_utf8_lossy(&out.stdout).into_owned(),
        stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
    })
}

/// Polls `check` until it returns `Some`, or fails after `limit` with the last observation.
async fn wait_for<T, F, Fut>(what: &str, limit: Duration, mut check: F) -> Result<T>
where
    F: FnMut() -> Fut,
    Fut: std::future::Future<Output = Result<Option<T>>>,
{
    let deadline = Instant::now() + limit;
    loop {
        let last = match check().await {
            Ok(Some(v)) => return Ok(v),
            Ok(None) => "condition not met".to_owned(),
            Err(e) => format!("{e:#}"),
        };
        if Instant::now() >= deadline {
            bail!("{what}: not within {limit:?}; last: {last}");
        }
        tokio::time::sleep(Duration::from_millis(500)).await;
    }
}

fn step(started: Instant, text: &str) {
    eprintln!("[{:>6.1}s] {text}", started.elapsed().as_secs_f64());
}

struct Story {
    shared: SharedCluster,
    admin: kube::Client,
    kubectl: PathBuf,
    helm: PathBuf,
    atctl: PathBuf,
    release: String,
    system_ns: String,
    fleet_ns: String,
    class: String,
    database: String,
    database_url: String,
    root_port: u16,
    api_port: u16,
    work: tempfile::TempDir,
    started: Instant,
}

impl Story {
    fn kubectl(&self) -> Command {
        let mut c = Command::new(&self.kubectl);
        c.env("KUBECONFIG", &self.shared.kubeconfig);
        c
    }

    fn helm(&self, verb: &str) -> Command {
        let mut c = Command::new(&self.helm);
        c.env("KUBECONFIG", &self.shared.kubeconfig)
            .env("HELM_CACHE_HOME", self.work.path().join("helm/cache"))
            .env("HELM_CONFIG_HOME", self.work.path().join("helm/config"))
            .env("HELM_DATA_HOME", self.work.path().join("helm/data"))
            .arg(verb);
        c
    }

    /// The values this installation needs on a node without cluster DNS.
    fn chart_values(&self) -> Vec<String> {
        let root = self.root_port;
        let api = self.api_port;
        [
            "crds.install=false".to_owned(),
            // The chart's default class, under a name of this test's own (the class is cluster-wide):
            // the operator applies it, and upgrades must keep the same object.
            "defaultClass.create=true".into(),
            format!("defaultClass.name={}", self.class),
            "defaultClass.spec.storage.size=64Mi".into(),
            "defaultClass.spec.storage.retention=Delete".into(),
            "defaultClass.spec.exposure.mode=NodePort".into(),
            "defaultClass.spec.exposure.host=127.0.0.1".into(),
            "operator.replicas=1".into(),
            "directory.replicas=1".into(),
            format!("operator.watchNamespaces[0]={}", self.fleet_ns),
            "operator.resyncSeconds=30".into(),
            "operator.logFormat=text".into(),
            "directory.logFormat=text".into(),
            "postgres.bundled=false".into(),
            "postgres.external.existingSecret=atdirectory-db".into(),
            "postgres.external.key=database-url".into(),
            "directory.service.type=NodePort".into(),
            format!("directory.service.rootNodePort={root}"),
            "directory.apiService.type=NodePort".into(),
            format!("directory.apiService.nodePort={api}"),
            "directory.tls.selfSigned.extraIPs[0]=127.0.0.1".into(),
            format!("operator.directoryUrl=http://127.0.0.1:{api}"),
            format!("operator.rootServer=127.0.0.1:{root}"),
        ]
        .into_iter()
        .flat_map(|v| ["--set".to_owned(), v])
        .collect()
    }

    fn atctl(&self, keys: Option<&str>) -> Command {
        let mut c = Command::new(&self.atctl);
        c.env("KUBECONFIG", &self.shared.kubeconfig)
            .env("ATCTL_ROOT_SERVER", format!("127.0.0.1:{}", self.root_port))
            .env("ATCTL_CA_BUNDLE", self.work.path().join("ca.pem"));
        if let Some(who) = keys {
            c.arg("--keys-dir")
                .arg(self.work.path().join(who))
                .args(["-a", &format!("@{who}")]);
        }
        c
    }

    fn step(&self, text: &str) {
        step(self.started, text);
    }

    /// The default class as the API holds it.
    async fn default_class(&self) -> Result<AtServerClass> {
        Api::<AtServerClass>::all(self.admin.clone())
            .get(&self.class)
            .await
            .with_context(|| format!("the default AtServerClass {}", self.class))
    }

    /// Waits until the operator has applied the chart's default class, and returns its uid.
    async fn default_class_uid(&self) -> Result<String> {
        wait_for(
            "the operator to apply the default class",
            Duration::from_secs(60),
            || async {
                let Some(class) = Api::<AtServerClass>::all(self.admin.clone())
                    .get_opt(&self.class)
                    .await?
                else {
                    return Ok(None);
                };
                let by_operator = class
                    .managed_fields()
                    .iter()
                    .any(|m| m.manager.as_deref() == Some("atfleet-default-class"));
                Ok(by_operator.then(|| class.uid().unwrap_or_default()))
            },
        )
        .await
    }

    async fn secret_data(&self, ns: &str, name: &str) -> Result<BTreeMap<String, Vec<u8>>> {
        let secret = Api::<Secret>::namespaced(self.admin.clone(), ns)
            .get(name)
            .await
            .with_context(|| format!("Secret {ns}/{name}"))?;
        Ok(secret
            .data
            .unwrap_or_default()
            .into_iter()
            .map(|(k, v)| (k, v.0))
            .collect())
    }

    async fn secret_key(&self, ns: &str, name: &str, key: &str) -> Result<String> {
        let data = self.secret_data(ns, name).await?;
        let value = data
            .get(key)
            .with_context(|| format!("Secret {ns}/{name} has no {key}"))?;
        Ok(String::from_utf8(value.clone())?)
    }

    /// The atServer pods of the fleet namespace by name, with their uids.
    async fn atserver_pods(&self) -> Result<BTreeMap<String, String>> {
        let pods = Api::<Pod>::namespaced(self.admin.clone(), &self.fleet_ns)
            .list(&ListParams::default().labels("app.kubernetes.io/name=atserver"))
            .await?;
        let pods: BTreeMap<String, String> = pods
            .items
            .iter()
            .map(|p| (p.name_any(), p.uid().unwrap_or_default()))
            .collect();
        ensure!(
            pods.len() == 2,
            "expected two atServer pods, found {pods:?}"
        );
        Ok(pods)
    }

    /// Everything `helm upgrade` must keep: the API token, the directory's certificate and CA, the
    /// operator's CA, and each Atsign's CRAM secret and certificate.
    async fn kept_material(&self) -> Result<BTreeMap<String, BTreeMap<String, Vec<u8>>>> {
        let dir = format!("{}-atfleet-directory", self.release);
        let mut out = BTreeMap::new();
        for (ns, name) in [
            (&self.system_ns, format!("{dir}-api-token")),
            (&self.system_ns, format!("{dir}-tls")),
            (&self.system_ns, "atfleet-ca".to_owned()),
            (&self.fleet_ns, "alice-cram".to_owned()),
            (&self.fleet_ns, "alice-tls".to_owned()),
            (&self.fleet_ns, "bob-cram".to_owned()),
            (&self.fleet_ns, "bob-tls".to_owned()),
        ] {
            out.insert(format!("{ns}/{name}"), self.secret_data(ns, &name).await?);
        }
        Ok(out)
    }
}

/// Applies the CRDs from crds/ server-side, as every test of the shared cluster does, and waits
/// until they are Established.
async fn install_crds(admin: &kube::Client) -> Result<()> {
    let crds: Api<CustomResourceDefinition> = Api::all(admin.clone());
    for file in ["crds/atsign.yaml", "crds/atserverclass.yaml"] {
        let text = std::fs::read_to_string(repo_root().join(file))?;
        let crd: CustomResourceDefinition = serde_yaml::from_str(&text)?;
        let name = crd.name_any();
        crds.patch(
            &name,
            &PatchParams::apply("atfleet-tests").force(),
            &Patch::Apply(&crd),
        )
        .await
        .with_context(|| format!("the apiserver refused {file}"))?;
        wait_for(
            &format!("CRD {name} Established"),
            Duration::from_secs(60),
            || async {
                let crd = crds.get(&name).await?;
                let established = crd
                    .status
                    .and_then(|s| s.conditions)
                    .unwrap_or_default()
                    .iter()
                    .any(|c| c.type_ == "Established" && c.status == "True");
                Ok(established.then_some(()))
            },
        )
        .await?;
    }
    Ok(())
}

/// A self-signed CA certificate (PEM) that signs nothing here: only trusted.
fn test_ca(name: &str) -> Result<String> {
    let mut params = rcgen::CertificateParams::default();
    params
        .distinguished_name
        .push(rcgen::DnType::CommonName, name);
    params.is_ca = rcgen::IsCa::Ca(rcgen::BasicConstraints::Unconstrained);
    let key = rcgen::KeyPair::generate()?;
    Ok(params.self_signed(&key)?.pem())
}

/// Two node ports no Service of the cluster holds yet (the apiserver refuses a taken one).
async fn free_node_ports(admin: &kube::Client) -> Result<(u16, u16)> {
    let taken: BTreeSet<i32> = Api::<Service>::all(admin.clone())
        .list(&ListParams::default())
        .await?
        .items
        .iter()
        .filter_map(|s| s.spec.as_ref()?.ports.as_ref())
        .flatten()
        .filter_map(|p| p.node_port)
        .collect();
    let pick = || loop {
        let p: i32 = 30100 + rand::random::<i32>().rem_euclid(2600);
        if !taken.contains(&p) && std::net::TcpListener::bind(("127.0.0.1", p as u16)).is_ok() {
            return p as u16;
        }
    };
    let root = pick();
    let mut api = pick();
    while api == root {
        api = pick();
    }
    Ok((root, api))
}

/// The throwaway PostgreSQL's URL with another database in its path.
fn with_database(url: &str, db: &str) -> Result<String> {
    let (base, _) = url
        .rsplit_once('/')
        .with_context(|| format!("DATABASE_URL without a path: {url}"))?;
    Ok(format!("{base}/{db}"))
}

async fn psql(url: &str, sql: &str) -> Result<()> {
    run(
        Command::new("psql").args([url, "-v", "ON_ERROR_STOP=1", "-Atc", sql]),
        &format!("psql {sql}"),
    )
    .await?
    .ok(&format!("psql {sql}"))?;
    Ok(())
}

/// The last lines of every container log of the pods of `ns` the node agent ran.
fn pod_logs(state: &Path, ns: &str) -> String {
    let mut out = String::new();
    let mut stack = vec![state.to_path_buf()];
    while let Some(dir) = stack.pop() {
        let Ok(entries) = std::fs::read_dir(&dir) else {
            continue;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.is_dir() {
                stack.push(path);
            } else if path.extension().is_some_and(|e| e == "log")
                && path
                    .parent()
                    .and_then(Path::parent)
                    .is_some_and(|p| p.ends_with(ns))
            {
                let text = std::fs::read_to_string(&path).unwrap_or_default();
                let lines: Vec<&str> = text.lines().collect();
                let tail = &lines[lines.len().saturating_sub(40)..];
                out.push_str(&format!(
                    "==> {} <==\n{}\n",
                    path.display(),
                    tail.join("\n")
                ));
            }
        }
    }
    out
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chart_install_upgrade_story_uninstall() {
    let started = Instant::now();
    let shared = SharedCluster::from_env().unwrap_or_else(|e| panic!("{e}"));
    let database_url = std::env::var("DATABASE_URL")
        .ok()
        .filter(|u| !u.is_empty())
        .expect("DATABASE_URL is not set: run under scripts/with-postgres (make test does)");
    let admin = shared.client().await.expect("admin client");
    let story = setup(shared, admin, &database_url, started)
        .await
        .unwrap_or_else(|e| panic!("setting up: {e:#}"));
    if let Err(e) = run_story(&story).await {
        let logs = pod_logs(&story.shared.state_dir, &story.system_ns)
            + &pod_logs(&story.shared.state_dir, &story.fleet_ns);
        let state = story
            .kubectl()
            .args([
                "get",
                "atsigns,pods,svc,secrets,configmaps",
                "-o",
                "wide",
                "-n",
            ])
            .arg(&story.fleet_ns)
            .output()
            .await
            .map(|o| String::from_utf8_lossy(&o.stdout).into_owned())
            .unwrap_or_default();
        panic!("{e:#}\n\n{state}\n{logs}");
    }
    cleanup(&story).await;
    story.step("done");
}

async fn setup(
    shared: SharedCluster,
    admin: kube::Client,
    database_url: &str,
    started: Instant,
) -> Result<Story> {
    install_crds(&admin).await?;
    let system_ns = shared.namespace(&admin, "chart-system", false).await?;
    let fleet_ns = shared.namespace(&admin, "chart-fleet", false).await?;
    let suffix = system_ns[system_ns.len() - 8..].to_owned();
    let (root_port, api_port) = free_node_ports(&admin).await?;
    let database = format!("chart_{suffix}");
    let story = Story {
        kubectl: kubectl()?,
        helm: helm()?,
        atctl: target_bin().join("atctl"),
        release: format!("c{suffix}"),
        class: format!("chart-{suffix}"),
        database_url: with_database(database_url, &database)?,
        database,
        system_ns,
        fleet_ns,
        root_port,
        api_port,
        work: tempfile::tempdir()?,
        started,
        shared,
        admin,
    };
    ensure!(
        story.atctl.is_file(),
        "{} is missing: cargo build -p atctl",
        story.atctl.display()
    );
    psql(database_url, &format!("CREATE DATABASE {}", story.database)).await?;
    run(
        story
            .kubectl()
            .args([
                "-n",
                &story.system_ns,
                "create",
                "secret",
                "generic",
                "atdirectory-db",
            ])
            .arg(format!(
                "--from-literal=database-url={}",
                story.database_url
            )),
        "kubectl create secret atdirectory-db",
    )
    .await?
    .ok("kubectl create secret atdirectory-db")?;
    story.step(&format!(
        "setup: namespaces {} and {}, database {}, node ports root {} api {}",
        story.system_ns, story.fleet_ns, story.database, root_port, api_port
    ));
    Ok(story)
}

async fn run_story(s: &Story) -> Result<()> {
    let chart = repo_root().join("charts/atfleet");

    // 1. helm install: the operator and the directory as pods of the node agent.
    let out = run(
        s.helm("install")
            .arg(&s.release)
            .arg(&chart)
            .args(["--namespace", &s.system_ns, "--wait", "--timeout", "5m"])
            .args(s.chart_values()),
        "helm install",
    )
    .await?
    .ok("helm install")?;
    ensure!(out.contains("STATUS: deployed"), "helm install: {out}");
    let pods = Api::<Pod>::namespaced(s.admin.clone(), &s.system_ns)
        .list(&ListParams::default())
        .await?;
    let ready: Vec<String> = pods
        .items
        .iter()
        .filter(|p| {
            p.status
                .as_ref()
                .and_then(|st| st.conditions.as_ref())
                .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
        })
        .map(|p| p.name_any())
        .collect();
    ensure!(
        ready.iter().any(|n| n.contains("-operator-"))
            && ready.iter().any(|n| n.contains("-directory-")),
        "after helm install --wait, Ready pods are {ready:?}"
    );
    s.step(&format!("helm install: deployed, Ready pods {ready:?}"));

    // The directory's certificate comes from the chart's own CA, which the trust bundle carries.
    let dir = format!("{}-atfleet-directory", s.release);
    let dir_ca = s
        .secret_key(&s.system_ns, &format!("{dir}-tls"), "ca.crt")
        .await?;
    let bundle = Api::<ConfigMap>::namespaced(s.admin.clone(), &s.system_ns)
        .get(&format!("{}-atfleet-trust-bundle", s.release))
        .await
        .context("the chart's trust-bundle ConfigMap")?
        .data
        .unwrap_or_default()
        .remove("ca.crt")
        .unwrap_or_default();
    ensure!(
        !dir_ca.trim().is_empty() && bundle.contains(dir_ca.trim()),
        "the trust bundle does not hold the directory's CA"
    );

    // 2. The chart's default class, applied by the operator (not a Helm hook), and two Atsigns naming
    // it, published on node ports of 127.0.0.1.
    let class_uid = s.default_class_uid().await?;
    s.step(&format!(
        "default class {} applied by the operator (field manager atfleet-default-class), uid {class_uid}",
        s.class
    ));
    let manifests = format!(
        r#"apiVersion: atfleet.dev/v1alpha1
kind: Atsign
metadata: {{name: alice, namespace: {ns}}}
spec: {{atSign: "@alice", className: {class}}}
---
apiVersion: atfleet.dev/v1alpha1
kind: Atsign
metadata: {{name: bob, namespace: {ns}}}
spec: {{atSign: "@bob", className: {class}}}
"#,
        class = s.class,
        ns = s.fleet_ns
    );
    let file = s.work.path().join("fleet.yaml");
    std::fs::write(&file, manifests)?;
    run(
        s.kubectl().arg("apply").arg("-f").arg(&file),
        "kubectl apply",
    )
    .await?
    .ok("kubectl apply")?;
    run(
        s.kubectl()
            .args(["-n", &s.fleet_ns, "wait", "--for=condition=Ready"])
            .args(["atsign/alice", "atsign/bob", "--timeout=300s"]),
        "kubectl wait Ready",
    )
    .await?
    .ok("kubectl wait --for=condition=Ready atsign/alice atsign/bob")?;
    s.step("Atsigns applied; kubectl wait: alice and bob Ready");

    let operator_ca = s.secret_key(&s.system_ns, "atfleet-ca", "ca.crt").await?;
    ensure!(
        operator_ca.trim() != dir_ca.trim(),
        "the directory's CA is the operator's: the test would not show the trust bundle"
    );
    for who in ["alice", "bob"] {
        let trust = s
            .secret_key(&s.fleet_ns, &format!("{who}-tls"), "trust-bundle.crt")
            .await?;
        ensure!(
            trust.contains(operator_ca.trim()) && trust.contains(dir_ca.trim()),
            "{who}'s trust bundle lacks the operator's or the directory's CA"
        );
    }
    std::fs::write(
        s.work.path().join("ca.pem"),
        format!("{}\n{}\n", dir_ca.trim(), operator_ca.trim()),
    )?;

    // The directory answers for both, with their node ports on 127.0.0.1.
    for who in ["alice", "bob"] {
        let out = run(
            s.atctl(None).args(["lookup", &format!("@{who}")]),
            "atctl lookup",
        )
        .await?
        .ok(&format!("atctl lookup @{who}"))?;
        ensure!(out.contains("127.0.0.1"), "atctl lookup @{who}: {out}");
    }

    // atctl onboard both, with the CRAM secrets the operator generated.
    for who in ["alice", "bob"] {
        let out = run(
            s.atctl(None)
                .arg("--keys-dir")
                .arg(s.work.path().join(who))
                .args(["onboard", &format!("@{who}")])
                .args(["--from-secret", &format!("{}/{who}-cram", s.fleet_ns)]),
            "atctl onboard",
        )
        .await?
        .ok(&format!("atctl onboard @{who}"))?;
        s.step(&format!("atctl onboard @{who}: {}", out.trim()));
    }

    // @alice shares a value with @bob; @bob reads it through his own atServer, which looks @alice
    // up in the chart's directory over TLS and connects to her atServer.
    let value = "+1 555 0100";
    run(
        s.atctl(Some("alice")).args(["put", "phone.e2e", value]),
        "put",
    )
    .await?
    .ok("atctl put phone.e2e")?;
    run(
        s.atctl(Some("alice"))
            .args(["share", "phone.e2e", "--with", "@bob"]),
        "share",
    )
    .await?
    .ok("atctl share phone.e2e --with @bob")?;
    let read = run(
        s.atctl(Some("bob")).args(["get", "@bob:phone.e2e@alice"]),
        "get",
    )
    .await?
    .ok("@bob: atctl get @bob:phone.e2e@alice")?;
    ensure!(
        read.trim() == value,
        "@bob read {read:?} instead of @alice's {value:?}"
    );
    s.step(&format!(
        "@alice shared phone.e2e; @bob read {:?} through his atServer",
        read.trim()
    ));

    // A notification from @alice reaches @bob's monitor.
    let text = format!("hello from the chart test {}", s.release);
    run(
        s.atctl(Some("alice"))
            .args(["notify", "--text", "@bob", &text]),
        "notify",
    )
    .await?
    .ok("atctl notify --text @bob")?;
    let mut monitor = s
        .atctl(Some("bob"))
        .args(["monitor", "--since", "0"])
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .kill_on_drop(true)
        .spawn()
        .context("atctl monitor")?;
    let mut lines = BufReader::new(monitor.stdout.take().expect("stdout")).lines();
    let seen = tokio::time::timeout(Duration::from_secs(120), async {
        while let Some(line) = lines.next_line().await? {
            if line.contains(&text) {
                return Ok::<_, anyhow::Error>(Some(line));
            }
        }
        Ok(None)
    })
    .await;
    let _ = monitor.kill().await;
    match seen {
        Ok(Ok(Some(line))) => s.step(&format!("@bob's monitor: {}", line.trim())),
        Ok(Ok(None)) => bail!("atctl monitor ended without @alice's notification"),
        Ok(Err(e)) => bail!("reading atctl monitor: {e:#}"),
        Err(_) => bail!("@bob's monitor did not show @alice's notification within 120 s"),
    }

    // 3. helm upgrade keeps the token, the CRAM secrets and every certificate.
    let before = s.kept_material().await?;
    let pods_before = s.atserver_pods().await?;
    let out = run(
        s.helm("upgrade")
            .arg(&s.release)
            .arg(&chart)
            .args(["--namespace", &s.system_ns, "--wait", "--timeout", "5m"])
            .args(s.chart_values()),
        "helm upgrade",
    )
    .await?
    .ok("helm upgrade")?;
    ensure!(out.contains("STATUS: deployed"), "helm upgrade: {out}");
    let after = s.kept_material().await?;
    for (name, data) in &before {
        ensure!(
            after.get(name) == Some(data),
            "helm upgrade changed {name} (keys before {:?}, after {:?})",
            data.keys().collect::<Vec<_>>(),
            after.get(name).map(|d| d.keys().collect::<Vec<_>>())
        );
    }
    // Still serving after the upgrade: @bob reads again.
    let read = run(
        s.atctl(Some("bob")).args(["get", "@bob:phone.e2e@alice"]),
        "get",
    )
    .await?
    .ok("@bob: atctl get after helm upgrade")?;
    ensure!(
        read.trim() == value,
        "after helm upgrade @bob read {read:?}"
    );
    // Nothing the atServers mount changed, so the upgrade rolled none of them.
    let pods_after = s.atserver_pods().await?;
    ensure!(
        pods_after == pods_before,
        "helm upgrade replaced atServer pods: {pods_before:?} -> {pods_after:?}"
    );
    s.step(&format!(
        "helm upgrade: atServer pods kept ({}); {} Secrets unchanged ({})",
        pods_after.keys().cloned().collect::<Vec<_>>().join(", "),
        before.len(),
        before.keys().cloned().collect::<Vec<_>>().join(", ")
    ));

    // 3b. The trust bundle extended by the chart (trustBundle.extraCAs) and by the class
    // (spec.tls.extraTrustedCAs): the new operator writes both into every atServer's bundle, the
    // atServers roll (they read it at start), and sharing still works.
    let (chart_ca, class_ca) = (test_ca("chart extra CA")?, test_ca("class extra CA")?);
    run(
        s.kubectl()
            .args(["patch", "atserverclass", &s.class, "--type=merge", "-p"])
            .arg(json!({"spec": {"tls": {"extraTrustedCAs": class_ca}}}).to_string()),
        "kubectl patch atserverclass",
    )
    .await?
    .ok("kubectl patch atserverclass (extraTrustedCAs)")?;
    let extra = s.work.path().join("extra-ca.yaml");
    std::fs::write(
        &extra,
        serde_yaml::to_string(&json!({"trustBundle": {"extraCAs": chart_ca}}))?,
    )?;
    run(
        s.helm("upgrade")
            .arg(&s.release)
            .arg(&chart)
            .args(["--namespace", &s.system_ns, "--wait", "--timeout", "5m"])
            .args(s.chart_values())
            .arg("-f")
            .arg(&extra),
        "helm upgrade (extraCAs)",
    )
    .await?
    .ok("helm upgrade with trustBundle.extraCAs")?;
    wait_for(
        "both atServers rolled onto a bundle with the chart's and the class's extra CAs",
        Duration::from_secs(240),
        || async {
            // The class patch and the chart upgrade land apart, so an atServer may roll twice:
            // a pod counts only once it was started on the bundle that holds both CAs.
            let mut final_checksums = BTreeMap::new();
            for who in ["alice", "bob"] {
                let trust = s
                    .secret_key(&s.fleet_ns, &format!("{who}-tls"), "trust-bundle.crt")
                    .await?;
                ensure!(
                    trust.contains(chart_ca.trim()) && trust.contains(class_ca.trim()),
                    "{who}'s trust bundle lacks an extra CA yet"
                );
                final_checksums.insert(format!("{who}-0"), trust_checksum(&trust));
            }
            let pods = Api::<Pod>::namespaced(s.admin.clone(), &s.fleet_ns)
                .list(&ListParams::default().labels("app.kubernetes.io/name=atserver"))
                .await?;
            let ready_new = pods
                .items
                .iter()
                .filter(|p| {
                    !pods_before
                        .values()
                        .any(|uid| p.uid().as_deref() == Some(uid))
                })
                .filter(|p| p.metadata.deletion_timestamp.is_none())
                .filter(|p| {
                    let started_on = p.annotations().get(TRUST_CHECKSUM_ANNOTATION);
                    started_on.is_some() && started_on == final_checksums.get(&p.name_any())
                })
                .filter(|p| {
                    p.status
                        .as_ref()
                        .and_then(|st| st.conditions.as_ref())
                        .is_some_and(|c| c.iter().any(|c| c.type_ == "Ready" && c.status == "True"))
                })
                .count();
            ensure!(
                ready_new == 2,
                "{ready_new} of 2 atServer pods rolled onto the final bundle and Ready"
            );
            Ok(Some(()))
        },
    )
    .await?;
    let value = "+1 555 0199";
    run(
        s.atctl(Some("alice")).args(["put", "phone.e2e", value]),
        "put",
    )
    .await?
    .ok("atctl put phone.e2e (after the roll)")?;
    run(
        s.atctl(Some("alice"))
            .args(["share", "phone.e2e", "--with", "@bob"]),
        "share",
    )
    .await?
    .ok("atctl share phone.e2e --with @bob (after the roll)")?;
    let read = wait_for(
        "@bob reading @alice's new value",
        Duration::from_secs(60),
        || async {
            let read = run(
                s.atctl(Some("bob")).args(["get", "@bob:phone.e2e@alice"]),
                "get",
            )
            .await?
            .ok("@bob: atctl get after the roll")?;
            Ok((read.trim() == value).then_some(read))
        },
    )
    .await?;
    s.step(&format!(
        "trust bundle extended (chart extraCAs, class extraTrustedCAs): both atServers rolled; @bob read {:?}",
        read.trim()
    ));

    // Two upgrades later (the second rolled the operator, which re-applied the class) the default
    // class is the object it was, and keeps the field another manager set on it.
    let uid_now = s.default_class_uid().await?;
    ensure!(
        uid_now == class_uid,
        "helm upgrade replaced the default class: uid {class_uid} -> {uid_now}"
    );
    let class = s.default_class().await?;
    ensure!(
        class
            .spec
            .tls
            .as_ref()
            .and_then(|t| t.extra_trusted_cas.as_ref())
            .is_some(),
        "re-applying the default class dropped spec.tls.extraTrustedCAs set by kubectl patch"
    );
    s.step(&format!(
        "after both upgrades the default class is the same object (uid {uid_now})"
    ));

    // 4. kubectl delete atsign alice deregisters her.
    run(
        s.kubectl().args([
            "-n",
            &s.fleet_ns,
            "delete",
            "atsign",
            "alice",
            "--wait",
            "--timeout=180s",
        ]),
        "kubectl delete atsign alice",
    )
    .await?
    .ok("kubectl delete atsign alice")?;
    let answer = wait_for(
        "@alice gone from the directory",
        Duration::from_secs(60),
        || async {
            let out = run(s.atctl(None).args(["lookup", "@alice"]), "atctl lookup").await?;
            // exit 4: not found (atctl's exit codes)
            Ok((out.status.code() == Some(4)).then(|| out.stderr.trim().to_owned()))
        },
    )
    .await?;
    run(s.atctl(None).args(["lookup", "@bob"]), "atctl lookup @bob")
        .await?
        .ok("atctl lookup @bob after alice was deleted")?;
    s.step(&format!(
        "kubectl delete atsign alice: lookup @alice answers not found ({answer}); @bob still found"
    ));

    // 5. helm uninstall removes the release; what stays is what the chart says it keeps.
    run(
        s.helm("uninstall").arg(&s.release).args([
            "--namespace",
            &s.system_ns,
            "--wait",
            "--timeout",
            "3m",
        ]),
        "helm uninstall",
    )
    .await?
    .ok("helm uninstall")?;
    let pods = Api::<Pod>::namespaced(s.admin.clone(), &s.system_ns);
    wait_for(
        "the operator and directory pods gone",
        Duration::from_secs(120),
        || async {
            let left = pods.list(&ListParams::default()).await?.items;
            Ok(left.is_empty().then_some(()))
        },
    )
    .await?;
    let expected: BTreeSet<String> = [
        // kept by the chart (helm.sh/resource-policy: keep)
        format!("Secret/{dir}-api-token"),
        format!("Secret/{dir}-tls"),
        // made by the operator, not by the release
        "Secret/atfleet-ca".to_owned(),
        // the test's own
        "Secret/atdirectory-db".to_owned(),
        // every namespace's
        "ServiceAccount/default".to_owned(),
        "ConfigMap/kube-root-ca.crt".to_owned(),
    ]
    .into_iter()
    .collect();
    // The garbage collector removes the ReplicaSets in the background.
    let left = wait_for(
        "the release namespace down to what the chart keeps",
        Duration::from_secs(120),
        || async {
            let out = run(
                s.kubectl()
                    .args(["-n", &s.system_ns, "get"])
                    .args(["deployments,replicasets,services,serviceaccounts,configmaps,secrets,roles,rolebindings,poddisruptionbudgets,networkpolicies"])
                    .args(["-o", "jsonpath={range .items[*]}{.kind}/{.metadata.name}{\"\\n\"}{end}"]),
                "kubectl get",
            )
            .await?
            .ok("kubectl get what is left")?;
            let left: BTreeSet<String> = out
                .lines()
                .map(str::to_owned)
                .filter(|l| !l.is_empty())
                .collect();
            ensure!(left == expected, "left {left:?}, expected {expected:?}");
            Ok(Some(left))
        },
    )
    .await?;
    for (kind, name) in [
        ("clusterrole", format!("{}-atfleet-operator", s.release)),
        (
            "clusterrolebinding",
            format!("{}-atfleet-operator", s.release),
        ),
    ] {
        let out = run(s.kubectl().args(["get", kind, &name]), "kubectl get").await?;
        ensure!(
            !out.status.success() && out.stderr.contains("NotFound"),
            "{kind} {name} is left after helm uninstall: {}",
            out.stdout
        );
    }
    // The default class is not a release object: it is kept, as values.yaml says.
    ensure!(
        s.default_class_uid().await? == class_uid,
        "the default class is gone or replaced after helm uninstall"
    );
    // CRDs and Atsigns are kept (crds.keep): bob is still there.
    run(
        s.kubectl()
            .args(["-n", &s.fleet_ns, "get", "atsign", "bob"]),
        "kubectl get atsign bob",
    )
    .await?
    .ok("atsign bob after helm uninstall")?;
    s.step(&format!(
        "helm uninstall: release objects gone; left as documented: {}; atsign bob kept",
        left.into_iter().collect::<Vec<_>>().join(", ")
    ));
    Ok(())
}

/// Best effort: without the operator nobody removes bob's finalizer.
async fn cleanup(s: &Story) {
    let atsigns = s
        .kubectl()
        .args(["-n", &s.fleet_ns, "patch", "atsign", "bob", "--type=merge"])
        .args(["-p", &json!({"metadata": {"finalizers": null}}).to_string()])
        .output()
        .await;
    let _ = atsigns;
    for args in [
        vec!["delete", "namespace", &s.fleet_ns, "--wait=false"],
        vec!["delete", "namespace", &s.system_ns, "--wait=false"],
        vec!["delete", "atserverclass", &s.class, "--wait=false"],
    ] {
        let _ = s.kubectl().args(args).output().await;
    }
    let _ = psql(
        &with_database(&s.database_url, "postgres").unwrap_or_default(),
        &format!("DROP DATABASE IF EXISTS {} WITH (FORCE)", s.database),
    )
    .await;
}

/// GitOps (issue 14, defect 10): `helm template` with `gitOps.enabled` renders no secret, two renders
/// are byte-identical, and applying the second after the first (as Argo CD or Flux does on every
/// sync) changes no object on the real apiserver: no generation, no Secret, no ConfigMap moves.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn gitops_renders_applied_in_a_row_change_nothing() {
    if let Err(e) = gitops_story().await {
        panic!("{e:#}");
    }
}

async fn gitops_story() -> Result<()> {
    let shared = SharedCluster::from_env()?;
    let admin = shared.client().await?;
    install_crds(&admin).await?;
    // Pods are simulated: this test is about the objects the chart renders, not about running them.
    let ns = shared.namespace(&admin, "gitops", true).await?;
    let release = format!("g{}", &ns[ns.len() - 8..]);
    let work = tempfile::tempdir()?;
    let kubectl = kubectl()?;
    let kube = |args: &[&str]| {
        let mut c = Command::new(&kubectl);
        c.env("KUBECONFIG", &shared.kubeconfig).args(args);
        c
    };

    // The Secrets GitOps mode requires, made beforehand as an operator of the cluster would.
    for (name, literals) in [
        ("atdirectory-api-token", vec!["token=t0ken"]),
        (
            "atdirectory-tls",
            vec!["tls.crt=cert", "tls.key=key", "ca.crt=ca"],
        ),
        (
            "atdirectory-postgres",
            vec![
                "user=atdirectory",
                "password=pw",
                "database=atdirectory",
                "database-url=postgres://atdirectory:pw@db:5432/atdirectory",
            ],
        ),
    ] {
        let mut cmd = kube(&["-n", &ns, "create", "secret", "generic", name]);
        for l in literals {
            cmd.arg(format!("--from-literal={l}"));
        }
        run(&mut cmd, "kubectl create secret")
            .await?
            .ok(&format!("kubectl create secret {name}"))?;
    }

    let chart = repo_root().join("charts/atfleet");
    let mut renders = Vec::new();
    for i in 0..2 {
        let out = run(
            Command::new(helm()?)
                .env("HELM_CACHE_HOME", work.path().join("helm/cache"))
                .env("HELM_CONFIG_HOME", work.path().join("helm/config"))
                .env("HELM_DATA_HOME", work.path().join("helm/data"))
                .args(["template", &release])
                .arg(&chart)
                .args(["--namespace", &ns, "-f"])
                .arg(chart.join("ci/gitops-values.yaml"))
                // The CRDs and the class are cluster-wide and shared by every test of this cluster.
                .args([
                    "--set",
                    "crds.install=false",
                    "--set",
                    "defaultClass.create=false",
                ]),
            "helm template",
        )
        .await?
        .ok("helm template (gitOps.enabled)")?;
        let file = work.path().join(format!("render-{i}.yaml"));
        std::fs::write(&file, &out)?;
        renders.push((file, out));
    }
    ensure!(
        renders[0].1 == renders[1].1,
        "two gitOps renders differ: every sync would change the cluster"
    );
    let docs: Vec<serde_yaml::Value> = serde_yaml::Deserializer::from_str(&renders[0].1)
        .map(serde_yaml::Value::deserialize)
        .collect::<Result<Vec<_>, _>>()?;
    let kinds: Vec<String> = docs
        .iter()
        .filter_map(|d| d.get("kind").and_then(|k| k.as_str()).map(str::to_owned))
        .collect();
    ensure!(
        !kinds.iter().any(|k| k == "Secret"),
        "a gitOps render generates a Secret: {kinds:?}"
    );

    // What each object is after an apply: its generation where it has one (status updates by
    // controllers move resourceVersion but not generation), else its resourceVersion.
    let observe = |file: PathBuf| {
        let mut cmd = kube(&["-n", &ns, "get", "-o", "json", "-f"]);
        cmd.arg(file);
        async move {
            let out = run(&mut cmd, "kubectl get -f")
                .await?
                .ok("kubectl get -f")?;
            let list: serde_json::Value = serde_json::from_str(&out)?;
            let mut seen = BTreeMap::new();
            for item in list["items"].as_array().cloned().unwrap_or_default() {
                let key = format!(
                    "{}/{}",
                    item["kind"].as_str().unwrap_or(""),
                    item["metadata"]["name"].as_str().unwrap_or("")
                );
                let version = match item["metadata"]["generation"].as_i64() {
                    Some(g) => format!("generation {g}"),
                    None => format!(
                        "resourceVersion {}",
                        item["metadata"]["resourceVersion"].as_str().unwrap_or("")
                    ),
                };
                seen.insert(key, version);
            }
            Ok::<_, anyhow::Error>(seen)
        }
    };
    let apply = |file: &Path| {
        let mut cmd = kube(&[
            "-n",
            &ns,
            "apply",
            "--server-side",
            "--field-manager=gitops-sync",
            "-f",
        ]);
        cmd.arg(file);
        cmd
    };
    run(&mut apply(&renders[0].0), "kubectl apply")
        .await?
        .ok("kubectl apply --server-side (first render)")?;
    let first = observe(renders[0].0.clone()).await?;
    run(&mut apply(&renders[1].0), "kubectl apply")
        .await?
        .ok("kubectl apply --server-side (second render)")?;
    let second = observe(renders[1].0.clone()).await?;
    ensure!(
        first.len() == docs.len(),
        "kubectl get found {} of the {} rendered objects",
        first.len(),
        docs.len()
    );
    let changed: Vec<String> = first
        .iter()
        .filter(|(k, v)| second.get(*k) != Some(*v))
        .map(|(k, v)| format!("{k}: {v} -> {:?}", second.get(k)))
        .collect();
    ensure!(
        changed.is_empty(),
        "the second apply of an identical render changed: {changed:?}"
    );
    eprintln!(
        "gitOps: two renders identical ({} objects, no Secret); the second apply changed none",
        docs.len()
    );

    // Cluster-scoped objects of this release; the namespace takes the rest with it.
    for kind in ["clusterrole", "clusterrolebinding"] {
        let _ = kube(&[
            "delete",
            kind,
            &format!("{release}-atfleet-operator"),
            "--wait=false",
        ])
        .output()
        .await;
    }
    let _ = kube(&["delete", "namespace", &ns, "--wait=false"])
        .output()
        .await;
    Ok(())
}
