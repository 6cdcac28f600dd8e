//! Test harness pieces shared by the workspace's integration tests (a dev-dependency only).
//!
//! Everything here panics with a message on failure: these helpers run inside tests, where a
//! panic is the report.

pub mod bins;
pub mod http;
pub mod net;
pub mod pki;
pub mod postgres;
pub mod process;
pub mod python;
pub mod wait;

/// How long a process of the workspace may take to start on a loaded 2-core machine.
pub const STARTUP: std::time::Duration = std::time::Duration::from_secs(90);
