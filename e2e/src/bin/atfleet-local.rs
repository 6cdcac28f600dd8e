//! `atfleet-local up`: a whole atfleet on this machine (PostgreSQL, the upstream control plane,
//! the node agent, the atDirectory, the operator), then the demo story, step by step.

use std::path::{Path, PathBuf};
use std::process::{Output, Stdio};
use std::time::{Duration, Instant};

use anyhow::{bail, Context};
use atfleet_e2e::local::{bin_dir_of_current_exe, LocalCluster, Options, CLASS, NAMESPACE};
use clap::{Parser, Subcommand};
use tokio::io::AsyncBufReadExt;

#[derive(Parser)]
#[command(
    name = "atfleet-local",
    version,
    about = "Run atfleet on this machine, no container engine needed"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Start the local cluster and run the demo story (exit 0 when every step succeeded).
    Up {
        /// Keep the cluster running afterwards (until Ctrl-C) and print how to use it.
        #[arg(long)]
        keep: bool,
        /// Skip the demo story (implies --keep).
        #[arg(long)]
        no_demo: bool,
        /// State directory (default: a new temporary directory, removed after a demo that
        /// succeeded without --keep, kept otherwise).
        #[arg(long, env = "ATFLEET_LOCAL_STATE_DIR")]
        state_dir: Option<PathBuf>,
        /// Where the atfleet binaries are (default: next to this one).
        #[arg(long, env = "ATFLEET_LOCAL_BIN_DIR")]
        bin_dir: Option<PathBuf>,
        /// Use a new database in this PostgreSQL server instead of starting one.
        #[arg(long, env = "ATFLEET_LOCAL_DATABASE_URL")]
        database_url: Option<String>,
        /// Where etcd, kube-apiserver, kube-controller-manager, kube-scheduler and kubectl are
        /// (default: what scripts/controlplane-build prints, building them once).
        #[arg(long, env = "ATFLEET_CONTROLPLANE_BIN")]
        controlplane_bin: Option<PathBuf>,
    },
}

#[tokio::main]
async fn main() {
    // One line per error, causes included (no backtrace even with RUST_BACKTRACE set).
    if let Err(e) = run().await {
        eprintln!("atfleet-local: {e:#}");
        std::process::exit(1);
    }
}

