//! `scan` with the per-connection views of atprotocol.md §3.5.

use crate::commands::strip_verb;
use crate::error::AtError;
use crate::keys::{self, ScanVisibility};
use crate::reply::{CmdResult, Reply};
use crate::session::{Auth, Session};

struct ScanArgs {
    show_hidden: bool,
    for_atsign: Option<String>,
    regex: Option<regex::Regex>,
}

fn parse(cmd: &str) -> Result<ScanArgs, AtError> {
    let mut rest = strip_verb(cmd, "scan").ok_or_else(|| AtError::syntax("invalid scan"))?;
    let mut args = ScanArgs {
        show_hidden: false,
        for_atsign: None,
        regex: None,
    };
    if let Some(r) = strip_verb(rest, ":showhidden:") {
        let (flag, r) = r.split_at(r.find([':', ' ']).unwrap_or(r.len()));
        args.show_hidden = match flag.to_ascii_lowercase().as_str() {
            "true" => true,
            "false" => false,
            _ => return Err(AtError::syntax("showhidden must be true or false")),
        };
        rest = r;
    }
    if let Some(r) = rest.strip_prefix(":@") {
        let end = r.find([':', ' ']).unwrap_or(r.len());
        args.for_atsign = Some(format!("@{}", &r[..end]));
        rest = &r[end..];
    }
    if let Some(r) = strip_verb(rest, ":page:") {
        let end = r.find(' ').unwrap_or(r.len());
        if r[..end].parse::<u64>().is_err() {
            return Err(AtError::syntax("page must be a number"));
        }
        rest = &r[end..];
    }
    if let Some(r) = rest.strip_prefix(' ') {
        let pattern = r.trim();
        if !pattern.is_empty() {
            args.regex =
                Some(regex::Regex::new(pattern).map_err(|_| AtError::syntax("invalid regex"))?);
        }
    } else if !rest.is_empty() {
        return Err(AtError::syntax("invalid scan"));
    }
    Ok(args)
}

pub async fn scan(s: &mut Session, cmd: &str) -> CmdResult {
    let args = parse(cmd)?;
    if args.for_atsign.is_some() {
        // scan:@bob proxies to @bob's atServer: the server-to-server issue.
        return Err(AtError::new(
            crate::error::ErrorCode::AT0007,
            "remote scan is not available on this server yet",
        ));
    }
    let now = s.shared.clock.now_millis();
    let keys: Vec<String> = s.shared.store.call(move |db| db.active_keys(now)).await?;
    let matches = |k: &str| args.regex.as_ref().is_none_or(|r| r.is_match(k));
    let listed: Vec<String> = match &s.auth {
        Auth::Anonymous => keys
            .iter()
            .filter(|k| k.starts_with("public:") && !k.starts_with("public:_"))
            .map(|k| k["public:".len()..].to_string())
            .filter(|k| matches(k))
            .collect(),
        Auth::Peer(peer) => {
            let prefix = format!("{peer}:");
            keys.iter()
                .filter_map(|k| k.strip_prefix(&prefix).map(str::to_string))
                .filter(|k| matches(k))
                .collect()
        }
        Auth::Owner { .. } => keys
            .into_iter()
            .filter(|k| match keys::scan_visibility(k) {
                ScanVisibility::Visible => true,
                ScanVisibility::Hidden => args.show_hidden,
                ScanVisibility::Never => false,
            })
            .filter(|k| {
                s.enrollment().is_none()
                    || (keys::namespace_of(k).is_some() || k.starts_with("public:")) && s.may_see(k)
            })
            .filter(|k| matches(k))
            .collect(),
    };
    Ok(Reply::Data(
        serde_json::to_string(&listed).unwrap_or_else(|_| "[]".into()),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_scan_forms() {
        let a = parse("scan").unwrap();
        assert!(!a.show_hidden && a.regex.is_none());
        let a = parse("scan:showHidden:true .*wavi").unwrap();
        assert!(a.show_hidden && a.regex.is_some());
        let a = parse("scan:@bob:page:2 x").unwrap();
        assert_eq!(a.for_atsign.as_deref(), Some("@bob"));
        assert!(parse("scan:bogus").is_err());
        assert!(parse("scan (").is_err());
    }
}
