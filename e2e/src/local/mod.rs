//! The local cluster: a throwaway PostgreSQL, the upstream control plane (etcd, kube-apiserver,
//! kube-controller-manager, kube-scheduler; `atfleet-cluster`), the node agent running pods as
//! processes, the atDirectory and the operator on this machine, with the CRDs and an
//! `AtServerClass` named `local` installed (NodePort exposure published as 127.0.0.1). The
//! operator authenticates as its own ServiceAccount under the RBAC the chart renders. `kubectl`
//! and `atctl` work against it through the files in its state directory.

mod ca;
mod cluster;
mod error;
pub mod identity;
mod install;
mod names;
mod net;
mod options;
mod pod_logs;
pub(crate) mod postgres;
mod state_dir;

pub use atfleet_cluster::process::Proc;
pub use cluster::LocalCluster;
pub use error::LocalError;
pub use names::{CLASS, NAMESPACE, RELEASE, SYSTEM_NAMESPACE};
pub(crate) use net::free_port;
pub use options::{bin_dir_of_current_exe, Options};
