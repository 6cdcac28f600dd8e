//! Every example command of atprotocol.md §3, §6 and §8.3 (and atsdk.md §6–§7) parses and
//! formats back byte-identically; non-canonical spellings normalise to the canonical form.

use at_protocol::command::{Command, LookupOp, NotifyOp};
use at_protocol::key::KeyKind;
use at_protocol::AtSign;

const B64: &str = "dGhpcyBpcyBhIHRlc3Q=";

fn examples() -> Vec<String> {
    let raw = [
        // §3.4 / §6 authentication
        "from:@alice",
        r#"from:@alice:clientConfig:{"version":"3.0.38","clientId":"c1","appName":"wavi","appVersion":"1.0","platform":"linux"}"#,
        "from:@bob",
        "cram:8b3c1f0e9a",
        "pkam:SIGNATUREb64==",
        "pkam:signingAlgo:rsa2048:hashingAlgo:sha512:SIGNATUREb64==",
        "pkam:signingAlgo:ecc_secp256r1:SIGNATUREb64==",
        "pkam:signingAlgo:mldsa65:SIGNATUREb64==",
        "pkam:enrollmentId:4be6d2f0-6a1d-4c3c-9d5a-2f7e4f3b1a00:SIGNATUREb64==",
        "pol",
        "to:@bob",
        // §3.5 data verbs
        "update:public:location.wavi@alice Lagos",
        "update:ttl:600000:isEncrypted:false:phone.wavi@alice 123",
        "update:ttr:86400:ccd:true:isEncrypted:true:sharedKeyEnc:SKE:pubKeyCS:5d41402abc4b2a76b9719d911017c592:ivNonce:IV==:@bob:phone.wavi@alice CIPHER==",
        "update:privatekey:at_pkam_publickey PUBKEYb64==",
        "update:public:publickey@alice PUBKEYb64==",
        "update:shared_key.bob@alice RSAFORALICE==",
        "update:ttr:3888000:@bob:shared_key@alice RSAFORBOB==",
        "update:nc:ttl:1000:cAt:2024-10-24T01:35:02.123Z:uAt:2024-10-24T01:35:02Z:phone@alice v a l u e",
        "update:immutable:true:appMetadata:eyJhIjoxfQ==:public:x.app@alice value",
        "update:pubKeyHash:abc123:hashingAlgo:sha256:@bob:k.app@alice v",
        r#"update:json:{"atKey":"@bob:phone.wavi@alice","value":"123","sharedBy":"@alice","sharedWith":"@bob","metadata":{"ttl":1000,"isEncrypted":true}}"#,
        "update:meta:@bob:phone.wavi@alice:ttr:86400:ccd:true",
        "update:meta:public:location.wavi@alice:ttl:1000:encoding:null",
        "update:meta:nc:phone.wavi@alice:isEncrypted:true",
        "llookup:public:publickey@alice",
        "llookup:shared_key.bob@alice",
        "llookup:all:@bob:phone.wavi@alice",
        "llookup:cached:public:publickey@bob",
        "llookup:cached:@alice:phone@bob",
        "llookup:meta:phone.wavi@alice",
        "lookup:phone.wavi@alice",
        "lookup:all:phone.wavi@alice",
        "lookup:bypassCache:true:meta:phone.wavi@bob",
        "lookup:shared_key@alice",
        "lookup:all:publickey@alice",
        "lookup:signing_publickey@bob",
        "lookup:_3f1c2b9e-1111-2222-3333-444455556666@bob",
        "plookup:publickey@bob",
        "plookup:all:location.wavi@bob",
        "plookup:bypassCache:false:all:location.wavi@bob",
        "delete:privatekey:at_secret",
        "delete:public:location.wavi@alice",
        "delete:phone.wavi@alice",
        "delete:@bob:phone.wavi@alice",
        "delete:@bob:shared_key@alice",
        "delete:priority:high:cached:@alice:phone@bob",
        "delete:cached:public:location.wavi@bob",
        "delete:dAt:2024-10-24T01:35:02.123Z:nc:force:x.app@alice",
        "scan",
        "scan:showHidden:true",
        "scan:showHidden:true .*wavi",
        "scan:@bob",
        "scan:@bob .wavi",
        "scan:page:2 .*",
        "scan:cl",
        "scan:cl:showHidden:false .*",
        // §3.6 notifications and §7 atsdk
        "notify:id:6c1b2f3e-0000-4000-8000-000000000001:update:messageType:key:notifier:SYSTEM:ttln:86400000:isEncrypted:true:sharedKeyEnc:SKE:@bob:msg.app@alice:CIPHER==",
        "notify:messageType:text:@bob:hello",
        "notify:update:messageType:key:@bob:public:loc.app@alice:Lagos",
        "notify:id:6c1b2f3e-0000-4000-8000-000000000002:update:isEncrypted:true:ivNonce:IV==:@bob:k.app@alice:CIPHER==",
        "notify:id:6c1b2f3e-0000-4000-8000-000000000003:delete:isEncrypted:true:ivNonce:IV==:@bob:k.app@alice:CIPHER==",
        "notify:priority:high:strategy:latest:latestN:3:notifier:wavi:@bob:k.app@alice:v",
        "notify:list",
        "notify:list:2024-10-01:2024-10-24",
        "notify:list:2024-10-01:2024-10-24:.*wavi",
        "notify:list:.*wavi",
        "notify:status:6c1b2f3e-0000-4000-8000-000000000001",
        "notify:fetch:6c1b2f3e-0000-4000-8000-000000000001",
        "notify:remove:6c1b2f3e-0000-4000-8000-000000000001",
        "notify:all:update:messageType:key:ttl:1000:ttr:-1:ccd:true:@bob,@carol:phone@alice:hello",
        "notify:all:@bob:phone",
        "monitor",
        "monitor:0 .*",
        "monitor:selfNotifications",
        "monitor:strict:selfNotifications:multiplexed:1729733702123 .*wavi",
        "monitor wavi",
        // §3.7 sync and batch
        "sync:from:-1:limit:25",
        "sync:from:42:limit:10:.*wavi",
        "sync:from:42",
        "sync:from:42:limit:10:skipDeletesUntil:30:.*",
        r#"batch:[{"id":1,"command":"update:phone@alice 123"},{"id":2,"command":"delete:phone@alice"}]"#,
        // §3.8 utility verbs
        "info",
        "info:brief",
        "info:mtls",
        "info:mtlsbrief",
        "noop:0",
        "noop:5000",
        "stats",
        "stats:3",
        "stats:1,2,3",
        "stats:3:.*wavi",
        "stats:15:.*",
        "config:block:add:@bob @carol",
        "config:block:remove:@bob",
        "config:block:show",
        "config:set:inboundMaxLimit=10",
        "config:reset:autoNotify",
        "config:print:maxNotificationRetries",
        "otp:get",
        "otp:get:ttl:300000",
        "otp:put:ABC123XYZ",
        "otp:put:ABC123XYZ:ttl:1000",
        // §6 APKAM
        r#"enroll:request:{"appName":"buzz","deviceName":"pixel","namespaces":{"buzz":"rw"},"otp":"A1B2C3","apkamPublicKey":"PUB==","encryptedAPKAMSymmetricKey":"KEY=="}"#,
        r#"enroll:request:{"appName":"wavi","deviceName":"laptop","apkamPublicKey":"PUB==","encryptedDefaultEncryptionPrivateKey":"E1==","encryptedDefaultSelfEncryptionKey":"E2=="}"#,
        "enroll:list",
        r#"enroll:list:{"enrollmentStatusFilter":["pending"]}"#,
        r#"enroll:fetch:{"enrollmentId":"abc"}"#,
        r#"enroll:approve:{"enrollmentId":"abc","encryptedDefaultEncryptionPrivateKey":"E1==","encryptedDefaultSelfEncryptionKey":"E2=="}"#,
        r#"enroll:deny:{"enrollmentId":"abc"}"#,
        r#"enroll:revoke:force:{"enrollmentId":"abc"}"#,
        r#"enroll:unrevoke:{"enrollmentId":"abc"}"#,
        r#"enroll:delete:{"enrollmentId":"abc"}"#,
        "enroll:listns:wavi",
        "keys:get:keyName:abc.default_enc_private_key.__manage@alice",
        "keys:put:public:namespace:wavi:keyType:rsa2048:keyName:mykey PUBVALUE==",
        "keys:put:private:namespace:wavi:appName:wavi:deviceName:pixel:keyName:k VALUE",
        "keys:get:self",
        "keys:delete:keyName:mykey",
        // atsdk.md §6: what the Python SDK sends
        "update:dataSignature:c2ln/+bmF0dXJl==:public:greeting@alice hello world",
        "update:ttl:60000:dataSignature:c2ln:public:greeting@alice hello",
        "update:dataSignature:c2ln:isEncrypted:true:ivNonce:aXY=:secret@alice Q0lQSEVS",
        "update:ttr:86400000:@bob:shared_key@alice UlNB",
        "update:isEncrypted:true:ivNonce:aXY=:@bob:phone@alice Q0lQSEVS",
        "llookup:all:public:greeting@alice",
        "llookup:all:secret@alice",
        "plookup:all:greeting@alice",
        "lookup:all:phone@alice",
        "llookup:meta:@bob:phone@alice",
        "@exit",
    ];
    let mut v: Vec<String> = raw.iter().map(|s| s.to_string()).collect();
    // §8.3 server-to-server delivery command, with and without the optional parts.
    v.push(format!("notify:id:6c1b2f3e-0000-4000-8000-000000000004:update:messageType:key:notifier:SYSTEM:ttln:900000:ttl:0:ttb:0:ttr:86400:ccd:true:isEncrypted:true:sharedKeyEnc:{B64}:pubKeyCS:5d41:encKeyName:k1:encAlgo:AES:ivNonce:{B64}:skeEncKeyName:k2:skeEncAlgo:RSA:@bob:phone.wavi@alice:{B64}"));
    v.push("notify:id:6c1b2f3e-0000-4000-8000-000000000005:delete:messageType:key:notifier:system:ttln:900000:isEncrypted:true:@bob:phone.wavi@alice".to_string());
    v
}