async fn run() -> anyhow::Result<()> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                // The client logs each refused readiness poll while the apiserver starts.
                .unwrap_or_else(|_| {
                    tracing_subscriber::EnvFilter::new("warn,kube_client::client::builder=off")
                }),
        )
        .with_writer(std::io::stderr)
        .init();
    let Command::Up {
        keep,
        no_demo,
        state_dir,
        bin_dir,
        database_url,
        controlplane_bin,
    } = Cli::parse().command;
    let keep = keep || no_demo;
    let (state, temp) = match state_dir {
        Some(d) => (d, None),
        None => {
            let t = tempfile::Builder::new()
                .prefix("atfleet-local.")
                .tempdir()
                .context("creating the state directory")?;
            let path = t.path().to_path_buf();
            (path, (!keep).then_some(t))
        }
    };
    let bin_dir = match bin_dir {
        Some(d) => d,
        None => bin_dir_of_current_exe()?,
    };
    let started = Instant::now();
    step(
        "starting PostgreSQL, the control plane (etcd, kube-apiserver, kube-controller-manager, \
         kube-scheduler), the node agent, the atDirectory and the operator",
    );
    let mut opts = Options::new(&state, &bin_dir);
    opts.database_url = database_url;
    opts.controlplane_bin = controlplane_bin;
    // Interrupted while starting: dropping the half-built cluster kills what it started.
    let cluster = tokio::select! {
        c = LocalCluster::up(opts) => c,
        () = interrupted() => Err(atfleet_e2e::local::LocalError::Timeout("interrupted".into())),
    };
    let cluster = match cluster {
        Ok(c) => c,
        Err(e) => {
            // The logs of what did start are the way to find out why.
            if let Some(t) = temp {
                let _ = t.keep();
            }
            bail!(
                "starting the local cluster: {e}\n(logs in {0}/logs and {0}/cluster/logs)",
                state.display()
            );
        }
    };
    println!(
        "    up in {:.1}s; state in {}",
        started.elapsed().as_secs_f64(),
        state.display()
    );

    let result = if no_demo {
        Ok(())
    } else {
        let mut story = Story::new(&cluster);
        tokio::select! {
            r = story.run() => r,
            () = interrupted() => Err(anyhow::anyhow!("interrupted")),
        }
    };
    match &result {
        Ok(()) if !no_demo => println!(
            "\ndemo finished in {:.0}s: every step succeeded",
            started.elapsed().as_secs_f64()
        ),
        Ok(()) => {}
        Err(e) => println!(
            "\ndemo FAILED: {e:#}\n(logs: {0}/logs (atdirectory, operator, pods/ for the atServers) and {0}/cluster/logs (etcd, kube-*))",
            state.display()
        ),
    }
    if keep {
        usage(&cluster);
        interrupted().await;
    }
    step("shutting down");
    let t = Instant::now();
    let stopped = cluster.shutdown().await;
    for s in &stopped {
        println!("    stopped {s}");
    }
    println!("    in {:.1}s", t.elapsed().as_secs_f64());
    // A failed demo keeps its state directory for the logs it pointed to.
    let temp = match temp {
        Some(t) if result.is_err() => {
            let _ = t.keep();
            None
        }
        other => other,
    };
    match temp {
        Some(t) => {
            let dir = t.path().display().to_string();
            match t.close() {
                Ok(()) => println!("    removed the state directory {dir}"),
                Err(e) => println!("    could not remove the state directory {dir}: {e}"),
            }
        }
        None => println!(
            "    left on disk: {0} (logs in {0}/logs: atdirectory.log, atfleet-operator.log, \
             pods/<namespace>/<pod>-<uid>/<container>.log; control plane logs in {0}/cluster/logs; \
             keys in {0}/keys; volumes in {0}/node/volumes; PostgreSQL in {0}/postgres)",
            state.display()
        ),
    }
    if result.is_err() {
        std::process::exit(1);
    }
    Ok(())
}

/// Ctrl-C or SIGTERM: the cluster is then shut down properly (no orphaned servers).
async fn interrupted() {
    let term = async {
        match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::terminate()) {
            Ok(mut s) => {
                s.recv().await;
            }
            Err(_) => std::future::pending().await,
        }
    };
    tokio::select! {
        _ = tokio::signal::ctrl_c() => {}
        () = term => {}
    }
}

fn step(what: &str) {
    println!("\n==> {what}");
}

fn usage(c: &LocalCluster) {
    let env = c
        .env()
        .into_iter()
        .map(|(k, v)| format!("export {k}={v}"))
        .collect::<Vec<_>>()
        .join("\n    ");
    let path = match c.kubectl() {
        Some(k) => format!(
            "{}:{}",
            c.bin_dir.display(),
            k.parent().unwrap_or(Path::new(".")).display()
        ),
        None => c.bin_dir.display().to_string(),
    };
    println!(
        "\nThe cluster keeps running until Ctrl-C. In another shell:\n    {env}\n    export ATCTL_KEYS_DIR={keys}\n    PATH={path}:$PATH\n    kubectl get atsigns -A\n    kubectl apply --server-side -f - <<<'{{\"apiVersion\":\"atfleet.dev/v1alpha1\",\"kind\":\"Atsign\",\"metadata\":{{\"name\":\"carol\",\"namespace\":\"{NAMESPACE}\"}},\"spec\":{{\"atSign\":\"@carol\",\"className\":\"{CLASS}\"}}}}'\n    kubectl wait --for=condition=Ready atsign/carol -n {NAMESPACE}\n    atctl onboard @carol --from-secret {NAMESPACE}/carol-cram\n    kubectl get events -n {NAMESPACE}\n    kubectl logs -n {NAMESPACE} carol-0\nLogs: {logs}/logs (atdirectory, operator; pods/ for the atServers, kept after their pods go) and {logs}/cluster/logs (etcd, kube-apiserver, kube-controller-manager, kube-scheduler).",
        keys = c.state_dir.join("keys").display(),
        logs = c.state_dir.display(),
    );
}

