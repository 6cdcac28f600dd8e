pub mod bench;
pub mod local;
