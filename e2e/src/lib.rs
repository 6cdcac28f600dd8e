pub mod bench;
pub mod kubelet;
pub mod kubesim;
pub mod local;
