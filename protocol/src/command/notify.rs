//! Notification verbs: `notify`, `notify:list`, `notify:all`, `monitor` (§3.6, §8.3).

use std::fmt;

use super::cursor::{is_token, parse_bool, parse_u64, Cursor};
use super::error::ParseError;
use super::priority::Priority;
use crate::atsign::AtSign;
use crate::metadata::Metadata;

/// `update` or `delete`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum NotifyOp {
    Update,
    Delete,
}

impl NotifyOp {
    pub fn as_str(self) -> &'static str {
        match self {
            NotifyOp::Update => "update",
            NotifyOp::Delete => "delete",
        }
    }
}

impl fmt::Display for NotifyOp {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// `key` or `text`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum MessageType {
    Key,
    Text,
}

impl MessageType {
    pub fn as_str(self) -> &'static str {
        match self {
            MessageType::Key => "key",
            MessageType::Text => "text",
        }
    }

    fn parse(s: &str) -> Result<MessageType, ParseError> {
        if s.eq_ignore_ascii_case("key") {
            Ok(MessageType::Key)
        } else if s.eq_ignore_ascii_case("text") {
            Ok(MessageType::Text)
        } else {
            Err(ParseError::syntax("messageType must be key or text"))
        }
    }
}

/// Delivery strategy: `all` or `latest`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Strategy {
    All,
    Latest,
}

impl Strategy {
    pub fn as_str(self) -> &'static str {
        match self {
            Strategy::All => "all",
            Strategy::Latest => "latest",
        }
    }
}

/// `notify:[id:<id>:][update|delete:][messageType:…:][priority:…:][strategy:…:][latestN:…:]`
/// `[notifier:…:][ttln:…:]<META>:(public|@for):<key>[@owner][:<value>]`
/// (the optional items are accepted in any order and formatted in this order).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyParams {
    pub id: Option<String>,
    pub operation: Option<NotifyOp>,
    pub message_type: Option<MessageType>,
    pub priority: Option<Priority>,
    pub strategy: Option<Strategy>,
    pub latest_n: Option<u64>,
    pub notifier: Option<String>,
    /// Notification lifetime, ms.
    pub ttln: Option<u64>,
    pub metadata: Metadata,
    /// The recipient; `None` is the `public` scope.
    pub to: Option<AtSign>,
    /// The key (for text messages, the text) as sent.
    pub key: String,
    pub owner: Option<AtSign>,
    pub value: Option<String>,
}

impl NotifyParams {
    /// The notification key as stored by the receiver, e.g. `@bob:phone.wavi@alice`.
    pub fn notification_key(&self) -> String {
        let mut s = match &self.to {
            Some(to) => format!("{to}:"),
            None => "public:".to_string(),
        };
        s.push_str(&self.key);
        if let Some(o) = &self.owner {
            s.push_str(o.as_str());
        }
        s
    }
}

fn set<T>(slot: &mut Option<T>, what: &str, value: T) -> Result<(), ParseError> {
    if slot.is_some() {
        return Err(ParseError::syntax(format!("duplicate {what}")));
    }
    *slot = Some(value);
    Ok(())
}

/// `[\w-]+`
fn is_id(s: &str) -> bool {
    !s.is_empty()
        && s.chars()
            .all(|c| c.is_alphanumeric() || c == '_' || c == '-')
}

