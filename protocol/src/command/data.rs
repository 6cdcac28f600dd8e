//! Data verbs: `update`, `update:json`, `update:meta`, `llookup`, `lookup`, `plookup`,
//! `delete`, `scan` (§3.5).

use std::fmt;

use jiff::Timestamp;
use serde_json::Value;

use super::cursor::{is_token, parse_bool, parse_u64, Cursor};
use super::error::ParseError;
use super::priority::Priority;
use crate::atsign::AtSign;
use crate::key::{AtKey, KeyKind};
use crate::metadata::Metadata;
use crate::time::{format_iso, parse_date, wire_iso_len};

/// Parses `[public:|@for:]<name>[@owner]` (name `[^:@\s]+`), or one of `specials` verbatim.
fn parse_scoped_key(text: &str, cached: bool, specials: &[&str]) -> Result<AtKey, ParseError> {
    if specials.iter().any(|s| s.eq_ignore_ascii_case(text)) && !cached {
        return Ok(AtKey::parse(text)?);
    }
    enum Scope {
        Unscoped,
        Public,
        Shared(AtSign),
    }
    let mut c = Cursor::new(text);
    let scope = if c.eat("public:") {
        Scope::Public
    } else if c.peek("@") {
        let with = c.take_until(|ch| ch == ':');
        c.expect(":")?;
        Scope::Shared(AtSign::parse(with)?)
    } else {
        Scope::Unscoped
    };
    let name = c.take_until(|ch| ch == '@');
    if !is_token(name) {
        return Err(ParseError::syntax(format!("invalid key name {name:?}")));
    }
    let owner = if c.eat("@") {
        Some(AtSign::parse(c.take_rest())?)
    } else {
        None
    };
    let kind = match (scope, cached) {
        (Scope::Public, false) => KeyKind::Public,
        (Scope::Public, true) => KeyKind::CachedPublic,
        (Scope::Shared(w), false) => KeyKind::Shared(w),
        (Scope::Shared(w), true) => KeyKind::CachedShared(w),
        (Scope::Unscoped, true) => {
            return Err(ParseError::syntax(
                "cached keys must be public: or shared (@atSign:)",
            ))
        }
        (Scope::Unscoped, false) if owner.is_some() => KeyKind::SelfKey,
        (Scope::Unscoped, false) => KeyKind::Reserved,
    };
    Ok(AtKey::new(kind, name, owner)?)
}

/// Eats `:<flag>` when it is followed by `:` (so a key called `nc` is not a flag).
fn eat_flag(c: &mut Cursor<'_>, flag: &str) -> bool {
    let with_colon = format!(":{flag}:");
    if c.peek(&with_colon) {
        c.eat(&with_colon[..with_colon.len() - 1])
    } else {
        false
    }
}

fn take_metadata(c: &mut Cursor<'_>, meta: &mut Metadata) -> Result<(), ParseError> {
    while let Some(rest) = meta.take_item(c.rest())? {
        c.set_rest(rest);
    }
    Ok(())
}

/// `update[:nc]<META>:[public:|@for:]<key>[@owner] <value>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateParams {
    pub no_commit: bool,
    pub metadata: Metadata,
    pub key: AtKey,
    pub value: String,
}

/// `update[:nc]:json:{"atKey":…,"value":…,"sharedBy":…,"sharedWith":…,"metadata":{…}}`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateJsonParams {
    pub no_commit: bool,
    /// The JSON text as sent (formatted back unchanged).
    pub raw: String,
    pub key: AtKey,
    /// The `value` member (any JSON value; strings are the usual case).
    pub value: Value,
    pub shared_by: Option<String>,
    pub shared_with: Option<String>,
    pub metadata: Metadata,
}

impl UpdateJsonParams {
    /// Parses the JSON body.
    pub fn from_json(no_commit: bool, raw: &str) -> Result<UpdateJsonParams, ParseError> {
        let v: Value = serde_json::from_str(raw)
            .map_err(|e| ParseError::syntax(format!("update:json body is not JSON: {e}")))?;
        let text = |name: &str| v.get(name).and_then(Value::as_str).map(str::to_string);
        let key_text = text("atKey").ok_or_else(|| ParseError::syntax("atKey is required"))?;
        let metadata = match v.get("metadata") {
            None | Some(Value::Null) => Metadata::default(),
            Some(m) => Metadata::from_json(m)?,
        };
        Ok(UpdateJsonParams {
            no_commit,
            raw: raw.to_string(),
            key: AtKey::parse(&key_text)?,
            value: v.get("value").cloned().unwrap_or(Value::Null),
            shared_by: text("sharedBy"),
            shared_with: text("sharedWith"),
            metadata,
        })
    }
}

/// An `update:` line is either the plain form or the `update:json:` form; the caller picks the
/// matching `Command` variant (kept out of here so this module does not depend on the enum).
pub(super) enum Update {
    Plain(UpdateParams),
    Json(UpdateJsonParams),
}

