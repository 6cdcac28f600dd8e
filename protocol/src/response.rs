//! Response frames: what a server writes ([`Response`]) and what a client reads ([`Reply`]).
//!
//! Every server reply and its prompt leave in ONE string (§1.2): old Dart peers and atsdk
//! mis-frame a prompt that arrives in its own TLS record.

use std::fmt::Write as _;

use crate::atsign::AtSign;
use crate::error_code::ErrorCode;

/// The prompt written after every normal response (§1.2).
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub enum Prompt {
    /// `@`
    Unauthenticated,
    /// `@alice@` after cram/pkam.
    Owner(AtSign),
    /// `@bob@` after pol (errors on such a connection still use `@`).
    Peer(AtSign),
}

impl Prompt {
    /// The prompt bytes for a normal response.
    pub fn as_wire(&self) -> String {
        match self {
            Prompt::Unauthenticated => "@".to_string(),
            Prompt::Owner(a) | Prompt::Peer(a) => format!("{a}@"),
        }
    }

    /// The prompt bytes after an error response (§1.2: pol connections fall back to `@`).
    pub fn as_error_wire(&self) -> String {
        match self {
            Prompt::Peer(_) => "@".to_string(),
            other => other.as_wire(),
        }
    }
}

/// Which of the three error shapes of §1.4 to write.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum ErrorStyle {
    /// `error:AT0015-<description>` (clients that declare no version > 3.0.37).
    #[default]
    Dash,
    /// `error:AT0026:<message>` (handler-level errors such as APKAM states).
    Colon,
    /// `error:{"errorCode":"AT0015","errorDescription":"…"}` (clients declaring version > 3.0.37).
    Json,
}

/// A server-side response.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Response {
    /// `data:<payload>`
    Data(String),
    /// `data: <payload>` (space after the colon; `stats` and `notify:all`).
    DataSpaced(String),
    /// An error in one of the three shapes.
    Error {
        code: ErrorCode,
        message: String,
        style: ErrorStyle,
    },
    /// A successful `pol`: `@bob@` with no newline and nothing else.
    PolOk(AtSign),
    /// Nothing at all (the `monitor` verb).
    None,
}

impl Response {
    /// `data:<payload>`.
    pub fn data(payload: impl Into<String>) -> Response {
        Response::Data(payload.into())
    }

    /// A dash-style error whose message is `message` verbatim.
    pub fn error(code: ErrorCode, message: impl Into<String>) -> Response {
        Response::Error {
            code,
            message: message.into(),
            style: ErrorStyle::Dash,
        }
    }

    /// The error code, if this is an error.
    pub fn error_code(&self) -> Option<ErrorCode> {
        match self {
            Response::Error { code, .. } => Some(*code),
            _ => None,
        }
    }

    /// The exact bytes to write: payload, `\n` and the prompt, in one string.
    pub fn to_wire(&self, prompt: &Prompt) -> String {
        match self {
            Response::PolOk(a) => format!("{a}@"),
            Response::None => String::new(),
            Response::Error { .. } => {
                let mut s = self.to_line();
                s.push_str(&prompt.as_error_wire());
                s
            }
            _ => {
                let mut s = self.to_line();
                s.push_str(&prompt.as_wire());
                s
            }
        }
    }

    /// The response line with its `\n` but no prompt, for the few places that must not
    /// send one (AT0012 before closing; `noop` on a monitor connection, atsdk §7).
    pub fn to_line(&self) -> String {
        let mut s = String::new();
        match self {
            Response::Data(p) => {
                s.push_str("data:");
                push_single_line(&mut s, p);
            }
            Response::DataSpaced(p) => {
                s.push_str("data: ");
                push_single_line(&mut s, p);
            }
            Response::Error {
                code,
                message,
                style,
            } => {
                s.push_str("error:");
                match style {
                    ErrorStyle::Dash => {
                        let _ = write!(s, "{code}-");
                        push_single_line(&mut s, message);
                    }
                    ErrorStyle::Colon => {
                        let _ = write!(s, "{code}:");
                        push_single_line(&mut s, message);
                    }
                    ErrorStyle::Json => {
                        let body = serde_json::json!({
                            "errorCode": code.as_str(),
                            "errorDescription": message,
                        });
                        s.push_str(&body.to_string());
                    }
                }
            }
            Response::PolOk(a) => return format!("{a}@"),
            Response::None => return String::new(),
        }
        s.push('\n');
        s
    }
}

