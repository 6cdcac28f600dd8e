//! Per-verb table tests: valid forms parse to the expected values, invalid forms are AT0003.

use at_protocol::command::{
    Command, ConfigParams, EnrollOp, InfoKind, KeysOp, KeysVisibility, LookupOp, MessageType,
    OtpOp, ParseError, Priority, Strategy,
};
use at_protocol::key::KeyKind;
use at_protocol::{AtSign, ErrorCode};

fn at(s: &str) -> AtSign {
    AtSign::parse(s).unwrap()
}

fn parse(s: &str) -> Command {
    Command::parse(s).unwrap_or_else(|e| panic!("{s:?}: {e}"))
}

#[test]
fn invalid_forms_are_at0003() {
    let invalid = [
        "",
        "   ",
        "hello",
        "sync:5",
        "sync:from",
        "sync:from:abc",
        "sync:from:-2",
        "sync:from:5:limit:x",
        "sync:from:5:",
        "from:",
        "from:@",
        "from:al ice",
        "from:@alice:clientConfig:",
        "from:@alice:clientConfig:{nope}",
        "from:@alice:other",
        "cram:",
        "pkam:",
        "pkam:signingAlgo:dsa:SIG",
        "pkam:hashingAlgo:md5:SIG",
        "pkam:enrollmentId::SIG",
        "pkam:signingAlgo:rsa2048:",
        "pol:x",
        "polx",
        "update:",
        "update:phone@alice",
        "update:phone@alice ",
        "update:ttl:-1:phone@alice v",
        "update:ttb:-1:phone@alice v",
        "update:ttr:-2:phone@alice v",
        "update:ttl:abc:phone@alice v",
        "update:ccd:maybe:phone@alice v",
        "update:private:x@alice v",
        "update:cached:public:x@bob v",
        "update:local:x@alice v",
        "update:a:b@alice v",
        "update:ttl:1:ttl:2:phone@alice v",
        "update:json:",
        "update:json:{not json}",
        "update:json:{\"value\":\"x\"}",
        "update:meta:",
        "update:meta:phone@alice:bogus:1",
        "update:meta:phone:ttl:1",
        "update:meta:p@alice:ttl:1",
        "llookup:",
        "llookup:phone",
        "llookup:privatekey:at_secret",
        "llookup:x@alice",
        "llookupx:phone@alice",
        "lookup:",
        "lookup:phone",
        "lookup:@alice",
        "lookup:bypassCache:maybe:phone@bob",
        "lookup:phone@bo b",
        "plookup:x",
        "delete:",
        "delete:priority:urgent:x@alice",
        "delete:cached:x@alice",
        "delete:dAt:yesterday:x@alice",
        "delete:x y@alice",
        "scan:showHidden:maybe",
        "scan:page:x",
        "scan .* extra",
        "scanx",
        "scan:@",
        "stats:0",
        "stats:x",
        "stats:1:.*",
        "stats:",
        "config:",
        "config:block:add:bob",
        "config:block:add:",
        "config:block:show:x",
        "config:block:list",
        "config:set:nameonly",
        "config:reset:",
        "config:other:x",
        "monitor:x",
        "monitor:selfnotifications:strict",
        "notify:",
        "notify:@bob",
        "notify:@bob:",
        "notify:@bob:k",
        "notify:hello",
        "notify:messageType:sms:@bob:hello",
        "notify:priority:urgent:@bob:kk@alice",
        "notify:strategy:latest:@bob:kk@alice",
        "notify:strategy:sometimes:notifier:x:@bob:kk@alice",
        "notify:id:a b:@bob:kk@alice",
        "notify:id:x:id:y:@bob:kk@alice",
        "notify:latestN:x:@bob:kk@alice",
        "notify:@bob:kk@alice:",
        "notify:@bob:kk@al ice:v",
        "notify:status:",
        "notify:status:a b",
        "notify:remove:a.b",
        "notify:fetch:",
        "notify:list:x:y",
        "notify:all:",
        "notify:all:@bob",
        "notify:all:@bob:",
        "notify:all:ttl:x:@bob:k",
        "batch:",
        "batch:{}",
        "batch:[{\"id\":\"one\"}]",
        "info:full",
        "infox",
        "noop:",
        "noop:-1",
        "noop:x",
        "enroll:",
        "enroll:dance:{}",
        "enroll:request:{bad json",
        "enroll:listns:a b",
        "enroll:delete:ns\t:",
        "otp:",
        "otp:set",
        "otp:put:abc",
        "otp:get:ttl:x",
        "otp:get:extra",
        "keys:",
        "keys:post",
        "keys:put:namespace:a.b",
        "keys:get:keyName:",
        "to:",
        "to:@bob extra",
        "@exit now",
    ];
    for text in invalid {
        match Command::parse(text) {
            Err(e) => assert_eq!(e.error_code(), ErrorCode::InvalidSyntax, "{text}"),
            Ok(c) => panic!("{text:?} parsed as {c:?}"),
        }
    }
    assert_eq!(Command::parse("hello"), Err(ParseError::UnknownVerb));
    assert_eq!(Command::parse(""), Err(ParseError::UnknownVerb));
}

