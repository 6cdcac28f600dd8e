//! The atProtocol engine shared by every atfleet binary.
//!
//! The grammar modules are sans-IO: they turn strings into typed values and back and never
//! touch a socket.
pub mod atsign;
pub mod error_code;
pub mod response;


pub use atsign::{AtSign, AtSignError};
pub use error_code::ErrorCode;
pub use response::{ErrorStyle, Prompt, Reply, Response};

pub mod client;
pub mod crypto;
