//! Property tests: `parse(format(x)) == x` for generated commands, keys and metadata.

use std::collections::BTreeMap;

use at_protocol::command::{
    BatchParams, BatchRequest, ClientConfig, Command, ConfigParams, DeleteParams, EnrollOp,
    EnrollParams, EnrollRequest, FromParams, InfoKind, KeysOp, KeysParams, KeysVisibility,
    LlookupParams, LookupOp, LookupParams, MessageType, MonitorParams, NotifyAllParams,
    NotifyListParams, NotifyOp, NotifyParams, OtpOp, OtpParams, PkamParams, Priority, ScanParams,
    StatsParams, Strategy as NotifyStrategy, StreamOp, StreamParams, SyncFromParams,
    UpdateJsonParams, UpdateMetaParams, UpdateParams,
};
use at_protocol::key::{AtKey, KeyKind};
use at_protocol::{AtSign, Metadata};
use jiff::Timestamp;
use proptest::collection::vec;
use proptest::option::of;
use proptest::prelude::*;

fn atsign() -> BoxedStrategy<AtSign> {
    "[a-z0-9_][a-z0-9_\\-]{0,11}(🛠)?"
        .prop_map(|s| AtSign::parse(&s).unwrap())
        .boxed()
}

/// A key name: `[^:@\s]+`, lower-case, at least 2 chars.
fn name() -> BoxedStrategy<String> {
    "[a-z0-9_][a-z0-9_.\\-]{1,20}".boxed()
}

fn b64() -> BoxedStrategy<String> {
    "[A-Za-z0-9+/]{1,24}={0,2}".boxed()
}

/// Printable, no leading/trailing space (the command line is trimmed).
fn value() -> BoxedStrategy<String> {
    "[!-~]([ -~]{0,30}[!-~])?".boxed()
}

fn timestamp() -> BoxedStrategy<Timestamp> {
    (0i64..4_000_000_000, 0i32..1000)
        .prop_map(|(s, ms)| Timestamp::new(s, ms * 1_000_000).unwrap())
        .boxed()
}

fn key_of(kinds: Vec<u8>) -> BoxedStrategy<AtKey> {
    (proptest::sample::select(kinds), name(), atsign(), atsign())
        .prop_map(|(k, n, with, owner)| {
            let kind = match k {
                0 => KeyKind::Public,
                1 => KeyKind::SelfKey,
                2 => KeyKind::Shared(with),
                3 => KeyKind::Private,
                4 => KeyKind::CachedPublic,
                5 => KeyKind::CachedShared(with),
                6 => KeyKind::Local,
                7 => KeyKind::PrivateKey,
                _ => KeyKind::Reserved,
            };
            AtKey::new(kind, &n, Some(owner)).unwrap()
        })
        .boxed()
}

fn metadata() -> BoxedStrategy<Metadata> {
    let numbers = (
        of(0i64..i64::MAX),
        of(0i64..1_000_000_000),
        of(-1i64..100_000_000),
        of(any::<bool>()),
        of(timestamp()),
        of(timestamp()),
        of(timestamp()),
        of(timestamp()),
        of(any::<bool>()),
        of(any::<bool>()),
        of(any::<bool>()),
    );
    let strings = (
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
        of(b64()),
    );
    (numbers, strings, of(b64()))
        .prop_map(|(n, s, app)| Metadata {
            ttl: n.0,
            ttb: n.1,
            ttr: n.2,
            ccd: n.3,
            c_at: n.4,
            u_at: n.5,
            e_at: n.6,
            a_at: n.7,
            is_binary: n.8,
            is_encrypted: n.9,
            immutable: n.10,
            data_signature: s.0,
            shared_key_status: s.1,
            shared_key_enc: s.2,
            pub_key_cs: s.3,
            pub_key_hash: s.4,
            hashing_algo: s.5,
            encoding: s.6,
            enc_key_name: s.7,
            enc_algo: s.8,
            iv_nonce: s.9,
            ske_enc_key_name: s.10,
            ske_enc_algo: s.11,
            app_metadata: app,
            ..Default::default()
        })
        .boxed()
}

