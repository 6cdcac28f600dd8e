//! One pod on this node: its volumes, a supervised process per container, readiness probes and
//! the pod status it reports. Stopping sends SIGTERM, then SIGKILL after the grace period.

use std::path::PathBuf;
use std::process::Stdio;
use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::Arc;
use std::time::Duration;

use jiff::Timestamp;
use k8s_openapi::api::core::v1::{Container, Pod};
use kube::api::{Patch, PatchParams};
use kube::{Api, ResourceExt};
use serde_json::json;
use tokio::sync::watch;
use tokio_util::sync::CancellationToken;

use super::endpoints::{Endpoints, PodEndpoint};
use super::error::{io, AgentError};
use super::state::{ContainerState, PodState};
use super::tokens::{self, SERVICE_ACCOUNT_MOUNT};
use super::volumes::{self, Rewrites};
use super::{env, probe, refresh, Settings};

/// A running pod worker; dropping it does not stop the pod (call [`PodWorker::stop`]).
pub struct PodWorker {
    stop: CancellationToken,
    grace: Arc<AtomicI64>,
    task: tokio::task::JoinHandle<()>,
}

impl PodWorker {
    /// Starts the pod; its uid is sent to `done` when its containers have stopped.
    pub fn start(
        settings: Arc<Settings>,
        endpoints: Endpoints,
        pod: Pod,
        done: tokio::sync::mpsc::UnboundedSender<String>,
    ) -> Self {
        let stop = CancellationToken::new();
        let grace = Arc::new(AtomicI64::new(
            pod.spec
                .as_ref()
                .and_then(|s| s.termination_grace_period_seconds)
                .unwrap_or(30),
        ));
        let uid = pod.uid().unwrap_or_default();
        let (s, g, u) = (stop.clone(), grace.clone(), uid.clone());
        let task = tokio::spawn(async move {
            run(settings, endpoints, pod, s, g).await;
            let _ = done.send(u);
        });
        Self { stop, grace, task }
    }

    /// Asks the containers to stop within `grace_seconds`.
    pub fn stop(&self, grace_seconds: i64) {
        self.grace.store(grace_seconds.max(0), Ordering::SeqCst);
        self.stop.cancel();
    }

    /// Asks the containers to stop within the pod's `terminationGracePeriodSeconds`.
    pub fn shutdown(&self) {
        self.stop.cancel();
    }

    pub fn stopping(&self) -> bool {
        self.stop.is_cancelled()
    }

    pub async fn wait(self) {
        let _ = self.task.await;
    }
}

async fn run(
    settings: Arc<Settings>,
    endpoints: Endpoints,
    pod: Pod,
    stop: CancellationToken,
    grace: Arc<AtomicI64>,
) {
    let ns = pod.namespace().unwrap_or_default();
    let name = pod.name_any();
    let containers = pod
        .spec
        .as_ref()
        .map(|s| s.containers.clone())
        .unwrap_or_default();
    let initial = PodState {
        started: Some(Timestamp::now()),
        containers: containers
            .iter()
            .map(|c| ContainerState {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                ..ContainerState::default()
            })
            .collect(),
        ready_changed: None,
    };
    let (state, updates) = watch::channel(initial);
    let reporter = tokio::spawn(report(
        settings.client.clone(),
        ns.clone(),
        name.clone(),
        updates,
    ));

    let uid = pod.uid().unwrap_or_default();
    endpoints.set(
        &ns,
        &name,
        PodEndpoint {
            uid: uid.clone(),
            labels: pod.labels().clone(),
            ready: false,
            ports: Vec::new(),
        },
    );
    let pod_dir = settings
        .state_dir
        .join("pods")
        .join(&ns)
        .join(format!("{name}-{uid}"));
    // Subscribed before the volumes are first read, so no change between the two is missed.
    let subscription = mounts_sources(&pod).then(|| settings.watches.subscribe(&ns));
    if let Some(prepared) = prepare_volumes(&settings, &pod, &pod_dir, &state, &stop).await {
        let kubeconfig = write_kubeconfig(&settings, &pod, &pod_dir, &prepared);
        let volume_refresher = subscription.map(|sub| {
            tokio::spawn(refresh::keep_current(
                settings.client.clone(),
                ns.clone(),
                sub,
                prepared.mounted.clone(),
                stop.clone(),
            ))
        });
        let refresher = tokio::spawn(tokens::keep_fresh(
            settings.client.clone(),
            pod.clone(),
            prepared.tokens.clone(),
            settings.backoff_cap,
            stop.clone(),
        ));
        let state = Arc::new(state);
        let tasks: Vec<_> = containers
            .into_iter()
            .enumerate()
            .map(|(i, c)| {
                let account_env = match &kubeconfig {
                    Some((volume, path)) if mounts_account(&c, volume) => {
                        let mut env = vec![("KUBECONFIG".to_owned(), path.display().to_string())];
                        env.extend(
                            settings
                                .api_server
                                .as_deref()
                                .map(tokens::service_env)
                                .unwrap_or_default(),
                        );
                        env
                    }
                    _ => Vec::new(),
                };
                let sup = Supervisor {
                    settings: settings.clone(),
                    endpoints: endpoints.clone(),
                    pod: pod.clone(),
                    index: i,
                    container: c,
                    volumes: prepared.volumes.clone(),
                    account_env,
                    pod_dir: pod_dir.clone(),
                    state: state.clone(),
                    stop: stop.clone(),
                    grace: grace.clone(),
                };
                tokio::spawn(sup.run())
            })
            .collect();
        for t in tasks {
            let _ = t.await;
        }
        let _ = refresher.await;
        if let Some(r) = volume_refresher {
            let _ = r.await;
        }
    }
    endpoints.remove(&ns, &name, &uid);
    if let Err(e) = std::fs::remove_dir_all(&pod_dir) {
        if e.kind() != std::io::ErrorKind::NotFound {
            tracing::warn!(pod = %name, error = %e, "cannot remove the pod directory");
        }
    }
    reporter.abort();
}

