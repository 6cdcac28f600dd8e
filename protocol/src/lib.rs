//! The atProtocol engine shared by every atfleet binary.
//!
//! The grammar modules are sans-IO: they turn strings into typed values and back and never
//! touch a socket.
pub mod atsign;
pub mod command;
pub mod error_code;
pub mod key;
pub mod metadata;
pub mod response;
pub mod time;

pub use atsign::{AtSign, AtSignError};
pub use command::{Command, ParseError};
pub use error_code::ErrorCode;
pub use key::{AtKey, KeyError, KeyKind};
pub use metadata::{Metadata, MetadataError};
pub use response::{ErrorStyle, Prompt, Reply, Response};

pub mod client;
pub mod crypto;