pub(super) fn parse_update(c: &mut Cursor<'_>) -> Result<Update, ParseError> {
    let no_commit = eat_flag(c, "nc");
    if c.eat(":json:") {
        let raw = c.take_rest();
        return Ok(Update::Json(UpdateJsonParams::from_json(no_commit, raw)?));
    }
    let mut metadata = Metadata::default();
    take_metadata(c, &mut metadata)?;
    c.expect(":")?;
    let (key_text, value) = c
        .take_rest()
        .split_once(' ')
        .ok_or_else(|| ParseError::syntax("update needs a value after a space"))?;
    if value.is_empty() {
        return Err(ParseError::syntax("update needs a value after a space"));
    }
    let key = parse_scoped_key(key_text, false, &["privatekey:at_pkam_publickey"])?;
    Ok(Update::Plain(UpdateParams {
        no_commit,
        metadata,
        key,
        value: value.to_string(),
    }))
}

impl fmt::Display for UpdateParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("update")?;
        if self.no_commit {
            f.write_str(":nc")?;
        }
        write!(
            f,
            "{}:{} {}",
            self.metadata.to_fragment(),
            self.key,
            self.value
        )
    }
}

impl fmt::Display for UpdateJsonParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("update")?;
        if self.no_commit {
            f.write_str(":nc")?;
        }
        write!(f, ":json:{}", self.raw)
    }
}

/// `update:meta[:nc]:[public:|@for:]<key>@<owner><META>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct UpdateMetaParams {
    pub no_commit: bool,
    pub key: AtKey,
    pub metadata: Metadata,
}

pub(super) fn parse_update_meta(c: &mut Cursor<'_>) -> Result<UpdateMetaParams, ParseError> {
    let no_commit = eat_flag(c, "nc");
    c.expect(":")?;
    // The key ends at the first `:` after its `@owner`; the metadata follows.
    let rest = c.take_rest();
    let mut k = Cursor::new(rest);
    if !k.eat("public:") && k.peek("@") {
        k.take_until(|ch| ch == ':');
        k.eat(":");
    }
    k.take_until(|ch| ch == '@');
    k.take_until(|ch| ch == ':');
    let meta_text = k.rest();
    let key_text = &rest[..rest.len() - meta_text.len()];
    let key = parse_scoped_key(key_text, false, &[])?;
    if key.owner().is_none() || key.name().chars().count() < 2 {
        return Err(ParseError::syntax(
            "update:meta needs <key>@<owner>, key ≥ 2 chars",
        ));
    }
    let metadata = Metadata::parse_fragment(meta_text)?;
    Ok(UpdateMetaParams {
        no_commit,
        key,
        metadata,
    })
}

impl fmt::Display for UpdateMetaParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("update:meta")?;
        if self.no_commit {
            f.write_str(":nc")?;
        }
        write!(f, ":{}{}", self.key, self.metadata.to_fragment())
    }
}

/// What a lookup returns: the value, the metadata JSON, or both.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum LookupOp {
    #[default]
    Value,
    Meta,
    All,
}

impl LookupOp {
    fn prefix(self) -> &'static str {
        match self {
            LookupOp::Value => "",
            LookupOp::Meta => "meta:",
            LookupOp::All => "all:",
        }
    }

    fn eat(c: &mut Cursor<'_>) -> LookupOp {
        if c.eat("meta:") {
            LookupOp::Meta
        } else if c.eat("all:") {
            LookupOp::All
        } else {
            LookupOp::Value
        }
    }
}

/// `llookup[:meta|:all]:<stored key>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LlookupParams {
    pub operation: LookupOp,
    pub key: AtKey,
}

pub(super) fn parse_llookup(c: &mut Cursor<'_>) -> Result<LlookupParams, ParseError> {
    c.expect(":")?;
    let operation = LookupOp::eat(c);
    let key = AtKey::parse(c.take_rest())?;
    if key.owner().is_none() || key.name().chars().count() < 2 {
        return Err(ParseError::syntax(
            "llookup needs <key>@<owner>, key ≥ 2 chars",
        ));
    }
    Ok(LlookupParams { operation, key })
}

impl fmt::Display for LlookupParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "llookup:{}{}", self.operation.prefix(), self.key)
    }
}

/// `lookup:`/`plookup:` `[bypassCache:<bool>:][meta:|all:]<key>@<owner>`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LookupParams {
    pub bypass_cache: Option<bool>,
    pub operation: LookupOp,
    /// The key without owner, lower-case (e.g. `phone.wavi`).
    pub key: String,
    pub owner: AtSign,
}

impl LookupParams {
    /// `<key>@<owner>`
    pub fn key_with_owner(&self) -> String {
        format!("{}{}", self.key, self.owner)
    }
}