/// Whether the pod has Secret or ConfigMap volumes (kept current while it runs).
fn mounts_sources(pod: &Pod) -> bool {
    pod.spec
        .iter()
        .flat_map(|s| s.volumes.iter().flatten())
        .any(|v| v.secret.is_some() || v.config_map.is_some())
}

/// Whether `container` mounts volume `volume` at the service-account path.
fn mounts_account(container: &Container, volume: &str) -> bool {
    container
        .volume_mounts
        .iter()
        .flatten()
        .any(|m| m.name == volume && m.mount_path.trim_end_matches('/') == SERVICE_ACCOUNT_MOUNT)
}

/// Writes `<pod dir>/kubeconfig` for the service-account volume mounted at the in-cluster path;
/// returns that volume's name and the file.
fn write_kubeconfig(
    settings: &Settings,
    pod: &Pod,
    pod_dir: &std::path::Path,
    prepared: &volumes::Prepared,
) -> Option<(String, PathBuf)> {
    let api_server = settings.api_server.as_deref()?;
    let spec = pod.spec.as_ref()?;
    let (volume, files) = prepared.accounts.iter().find(|(volume, _)| {
        spec.containers
            .iter()
            .any(|c| mounts_account(c, volume.as_str()))
    })?;
    let path = pod_dir.join("kubeconfig");
    let text = tokens::kubeconfig(api_server, files, &pod.namespace().unwrap_or_default());
    match tokens::write_atomic(&path, text.as_bytes(), 0o600) {
        Ok(()) => Some((volume.clone(), path)),
        Err(e) => {
            tracing::warn!(pod = %pod.name_any(), error = %e, "cannot write the pod's kubeconfig");
            None
        }
    }
}

/// Volumes, retried with backoff while a Secret, ConfigMap or claim is missing; `None` when
/// stopped first.
async fn prepare_volumes(
    settings: &Settings,
    pod: &Pod,
    pod_dir: &std::path::Path,
    state: &watch::Sender<PodState>,
    stop: &CancellationToken,
) -> Option<volumes::Prepared> {
    let mut delay = settings.backoff_base;
    loop {
        let result = tokio::select! {
            _ = stop.cancelled() => return None,
            r = volumes::prepare(&settings.client, pod, pod_dir) => r,
        };
        match result {
            Ok(v) => return Some(v),
            Err(e) => {
                tracing::info!(pod = %pod.name_any(), error = %e, "volumes not ready");
                state.send_modify(|s| {
                    for i in 0..s.containers.len() {
                        s.update(i, |c| {
                            c.waiting = Some(("ContainerCreating".into(), e.to_string()))
                        });
                    }
                });
            }
        }
        tokio::select! {
            _ = stop.cancelled() => return None,
            _ = tokio::time::sleep(delay) => {}
        }
        delay = (delay * 2).min(settings.backoff_cap);
    }
}

