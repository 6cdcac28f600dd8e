//! The `ATxxxx` error codes of §10.

use std::fmt;
use std::str::FromStr;

/// Every error code an atServer (or atsdk/Dart client) knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum ErrorCode {
    /// AT0001 server exception.
    ServerException,
    /// AT0002 keystore error (closes the connection).
    DataStore,
    /// AT0003 invalid syntax / unknown verb.
    InvalidSyntax,
    /// AT0004 socket failure.
    Socket,
    /// AT0005 request longer than the buffer (closes the connection).
    BufferOverflow,
    /// AT0006 outbound pool full.
    OutboundConnectionLimit,
    /// AT0007 atSign not in the directory.
    SecondaryNotFound,
    /// AT0008 pol handshake failure.
    Handshake,
    /// AT0009 not allowed (namespace denial, protected key, notify as someone else).
    Unauthorized,
    /// AT0010 internal error in a handler.
    InternalServerError,
    /// AT0011 internal exception; also the code of every unmapped exception.
    InternalServerException,
    /// AT0012 inbound pool full (closes the connection, no prompt).
    InboundConnectionLimit,
    /// AT0013 blocked atSign (closes the connection).
    BlockedConnection,
    /// AT0014 client-side exception.
    ClientException,
    /// AT0015 key not found.
    KeyNotFound,
    /// AT0016 invalid key (type, length, owner).
    InvalidAtKey,
    /// AT0021 client could not connect to the atServer.
    SecondaryConnect,
    /// AT0022 illegal arguments.
    IllegalArguments,
    /// AT0023 peer did not answer in time.
    Timeout,
    /// AT0024 server paused (closes the connection).
    ServerPaused,
    /// AT0025 APKAM enrollment denied.
    ApkamAuthDenied,
    /// AT0026 APKAM enrollment pending / authentication failed.
    ApkamAuthFailed,
    /// AT0027 APKAM access revoked.
    ApkamAccessRevoked,
    /// AT0028 too many requests / enrollment expired (overloaded in the reference).
    TooManyRequests,
    /// AT0029 enrollment expired.
    InvalidEnrollment,
    /// AT0030 invalid enrollment status.
    InvalidEnrollmentStatus,
    /// AT0031 an enrollment may not revoke itself without `:force`.
    EnrollmentRevokeSelf,
    /// AT0401 authentication failed / auth required.
    Unauthenticated,
}

impl ErrorCode {
    /// Every code, in numeric order.
    pub const ALL: [ErrorCode; 28] = [
        ErrorCode::ServerException,
        ErrorCode::DataStore,
        ErrorCode::InvalidSyntax,
        ErrorCode::Socket,
        ErrorCode::BufferOverflow,
        ErrorCode::OutboundConnectionLimit,
        ErrorCode::SecondaryNotFound,
        ErrorCode::Handshake,
        ErrorCode::Unauthorized,
        ErrorCode::InternalServerError,
        ErrorCode::InternalServerException,
        ErrorCode::InboundConnectionLimit,
        ErrorCode::BlockedConnection,
        ErrorCode::ClientException,
        ErrorCode::KeyNotFound,
        ErrorCode::InvalidAtKey,
        ErrorCode::SecondaryConnect,
        ErrorCode::IllegalArguments,
        ErrorCode::Timeout,
        ErrorCode::ServerPaused,
        ErrorCode::ApkamAuthDenied,
        ErrorCode::ApkamAuthFailed,
        ErrorCode::ApkamAccessRevoked,
        ErrorCode::TooManyRequests,
        ErrorCode::InvalidEnrollment,
        ErrorCode::InvalidEnrollmentStatus,
        ErrorCode::EnrollmentRevokeSelf,
        ErrorCode::Unauthenticated,
    ];

