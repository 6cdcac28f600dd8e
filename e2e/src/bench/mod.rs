//! The benchmark harness behind `make bench`: each benchmark starts the release binaries as their
//! own processes, measures a figure and its baseline in the same run, and adds a [`report::Section`].
//! `atfleet-bench` writes the report as JSON, Markdown and latency PNGs.

pub mod atserver;
mod context;
pub mod directory;
pub mod echo;
mod error;
pub mod load;
pub mod machine;
pub mod notify;
pub mod operator;
mod options;
pub mod pki;
pub mod plot;
pub mod process;
pub mod report;
mod run;
pub mod sqlite;
pub mod stats;

pub use context::Ctx;
pub use error::BenchError;
pub use options::{Mode, Options};
pub use run::run;