/// Metadata as stored: server fields set, fragment-only fields absent (for the JSON shapes).
fn stored_metadata() -> BoxedStrategy<Metadata> {
    (
        metadata(),
        atsign(),
        of(timestamp()),
        of(timestamp()),
        of(timestamp()),
        of(0i64..1000),
    )
        .prop_map(|(mut m, by, c, u, e, v)| {
            m.created_by = Some(by.to_string());
            m.updated_by = Some(by.to_string());
            m.created_at = c;
            m.updated_at = u;
            m.expires_at = e;
            m.status = Some("active".into());
            m.version = v;
            m.c_at = None;
            m.u_at = None;
            m.e_at = None;
            m.a_at = None;
            m.shared_key_status = None;
            m
        })
        .boxed()
}

fn priority() -> BoxedStrategy<Priority> {
    prop_oneof![
        Just(Priority::Low),
        Just(Priority::Medium),
        Just(Priority::High)
    ]
    .boxed()
}

fn lookup_params() -> BoxedStrategy<LookupParams> {
    (
        of(any::<bool>()),
        prop_oneof![
            Just(LookupOp::Value),
            Just(LookupOp::Meta),
            Just(LookupOp::All)
        ],
        name(),
        atsign(),
    )
        .prop_map(|(bypass_cache, operation, key, owner)| LookupParams {
            bypass_cache,
            operation,
            key,
            owner,
        })
        .boxed()
}

fn auth_commands() -> BoxedStrategy<Command> {
    prop_oneof![
        (atsign(), of(("[0-9]\\.[0-9]\\.[0-9]{1,2}", "[a-z]{1,8}"))).prop_map(|(a, cc)| {
            let client_config = cc.map(|(v, app)| {
                let raw = serde_json::json!({"version": v, "appName": app}).to_string();
                ClientConfig::parse(&raw).unwrap()
            });
            Command::From(FromParams {
                atsign: a,
                client_config,
            })
        }),
        "[0-9a-f]{8,128}".prop_map(|digest| Command::Cram { digest }),
        (
            of(prop_oneof![
                Just("rsa2048"),
                Just("ecc_secp256r1"),
                Just("mldsa65")
            ]),
            of(prop_oneof![Just("sha256"), Just("sha512")]),
            of("[a-z0-9\\-]{1,36}"),
            b64(),
        )
            .prop_map(|(s, h, e, signature)| Command::Pkam(PkamParams {
                signing_algo: s.map(str::to_string),
                hashing_algo: h.map(str::to_string),
                enrollment_id: e,
                signature,
            })),
        Just(Command::Pol),
        Just(Command::Exit),
        atsign().prop_map(Command::To),
    ]
    .boxed()
}

fn data_commands() -> BoxedStrategy<Command> {
    let update_key = prop_oneof![
        key_of(vec![0, 1, 2, 8]),
        Just(AtKey::parse("privatekey:at_pkam_publickey").unwrap()),
    ];
    prop_oneof![
        (any::<bool>(), metadata(), update_key, value()).prop_map(|(nc, metadata, key, value)| {
            Command::Update(UpdateParams {
                no_commit: nc,
                metadata,
                key,
                value,
            })
        }),
        (any::<bool>(), key_of(vec![0, 1, 2]), value()).prop_map(|(nc, key, v)| {
            let raw = serde_json::json!({"atKey": key.to_string(), "value": v}).to_string();
            Command::UpdateJson(UpdateJsonParams::from_json(nc, &raw).unwrap())
        }),
        (any::<bool>(), key_of(vec![0, 1, 2]), metadata()).prop_map(|(nc, key, metadata)| {
            Command::UpdateMeta(UpdateMetaParams {
                no_commit: nc,
                key,
                metadata,
            })
        }),
        (
            prop_oneof![
                Just(LookupOp::Value),
                Just(LookupOp::Meta),
                Just(LookupOp::All)
            ],
            key_of(vec![0, 1, 2, 3, 4, 5, 6]),
        )
            .prop_map(|(operation, key)| Command::Llookup(LlookupParams { operation, key })),
        lookup_params().prop_map(Command::Lookup),
        lookup_params().prop_map(Command::Plookup),
        (
            of(timestamp()),
            any::<bool>(),
            any::<bool>(),
            of(priority()),
            prop_oneof![
                key_of(vec![0, 1, 2, 4, 5, 8]),
                Just(AtKey::parse("privatekey:at_secret").unwrap()),
            ],
        )
            .prop_map(|(deleted_at, no_commit, force, priority, key)| {
                Command::Delete(DeleteParams {
                    deleted_at,
                    no_commit,
                    force,
                    priority,
                    key,
                })
            }),
        (
            any::<bool>(),
            of(any::<bool>()),
            of(atsign()),
            of(0u64..100),
            of("[a-z0-9.*_\\-]{1,12}"),
        )
            .prop_map(|(commit_log, show_hidden, for_atsign, page, regex)| {
                Command::Scan(ScanParams {
                    commit_log,
                    show_hidden,
                    for_atsign,
                    page,
                    regex,
                })
            }),
    ]
    .boxed()
}

