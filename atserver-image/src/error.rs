//! Protocol errors (atprotocol.md §10) and the error shapes of §1.4.

use std::fmt;

/// The AT error codes this server emits.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum ErrorCode {
    AT0002,
    AT0003,
    AT0005,
    AT0007,
    AT0008,
    AT0009,
    AT0011,
    AT0012,
    AT0013,
    AT0015,
    AT0016,
    AT0022,
    AT0025,
    AT0026,
    AT0027,
    AT0028,
    AT0030,
    AT0031,
    AT0401,
}

impl ErrorCode {
    pub fn as_str(self) -> &'static str {
        match self {
            Self::AT0002 => "AT0002",
            Self::AT0003 => "AT0003",
            Self::AT0005 => "AT0005",
            Self::AT0007 => "AT0007",
            Self::AT0008 => "AT0008",
            Self::AT0009 => "AT0009",
            Self::AT0011 => "AT0011",
            Self::AT0012 => "AT0012",
            Self::AT0013 => "AT0013",
            Self::AT0015 => "AT0015",
            Self::AT0016 => "AT0016",
            Self::AT0022 => "AT0022",
            Self::AT0025 => "AT0025",
            Self::AT0026 => "AT0026",
            Self::AT0027 => "AT0027",
            Self::AT0028 => "AT0028",
            Self::AT0030 => "AT0030",
            Self::AT0031 => "AT0031",
            Self::AT0401 => "AT0401",
        }
    }

    /// The standard description the reference server prefixes to messages on owner connections.
    pub fn description(self) -> &'static str {
        match self {
            Self::AT0002 => "Data store exception",
            Self::AT0003 => "Invalid syntax",
            Self::AT0005 => "Buffer limit exceeded",
            Self::AT0007 => "Secondary server not found",
            Self::AT0008 => "Handshake failure",
            Self::AT0009 => "UnAuthorized client in request",
            Self::AT0011 => "Internal server exception",
            Self::AT0012 => "Inbound connection limit exceeded",
            Self::AT0013 => "Connection Exception",
            Self::AT0015 => "key not found",
            Self::AT0016 => "Invalid atKey",
            Self::AT0022 => "Illegal arguments",
            Self::AT0025 => "Apkam authentication denied",
            Self::AT0026 => "Apkam authentication failed",
            Self::AT0027 => "Apkam access revoked",
            Self::AT0028 => "Too many requests",
            Self::AT0030 => "Invalid enrollment status",
            Self::AT0031 => "Cannot revoke own enrollment",
            Self::AT0401 => "Client authentication failed",
        }
    }

    /// Errors after which the connection is closed (§1.4, §10).
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            Self::AT0002 | Self::AT0005 | Self::AT0012 | Self::AT0013
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

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
        Self::new(ErrorCode::AT0003, message)
    }
    pub fn not_found(key: &str) -> Self {
        Self::new(
            ErrorCode::AT0015,
            format!("{key} does not exist in keystore"),
        )
    }
    pub fn unauthenticated(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AT0401, message)
    }
    pub fn unauthorized(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AT0009, message)
    }
    pub fn invalid_key(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AT0016, message)
    }
    pub fn internal(message: impl Into<String>) -> Self {
        Self::new(ErrorCode::AT0011, message)
    }
    pub fn should_close(&self) -> bool {
        self.close || self.code.closes_connection()
    }

    /// The text after `error:`; `owner` and `json` select the variant the reference server uses.
    pub fn wire_body(&self, owner: bool, json: bool) -> String {
        match self.shape {
            ErrorShape::Handler => format!("{}:{}", self.code, self.message),
            ErrorShape::Exception if json => serde_json::json!({
                "errorCode": self.code.as_str(),
                "errorDescription": format!("{} : {}", self.code.description(), self.message),
            })
            .to_string(),
            ErrorShape::Exception if owner => {
                format!(
                    "{}-{} : {}",
                    self.code,
                    self.code.description(),
                    self.message
                )
            }
            ErrorShape::Exception => format!("{}-Exception: {}", self.code, self.message),
        }
    }
}

impl fmt::Display for AtError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}: {}", self.code, self.message)
    }
}

impl std::error::Error for AtError {}

impl From<crate::store::StoreError> for AtError {
    fn from(e: crate::store::StoreError) -> Self {
        tracing::error!(error = %e, "store failure");
        AtError::new(ErrorCode::AT0002, "data store failure").closing()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shapes() {
        let e = AtError::not_found("x@alice");
        assert_eq!(
            e.wire_body(true, false),
            "AT0015-key not found : x@alice does not exist in keystore"
        );
        assert_eq!(
            e.wire_body(false, false),
            "AT0015-Exception: x@alice does not exist in keystore"
        );
        assert!(e
            .wire_body(true, true)
            .starts_with("{\"errorCode\":\"AT0015\""));
        let h = AtError::handler(ErrorCode::AT0026, "enrollment_id: x is pending");
        assert_eq!(
            h.wire_body(false, false),
            "AT0026:enrollment_id: x is pending"
        );
    }
}
