//! Errors with a class that decides the exit code, and messages that say what to do next.

use at_protocol::client::ClientError;
use at_protocol::ErrorCode;

/// Exit codes (also listed in `atctl --help` and the README).
pub mod exit {
    pub const OK: i32 = 0;
    pub const OTHER: i32 = 1;
    pub const USAGE: i32 = 2;
    pub const AUTH: i32 = 3;
    pub const NOT_FOUND: i32 = 4;
    pub const CONNECTION: i32 = 5;
}

/// What kind of failure, which is what scripts branch on.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Class {
    Usage,
    Auth,
    NotFound,
    Connection,
    Other,
}

impl Class {
    pub fn exit_code(self) -> i32 {
        match self {
            Class::Usage => exit::USAGE,
            Class::Auth => exit::AUTH,
            Class::NotFound => exit::NOT_FOUND,
            Class::Connection => exit::CONNECTION,
            Class::Other => exit::OTHER,
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Class::Usage => "usage",
            Class::Auth => "authentication",
            Class::NotFound => "not_found",
            Class::Connection => "connection",
            Class::Other => "error",
        }
    }
}

/// One failure of an `atctl` command.
#[derive(Debug, thiserror::Error)]
#[error("{message}")]
pub struct CtlError {
    pub class: Class,
    /// The server's AT code, when the server answered with an error.
    pub code: Option<ErrorCode>,
    pub message: String,
}

pub type Result<T, E = CtlError> = std::result::Result<T, E>;

impl CtlError {
    pub fn new(class: Class, message: impl Into<String>) -> Self {
        Self {
            class,
            code: None,
            message: message.into(),
        }
    }

    pub fn usage(message: impl Into<String>) -> Self {
        Self::new(Class::Usage, message)
    }

    pub fn other(message: impl Into<String>) -> Self {
        Self::new(Class::Other, message)
    }

    pub fn not_found(message: impl Into<String>) -> Self {
        Self::new(Class::NotFound, message)
    }

    pub fn auth(message: impl Into<String>) -> Self {
        Self::new(Class::Auth, message)
    }

    /// A client failure while doing `what` (e.g. "reading phone.wavi@alice").
    pub fn client(what: &str, e: ClientError) -> Self {
        match e {
            ClientError::Server { code, message } => Self::server(what, code, &message),
            ClientError::TlsConfig(_) | ClientError::File { .. } => {
                Self::usage(format!("{what}: {e}"))
            }
            ClientError::InvalidServerName(_)
            | ClientError::Timeout { .. }
            | ClientError::Io { .. }
            | ClientError::Closed { .. } => Self::new(
                Class::Connection,
                format!(
                    "{what}: {e}; check the address, that the server is running and that \
                     --ca-bundle holds the CA that signed its certificate"
                ),
            ),
            other => Self::other(format!("{what}: {other}")),
        }
    }

    /// An error reply from a server, classified by its AT code, with advice.
    pub fn server(what: &str, code: Option<ErrorCode>, message: &str) -> Self {
        let code_text = code.map_or("AT????", |c| c.as_str());
        let (class, hint) = match code_text {
            "AT0401" => (
                Class::Auth,
                "authentication failed: check the keys file (--keys-dir) belongs to this atSign",
            ),
            "AT0025" => (Class::Auth, "this device's enrollment was denied"),
            "AT0026" => (
                Class::Auth,
                "this device's enrollment is still pending: ask a device with __manage access to run `atctl enroll approve`",
            ),
            "AT0027" => (Class::Auth, "this device's enrollment was revoked"),
            "AT0028" => (
                Class::Auth,
                "the enrollment expired or the server is throttling requests; wait and retry, or enroll again",
            ),
            "AT0015" => (Class::NotFound, "no such key"),
            "AT0009" => (
                Class::Other,
                "not authorised: this device's enrollment does not grant access to that namespace or key",
            ),
            "AT0003" => (Class::Usage, "the server rejected the command syntax"),
            "AT0016" => (Class::Usage, "invalid key for this command"),
            "AT0022" => (Class::Usage, "illegal arguments"),
            "AT0007" => (Class::NotFound, "the atSign's server could not be found"),
            _ => (Class::Other, "the server refused the request"),
        };
        Self {
            class,
            code,
            message: format!("{code_text} {what}: {hint} (server said: {message})"),
        }
    }
}

impl From<at_protocol::crypto::CryptoError> for CtlError {
    fn from(e: at_protocol::crypto::CryptoError) -> Self {
        Self::other(format!("crypto: {e}"))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn server_codes_map_to_classes() {
        let e = CtlError::server(
            "reading x@alice",
            Some(ErrorCode::KeyNotFound),
            "key not found",
        );
        assert_eq!(e.class, Class::NotFound);
        assert_eq!(e.class.exit_code(), exit::NOT_FOUND);
        assert!(
            e.message.starts_with("AT0015 reading x@alice"),
            "{}",
            e.message
        );
        let e = CtlError::server("pkam", Some(ErrorCode::Unauthenticated), "failed");
        assert_eq!(e.class.exit_code(), exit::AUTH);
        let e = CtlError::client(
            "connecting",
            ClientError::Closed {
                step: "greeting".into(),
            },
        );
        assert_eq!(e.class.exit_code(), exit::CONNECTION);
    }
}