struct Story<'a> {
    cluster: &'a LocalCluster,
    env: Vec<(&'static str, String)>,
    atctl: PathBuf,
    keys: PathBuf,
}

impl<'a> Story<'a> {
    fn new(cluster: &'a LocalCluster) -> Self {
        let mut env = cluster.env();
        let keys = cluster.state_dir.join("keys");
        env.push(("ATCTL_KEYS_DIR", keys.display().to_string()));
        let atctl = cluster.bin_dir.join("atctl");
        Self {
            cluster,
            env,
            atctl,
            keys,
        }
    }

    async fn run(&mut self) -> anyhow::Result<()> {
        step("apply two Atsigns (kubectl apply --server-side)");
        let manifests = self.cluster.state_dir.join("atsigns.yaml");
        let yaml: String = ["alice", "bob"]
            .iter()
            .map(|n| format!("apiVersion: atfleet.dev/v1alpha1\nkind: Atsign\nmetadata:\n  name: {n}\n  namespace: {NAMESPACE}\nspec:\n  atSign: \"@{n}\"\n  className: {CLASS}\n---\n"))
            .collect();
        std::fs::write(&manifests, &yaml).with_context(|| manifests.display().to_string())?;
        print_indented(&yaml);
        self.kubectl(&[
            "apply",
            "--server-side",
            "-f",
            &manifests.display().to_string(),
        ])
        .await?;

        step("wait until both are Ready (kubectl wait)");
        let t = Instant::now();
        self.kubectl(&[
            "wait",
            "--for=condition=Ready",
            "atsign/alice",
            "atsign/bob",
            "-n",
            NAMESPACE,
            "--timeout=240s",
        ])
        .await?;
        println!("    Ready after {:.1}s", t.elapsed().as_secs_f64());
        self.kubectl(&["get", "atsigns,statefulsets,pods,services", "-n", NAMESPACE])
            .await?;
        self.atctl(&["lookup", "@alice"]).await?;

        step("onboard both with atctl (CRAM secret read from the operator's Secret)");
        std::fs::create_dir_all(&self.keys)?;
        for n in ["alice", "bob"] {
            self.atctl(&[
                "onboard",
                &format!("@{n}"),
                "--from-secret",
                &format!("{NAMESPACE}/{n}-cram"),
            ])
            .await?;
        }

        step("@alice stores a value and shares it with @bob");
        self.atctl(&["-a", "@alice", "put", "phone", "-n", "demo", "+1 555 0100"])
            .await?;
        self.atctl(&["-a", "@alice", "get", "phone.demo@alice"])
            .await?;
        self.atctl(&["-a", "@alice", "share", "phone.demo", "--with", "@bob"])
            .await?;
        self.atctl(&["-a", "@alice", "get", "@bob:phone.demo@alice"])
            .await?;

        step("@bob reads what @alice shared (through @bob's server: server-to-server)");
        let out = self
            .atctl(&["-a", "@bob", "get", "@bob:phone.demo@alice"])
            .await?;
        let value = String::from_utf8_lossy(&out.stdout);
        if value.trim() != "+1 555 0100" {
            bail!("@bob read {value:?}, not what @alice shared");
        }

        step("@bob's monitor receives a notification from @alice");
        self.notification().await?;

        step("delete @alice; the directory forgets her");
        self.kubectl(&[
            "delete",
            "atsign",
            "alice",
            "-n",
            NAMESPACE,
            "--timeout=120s",
        ])
        .await?;
        let out = self.atctl_raw(&["lookup", "@alice"]).await?;
        if out.status.code() != Some(4) {
            bail!(
                "expected `atctl lookup @alice` to answer not found (exit 4), got {}",
                out.status
            );
        }
        println!("    @alice is unknown to the directory (exit 4), as expected");
        self.atctl(&["lookup", "@bob"]).await?;
        Ok(())
    }

