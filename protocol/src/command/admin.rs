//! Utility verbs: `stats`, `config`, `info`, `noop`, `otp` (§3.8, §11).

use std::fmt;

use super::cursor::{parse_u64, Cursor};
use super::error::ParseError;

/// `stats[:<id>[,<id>…]][:<regex>]` (regex only after a lone id 3 or 15).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct StatsParams {
    /// Empty = every stat.
    pub ids: Vec<u32>,
    pub regex: Option<String>,
}

pub(super) fn parse_stats(c: &mut Cursor<'_>) -> Result<StatsParams, ParseError> {
    let mut p = StatsParams::default();
    if c.is_empty() {
        return Ok(p);
    }
    c.expect(":")?;
    let ids = c.take_until(|ch| ch == ':');
    for id in ids.split(',') {
        let n = parse_u64("stat id", id)?;
        if id.starts_with('0') {
            return Err(ParseError::syntax("stat ids start at 1"));
        }
        p.ids
            .push(u32::try_from(n).map_err(|_| ParseError::syntax("stat id out of range"))?);
    }
    if c.eat(":") {
        if p.ids != [3] && p.ids != [15] {
            return Err(ParseError::syntax(
                "a regex is only allowed for stats 3 and 15",
            ));
        }
        let r = c.take_rest();
        if r.is_empty() {
            return Err(ParseError::syntax("empty stats regex"));
        }
        p.regex = Some(r.to_string());
    }
    Ok(p)
}

impl fmt::Display for StatsParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("stats")?;
        if !self.ids.is_empty() {
            let ids: Vec<String> = self.ids.iter().map(u32::to_string).collect();
            write!(f, ":{}", ids.join(","))?;
        }
        if let Some(r) = &self.regex {
            write!(f, ":{r}")?;
        }
        Ok(())
    }
}

/// `config:block:add|remove:<@a> <@b>…`, `config:block:show`, `config:set|reset|print:…`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConfigParams {
    /// atSigns exactly as typed (the reference compares them verbatim).
    BlockAdd(Vec<String>),
    BlockRemove(Vec<String>),
    BlockShow,
    /// `config:set:<name>=<value>` (testing mode only).
    Set {
        name: String,
        value: String,
    },
    Reset(String),
    Print(String),
}

fn block_list(text: &str) -> Result<Vec<String>, ParseError> {
    let list: Vec<String> = text.split(' ').map(str::to_string).collect();
    let ok = list.iter().all(|a| {
        a.len() > 1
            && a.starts_with('@')
            && !a[1..].contains(['@', ':'])
            && !a.contains(char::is_whitespace)
    });
    if ok {
        Ok(list)
    } else {
        Err(ParseError::syntax("expected space-separated @atSigns"))
    }
}

pub(super) fn parse_config(c: &mut Cursor<'_>) -> Result<ConfigParams, ParseError> {
    if c.eat("block:") {
        if c.eat("add:") {
            return Ok(ConfigParams::BlockAdd(block_list(c.take_rest())?));
        }
        if c.eat("remove:") {
            return Ok(ConfigParams::BlockRemove(block_list(c.take_rest())?));
        }
        c.expect("show")?;
        c.expect_end()?;
        return Ok(ConfigParams::BlockShow);
    }
    let nonempty = |s: &str| {
        if s.is_empty() {
            Err(ParseError::syntax("missing config name"))
        } else {
            Ok(s.to_string())
        }
    };
    if c.eat("set:") {
        let (name, value) = c
            .take_rest()
            .split_once('=')
            .ok_or_else(|| ParseError::syntax("config:set needs <name>=<value>"))?;
        return Ok(ConfigParams::Set {
            name: nonempty(name)?,
            value: value.to_string(),
        });
    }
    if c.eat("reset:") {
        return Ok(ConfigParams::Reset(nonempty(c.take_rest())?));
    }
    if c.eat("print:") {
        return Ok(ConfigParams::Print(nonempty(c.take_rest())?));
    }
    Err(ParseError::syntax("unknown config operation"))
}

impl fmt::Display for ConfigParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ConfigParams::BlockAdd(l) => write!(f, "config:block:add:{}", l.join(" ")),
            ConfigParams::BlockRemove(l) => write!(f, "config:block:remove:{}", l.join(" ")),
            ConfigParams::BlockShow => f.write_str("config:block:show"),
            ConfigParams::Set { name, value } => write!(f, "config:set:{name}={value}"),
            ConfigParams::Reset(n) => write!(f, "config:reset:{n}"),
            ConfigParams::Print(n) => write!(f, "config:print:{n}"),
        }
    }
}

/// `info`, `info:brief`, `info:mtls`, `info:mtlsbrief`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum InfoKind {
    #[default]
    Full,
    Brief,
    Mtls,
    MtlsBrief,
}

pub(super) fn parse_info(c: &mut Cursor<'_>) -> Result<InfoKind, ParseError> {
    let kind = match c.take_rest().to_ascii_lowercase().as_str() {
        "" => InfoKind::Full,
        ":brief" => InfoKind::Brief,
        ":mtls" => InfoKind::Mtls,
        ":mtlsbrief" => InfoKind::MtlsBrief,
        _ => return Err(ParseError::syntax("info takes :brief, :mtls or :mtlsbrief")),
    };
    Ok(kind)
}

impl fmt::Display for InfoKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            InfoKind::Full => "info",
            InfoKind::Brief => "info:brief",
            InfoKind::Mtls => "info:mtls",
            InfoKind::MtlsBrief => "info:mtlsbrief",
        })
    }
}

pub(super) fn parse_noop(c: &mut Cursor<'_>) -> Result<u64, ParseError> {
    parse_u64("delay", c.take_rest())
}

/// `otp:get[:ttl:<ms>]`, `otp:put[:<passcode>][:ttl:<ms>]`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OtpParams {
    pub operation: OtpOp,
    pub ttl: Option<u64>,
}

/// The `otp` operation.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OtpOp {
    Get,
    /// A semi-permanent passcode (`\w{6,}`), case kept.
    Put(Option<String>),
}

pub(super) fn parse_otp(c: &mut Cursor<'_>) -> Result<OtpParams, ParseError> {
    let operation = if c.eat("get") {
        OtpOp::Get
    } else if c.eat("put") {
        let passcode = if c.peek(":") && !c.peek(":ttl:") {
            c.eat(":");
            let p = c.take_until(|ch| ch == ':');
            if p.chars().count() < 6 || !p.chars().all(|ch| ch.is_alphanumeric() || ch == '_') {
                return Err(ParseError::syntax("passcode must be 6+ word characters"));
            }
            Some(p.to_string())
        } else {
            None
        };
        OtpOp::Put(passcode)
    } else {
        return Err(ParseError::syntax("otp takes get or put"));
    };
    let ttl = if c.eat(":ttl:") {
        Some(parse_u64("ttl", c.take_rest())?)
    } else {
        None
    };
    c.expect_end()?;
    Ok(OtpParams { operation, ttl })
}

impl fmt::Display for OtpParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match &self.operation {
            OtpOp::Get => f.write_str("otp:get")?,
            OtpOp::Put(None) => f.write_str("otp:put")?,
            OtpOp::Put(Some(p)) => write!(f, "otp:put:{p}")?,
        }
        if let Some(t) = self.ttl {
            write!(f, ":ttl:{t}")?;
        }
        Ok(())
    }
}