/// Patches the pod's status whenever the state changes (and retries failures on the next change
/// or after a second).
async fn report(
    client: kube::Client,
    ns: String,
    name: String,
    mut updates: watch::Receiver<PodState>,
) {
    let api: Api<Pod> = Api::namespaced(client, &ns);
    loop {
        let status = updates.borrow_and_update().status();
        let patch = json!({ "status": status });
        let failed = api
            .patch_status(&name, &PatchParams::default(), &Patch::Merge(&patch))
            .await
            .is_err();
        let wait = async {
            if failed {
                tokio::time::sleep(Duration::from_secs(1)).await;
                Ok(())
            } else {
                updates.changed().await
            }
        };
        if wait.await.is_err() {
            return;
        }
    }
}

struct Supervisor {
    settings: Arc<Settings>,
    endpoints: Endpoints,
    pod: Pod,
    index: usize,
    container: Container,
    volumes: volumes::Volumes,
    /// `KUBECONFIG` and `KUBERNETES_SERVICE_*` when the container mounts the service account.
    account_env: Vec<(String, String)>,
    pod_dir: PathBuf,
    state: Arc<watch::Sender<PodState>>,
    stop: CancellationToken,
    grace: Arc<AtomicI64>,
}

impl Supervisor {
    /// Starts the container, restarts it with exponential backoff when it exits, until stopped.
    async fn run(self) {
        let mut delay = self.settings.backoff_base;
        while !self.stop.is_cancelled() {
            let started = tokio::time::Instant::now();
            match self.run_once().await {
                Ok(Some(code)) => {
                    tracing::info!(pod = %self.pod.name_any(), container = %self.container.name, code, "container exited");
                    self.set(|c| {
                        c.started_at = None;
                        c.pid = None;
                        c.ready = false;
                        c.restart_count += 1;
                        c.last_exit = Some((code, Timestamp::now()));
                        c.waiting =
                            Some(("CrashLoopBackOff".into(), format!("exited with {code}")));
                    });
                }
                Ok(None) => return,
                Err(e) => {
                    tracing::warn!(pod = %self.pod.name_any(), container = %self.container.name, error = %e, "container cannot start");
                    self.set(|c| {
                        c.started_at = None;
                        c.ready = false;
                        c.waiting = Some(("CreateContainerError".into(), e.to_string()));
                    });
                }
            }
            // A container that ran a while starts its backoff afresh.
            if started.elapsed() > self.settings.backoff_cap * 2 {
                delay = self.settings.backoff_base;
            }
            tokio::select! {
                _ = self.stop.cancelled() => return,
                _ = tokio::time::sleep(delay) => {}
            }
            delay = (delay * 2).min(self.settings.backoff_cap);
        }
    }

    fn set(&self, f: impl FnOnce(&mut ContainerState)) {
        let i = self.index;
        self.state.send_modify(|s| s.update(i, f));
        let ready = self.state.borrow().ready();
        self.endpoints.update(
            &self.pod.namespace().unwrap_or_default(),
            &self.pod.name_any(),
            |e| e.ready = ready,
        );
    }