    async fn notification(&mut self) -> anyhow::Result<()> {
        let mut monitor = tokio::process::Command::new(&self.atctl)
            .args(["-a", "@bob", "monitor"])
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting atctl monitor")?;
        println!("    $ atctl -a @bob monitor &");
        let (tx, mut rx) = tokio::sync::mpsc::unbounded_channel();
        // Notifications arrive on stdout; "monitoring @bob" (connected) on stderr.
        let stdout = monitor.stdout.take().context("monitor stdout")?;
        let stderr = monitor.stderr.take().context("monitor stderr")?;
        forward_lines(stdout, tx.clone());
        forward_lines(stderr, tx);
        wait_line(&mut rx, "monitoring", Duration::from_secs(30))
            .await
            .context("atctl monitor did not start")?;
        // A self-notification shows the monitor is live before the cross-server one is tried.
        self.atctl(&[
            "-a",
            "@bob",
            "notify",
            "@bob:ping.demo@bob",
            "monitor is live",
        ])
        .await?;
        wait_line(&mut rx, "ping.demo", Duration::from_secs(30))
            .await
            .context("@bob's monitor did not show @bob's own notification")?;
        self.atctl(&[
            "-a",
            "@alice",
            "notify",
            "@bob:greeting.demo@alice",
            "hello bob",
        ])
        .await?;
        wait_line(&mut rx, "greeting.demo", Duration::from_secs(30))
            .await
            .context(
                "@bob's monitor did not receive @alice's notification (server-to-server delivery)",
            )?;
        let _ = monitor.kill().await;
        Ok(())
    }

    async fn kubectl(&self, args: &[&str]) -> anyhow::Result<Output> {
        // `KUBECTL` names another kubectl; else the one built with the control plane, else PATH's.
        let program = std::env::var_os("KUBECTL")
            .filter(|k| !k.is_empty())
            .map(PathBuf::from)
            .or_else(|| self.cluster.kubectl())
            .unwrap_or_else(|| PathBuf::from("kubectl"));
        let out = self.command("kubectl", &program, args).await?;
        ensure_ok("kubectl", &out)?;
        Ok(out)
    }

    async fn atctl(&self, args: &[&str]) -> anyhow::Result<Output> {
        let out = self.atctl_raw(args).await?;
        ensure_ok("atctl", &out)?;
        Ok(out)
    }

    async fn atctl_raw(&self, args: &[&str]) -> anyhow::Result<Output> {
        self.command("atctl", &self.atctl, args).await
    }

    async fn command(&self, name: &str, program: &Path, args: &[&str]) -> anyhow::Result<Output> {
        println!(
            "    $ {name} {}",
            args.iter().map(|a| quote(a)).collect::<Vec<_>>().join(" ")
        );
        let out = tokio::process::Command::new(program)
            .args(args)
            .envs(self.env.iter().map(|(k, v)| (*k, v)))
            .stdin(Stdio::null())
            .output()
            .await
            .with_context(|| format!("running {name}"))?;
        print_indented(&String::from_utf8_lossy(&out.stdout));
        print_indented(&String::from_utf8_lossy(&out.stderr));
        Ok(out)
    }
}

fn forward_lines(
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
    within: Duration,
) -> anyhow::Result<()> {
    let found = tokio::time::timeout(within, async {
        while let Some(line) = rx.recv().await {
            println!("    [monitor] {line}");
            if line.contains(needle) {
                return true;
            }
        }
        false
    })
    .await;
    match found {
        Ok(true) => Ok(()),
        _ => bail!("no {needle} within {within:?}"),
    }
}

fn ensure_ok(name: &str, out: &Output) -> anyhow::Result<()> {
    if out.status.success() {
        Ok(())
    } else {
        bail!("{name} failed ({})", out.status)
    }
}

fn quote(a: &str) -> String {
    if a.chars()
        .all(|c| c.is_ascii_alphanumeric() || "@:/.,=_-".contains(c))
    {
        a.to_owned()
    } else {
        format!("'{a}'")
    }
}

fn print_indented(text: &str) {
    for line in text.lines() {
        println!("      {line}");
    }
}
