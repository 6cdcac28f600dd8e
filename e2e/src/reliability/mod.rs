//! The reliability suite behind `make reliability`: each section drives real processes (atServers,
//! atDirectories, PostgreSQL, the upstream control plane and the operator) through faults and counts
//! what a user would lose. `Scale::Short` is the version `make test` runs; `Scale::Full` is the
//! long run whose figures go in `target/reliability/report.{json,md}`.

mod bin_dir;
pub mod chaos;
mod context;
pub mod crash;
mod error;
pub mod hostile;
mod options;
pub mod outage;
pub mod report;
mod run;
pub mod servers;

pub use bin_dir::test_bin_dir;
pub use context::Ctx;
pub use error::ReliabilityError;
pub use options::{Options, Scale};
pub use run::run;