#[test]
fn every_example_round_trips_byte_identically() {
    for text in examples() {
        let cmd = Command::parse(&text).unwrap_or_else(|e| panic!("{text}: {e}"));
        assert_eq!(cmd.to_string(), text, "format of {cmd:?}");
        assert_eq!(Command::parse(&cmd.to_string()), Ok(cmd));
    }
}

#[test]
fn non_canonical_forms_normalise() {
    let cases = [
        ("from:alice", "from:@alice"),
        ("FROM:@Alice", "from:@alice"),
        ("  noop:0\r\n", "noop:0"),
        ("SCAN FOO", "scan foo"),
        ("Monitor Wavi", "monitor wavi"),
        ("scan:showhidden:TRUE .*", "scan:showHidden:true .*"),
        (
            "LLOOKUP:ALL:Public:Location.Wavi@Alice",
            "llookup:all:public:location.wavi@alice",
        ),
        (
            "up date:public:x@alice Keep Case",
            "update:public:x@alice Keep Case",
        ),
        (
            "update:isEncrypted:true:ttl:5:@bob:k@alice v",
            "update:ttl:5:isEncrypted:true:@bob:k@alice v",
        ),
        (
            "notify:isEncrypted:true:id:abc:update:@bob:kk@alice:v",
            "notify:id:abc:update:isEncrypted:true:@bob:kk@alice:v",
        ),
        ("sync:from:5:LIMIT:10", "sync:from:5:limit:10"),
        ("monitor:SELFNOTIFICATIONS", "monitor:selfNotifications"),
    ];
    for (input, want) in cases {
        let cmd = Command::parse(input).unwrap_or_else(|e| panic!("{input}: {e}"));
        assert_eq!(cmd.to_string(), want, "{input}");
    }
}