pub(super) fn parse_notify(c: &mut Cursor<'_>) -> Result<NotifyParams, ParseError> {
    let mut p = NotifyParams::default();
    let value_end = |ch: char| ch == ':';
    loop {
        if c.eat(":id:") {
            let id = c.take_until(value_end);
            if !is_id(id) {
                return Err(ParseError::syntax("invalid notification id"));
            }
            set(&mut p.id, "id", id.to_string())?;
        } else if c.peek(":update:") || c.peek(":delete:") {
            let op = if c.eat(":update") {
                NotifyOp::Update
            } else {
                c.eat(":delete");
                NotifyOp::Delete
            };
            set(&mut p.operation, "operation", op)?;
        } else if c.eat(":messageType:") {
            let mt = MessageType::parse(c.take_until(value_end))?;
            set(&mut p.message_type, "messageType", mt)?;
        } else if c.eat(":priority:") {
            let pr = Priority::parse(c.take_until(value_end))?;
            set(&mut p.priority, "priority", pr)?;
        } else if c.eat(":strategy:") {
            let s = c.take_until(value_end);
            let st = if s.eq_ignore_ascii_case("all") {
                Strategy::All
            } else if s.eq_ignore_ascii_case("latest") {
                Strategy::Latest
            } else {
                return Err(ParseError::syntax("strategy must be all or latest"));
            };
            set(&mut p.strategy, "strategy", st)?;
        } else if c.eat(":latestN:") {
            let n = parse_u64("latestN", c.take_until(value_end))?;
            set(&mut p.latest_n, "latestN", n)?;
        } else if c.eat(":notifier:") {
            let n = c.take_until(value_end);
            if n.is_empty() || n.contains(char::is_whitespace) {
                return Err(ParseError::syntax("invalid notifier"));
            }
            set(&mut p.notifier, "notifier", n.to_string())?;
        } else if c.eat(":ttln:") {
            let n = parse_u64("ttln", c.take_until(value_end))?;
            set(&mut p.ttln, "ttln", n)?;
        } else if let Some(rest) = p.metadata.take_item(c.rest())? {
            c.set_rest(rest);
        } else {
            break;
        }
    }
    if p.strategy == Some(Strategy::Latest) && p.notifier.is_none() {
        return Err(ParseError::syntax("strategy latest requires a notifier"));
    }
    c.expect(":")?;
    if !c.eat("public:") {
        if !c.peek("@") {
            return Err(ParseError::syntax("notify needs public: or @<recipient>:"));
        }
        let to = c.take_until(value_end);
        c.expect(":")?;
        p.to = Some(AtSign::parse(to)?);
    }
    let key = c.take_until(|ch| ch == '@');
    if key.chars().count() < 2 || key.starts_with(':') || key.contains("::") {
        return Err(ParseError::syntax(format!(
            "invalid notification key {key:?}"
        )));
    }
    p.key = key.to_string();
    if c.eat("@") {
        let owner = c.take_until(value_end);
        if !is_token(owner) {
            return Err(ParseError::syntax("invalid owner atSign"));
        }
        p.owner = Some(AtSign::parse(owner)?);
        if c.eat(":") {
            let value = c.take_rest();
            if value.is_empty() {
                return Err(ParseError::syntax("empty notification value"));
            }
            p.value = Some(value.to_string());
        }
    }
    c.expect_end()?;
    Ok(p)
}

impl fmt::Display for NotifyParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("notify")?;
        if let Some(id) = &self.id {
            write!(f, ":id:{id}")?;
        }
        if let Some(op) = self.operation {
            write!(f, ":{op}")?;
        }
        if let Some(mt) = self.message_type {
            write!(f, ":messageType:{}", mt.as_str())?;
        }
        if let Some(p) = self.priority {
            write!(f, ":priority:{p}")?;
        }
        if let Some(s) = self.strategy {
            write!(f, ":strategy:{}", s.as_str())?;
        }
        if let Some(n) = self.latest_n {
            write!(f, ":latestN:{n}")?;
        }
        if let Some(n) = &self.notifier {
            write!(f, ":notifier:{n}")?;
        }
        if let Some(n) = self.ttln {
            write!(f, ":ttln:{n}")?;
        }
        write!(
            f,
            "{}:{}",
            self.metadata.to_fragment(),
            self.notification_key()
        )?;
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// `notify:list[:<fromDate>][:<toDate>][:<regex>]` (dates `yyyy-MM-dd`, inclusive, UTC).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NotifyListParams {
    pub from_date: Option<String>,
    pub to_date: Option<String>,
    pub regex: Option<String>,
}

