//! Every verb of §3: [`Command::parse`] (with the §1.3 normalisation) and `Display` (the
//! canonical wire form, so `Command::parse(&c.to_string()) == Ok(c)`).
//!
//! Each grammar is a small hand-written scanner in the file of its verb family. Optional
//! items are accepted in any order where clients disagree on it (notify, metadata) and are
//! always formatted in the reference order. The `Command` enum and its dispatcher are in
//! `parsed.rs`; what the verb files share (`ParseError`, `Priority`, `normalise`) has a file of
//! its own, so no verb file imports this one and this one only declares and re-exports.

mod admin;
mod auth;
mod cursor;
mod data;
mod enroll;
mod error;
mod normalise;
mod notify;
mod parsed;
mod priority;
mod route;
mod stream;
mod sync;

pub use admin::{ConfigParams, InfoKind, OtpOp, OtpParams, StatsParams};
pub use auth::{ClientConfig, FromParams, PkamParams};
pub use data::{
    DeleteParams, LlookupParams, LookupOp, LookupParams, ScanParams, UpdateJsonParams,
    UpdateMetaParams, UpdateParams,
};
pub use enroll::{EnrollOp, EnrollParams, EnrollRequest, KeysOp, KeysParams, KeysVisibility};
pub use error::ParseError;
pub use normalise::normalise;
pub use notify::{
    MessageType, MonitorParams, NotifyAllParams, NotifyListParams, NotifyOp, NotifyParams, Strategy,
};
pub use parsed::Command;
pub use priority::Priority;
pub use route::{route, Verb};
pub use stream::{StreamAnnouncement, StreamOp, StreamParams};
pub use sync::{BatchParams, BatchRequest, BatchResponse, BatchResult, SyncFromParams};
