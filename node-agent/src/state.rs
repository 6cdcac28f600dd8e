//! What the kubelet knows about a pod's containers, and the pod status it reports from that.

use jiff::Timestamp;
use k8s_openapi::api::core::v1::Pod;
use serde_json::{json, Value};

/// The status of a simulated pod: every container running and ready since now.
pub fn simulated_status(pod: &Pod) -> Value {
    let now = Timestamp::now();
    let state = PodState {
        started: Some(now),
        containers: pod
            .spec
            .iter()
            .flat_map(|s| s.containers.iter())
            .map(|c| ContainerState {
                name: c.name.clone(),
                image: c.image.clone().unwrap_or_default(),
                started_at: Some(now),
                ready: true,
                ..ContainerState::default()
            })
            .collect(),
        ready_changed: Some(now),
    };
    state.status()
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct ContainerState {
    pub name: String,
    pub image: String,
    pub started_at: Option<Timestamp>,
    /// The running process, reported as `containerID: process://<pid>`.
    pub pid: Option<u32>,
    pub ready: bool,
    pub restart_count: i32,
    pub waiting: Option<(String, String)>,
    pub last_exit: Option<(i32, Timestamp)>,
}

#[derive(Debug, Clone, Default, PartialEq)]
pub struct PodState {
    pub started: Option<Timestamp>,
    pub containers: Vec<ContainerState>,
    /// When the Ready condition last changed.
    pub ready_changed: Option<Timestamp>,
}

impl PodState {
    pub fn ready(&self) -> bool {
        !self.containers.is_empty() && self.containers.iter().all(|c| c.ready)
    }

    /// Updates container `i` and the Ready transition time.
    pub fn update(&mut self, i: usize, f: impl FnOnce(&mut ContainerState)) {
        let before = self.ready();
        if let Some(c) = self.containers.get_mut(i) {
            f(c);
        }
        if self.ready() != before || self.ready_changed.is_none() {
            self.ready_changed = Some(Timestamp::now());
        }
    }

    /// The pod's `status`.
    pub fn status(&self) -> Value {
        let ready = self.ready();
        let running = self.containers.iter().all(|c| c.started_at.is_some());
        let changed = self
            .ready_changed
            .unwrap_or_else(Timestamp::now)
            .to_string();
        let started = self.started.unwrap_or_else(Timestamp::now).to_string();
        let flag = |b: bool| if b { "True" } else { "False" };
        let containers: Vec<Value> = self
            .containers
            .iter()
            .map(|c| {
                let state = match (&c.started_at, &c.waiting) {
                    (Some(t), _) => json!({"running": {"startedAt": t.to_string()}}),
                    (None, Some((reason, message))) => {
                        json!({"waiting": {"reason": reason, "message": message}})
                    }
                    (None, None) => json!({"waiting": {"reason": "ContainerCreating"}}),
                };
                let last = match &c.last_exit {
                    Some((code, at)) => json!({"terminated": {
                        "exitCode": code,
                        "reason": if *code == 0 { "Completed" } else { "Error" },
                        "finishedAt": at.to_string(),
                    }}),
                    None => json!({}),
                };
                let mut status = json!({
                    "name": c.name,
                    "image": c.image,
                    "imageID": "",
                    "ready": c.ready,
                    "started": c.started_at.is_some(),
                    "restartCount": c.restart_count,
                    "state": state,
                    "lastState": last,
                });
                if let (Some(pid), Some(obj)) = (c.pid, status.as_object_mut()) {
                    obj.insert("containerID".into(), json!(format!("process://{pid}")));
                }
                status
            })
            .collect();
        json!({
            "phase": if running { "Running" } else { "Pending" },
            "podIP": "127.0.0.1",
            "podIPs": [{"ip": "127.0.0.1"}],
            "hostIP": "127.0.0.1",
            "hostIPs": [{"ip": "127.0.0.1"}],
            "startTime": started,
            "conditions": [
                {"type": "PodScheduled", "status": "True", "lastTransitionTime": started},
                {"type": "Initialized", "status": "True", "lastTransitionTime": started},
                {"type": "ContainersReady", "status": flag(ready), "lastTransitionTime": changed},
                {"type": "Ready", "status": flag(ready), "lastTransitionTime": changed},
            ],
            "containerStatuses": containers,
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn readiness_and_status() {
        let mut s = PodState {
            started: Some(Timestamp::now()),
            containers: vec![ContainerState {
                name: "c".into(),
                ..ContainerState::default()
            }],
            ready_changed: None,
        };
        assert!(!s.ready());
        assert_eq!(s.status()["phase"], "Pending");
        s.update(0, |c| {
            c.started_at = Some(Timestamp::now());
            c.ready = true;
        });
        assert!(s.ready());
        let st = s.status();
        assert_eq!(st["phase"], "Running");
        assert_eq!(st["conditions"][3]["type"], "Ready");
        assert_eq!(st["conditions"][3]["status"], "True");
        assert_eq!(st["containerStatuses"][0]["ready"], true);
    }

    #[test]
    fn simulated_pods_are_ready() {
        let pod: Pod = serde_json::from_value(json!({
            "metadata": {"name": "p"},
            "spec": {"containers": [{"name": "a", "image": "x"}, {"name": "b", "image": "y"}]},
        }))
        .expect("pod");
        let st = simulated_status(&pod);
        assert_eq!(st["phase"], "Running");
        assert_eq!(st["conditions"][3]["status"], "True");
        assert_eq!(st["containerStatuses"][1]["name"], "b");
        assert_eq!(st["containerStatuses"][1]["ready"], true);
        assert_eq!(st["podIP"], "127.0.0.1");
    }
}