/// Payloads cannot carry a newline: it would end the frame early. Replace with a space.
fn push_single_line(out: &mut String, text: &str) {
    out.extend(
        text.chars()
            .map(|c| if c == '\n' || c == '\r' { ' ' } else { c }),
    );
}

/// A reply frame a client could not make sense of.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("invalid response from server: {0:?}")]
pub struct ReplyError(pub String);

/// A client-side view of one response frame.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Reply {
    /// The text after `data:` (for `data: …` replies the leading space is kept).
    Data(String),
    /// An error; `code` is `None` when the server sent something that is not a known code.
    Error {
        code: Option<ErrorCode>,
        message: String,
    },
    /// The pol success reply `@bob@`.
    Pol(AtSign),
    /// A monitor line: the JSON text after `notification:`.
    Notification(String),
}

impl Reply {
    /// Parses one frame, tolerating a leading prompt left over from the previous frame and a
    /// trailing `\n<prompt>` (or `\r\n`).
    pub fn parse(frame: &str) -> Result<Reply, ReplyError> {
        let body = strip_trailing_prompt(frame);
        let body = strip_leading_prompt(body);
        if let Some(rest) = body.strip_prefix("data:") {
            return Ok(Reply::Data(rest.to_string()));
        }
        if let Some(rest) = body.strip_prefix("notification:") {
            return Ok(Reply::Notification(rest.trim_start().to_string()));
        }
        if let Some(rest) = body.strip_prefix("error:") {
            return Ok(parse_error(rest));
        }
        let trimmed = body.trim();
        if let Some(name) = trimmed
            .strip_prefix('@')
            .and_then(|r| r.strip_suffix('@'))
            .filter(|n| !n.is_empty())
        {
            if let Ok(a) = AtSign::parse(name) {
                return Ok(Reply::Pol(a));
            }
        }
        Err(ReplyError(frame.to_string()))
    }
}

fn parse_error(rest: &str) -> Reply {
    if rest.starts_with('{') {
        if let Ok(v) = serde_json::from_str::<serde_json::Value>(rest) {
            let code = v
                .get("errorCode")
                .and_then(|c| c.as_str())
                .and_then(|c| c.parse().ok());
            let message = v
                .get("errorDescription")
                .and_then(|d| d.as_str())
                .unwrap_or_default()
                .to_string();
            return Reply::Error { code, message };
        }
    }
    // `AT0015-desc` or `AT0026:msg`: the code ends at the first `-` or `:`.
    let end = rest.find(['-', ':']).unwrap_or(rest.len());
    let (code_text, tail) = rest.split_at(end);
    match code_text.parse::<ErrorCode>() {
        Ok(code) => Reply::Error {
            code: Some(code),
            message: tail.get(1..).unwrap_or_default().to_string(),
        },
        Err(_) => Reply::Error {
            code: None,
            message: rest.to_string(),
        },
    }
}

/// Drops `\n@…` (a prompt after the last newline) and a trailing `\r`.
fn strip_trailing_prompt(frame: &str) -> &str {
    let body = match frame.rfind('\n') {
        Some(i) if frame[i + 1..].is_empty() || frame[i + 1..].starts_with('@') => &frame[..i],
        _ => frame,
    };
    body.strip_suffix('\r').unwrap_or(body)
}