    /// One run: `Ok(Some(code))` when the process exited, `Ok(None)` when stopped.
    async fn run_once(&self) -> Result<Option<i32>, AgentError> {
        let ports = free_ports(&self.container)?;
        let rewrites = Rewrites::new(
            &self.container,
            &self.volumes,
            ports.iter().map(|(c, _, l)| (*c, *l)).collect(),
            &self
                .pod_dir
                .join("volume-subpaths")
                .join(&self.container.name),
        )?;
        let env =
            env::resolve(&self.settings.client, &self.pod, &self.container, &rewrites).await?;
        let (program, mut args) = match self.container.command.as_deref() {
            Some([first, rest @ ..]) => (
                self.settings
                    .images
                    .command(first)
                    .ok_or_else(|| AgentError::NoProgram(first.clone()))?,
                rest.to_vec(),
            ),
            _ => {
                let image = self.container.image.clone().unwrap_or_default();
                (
                    self.settings
                        .images
                        .program(&image)
                        .ok_or(AgentError::NoProgram(image))?,
                    Vec::new(),
                )
            }
        };
        args.extend(self.container.args.iter().flatten().cloned());
        let args: Vec<String> = args.iter().map(|a| rewrites.apply(a)).collect();
        let log_path = self.pod_dir.join(format!("{}.log", self.container.name));
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&log_path)
            .map_err(io(&log_path))?;
        let log2 = log.try_clone().map_err(io(&log_path))?;
        let mut cmd = tokio::process::Command::new(&program);
        cmd.args(&args)
            .env_clear()
            .envs(
                ["PATH", "LANG", "RUST_LOG", "RUST_BACKTRACE"]
                    .into_iter()
                    .filter_map(|k| std::env::var(k).ok().map(|v| (k, v))),
            )
            .env("HOSTNAME", self.pod.name_any())
            .envs(self.account_env.iter().cloned())
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::from(log))
            .stderr(Stdio::from(log2))
            .kill_on_drop(true);
        if let Some(dir) = &self.container.working_dir {
            cmd.current_dir(rewrites.apply(dir));
        }
        let mut child = cmd.spawn().map_err(|source| AgentError::Spawn {
            program: program.clone(),
            source,
        })?;
        self.endpoints.update(
            &self.pod.namespace().unwrap_or_default(),
            &self.pod.name_any(),
            |e| {
                e.ports
                    .retain(|(c, _, _)| !ports.iter().any(|(p, _, _)| p == c));
                e.ports.extend(ports.iter().cloned());
            },
        );
        let pid = child.id();
        self.set(|c| {
            c.started_at = Some(Timestamp::now());
            c.pid = pid;
            c.waiting = None;
            c.ready = self.container.readiness_probe.is_none();
        });
        let local: Vec<(i32, u16)> = ports.iter().map(|(c, _, l)| (*c, *l)).collect();
        tokio::select! {
            status = child.wait() => {
                let code = status.map(|s| s.code().unwrap_or(-1)).unwrap_or(-1);
                Ok(Some(code))
            }
            () = self.probe_loop(&local) => Ok(None),
            _ = self.stop.cancelled() => {
                self.terminate(&mut child).await;
                Ok(None)
            }
        }
    }

    /// Runs the readiness probe; never returns.
    async fn probe_loop(&self, ports: &[(i32, u16)]) {
        let Some(probe) = self.container.readiness_probe.clone() else {
            return std::future::pending().await;
        };
        let secs = |v: Option<i32>, default: i32| {
            Duration::from_secs(u64::from(v.unwrap_or(default).max(0).unsigned_abs()))
        };
        let initial = secs(probe.initial_delay_seconds, 0).min(self.settings.max_probe_period);
        let period = secs(probe.period_seconds, 10)
            .min(self.settings.max_probe_period)
            .max(Duration::from_millis(100));
        let failure_threshold = probe.failure_threshold.unwrap_or(3).max(1);
        let mut failures = 0;
        tokio::time::sleep(initial).await;
        loop {
            let ok = probe::check(&probe, &self.container, ports).await;
            let ready = self
                .state
                .borrow()
                .containers
                .get(self.index)
                .is_some_and(|c| c.ready);
            if ok {
                failures = 0;
                if !ready {
                    self.set(|c| c.ready = true);
                }
            } else {
                failures += 1;
                if ready && failures >= failure_threshold {
                    self.set(|c| c.ready = false);
                }
            }
            tokio::time::sleep(period).await;
        }
    }

    /// SIGTERM, then SIGKILL when the grace period passes.
    async fn terminate(&self, child: &mut tokio::process::Child) {
        let grace = Duration::from_secs(self.grace.load(Ordering::SeqCst).unsigned_abs());
        let pid = child
            .id()
            .and_then(|p| i32::try_from(p).ok())
            .and_then(rustix::process::Pid::from_raw);
        if let (Some(pid), false) = (pid, grace.is_zero()) {
            if rustix::process::kill_process(pid, rustix::process::Signal::TERM).is_ok()
                && tokio::time::timeout(grace, child.wait()).await.is_ok()
            {
                return;
            }
        }
        let _ = child.kill().await;
    }
}

/// A free loopback port for each container port: (container port, name, loopback port).
fn free_ports(container: &Container) -> Result<Vec<(i32, Option<String>, u16)>, AgentError> {
    let mut out = Vec::new();
    let mut held = Vec::new();
    for p in container.ports.iter().flatten() {
        // Held until all are chosen so one container never gets the same port twice.
        let listener = std::net::TcpListener::bind(("127.0.0.1", 0)).map_err(io("127.0.0.1:0"))?;
        let port = listener.local_addr().map_err(io("127.0.0.1:0"))?.port();
        held.push(listener);
        out.push((p.container_port, p.name.clone(), port));
    }
    Ok(out)
}
