//! What a command answers, and how that becomes bytes (payload, newline and prompt in one buffer).

use crate::error::AtError;

#[derive(Debug)]
pub enum Reply {
    /// `data:<payload>`
    Data(String),
    /// `data: <payload>` (the reference server puts a space there for `stats` and `notify:all`).
    DataSpaced(String),
    Error(AtError),
    /// Written verbatim with no newline and no prompt (`pol` success).
    Raw(String),
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

/// Renders a reply line with its prompt as one string so it leaves in one TLS record (§1.2).
pub fn render(
    reply: &Reply,
    prompt: Option<&str>,
    owner: bool,
    json_errors: bool,
) -> Option<String> {
    let line = match reply {
        Reply::Data(p) => format!("data:{p}\n"),
        Reply::DataSpaced(p) => format!("data: {p}\n"),
        Reply::Error(e) => format!("error:{}\n", e.wire_body(owner, json_errors)),
        Reply::Raw(r) => return Some(r.clone()),
        Reply::Silent | Reply::Close => return None,
    };
    Some(match prompt {
        Some(p) => line + p,
        None => line,
    })
}