    /// The wire code, e.g. `"AT0015"`.
    pub fn as_str(self) -> &'static str {
        match self {
            ErrorCode::ServerException => "AT0001",
            ErrorCode::DataStore => "AT0002",
            ErrorCode::InvalidSyntax => "AT0003",
            ErrorCode::Socket => "AT0004",
            ErrorCode::BufferOverflow => "AT0005",
            ErrorCode::OutboundConnectionLimit => "AT0006",
            ErrorCode::SecondaryNotFound => "AT0007",
            ErrorCode::Handshake => "AT0008",
            ErrorCode::Unauthorized => "AT0009",
            ErrorCode::InternalServerError => "AT0010",
            ErrorCode::InternalServerException => "AT0011",
            ErrorCode::InboundConnectionLimit => "AT0012",
            ErrorCode::BlockedConnection => "AT0013",
            ErrorCode::ClientException => "AT0014",
            ErrorCode::KeyNotFound => "AT0015",
            ErrorCode::InvalidAtKey => "AT0016",
            ErrorCode::SecondaryConnect => "AT0021",
            ErrorCode::IllegalArguments => "AT0022",
            ErrorCode::Timeout => "AT0023",
            ErrorCode::ServerPaused => "AT0024",
            ErrorCode::ApkamAuthDenied => "AT0025",
            ErrorCode::ApkamAuthFailed => "AT0026",
            ErrorCode::ApkamAccessRevoked => "AT0027",
            ErrorCode::TooManyRequests => "AT0028",
            ErrorCode::InvalidEnrollment => "AT0029",
            ErrorCode::InvalidEnrollmentStatus => "AT0030",
            ErrorCode::EnrollmentRevokeSelf => "AT0031",
            ErrorCode::Unauthenticated => "AT0401",
        }
    }

    /// Same as [`ErrorCode::as_str`].
    pub fn code(self) -> &'static str {
        self.as_str()
    }

    /// The standard description the reference prints after the code.
    pub fn description(self) -> &'static str {
        match self {
            ErrorCode::ServerException => "Server exception",
            ErrorCode::DataStore => "DataStore exception",
            ErrorCode::InvalidSyntax => "Invalid syntax",
            ErrorCode::Socket => "Socket error",
            ErrorCode::BufferOverflow => "Buffer limit exceeded",
            ErrorCode::OutboundConnectionLimit => "Outbound connection limit exceeded",
            ErrorCode::SecondaryNotFound => "Secondary server not found",
            ErrorCode::Handshake => "Handshake failure",
            ErrorCode::Unauthorized => "UnAuthorized client in request",
            ErrorCode::InternalServerError => "Internal server error",
            ErrorCode::InternalServerException => "Internal server exception",
            ErrorCode::InboundConnectionLimit => "Inbound connection limit exceeded",
            ErrorCode::BlockedConnection => "Connection Exception",
            ErrorCode::ClientException => "Unknown AtClient exception",
            ErrorCode::KeyNotFound => "key not found",
            ErrorCode::InvalidAtKey => "Invalid AtKey",
            ErrorCode::SecondaryConnect => "Unable to connect to secondary",
            ErrorCode::IllegalArguments => "Illegal arguments",
            ErrorCode::Timeout => "Timeout waiting for response",
            ErrorCode::ServerPaused => "Server is paused",
            ErrorCode::ApkamAuthDenied => "Apkam authentication denied",
            ErrorCode::ApkamAuthFailed => "Apkam authentication failed",
            ErrorCode::ApkamAccessRevoked => "Apkam access revoked",
            ErrorCode::TooManyRequests => "Too many requests",
            ErrorCode::InvalidEnrollment => "Enrollment expired",
            ErrorCode::InvalidEnrollmentStatus => "Invalid enrollment status",
            ErrorCode::EnrollmentRevokeSelf => "Cannot revoke self enrollment",
            ErrorCode::Unauthenticated => "Client authentication failed",
        }
    }

    /// Whether the reference server closes the connection after sending this error (§1.4).
    ///
    /// AT0011 answers `true` because that is what happens for unmapped exceptions, its usual
    /// source; callers raising it for enrollment/lookup/connect failures keep the connection.
    pub fn closes_connection(self) -> bool {
        matches!(
            self,
            ErrorCode::DataStore
                | ErrorCode::BufferOverflow
                | ErrorCode::InternalServerException
                | ErrorCode::InboundConnectionLimit
                | ErrorCode::BlockedConnection
                | ErrorCode::ServerPaused
        )
    }
}

impl fmt::Display for ErrorCode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// The text is not a known `ATxxxx` code.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown error code {0:?}")]
pub struct UnknownErrorCode(pub String);

impl FromStr for ErrorCode {
    type Err = UnknownErrorCode;
    fn from_str(s: &str) -> Result<Self, Self::Err> {
        ErrorCode::ALL
            .into_iter()
            .find(|c| c.as_str().eq_ignore_ascii_case(s))
            .ok_or_else(|| UnknownErrorCode(s.to_string()))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn codes_round_trip_and_are_unique() {
        let mut seen = std::collections::HashSet::new();
        for c in ErrorCode::ALL {
            assert!(seen.insert(c.as_str()));
            assert_eq!(c.as_str().parse::<ErrorCode>(), Ok(c));
            assert_eq!(c.code(), c.to_string());
            assert!(!c.description().is_empty());
        }
        assert!("AT9999".parse::<ErrorCode>().is_err());
    }

    #[test]
    fn closing_codes() {
        let closing: Vec<_> = ErrorCode::ALL
            .into_iter()
            .filter(|c| c.closes_connection())
            .map(ErrorCode::as_str)
            .collect();
        assert_eq!(
            closing,
            ["AT0002", "AT0005", "AT0011", "AT0012", "AT0013", "AT0024"]
        );
        assert!(!ErrorCode::InvalidSyntax.closes_connection());
        assert!(!ErrorCode::Unauthenticated.closes_connection());
    }
}
