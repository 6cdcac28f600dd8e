pub mod bench;
pub mod local;
pub mod reliability;