#[test]
fn update_and_delete_key_kinds() {
    let cases = [
        ("update:public:x.app@alice v", KeyKind::Public),
        ("update:x.app@alice v", KeyKind::SelfKey),
        ("update:@bob:x.app@alice v", KeyKind::Shared(at("@bob"))),
        ("update:privatekey:at_pkam_publickey v", KeyKind::PrivateKey),
        ("update:configkey v", KeyKind::Reserved),
        ("delete:privatekey:at_secret", KeyKind::PrivateKey),
        ("delete:cached:public:x@bob", KeyKind::CachedPublic),
        (
            "delete:cached:@alice:x@bob",
            KeyKind::CachedShared(at("@alice")),
        ),
    ];
    for (text, kind) in cases {
        let key = match parse(text) {
            Command::Update(u) => u.key,
            Command::Delete(d) => d.key,
            other => panic!("{other:?}"),
        };
        assert_eq!(key.kind(), &kind, "{text}");
    }
    let Command::Delete(d) = parse("delete:priority:low:x@alice") else {
        panic!()
    };
    assert_eq!(d.priority, Some(Priority::Low));
    let Command::UpdateMeta(m) = parse("update:meta:nc:@bob:kk@alice:ttr:10") else {
        panic!()
    };
    assert!(m.no_commit);
    assert_eq!(m.metadata.ttr, Some(10));
    // A key that happens to be called `nc` is a key, not the flag.
    let Command::Update(u) = parse("update:nc@alice v") else {
        panic!()
    };
    assert!(!u.no_commit);
    assert_eq!(u.key.to_string(), "nc@alice");
    let Command::UpdateJson(j) = parse(r#"update:json:{"atKey":"public:x@alice","value":"v"}"#)
    else {
        panic!()
    };
    assert_eq!(j.key.kind(), &KeyKind::Public);
    assert_eq!(j.value, serde_json::json!("v"));
}

#[test]
fn lookups() {
    let Command::Llookup(l) = parse("llookup:meta:cached:@alice:phone@bob") else {
        panic!()
    };
    assert_eq!(l.operation, LookupOp::Meta);
    assert!(l.key.is_cached());
    let Command::Plookup(p) = parse("plookup:bypassCache:true:publickey@bob") else {
        panic!()
    };
    assert_eq!(p.bypass_cache, Some(true));
    assert_eq!(p.owner, at("@bob"));
    assert_eq!(p.key, "publickey");
}

#[test]
fn scan_monitor_stats() {
    let Command::Scan(s) = parse("scan:showHidden:true:@bob:page:3 .*") else {
        panic!()
    };
    assert_eq!(s.show_hidden, Some(true));
    assert_eq!(s.for_atsign, Some(at("@bob")));
    assert_eq!(s.page, Some(3));
    assert_eq!(s.regex.as_deref(), Some(".*"));
    let Command::Monitor(m) = parse("monitor:selfNotifications:1700000000000 .*Wavi") else {
        panic!()
    };
    assert!(m.self_notifications && !m.strict);
    assert_eq!(m.epoch_millis, Some(1_700_000_000_000));
    assert_eq!(m.regex.as_deref(), Some(".*Wavi"));
    let Command::Stats(s) = parse("stats:1,2,15") else {
        panic!()
    };
    assert_eq!(s.ids, [1, 2, 15]);
    let Command::Stats(s) = parse("stats:3:.*wavi") else {
        panic!()
    };
    assert_eq!((s.ids, s.regex.as_deref()), (vec![3], Some(".*wavi")));
}

#[test]
fn notify_family() {
    let Command::Notify(n) = parse(
        "notify:id:n1:messageType:text:priority:medium:strategy:latest:latestN:2:notifier:app:ttln:1000:@bob:hello there",
    ) else {
        panic!()
    };
    assert_eq!(n.message_type, Some(MessageType::Text));
    assert_eq!(n.priority, Some(Priority::Medium));
    assert_eq!(n.strategy, Some(Strategy::Latest));
    assert_eq!(n.latest_n, Some(2));
    assert_eq!(n.ttln, Some(1000));
    assert_eq!(n.key, "hello there");
    assert_eq!(n.owner, None);
    let Command::Notify(n) = parse("notify:public:loc.app@alice:v") else {
        panic!()
    };
    assert_eq!(n.to, None);
    assert_eq!(n.notification_key(), "public:loc.app@alice");
    let Command::NotifyAll(a) = parse("notify:all:delete:@bob,@carol:kk@alice") else {
        panic!()
    };
    assert_eq!(a.recipients, [at("@bob"), at("@carol")]);
    let Command::NotifyList(l) = parse("notify:list:2024-1-5:.*") else {
        panic!()
    };
    assert_eq!(l.from_date.as_deref(), Some("2024-1-5"));
    assert_eq!(l.regex.as_deref(), Some(".*"));
}

#[test]
fn admin_and_apkam() {
    assert_eq!(parse("info"), Command::Info(InfoKind::Full));
    assert_eq!(parse("INFO:BRIEF"), Command::Info(InfoKind::Brief));
    assert_eq!(parse("noop:250"), Command::Noop { delay_millis: 250 });
    assert_eq!(
        parse("config:block:add:@Bob @carol"),
        Command::Config(ConfigParams::BlockAdd(vec!["@Bob".into(), "@carol".into()]))
    );
    let Command::Otp(o) = parse("otp:put:Secret_123:ttl:60000") else {
        panic!()
    };
    assert_eq!(o.operation, OtpOp::Put(Some("Secret_123".into())));
    assert_eq!(o.ttl, Some(60000));
    let Command::Enroll(e) = parse(
        r#"enroll:request:{"appName":"a","deviceName":"d","namespaces":{"wavi":"rw"},"apkamPublicKey":"P","extra":1}"#,
    ) else {
        panic!()
    };
    assert_eq!(e.operation, EnrollOp::Request);
    let req = e.request.unwrap();
    assert_eq!(req.app_name.as_deref(), Some("a"));
    assert_eq!(req.namespaces.unwrap()["wavi"], "rw");
    assert_eq!(req.other["extra"], serde_json::json!(1));
    let Command::Enroll(e) = parse("enroll:listns:wavi") else {
        panic!()
    };
    assert_eq!(e.operation, EnrollOp::ListNs);
    assert_eq!(e.list_namespace.as_deref(), Some("wavi"));
    let Command::Keys(k) = parse("keys:put:self:namespace:ns:keyName:k1 some value") else {
        panic!()
    };
    assert_eq!(k.operation, KeysOp::Put);
    assert_eq!(k.visibility, Some(KeysVisibility::SelfKeys));
    assert_eq!(k.key_name.as_deref(), Some("k1"));
    assert_eq!(k.key_value.as_deref(), Some("some value"));
    assert!(parse("update:x@alice v").requires_auth());
    assert!(!parse("lookup:x@alice").requires_auth());
    assert_eq!(parse("notify:all:@bob:kk").verb(), "notify:all");
}
