//! What a command answers, and how that becomes bytes: an `at_protocol::Response` with its
//! prompt, as one string so payload, newline and prompt leave in one TLS record (§1.2).

use at_protocol::{Prompt, Response};

use crate::error::AtError;

#[derive(Debug)]
pub enum Reply {
    /// `data:<payload>`
    Data(String),
    /// `data: <payload>` (the reference server puts a space there for `stats` and `notify:all`).
    DataSpaced(String),
    Error(AtError),
    /// A successful `pol`: `@peer@`, no newline (§1.4).
    PolOk(at_protocol::AtSign),
    /// Nothing at all (monitor start).
    Silent,
    /// `@exit`: close without a reply.
    Close,
}

impl Reply {
    pub fn data(payload: impl Into<String>) -> Self {
        Reply::Data(payload.into())
    }
    pub fn null() -> Self {
        Reply::Data("null".into())
    }
}

impl From<AtError> for Reply {
    fn from(e: AtError) -> Self {
        Reply::Error(e)
    }
}

pub type CmdResult = Result<Reply, AtError>;

/// The wire text of a reply; without a prompt only the line is written (AT0005 before closing,
/// `noop` on a monitor connection).
pub fn render(
    reply: &Reply,
    prompt: Option<&Prompt>,
    owner: bool,
    json_errors: bool,
) -> Option<String> {
    let response = match reply {
        Reply::Data(p) => Response::Data(p.clone()),
        Reply::DataSpaced(p) => Response::DataSpaced(p.clone()),
        Reply::Error(e) => e.to_response(owner, json_errors),
        Reply::PolOk(a) => Response::PolOk(a.clone()),
        Reply::Silent | Reply::Close => return None,
    };
    Some(match prompt {
        Some(p) => response.to_wire(p),
        None => response.to_line(),
    })
}