/// `\d{4}-[01]?\d?-[0123]?\d?`
fn is_list_date(s: &str) -> bool {
    let mut parts = s.splitn(3, '-');
    let (Some(y), Some(m), Some(d)) = (parts.next(), parts.next(), parts.next()) else {
        return false;
    };
    let digits = |t: &str| t.bytes().all(|b| b.is_ascii_digit());
    y.len() == 4
        && digits(y)
        && m.len() <= 2
        && digits(m)
        && m.bytes().next().is_none_or(|b| b <= b'1' || m.len() == 1)
        && d.len() <= 2
        && digits(d)
        && d.bytes().next().is_none_or(|b| b <= b'3' || d.len() == 1)
}

pub(super) fn parse_notify_list(c: &mut Cursor<'_>) -> Result<NotifyListParams, ParseError> {
    let mut p = NotifyListParams::default();
    if c.is_empty() {
        return Ok(p);
    }
    c.expect(":")?;
    let parts: Vec<&str> = c.take_rest().split(':').collect();
    let mut i = 0;
    if parts.get(i).is_some_and(|s| is_list_date(s)) {
        p.from_date = parts.get(i).map(|s| s.to_string());
        i += 1;
        if parts.get(i).is_some_and(|s| is_list_date(s)) {
            p.to_date = parts.get(i).map(|s| s.to_string());
            i += 1;
        }
    }
    match &parts[i.min(parts.len())..] {
        [] => {}
        [regex] if !regex.is_empty() => p.regex = Some(regex.to_string()),
        _ => return Err(ParseError::syntax("notify:list takes [:from][:to][:regex]")),
    }
    Ok(p)
}

impl fmt::Display for NotifyListParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("notify:list")?;
        for part in [&self.from_date, &self.to_date, &self.regex]
            .into_iter()
            .flatten()
        {
            write!(f, ":{part}")?;
        }
        Ok(())
    }
}

/// `notify:all:[update|delete:][messageType:…:][ttl:…:][ttb:…:][ttr:…:][ccd:…:]`
/// `<@a,@b,…>:<key>[@owner][:<value>]`
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotifyAllParams {
    pub operation: Option<NotifyOp>,
    pub message_type: Option<MessageType>,
    pub ttl: Option<u64>,
    pub ttb: Option<u64>,
    pub ttr: Option<i64>,
    pub ccd: Option<bool>,
    pub recipients: Vec<AtSign>,
    pub key: String,
    pub owner: Option<AtSign>,
    pub value: Option<String>,
}

pub(super) fn parse_notify_all(c: &mut Cursor<'_>) -> Result<NotifyAllParams, ParseError> {
    let until_colon = |ch: char| ch == ':';
    let operation = if c.eat("update:") {
        Some(NotifyOp::Update)
    } else if c.eat("delete:") {
        Some(NotifyOp::Delete)
    } else {
        None
    };
    let message_type = if c.eat("messageType:") {
        let mt = MessageType::parse(c.take_until(until_colon))?;
        c.expect(":")?;
        Some(mt)
    } else {
        None
    };
    let mut num = |lit: &str| -> Result<Option<u64>, ParseError> {
        if c.eat(lit) {
            let n = parse_u64(lit, c.take_until(until_colon))?;
            c.expect(":")?;
            Ok(Some(n))
        } else {
            Ok(None)
        }
    };
    let ttl = num("ttl:")?;
    let ttb = num("ttb:")?;
    let ttr = if c.eat("ttr:") {
        let t = c.take_until(until_colon);
        let n = crate::metadata::Metadata::parse_fragment(&format!(":ttr:{t}"))?.ttr;
        c.expect(":")?;
        n
    } else {
        None
    };
    let ccd = if c.eat("ccd:") {
        let b = parse_bool("ccd", c.take_until(until_colon))?;
        c.expect(":")?;
        Some(b)
    } else {
        None
    };
    let list = c.take_until(until_colon);
    let recipients = list
        .split(',')
        .map(|r| {
            if r.contains(char::is_whitespace) {
                Err(ParseError::syntax("invalid recipient"))
            } else {
                Ok(AtSign::parse(r)?)
            }
        })
        .collect::<Result<Vec<_>, _>>()?;
    c.expect(":")?;
    let key = c.take_until(|ch| ch == '@' || ch == ':');
    if !is_token(key) {
        return Err(ParseError::syntax("invalid key"));
    }
    let owner = if c.eat("@") {
        let o = c.take_until(until_colon);
        if !is_token(o) {
            return Err(ParseError::syntax("invalid owner atSign"));
        }
        Some(AtSign::parse(o)?)
    } else {
        None
    };
    let value = if c.eat(":") {
        let v = c.take_rest();
        if v.is_empty() {
            return Err(ParseError::syntax("empty value"));
        }
        Some(v.to_string())
    } else {
        None
    };
    c.expect_end()?;
    Ok(NotifyAllParams {
        operation,
        message_type,
        ttl,
        ttb,
        ttr,
        ccd,
        recipients,
        key: key.to_string(),
        owner,
        value,
    })
}

