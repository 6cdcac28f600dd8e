//! Routing a command line to its verb without parsing its grammar, in the reference
//! dispatcher's order (§3.1). Servers gate on the verb (authentication) before the grammar is
//! checked, as the reference does; [`Command::parse`] then applies the
//! grammar. For every line that parses, [`route`] names the parsed command's verb.

use super::cursor::Cursor;
use super::normalise::normalise;
use super::parsed::Command;

/// The verb a command line is addressed to.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Verb {
    /// A blank line.
    Empty,
    Exit,
    From,
    Cram,
    Pkam,
    Pol,
    To,
    Update,
    UpdateMeta,
    Llookup,
    Plookup,
    Lookup,
    Scan,
    Delete,
    Stats,
    Config,
    Monitor,
    Notify,
    NotifyList,
    NotifyStatus,
    NotifyAll,
    NotifyRemove,
    NotifyFetch,
    Batch,
    SyncFrom,
    Info,
    Noop,
    Enroll,
    Otp,
    Keys,
    Stream,
    /// No verb matches (AT0003).
    Unknown,
}

/// Prefixes in the order [`Command::parse`] tries them (longer prefixes first).
const PREFIXES: &[(&str, Verb)] = &[
    ("from:", Verb::From),
    ("cram:", Verb::Cram),
    ("pkam:", Verb::Pkam),
    ("update:meta:", Verb::UpdateMeta),
    ("update:", Verb::Update),
    ("llookup", Verb::Llookup),
    ("plookup:", Verb::Plookup),
    ("lookup:", Verb::Lookup),
    ("scan", Verb::Scan),
    ("delete:", Verb::Delete),
    ("stats", Verb::Stats),
    ("config:", Verb::Config),
    ("monitor", Verb::Monitor),
    ("notify:list", Verb::NotifyList),
    ("notify:status:", Verb::NotifyStatus),
    ("notify:all:", Verb::NotifyAll),
    ("notify:remove:", Verb::NotifyRemove),
    ("notify:fetch:", Verb::NotifyFetch),
    ("notify:", Verb::Notify),
    ("batch:", Verb::Batch),
    ("sync:from", Verb::SyncFrom),
    ("info", Verb::Info),
    ("noop:", Verb::Noop),
    ("enroll:", Verb::Enroll),
    ("otp:", Verb::Otp),
    ("keys:", Verb::Keys),
    ("to:", Verb::To),
    ("stream:", Verb::Stream),
];

/// The verb of a command line (normalised as [`normalise`] does). Never panics.
pub fn route(line: &str) -> Verb {
    let text = normalise(line);
    match text.as_str() {
        "" => return Verb::Empty,
        "@exit" => return Verb::Exit,
        "pol" => return Verb::Pol,
        t if t.eq_ignore_ascii_case("update:meta") => return Verb::UpdateMeta,
        _ => {}
    }
    let c = Cursor::new(&text);
    PREFIXES
        .iter()
        .find(|(prefix, _)| c.peek(prefix))
        .map_or(Verb::Unknown, |(_, verb)| *verb)
}

impl Verb {
    /// The verb of a parsed command.
    pub fn of(command: &Command) -> Verb {
        match command {
            Command::From(_) => Verb::From,
            Command::Cram { .. } => Verb::Cram,
            Command::Pkam(_) => Verb::Pkam,
            Command::Pol => Verb::Pol,
            Command::To(_) => Verb::To,
            Command::Update(_) | Command::UpdateJson(_) => Verb::Update,
            Command::UpdateMeta(_) => Verb::UpdateMeta,
            Command::Llookup(_) => Verb::Llookup,
            Command::Lookup(_) => Verb::Lookup,
            Command::Plookup(_) => Verb::Plookup,
            Command::Delete(_) => Verb::Delete,
            Command::Scan(_) => Verb::Scan,
            Command::Stats(_) => Verb::Stats,
            Command::Config(_) => Verb::Config,
            Command::Monitor(_) => Verb::Monitor,
            Command::Notify(_) => Verb::Notify,
            Command::NotifyList(_) => Verb::NotifyList,
            Command::NotifyStatus { .. } => Verb::NotifyStatus,
            Command::NotifyFetch { .. } => Verb::NotifyFetch,
            Command::NotifyRemove { .. } => Verb::NotifyRemove,
            Command::NotifyAll(_) => Verb::NotifyAll,
            Command::SyncFrom(_) => Verb::SyncFrom,
            Command::Batch(_) => Verb::Batch,
            Command::Info(_) => Verb::Info,
            Command::Noop { .. } => Verb::Noop,
            Command::Enroll(_) => Verb::Enroll,
            Command::Otp(_) => Verb::Otp,
            Command::Keys(_) => Verb::Keys,
            Command::Stream(_) => Verb::Stream,
            Command::Exit => Verb::Exit,
        }
    }

