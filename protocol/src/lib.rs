//! The atProtocol engine shared by every atfleet binary.
//!
//! The grammar modules are sans-IO: they turn strings into typed values and back and never
//! touch a socket.
pub mod atsign;
pub mod codec;
pub mod command;
pub mod error_code;
pub mod key;
pub mod metadata;
pub mod notification;
pub mod response;
pub mod root;
pub mod time;

pub use atsign::{AtSign, AtSignError};
pub use codec::{Line, LineCodec};
pub use command::{Command, ParseError};
pub use error_code::ErrorCode;
pub use key::{AtKey, KeyError, KeyKind, ScanVisibility};
pub use metadata::{Metadata, MetadataError};
pub use notification::NotificationJson;
pub use response::{ErrorStyle, Prompt, Reply, Response};
pub use root::{RootReply, RootRequest};

pub mod client;
pub mod crypto;