impl fmt::Display for NotifyAllParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("notify:all:")?;
        if let Some(op) = self.operation {
            write!(f, "{op}:")?;
        }
        if let Some(mt) = self.message_type {
            write!(f, "messageType:{}:", mt.as_str())?;
        }
        if let Some(n) = self.ttl {
            write!(f, "ttl:{n}:")?;
        }
        if let Some(n) = self.ttb {
            write!(f, "ttb:{n}:")?;
        }
        if let Some(n) = self.ttr {
            write!(f, "ttr:{n}:")?;
        }
        if let Some(b) = self.ccd {
            write!(f, "ccd:{b}:")?;
        }
        let list: Vec<&str> = self.recipients.iter().map(AtSign::as_str).collect();
        write!(f, "{}:{}", list.join(","), self.key)?;
        if let Some(o) = &self.owner {
            write!(f, "{o}")?;
        }
        if let Some(v) = &self.value {
            write!(f, ":{v}")?;
        }
        Ok(())
    }
}

/// `monitor[:strict][:selfNotifications][:multiplexed][:<epochMillis>][ <regex>]`
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct MonitorParams {
    pub strict: bool,
    pub self_notifications: bool,
    pub multiplexed: bool,
    /// Replay stored notifications received strictly after this time.
    pub epoch_millis: Option<u64>,
    pub regex: Option<String>,
}

pub(super) fn parse_monitor(c: &mut Cursor<'_>) -> Result<MonitorParams, ParseError> {
    let mut p = MonitorParams::default();
    let flag = |c: &mut Cursor<'_>, name: &str| {
        let lit = format!(":{name}");
        let ends = |r: &str| matches!(r.as_bytes().get(lit.len()), None | Some(b':') | Some(b' '));
        if c.peek(&lit) && ends(c.rest()) {
            c.eat(&lit)
        } else {
            false
        }
    };
    p.strict = flag(c, "strict");
    p.self_notifications = flag(c, "selfNotifications");
    p.multiplexed = flag(c, "multiplexed");
    if c.eat(":") {
        p.epoch_millis = Some(parse_u64("epochMillis", c.take_until(|ch| ch == ' '))?);
    }
    if c.eat(" ") {
        let regex = c.take_rest();
        if regex.is_empty() {
            return Err(ParseError::syntax("empty monitor regex"));
        }
        p.regex = Some(regex.to_string());
    }
    c.expect_end()?;
    Ok(p)
}

impl fmt::Display for MonitorParams {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("monitor")?;
        if self.strict {
            f.write_str(":strict")?;
        }
        if self.self_notifications {
            f.write_str(":selfNotifications")?;
        }
        if self.multiplexed {
            f.write_str(":multiplexed")?;
        }
        if let Some(n) = self.epoch_millis {
            write!(f, ":{n}")?;
        }
        if let Some(r) = &self.regex {
            write!(f, " {r}")?;
        }
        Ok(())
    }
}