    /// A short snake_case name, for metrics labels and logs.
    pub fn label(self) -> &'static str {
        match self {
            Verb::Empty => "empty",
            Verb::Exit => "exit",
            Verb::From => "from",
            Verb::Cram => "cram",
            Verb::Pkam => "pkam",
            Verb::Pol => "pol",
            Verb::To => "to",
            Verb::Update => "update",
            Verb::UpdateMeta => "update_meta",
            Verb::Llookup => "llookup",
            Verb::Plookup => "plookup",
            Verb::Lookup => "lookup",
            Verb::Scan => "scan",
            Verb::Delete => "delete",
            Verb::Stats => "stats",
            Verb::Config => "config",
            Verb::Monitor => "monitor",
            Verb::Notify => "notify",
            Verb::NotifyList => "notify_list",
            Verb::NotifyStatus => "notify_status",
            Verb::NotifyAll => "notify_all",
            Verb::NotifyRemove => "notify_remove",
            Verb::NotifyFetch => "notify_fetch",
            Verb::Batch => "batch",
            Verb::SyncFrom => "sync",
            Verb::Info => "info",
            Verb::Noop => "noop",
            Verb::Enroll => "enroll",
            Verb::Otp => "otp",
            Verb::Keys => "keys",
            Verb::Stream => "stream",
            Verb::Unknown => "unknown",
        }
    }

    /// Whether the reference gates this verb behind owner authentication (§3.2), as
    /// [`Command::requires_auth`] does for parsed commands.
    pub fn requires_auth(self) -> bool {
        matches!(
            self,
            Verb::Update
                | Verb::UpdateMeta
                | Verb::Llookup
                | Verb::Plookup
                | Verb::Delete
                | Verb::Stats
                | Verb::Config
                | Verb::Monitor
                | Verb::NotifyFetch
                | Verb::NotifyRemove
                | Verb::SyncFrom
                | Verb::Batch
                | Verb::Otp
                | Verb::Keys
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn routes_in_reference_order() {
        assert_eq!(route(""), Verb::Empty);
        assert_eq!(route("  \r"), Verb::Empty);
        assert_eq!(route("@exit"), Verb::Exit);
        assert_eq!(route("POL"), Verb::Pol);
        assert_eq!(route("update:meta:x@alice:ttl:1"), Verb::UpdateMeta);
        assert_eq!(route("update:meta"), Verb::UpdateMeta);
        assert_eq!(route("Up Date:x@alice 1"), Verb::Update);
        assert_eq!(route("update:json:{}"), Verb::Update);
        assert_eq!(route("notify:list"), Verb::NotifyList);
        assert_eq!(route("notify:status:abc"), Verb::NotifyStatus);
        assert_eq!(route("notify:id:1:@bob:x@alice:v"), Verb::Notify);
        assert_eq!(route("sync:5"), Verb::Unknown);
        assert_eq!(route("info:brief"), Verb::Info);
        assert_eq!(route("to:@bob"), Verb::To);
        assert_eq!(route("polx"), Verb::Unknown);
    }

    #[test]
    fn agrees_with_parse() {
        for line in [
            "from:@alice",
            "pkam:abc",
            "llookup:all:xy@alice",
            "scan",
            "stats:1",
            "monitor",
            "notify:fetch:abc",
            "notify:remove:abc",
            "batch:[]",
            "sync:from:0",
            "info",
            "noop:0",
            "enroll:list",
            "otp:get",
            "keys:get:keyName:xy",
            "delete:xy@alice",
            "stream:receive abc",
            "stream:init@bob namespace:null abc ZmlsZQ== 3",
        ] {
            let command = Command::parse(line).unwrap_or_else(|e| panic!("{line}: {e}"));
            assert_eq!(route(line), Verb::of(&command), "{line}");
            assert_eq!(
                route(line).requires_auth(),
                command.requires_auth(),
                "{line}"
            );
        }
    }
}