fn notify_commands() -> BoxedStrategy<Command> {
    let op = || of(prop_oneof![Just(NotifyOp::Update), Just(NotifyOp::Delete)]);
    let mt = || of(prop_oneof![Just(MessageType::Key), Just(MessageType::Text)]);
    let notify = (
        (
            of("[a-z0-9\\-_]{1,20}"),
            op(),
            mt(),
            of(priority()),
            of(prop_oneof![
                Just(NotifyStrategy::All),
                Just(NotifyStrategy::Latest)
            ]),
            of(0u64..10),
            of("[A-Za-z0-9_.]{1,10}"),
            of(0u64..100_000_000),
        ),
        metadata(),
        of(atsign()),
        name(),
        of((atsign(), of(value()))),
    )
        .prop_map(|(h, metadata, to, key, owner_value)| {
            let (owner, value) = match owner_value {
                Some((o, v)) => (Some(o), v),
                None => (None, None),
            };
            let notifier = if h.4 == Some(NotifyStrategy::Latest) && h.6.is_none() {
                Some("system".to_string())
            } else {
                h.6
            };
            Command::Notify(NotifyParams {
                id: h.0,
                operation: h.1,
                message_type: h.2,
                priority: h.3,
                strategy: h.4,
                latest_n: h.5,
                notifier,
                ttln: h.7,
                metadata,
                to,
                key,
                owner,
                value,
            })
        });
    let date = "20[0-9]{2}-(0[1-9]|1[0-2])-(0[1-9]|[12][0-9])";
    let list = (of(date), of(date), of("[a-z.*]{1,8}")).prop_map(|(f, t, regex)| {
        let (from_date, to_date) = match (f, t) {
            (None, Some(t)) => (Some(t), None),
            other => other,
        };
        Command::NotifyList(NotifyListParams {
            from_date,
            to_date,
            regex,
        })
    });
    let all = (
        (
            op(),
            mt(),
            of(0u64..1_000_000),
            of(0u64..1_000_000),
            of(-1i64..1_000_000),
            of(any::<bool>()),
        ),
        vec(atsign(), 1..4),
        "[a-z0-9_.]{1,12}",
        of((atsign(), of(value()))),
    )
        .prop_map(|(h, recipients, key, owner_value)| {
            let (owner, value) = match owner_value {
                Some((o, v)) => (Some(o), v),
                None => (None, None),
            };
            Command::NotifyAll(NotifyAllParams {
                operation: h.0,
                message_type: h.1,
                ttl: h.2,
                ttb: h.3,
                ttr: h.4,
                ccd: h.5,
                recipients,
                key,
                owner,
                value,
            })
        });
    let monitor = (
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        of(any::<u64>()),
        of("[a-z0-9.*_ \\-]{0,10}[a-z0-9.*]"),
    )
        .prop_map(
            |(strict, self_notifications, multiplexed, epoch_millis, regex)| {
                Command::Monitor(MonitorParams {
                    strict,
                    self_notifications,
                    multiplexed,
                    epoch_millis,
                    regex,
                })
            },
        );
    let id = || "[a-z0-9\\-_]{1,36}";
    prop_oneof![
        notify,
        list,
        all,
        monitor,
        id().prop_map(|id| Command::NotifyStatus { id }),
        id().prop_map(|id| Command::NotifyFetch { id }),
        id().prop_map(|id| Command::NotifyRemove { id }),
    ]
    .boxed()
}

