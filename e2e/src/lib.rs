pub mod kubelet;
pub mod kubesim;
pub mod local;