pub(super) fn parse_lookup(c: &mut Cursor<'_>) -> Result<LookupParams, ParseError> {
    let bypass_cache = if c.eat("bypassCache:") {
        let b = parse_bool("bypassCache", c.take_until(|ch| ch == ':'))?;
        c.expect(":")?;
        Some(b)
    } else {
        None
    };
    let operation = LookupOp::eat(c);
    let rest = c.take_rest();
    let (key, owner) = rest
        .rsplit_once('@')
        .ok_or_else(|| ParseError::syntax("lookup needs <key>@<owner>"))?;
    if key.is_empty()
        || key.starts_with(':')
        || key.contains(['@'])
        || key.contains(char::is_whitespace)
    {
        return Err(ParseError::syntax(format!("invalid key {key:?}")));
    }
    if !is_token(owner) {
        return Err(ParseError::syntax(format!("invalid atSign {owner:?}")));
    }
    Ok(LookupParams {
        bypass_cache,
        operation,
        key: key.to_lowercase(),
        owner: AtSign::parse(owner)?,
    })
}

impl LookupParams {
    pub(super) fn fmt_with(&self, verb: &str, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{verb}:")?;
        if let Some(b) = self.bypass_cache {
            write!(f, "bypassCache:{b}:")?;
        }
        write!(f, "{}{}{}", self.operation.prefix(), self.key, self.owner)
    }
}

/// `delete[:dAt:<iso>][:nc][:force][:priority:<p>][:cached]:[public:|@for:]<key>[@owner]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct DeleteParams {
    pub deleted_at: Option<Timestamp>,
    pub no_commit: bool,
    pub force: bool,
    pub priority: Option<Priority>,
    /// `cached:` keys carry the `:cached` flag in their kind.
    pub key: AtKey,
}

pub(super) fn parse_delete(c: &mut Cursor<'_>) -> Result<DeleteParams, ParseError> {
    let deleted_at = if c.eat(":dAt:") {
        let len = wire_iso_len(c.rest()).ok_or_else(|| ParseError::syntax("invalid dAt"))?;
        let (ts, rest) = c.rest().split_at(len);
        c.set_rest(rest);
        Some(parse_date(ts).map_err(|_| ParseError::syntax("invalid dAt"))?)
    } else {
        None
    };
    let no_commit = eat_flag(c, "nc");
    let force = eat_flag(c, "force");
    let priority = if c.eat(":priority:") {
        Some(Priority::parse(c.take_until(|ch| ch == ':'))?)
    } else {
        None
    };
    let cached = eat_flag(c, "cached");
    c.expect(":")?;
    let text = c.take_rest();
    let key = parse_scoped_key(text, cached, &["privatekey:at_secret"])?;
    Ok(DeleteParams {
        deleted_at,
        no_commit,
        force,
        priority,
        key,
    })
}

impl fmt::Display for DeleteParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("delete")?;
        if let Some(ts) = self.deleted_at {
            write!(f, ":dAt:{}", format_iso(ts))?;
        }
        if self.no_commit {
            f.write_str(":nc")?;
        }
        if self.force {
            f.write_str(":force")?;
        }
        if let Some(p) = self.priority {
            write!(f, ":priority:{p}")?;
        }
        write!(f, ":{}", self.key)
    }
}

/// `scan[:cl][:showHidden:<bool>][:@for][:page:<n>][ <regex>]`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct ScanParams {
    /// `scan:cl` lists commit-log entries (≥3.16.3).
    pub commit_log: bool,
    pub show_hidden: Option<bool>,
    /// `scan:@bob`: proxy the scan to @bob's server.
    pub for_atsign: Option<AtSign>,
    pub page: Option<u64>,
    pub regex: Option<String>,
}

pub(super) fn parse_scan(c: &mut Cursor<'_>) -> Result<ScanParams, ParseError> {
    let mut p = ScanParams::default();
    let stop = |ch: char| ch == ':' || ch == ' ';
    if c.peek(":cl") && matches!(c.rest().as_bytes().get(3), None | Some(b':') | Some(b' ')) {
        c.eat(":cl");
        p.commit_log = true;
    }
    if c.eat(":showHidden:") {
        p.show_hidden = Some(parse_bool("showHidden", c.take_until(stop))?);
    }
    if c.peek(":@") {
        c.eat(":");
        p.for_atsign = Some(AtSign::parse(c.take_until(stop))?);
    }
    if c.eat(":page:") {
        p.page = Some(parse_u64("page", c.take_until(stop))?);
    }
    if c.eat(" ") {
        let regex = c.take_rest();
        if regex.is_empty() || regex.contains(char::is_whitespace) {
            return Err(ParseError::syntax("scan regex must be one word"));
        }
        p.regex = Some(regex.to_string());
    }
    c.expect_end()?;
    Ok(p)
}

impl fmt::Display for ScanParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("scan")?;
        if self.commit_log {
            f.write_str(":cl")?;
        }
        if let Some(b) = self.show_hidden {
            write!(f, ":showHidden:{b}")?;
        }
        if let Some(a) = &self.for_atsign {
            write!(f, ":{a}")?;
        }
        if let Some(n) = self.page {
            write!(f, ":page:{n}")?;
        }
        if let Some(r) = &self.regex {
            write!(f, " {r}")?;
        }
        Ok(())
    }
}