fn other_commands() -> BoxedStrategy<Command> {
    let block = || vec("@[a-zA-Z0-9_]{1,8}", 1..4);
    let config = prop_oneof![
        block().prop_map(ConfigParams::BlockAdd),
        block().prop_map(ConfigParams::BlockRemove),
        Just(ConfigParams::BlockShow),
        ("[a-zA-Z]{1,12}", "[a-zA-Z0-9=]{0,6}")
            .prop_map(|(name, value)| ConfigParams::Set { name, value }),
        "[a-zA-Z]{1,12}".prop_map(ConfigParams::Reset),
        "[a-zA-Z]{1,12}".prop_map(ConfigParams::Print),
    ];
    let stats = prop_oneof![
        vec(1u32..20, 0..4).prop_map(|ids| StatsParams { ids, regex: None }),
        (prop_oneof![Just(3u32), Just(15u32)], "[ -~]{0,8}[!-~]").prop_map(|(id, r)| StatsParams {
            ids: vec![id],
            regex: Some(r),
        }),
    ];
    let sync = (-1i64..1_000_000, of(0u64..100), of(0u64..1000), of(value())).prop_map(
        |(from, limit, skip_deletes_until, regex)| {
            Command::SyncFrom(SyncFromParams {
                from,
                limit,
                skip_deletes_until,
                regex,
            })
        },
    );
    let batch = vec((0i64..100, value()), 0..4).prop_map(|reqs| {
        Command::Batch(BatchParams::new(
            reqs.into_iter()
                .map(|(id, command)| BatchRequest { id, command })
                .collect(),
        ))
    });
    let enroll = (
        proptest::sample::select(EnrollOp::ALL.to_vec()),
        any::<bool>(),
        of("[a-z]{1,8}".prop_filter("not a flag", |s| s != "force")),
        of((
            of("[a-z]{1,8}"),
            of("[a-z]{1,8}"),
            of(vec(
                ("[a-z]{1,6}", prop_oneof![Just("r"), Just("rw")]),
                0..3,
            )),
        )),
    )
        .prop_map(|(op, force, ns, req)| {
            let request = req.map(|(app, device, namespaces)| EnrollRequest {
                app_name: app,
                device_name: device,
                namespaces: namespaces.map(|n| {
                    n.into_iter()
                        .map(|(k, v)| (k, v.to_string()))
                        .collect::<BTreeMap<_, _>>()
                }),
                ..Default::default()
            });
            let mut p = EnrollParams::new(op, request);
            p.force = force;
            p.list_namespace = ns;
            Command::Enroll(p)
        });
    let otp = (
        prop_oneof![
            Just(OtpOp::Get),
            of("[A-Za-z0-9_]{6,12}".prop_filter("not ttl", |s| !s.starts_with("ttl")))
                .prop_map(OtpOp::Put),
        ],
        of(0u64..1_000_000),
    )
        .prop_map(|(operation, ttl)| Command::Otp(OtpParams { operation, ttl }));
    let word = || of("[a-z0-9_]{1,8}");
    let keys = (
        prop_oneof![Just(KeysOp::Put), Just(KeysOp::Get), Just(KeysOp::Delete)],
        of(prop_oneof![
            Just(KeysVisibility::Public),
            Just(KeysVisibility::Private),
            Just(KeysVisibility::SelfKeys),
        ]),
        (word(), word(), word(), word(), word()),
        of(("[a-z0-9_.@:]{1,16}", of(value()))),
    )
        .prop_map(|(operation, visibility, w, kv)| {
            let (key_name, key_value) = match kv {
                Some((k, v)) => (Some(k), v),
                None => (None, None),
            };
            Command::Keys(KeysParams {
                operation,
                visibility,
                namespace: w.0,
                app_name: w.1,
                device_name: w.2,
                key_type: w.3,
                encryption_key_name: w.4,
                key_name,
                key_value,
            })
        });
    prop_oneof![
        config.prop_map(Command::Config),
        stats.prop_map(Command::Stats),
        sync,
        batch,
        prop_oneof![
            Just(InfoKind::Full),
            Just(InfoKind::Brief),
            Just(InfoKind::Mtls),
            Just(InfoKind::MtlsBrief)
        ]
        .prop_map(Command::Info),
        any::<u64>().prop_map(|delay_millis| Command::Noop { delay_millis }),
        enroll,
        otp,
        keys,
    ]
    .boxed()
}

