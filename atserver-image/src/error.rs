//! Protocol errors (atprotocol.md §10) as this server raises them, rendered through
//! `at_protocol::Response` in the shapes of §1.4.

use std::fmt;

use at_protocol::{ErrorCode, ErrorStyle, Response};

/// Which of the reference server's error shapes to emit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ErrorShape {
    /// `error:CODE-description` (or the JSON form for clients that declared a version > 3.0.37).
    Exception,
    /// `error:CODE:message`, used by handler-level errors such as the APKAM states.
    Handler,
}

/// An error answered to the client.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AtError {
    pub code: ErrorCode,
    pub message: String,
    pub shape: ErrorShape,
    /// Close the connection after answering even if the code normally keeps it open.
    pub close: bool,
}

impl AtError {
    pub fn new(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            shape: ErrorShape::Exception,
            close: false,
        }
    }
    pub fn handler(code: ErrorCode, message: impl Into<String>) -> Self {
        Self {
            code,
            message: message.into(),
            shape: ErrorShape::Handler,
            close: false,
        }
    }
    pub fn closing(mut self) -> Self {
        self.close = true;
        self
    }
    pub fn syntax(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidSyntax, message)
    }
    pub fn not_found(key: &str) -> Self {
        Self::new(
            ErrorCode::KeyNotFound,
            format!("{key} does not exist in keystore"),
        )
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthenticated, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::Unauthorized, message)
    }
    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InvalidAtKey, message)
    }
    /// AT0011 for handler failures that keep the connection (enrollment, lookup, …).
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::InternalServerException, message)
    }

    /// Errors after which the connection is closed. Unlike the reference server, AT0011 only
    /// closes when raised with [`AtError::closing`]: this server has no unmapped exceptions.
    pub fn should_close(&self) -> bool {
        self.close
            || matches!(
                self.code,
                ErrorCode::DataStore
                    | ErrorCode::BufferOverflow
                    | ErrorCode::InboundConnectionLimit
                    | ErrorCode::BlockedConnection
            )
    }

    /// The response in the shape the reference server uses for this connection: on owner
    /// connections `<description> : <message>`, otherwise `Exception: <message>`; JSON for
    /// clients that declared a version above 3.0.37.
    pub fn to_response(&self, owner: bool, json: bool) -> Response {
        let described = format!("{} : {}", self.code.description(), self.message);
        let (message, style) = match self.shape {
            ErrorShape::Handler => (self.message.clone(), ErrorStyle::Colon),
            ErrorShape::Exception if json => (described, ErrorStyle::Json),
            ErrorShape::Exception if owner => (described, ErrorStyle::Dash),
            ErrorShape::Exception => (format!("Exception: {}", self.message), ErrorStyle::Dash),
        };
        Response::Error {
            code: self.code,
            message,
            style,
        }
    }
}

impl fmt::Display for AtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AtError {}

impl From<crate::store::error::StoreError> for AtError {
    fn from(e: crate::store::error::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        AtError::new(ErrorCode::DataStore, "data store failure").closing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = AtError::not_found("x@alice");
        assert_eq!(
            e.to_response(true, false).to_line(),
            "error:AT0015-key not found : x@alice does not exist in keystore\n"
        );
        assert_eq!(
            e.to_response(false, false).to_line(),
            "error:AT0015-Exception: x@alice does not exist in keystore\n"
        );
        assert!(e
            .to_response(true, true)
            .to_line()
            .starts_with("error:{\"errorCode\":\"AT0015\""));
        let h = AtError::handler(ErrorCode::ApkamAuthFailed, "enrollment_id: x is pending");
        assert_eq!(
            h.to_response(false, false).to_line(),
            "error:AT0026:enrollment_id: x is pending\n"
        );
        assert!(AtError::new(ErrorCode::BufferOverflow, "x").should_close());
        assert!(!AtError::syntax("x").should_close());
    }
}
