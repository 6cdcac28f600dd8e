use thiserror::Error;

use crate::error_code::ErrorCode;

/// Failures of the async client. Timeouts and I/O errors name the step (never a secret: commands are
/// identified by their verb only).
#[derive(Debug, Error)]
pub enum ClientError {
    #[error("TLS configuration: {0}")]
    TlsConfig(String),
    #[error("reading {path}: {source}")]
    File {
        path: String,
        source: std::io::Error,
    },
    #[error("invalid server name `{0}` for TLS")]
    InvalidServerName(String),
    #[error("timed out after {after:?} while {step}")]
    Timeout {
        step: String,
        after: std::time::Duration,
    },
    #[error("I/O error while {step}: {source}")]
    Io {
        step: String,
        source: std::io::Error,
    },
    #[error("connection closed by server while {step}")]
    Closed { step: String },
    #[error("response exceeds {limit} bytes")]
    FrameTooLarge { limit: usize },
    #[error("unexpected reply while {step}: {reply}")]
    UnexpectedReply { step: String, reply: String },
    #[error("server error {}: {message}", code.map_or("(unknown code)", |c| c.as_str()))]
    Server {
        code: Option<ErrorCode>,
        message: String,
    },
    #[error("command must be one line")]
    MultiLineCommand,
    #[error(transparent)]
    Crypto(#[from] crate::crypto::CryptoError),
}

impl ClientError {
    pub(crate) fn io(step: impl Into<String>, source: std::io::Error) -> Self {
        Self::Io {
            step: step.into(),
            source,
        }
    }

    /// The atProtocol error code, when the server answered with an error.
    pub fn server_code(&self) -> Option<ErrorCode> {
        match self {
            Self::Server { code, .. } => *code,
            _ => None,
        }
    }
}