/// `stream:<op>[@<receiver>][ namespace:<ns>][ startByte:<n>] <id>[ <fileName> <length>]`
fn stream_commands() -> BoxedStrategy<Command> {
    (
        proptest::sample::select(StreamOp::ALL.to_vec()),
        of("[a-z0-9_]{1,10}"),
        of("[A-Za-z0-9_\\-]{1,10}"),
        of(any::<u64>()),
        "[A-Za-z0-9_\\-]{1,36}",
        of(("[A-Za-z0-9+/=]{1,16}( [A-Za-z0-9.]{1,6})?", any::<u64>())),
    )
        .prop_map(
            |(operation, receiver, namespace, start_byte, stream_id, file)| {
                let (file_name, length) = file.map_or((None, None), |(n, l)| (Some(n), Some(l)));
                Command::Stream(StreamParams {
                    operation,
                    receiver,
                    namespace,
                    start_byte,
                    stream_id,
                    file_name,
                    length,
                })
            },
        )
        .boxed()
}

fn command() -> BoxedStrategy<Command> {
    prop_oneof![
        auth_commands(),
        data_commands(),
        notify_commands(),
        other_commands(),
        stream_commands()
    ]
    .boxed()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(1024))]

    #[test]
    fn command_round_trips(cmd in command()) {
        let text = cmd.to_string();
        prop_assert_eq!(at_protocol::command::route(&text), at_protocol::command::Verb::of(&cmd), "{}", text);
        prop_assert_eq!(Command::parse(&text), Ok(cmd), "{}", text);
    }

    #[test]
    fn key_round_trips(key in key_of((0..9).collect())) {
        prop_assert_eq!(AtKey::parse(&key.to_string()), Ok(key.clone()));
        // Upper-case input is the same key.
        prop_assert_eq!(AtKey::parse(&key.to_string().to_uppercase()).ok(), Some(key));
    }

    #[test]
    fn fragment_round_trips(m in metadata()) {
        prop_assert_eq!(Metadata::parse_fragment(&m.to_fragment()), Ok(m));
    }

    #[test]
    fn json_shapes_round_trip(m in stored_metadata()) {
        prop_assert_eq!(Metadata::from_json(&m.to_lookup_json()), Ok(m.clone()));
        prop_assert_eq!(Metadata::from_json(&m.to_sync_json()), Ok(m.clone()));
        prop_assert!(m.to_sync_json().as_object().unwrap().values().all(|v| v.is_string()));
    }

    #[test]
    fn merge_is_idempotent_for_the_same_update(stored in stored_metadata(), incoming in metadata()) {
        let once = Metadata::merge_update(&stored, &incoming);
        let twice = Metadata::merge_update(&once, &incoming);
        prop_assert_eq!(once.clone(), twice);
        prop_assert!(once.shared_key_status.is_none());
        prop_assert!(once.ttr.is_some() || once.ccd.is_none());
    }

    #[test]
    fn dart_millis_round_trip(ms in 0i64..=253_402_300_799_999) {
        let text = at_protocol::time::format_dart_millis(ms).expect("in range");
        prop_assert_eq!(text.len(), 24, "{}", text);
        let back = at_protocol::time::parse_date(&text).map(|t| t.as_millisecond());
        prop_assert_eq!(back, Ok(ms), "{}", text);
    }

    #[test]
    fn dart_millis_never_panics(ms in any::<i64>()) {
        let _ = at_protocol::time::format_dart_millis(ms);
    }
}