#[test]
fn parsed_fields_are_the_right_ones() {
    let Command::Update(u) = Command::parse(
        "update:ttr:86400:ccd:true:isEncrypted:true:ivNonce:IV==:@bob:phone.wavi@alice a b:c",
    )
    .unwrap() else {
        panic!("not update")
    };
    assert_eq!(
        u.key.kind(),
        &KeyKind::Shared(AtSign::parse("@bob").unwrap())
    );
    assert_eq!(u.key.namespace(), Some("wavi"));
    assert_eq!(u.value, "a b:c");
    assert_eq!(u.metadata.ttr, Some(86400));
    assert_eq!(u.metadata.ccd, Some(true));
    assert_eq!(u.metadata.iv_nonce.as_deref(), Some("IV=="));

    let Command::Lookup(l) = Command::parse("lookup:all:Phone.Wavi@Bob").unwrap() else {
        panic!("not lookup")
    };
    assert_eq!(l.operation, LookupOp::All);
    assert_eq!(l.key_with_owner(), "phone.wavi@bob");

    let Command::Notify(n) =
        Command::parse("notify:id:x1:update:ivNonce:IV:@bob:msg.app@alice:va:lue").unwrap()
    else {
        panic!("not notify")
    };
    assert_eq!(n.operation, Some(NotifyOp::Update));
    assert_eq!(n.notification_key(), "@bob:msg.app@alice");
    assert_eq!(n.value.as_deref(), Some("va:lue"));

    let Command::From(f) =
        Command::parse(r#"from:@alice:clientConfig:{"version":"3.0.38"}"#).unwrap()
    else {
        panic!("not from")
    };
    assert!(f.client_config.unwrap().wants_json_errors());
    let Command::From(f) =
        Command::parse(r#"from:@alice:clientConfig:{"version":"3.0.37"}"#).unwrap()
    else {
        panic!("not from")
    };
    assert!(!f.client_config.unwrap().wants_json_errors());
}