/// Drops a prompt (`@` or `@alice@`) glued in front of `data:`/`error:`/`notification:`.
fn strip_leading_prompt(body: &str) -> &str {
    if !body.starts_with('@') {
        return body;
    }
    for marker in ["data:", "error:", "notification:"] {
        if let Some(i) = body.find(marker) {
            let prefix = &body[..i];
            let is_prompt = prefix == "@"
                || (prefix.len() > 1
                    && prefix.ends_with('@')
                    && !prefix[1..prefix.len() - 1].contains(['@', ':', '\n']));
            if is_prompt {
                return &body[i..];
            }
        }
    }
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    fn alice() -> AtSign {
        AtSign::parse("@alice").unwrap()
    }

    #[test]
    fn wire_shapes() {
        let owner = Prompt::Owner(alice());
        let peer = Prompt::Peer(AtSign::parse("@bob").unwrap());
        let anon = Prompt::Unauthenticated;
        assert_eq!(Response::data("42").to_wire(&owner), "data:42\n@alice@");
        assert_eq!(Response::data("null").to_wire(&anon), "data:null\n@");
        assert_eq!(Response::data("x").to_wire(&peer), "data:x\n@bob@");
        assert_eq!(
            Response::DataSpaced("[]".into()).to_wire(&owner),
            "data: []\n@alice@"
        );
        assert_eq!(
            Response::error(ErrorCode::KeyNotFound, "key not found : x").to_wire(&owner),
            "error:AT0015-key not found : x\n@alice@"
        );
        assert_eq!(
            Response::error(ErrorCode::Unauthenticated, "Exception: a\nb").to_wire(&peer),
            "error:AT0401-Exception: a b\n@"
        );
        let colon = Response::Error {
            code: ErrorCode::ApkamAuthFailed,
            message: "enrollment_id: x is pending".into(),
            style: ErrorStyle::Colon,
        };
        assert_eq!(
            colon.to_wire(&anon),
            "error:AT0026:enrollment_id: x is pending\n@"
        );
        let json = Response::Error {
            code: ErrorCode::KeyNotFound,
            message: "key not found : \"x\"".into(),
            style: ErrorStyle::Json,
        };
        assert_eq!(
            json.to_wire(&anon),
            "error:{\"errorCode\":\"AT0015\",\"errorDescription\":\"key not found : \\\"x\\\"\"}\n@"
        );
        assert_eq!(Response::PolOk(alice()).to_wire(&anon), "@alice@");
        assert_eq!(Response::None.to_wire(&owner), "");
        assert_eq!(
            Response::error(
                ErrorCode::InboundConnectionLimit,
                "Inbound connection limit exceeded"
            )
            .to_line(),
            "error:AT0012-Inbound connection limit exceeded\n"
        );
    }

    #[test]
    fn parses_replies() {
        assert_eq!(
            Reply::parse("data:42\n@alice@"),
            Ok(Reply::Data("42".into()))
        );
        assert_eq!(Reply::parse("@data:ok\n@"), Ok(Reply::Data("ok".into())));
        assert_eq!(
            Reply::parse("@alice@data:a:b\r\n"),
            Ok(Reply::Data("a:b".into()))
        );
        assert_eq!(Reply::parse("data: [1]\n@"), Ok(Reply::Data(" [1]".into())));
        assert_eq!(
            Reply::parse("error:AT0015-key not found : x\n@alice@"),
            Ok(Reply::Error {
                code: Some(ErrorCode::KeyNotFound),
                message: "key not found : x".into()
            })
        );
        assert_eq!(
            Reply::parse("error:AT0026:enrollment pending\n@"),
            Ok(Reply::Error {
                code: Some(ErrorCode::ApkamAuthFailed),
                message: "enrollment pending".into()
            })
        );
        assert_eq!(
            Reply::parse(
                "error:{\"errorCode\":\"AT0003\",\"errorDescription\":\"Invalid syntax\"}\n@"
            ),
            Ok(Reply::Error {
                code: Some(ErrorCode::InvalidSyntax),
                message: "Invalid syntax".into()
            })
        );
        assert_eq!(
            Reply::parse("error:null:unknown stat\n@"),
            Ok(Reply::Error {
                code: None,
                message: "null:unknown stat".into()
            })
        );
        assert_eq!(
            Reply::parse("@bob@"),
            Ok(Reply::Pol(AtSign::parse("@bob").unwrap()))
        );
        assert_eq!(
            Reply::parse("notification: {\"id\":\"1\"}\n"),
            Ok(Reply::Notification("{\"id\":\"1\"}".into()))
        );
        assert!(Reply::parse("hello").is_err());
        assert!(Reply::parse("@").is_err());
        assert!(Reply::parse("").is_err());
    }
}
