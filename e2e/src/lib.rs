pub mod bench;
pub mod kubesim;
pub mod local;
