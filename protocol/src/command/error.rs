//! What a command line that does not parse is reported as.

use crate::atsign::AtSignError;
use crate::error_code::ErrorCode;
use crate::key::KeyError;
use crate::metadata::MetadataError;

/// A command that is not a verb or breaks its verb's grammar; always AT0003.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum ParseError {
    /// No verb matches (the reference says "invalid command").
    #[error("invalid command")]
    UnknownVerb,
    /// The verb matched but its grammar did not.
    #[error("Invalid syntax: {0}")]
    Syntax(String),
}

impl ParseError {
    pub(crate) fn syntax(msg: impl Into<String>) -> ParseError {
        ParseError::Syntax(msg.into())
    }

    /// Always [`ErrorCode::InvalidSyntax`] (AT0003).
    pub fn error_code(&self) -> ErrorCode {
        ErrorCode::InvalidSyntax
    }
}

impl From<MetadataError> for ParseError {
    fn from(e: MetadataError) -> Self {
        ParseError::Syntax(e.to_string())
    }
}

impl From<KeyError> for ParseError {
    fn from(e: KeyError) -> Self {
        ParseError::Syntax(e.to_string())
    }
}

impl From<AtSignError> for ParseError {
    fn from(e: AtSignError) -> Self {
        ParseError::Syntax(e.to_string())
    }
}
