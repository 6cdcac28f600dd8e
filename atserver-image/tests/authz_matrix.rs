//! The authorization matrix (issue 16): every verb the atServer accepts, sent over TLS by every kind of
//! connection, with what happened recorded as `ok` (a `data:` reply, or the close `@exit` asks for) or
//! the error code, and compared with the expected table below. The observed table is written to
//! `docs/authorization.md`: with `ATFLEET_BLESS=1` the test rewrites that file, otherwise it fails when
//! the checked-in file differs from what it observed.
//!
//! Rows come from the protocol's verb enum: `verbs!` and [`rows`] match on `Verb` without a wildcard,
//! so a verb added to the protocol does not compile here until it is listed and has its rows, and
//! every operation in `EnrollOp::ALL` and `StreamOp::ALL` must have a row too. Each cell runs on a
//! fresh connection from its own loopback source address, so one cell's failed authentications never
//! throttle another's, and objects a cell may change (a key to delete, an enrollment to approve, a
//! notification to remove) are made anew for it.
//!
//! Needs PostgreSQL (the fleet's atdirectory): run under `scripts/with-postgres`.

#[path = "common/fleet.rs"]
mod fleet;
#[allow(dead_code)] // the matrix needs only part of the shared key helpers
#[path = "common/keys.rs"]
mod keys;

use std::fmt::Write as _;
use std::net::{Ipv4Addr, SocketAddr};
use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Duration;

use at_protocol::client::{AtConnection, PolChallenge};
use at_protocol::command::{route, EnrollOp, StreamOp, Verb};
use at_protocol::crypto::{cram_digest, private_key_from_b64, sign_data};
use at_protocol::Command;
use fleet::{json, send, Fleet, Leaf, Node};
use rustls::pki_types::pem::PemObject;
use rustls::pki_types::{CertificateDer, PrivateKeyDer, ServerName};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio_rustls::client::TlsStream;
use tokio_rustls::TlsConnector;

/// The kinds of connection, in the column order of the table.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    Anonymous,
    Cram,
    Pkam,
    ApkamWithNs,
    ApkamWithoutNs,
    Manage,
    Peer,
    WrongCert,
}

const KINDS: [Kind; 8] = [
    Kind::Anonymous,
    Kind::Cram,
    Kind::Pkam,
    Kind::ApkamWithNs,
    Kind::ApkamWithoutNs,
    Kind::Manage,
    Kind::Peer,
    Kind::WrongCert,
];

impl Kind {
    fn header(self) -> &'static str {
        match self {
            Kind::Anonymous => "unauthenticated",
            Kind::Cram => "CRAM",
            Kind::Pkam => "PKAM (owner, legacy key)",
            Kind::ApkamWithNs => "APKAM `wavi:rw`",
            Kind::ApkamWithoutNs => "APKAM `buzz:rw` (not `wavi`)",
            Kind::Manage => "APKAM `__manage`",
            Kind::Peer => "peer `@carol` (pol)",
            Kind::WrongCert => "peer with the wrong certificate",
        }
    }
}

/// What a cell sends once its connection is open.
#[derive(Debug, Clone, Copy)]
enum Probe {
    /// One command line; its reply is the outcome.
    Line(&'static str),
    /// `from:@alice` then `cram:` with the right digest.
    Cram,
    /// `from:@alice` then `pkam:` signed with the owner's legacy PKAM key.
    Pkam,
    /// The pol handshake as @carol: `from:@carol`, @carol's server publishes the signed proof,
    /// `pol`.
    Pol,
    /// `@exit`: the server closes the connection.
    Exit,
    /// A verb that answers nothing when accepted (`monitor`, `stream:init`), then `noop:0`: a
    /// refused one answers with an error first; an accepted one lets the noop answer.
    Quiet(&'static str),
    /// A `batch:` line; the outcome is that of the command inside it (the batch itself answers
    /// `data:` with each command's reply or error).
    Batch(&'static str),
}

/// What the owner prepares before each cell of a row; its result fills `{id}` in the line.
#[derive(Debug, Clone, Copy)]
enum Setup {
    None,
    /// A self key `gone.wavi@alice` to delete.
    Key,
    /// A fresh OTP (`{id}`), for `enroll:request`.
    Otp,
    /// An enrollment request waiting for approval.
    Pending,
    /// An approved enrollment (not the one the cell authenticates with).
    Approved,
    /// A revoked enrollment.
    Revoked,
    /// A notification the owner sent to itself.
    Notification,
    /// An id no other cell uses.
    Fresh,
}

struct Row {
    /// What the row shows, e.g. `llookup` of a self key.
    what: &'static str,
    probe: Probe,
    setup: Setup,
    /// One outcome per `KINDS` column: `ok`, `closed`, or an error code.
    expected: [&'static str; 8],
}

const fn row(what: &'static str, probe: Probe, setup: Setup, expected: [&'static str; 8]) -> Row {
    Row {
        what,
        probe,
        setup,
        expected,
    }
}

const fn line(what: &'static str, text: &'static str, expected: [&'static str; 8]) -> Row {
    row(what, Probe::Line(text), Setup::None, expected)
}

const OK: &str = "ok";
const E401: &str = "AT0401";
const E3: &str = "AT0003";
const E9: &str = "AT0009";
const E11: &str = "AT0011";
const E15: &str = "AT0015";
/// Owner verbs on keys: every owner connection, an enrollment only in its namespaces.
const OWNER_NS: [&str; 8] = [E401, OK, OK, OK, E9, OK, E401, E401];
/// Owner verbs that touch no namespaced key.
const OWNER: [&str; 8] = [E401, OK, OK, OK, OK, OK, E401, E401];
/// Enrollment management: CRAM, the owner's PKAM and `__manage` enrollments.
const MANAGE: [&str; 8] = [E401, OK, OK, E11, E11, OK, E401, E401];

/// The rows of each verb. No wildcard: a new `Verb` fails to compile until it has rows here.
fn rows(verb: Verb) -> Vec<Row> {
    use Probe as P;
    use Setup as S;
    const ALL_OK: [&str; 8] = [OK; 8];
    match verb {
        Verb::Empty => vec![line("blank line", "", [E3; 8])],
        Verb::Exit => vec![row("`@exit`", P::Exit, S::None, ["closed"; 8])],
        Verb::From => vec![line("`from:@alice`", "from:@alice", ALL_OK)],
        Verb::Cram => vec![row("`cram:` (right digest)", P::Cram, S::None, ALL_OK)],
        Verb::Pkam => vec![row("`pkam:` (owner's key)", P::Pkam, S::None, ALL_OK)],
        Verb::Pol => vec![row(
            "`from:@carol` + proof + `pol`",
            P::Pol,
            S::None,
            [E401, E401, E401, E401, E401, E401, OK, E401],
        )],
        Verb::To => vec![line("`to:@alice`", "to:@alice", ALL_OK)],
        Verb::Update => vec![
            line(
                "`update` public key in `wavi`",
                "update:public:card.wavi@alice v",
                OWNER_NS,
            ),
            line(
                "`update` key shared with @carol",
                "update:@carol:note.wavi@alice for-carol",
                OWNER_NS,
            ),
            line(
                "`update` self key in `wavi`",
                "update:secret.wavi@alice s",
                OWNER_NS,
            ),
            line(
                "`update:json`",
                r#"update:json:{"atKey":"json.wavi@alice","value":"j"}"#,
                OWNER_NS,
            ),
        ],
        Verb::UpdateMeta => vec![line(
            "`update:meta` self key in `wavi`",
            "update:meta:secret.wavi@alice:ttr:-1",
            OWNER_NS,
        )],
        Verb::Llookup => vec![
            line(
                "`llookup` self key in `wavi`",
                "llookup:secret.wavi@alice",
                OWNER_NS,
            ),
            line(
                "`llookup` public key",
                "llookup:public:card.wavi@alice",
                OWNER,
            ),
            line(
                "`llookup` key shared with @carol",
                "llookup:@carol:note.wavi@alice",
                OWNER_NS,
            ),
        ],
        Verb::Plookup => vec![line(
            "`plookup` own public key",
            "plookup:card.wavi@alice",
            OWNER,
        )],
        Verb::Lookup => vec![
            line(
                "`lookup` own public key",
                "lookup:card.wavi@alice",
                [OK, E15, E15, E15, E9, E15, E15, OK],
            ),
            line(
                "`lookup` key shared with @carol",
                "lookup:note.wavi@alice",
                [E15, E15, E15, E15, E9, E15, OK, E15],
            ),
        ],
        Verb::Scan => vec![
            line("`scan`", "scan", ALL_OK),
            line("`scan:cl` (commit log)", "scan:cl", OWNER),
        ],
        Verb::Delete => vec![row(
            "`delete` self key in `wavi`",
            P::Line("delete:gone.wavi@alice"),
            S::Key,
            OWNER_NS,
        )],
        Verb::Stats => vec![line("`stats`", "stats", OWNER)],
        Verb::Config => vec![
            line("`config:block:show`", "config:block:show", OWNER),
            line("`config:block:add`", "config:block:add:@mallory", OWNER),
        ],
        Verb::Monitor => vec![row("`monitor`", P::Quiet("monitor"), S::None, OWNER)],
        Verb::Stream => vec![
            row(
                "`stream:init` to @carol",
                P::Quiet("stream:init@carol namespace:wavi {id} ZmlsZQ== 4"),
                S::Fresh,
                [E401, OK, OK, OK, OK, OK, OK, E401],
            ),
            line("`stream:send`", "stream:send some-id", [E3; 8]),
            row(
                "`stream:receive` of an unknown id",
                P::Quiet("stream:receive {id}"),
                S::Fresh,
                [E401; 8],
            ),
            line(
                "`stream:done` of an unknown id",
                "stream:done no-such-id",
                [E401; 8],
            ),
            row(
                "`stream:resume` to @carol",
                P::Quiet("stream:resume@carol startByte:1 {id}"),
                S::Fresh,
                [E401, OK, OK, OK, OK, OK, OK, E401],
            ),
        ],
        Verb::Notify => vec![
            line(
                "`notify` of an own key to @carol",
                "notify:update:@carol:ping.wavi@alice:hi",
                [E401, OK, OK, OK, E9, OK, E9, E401],
            ),
            line(
                "`notify` of @carol's key to @alice",
                "notify:update:messageType:key:isEncrypted:false:@alice:hello.wavi@carol:hi",
                [E401, E9, E9, E9, E9, E9, OK, E401],
            ),
        ],
        Verb::NotifyList => vec![line(
            "`notify:list`",
            "notify:list",
            [E401, OK, OK, OK, OK, OK, OK, E401],
        )],
        Verb::NotifyStatus => vec![row(
            "`notify:status`",
            P::Line("notify:status:{id}"),
            S::Notification,
            OWNER,
        )],
        Verb::NotifyAll => vec![line(
            "`notify:all`",
            "notify:all:@carol:all.wavi@alice:hi",
            OWNER_NS,
        )],
        Verb::NotifyRemove => vec![row(
            "`notify:remove`",
            P::Line("notify:remove:{id}"),
            S::Notification,
            OWNER_NS,
        )],
        Verb::NotifyFetch => vec![row(
            "`notify:fetch`",
            P::Line("notify:fetch:{id}"),
            S::Notification,
            OWNER_NS,
        )],
        Verb::Batch => vec![row(
            "`batch` of one `update` (its outcome)",
            P::Batch(r#"batch:[{"id":1,"command":"update:secret.wavi@alice s"}]"#),
            S::None,
            OWNER_NS,
        )],
        Verb::SyncFrom => vec![line("`sync:from`", "sync:from:-1:limit:10", OWNER)],
        Verb::Info => vec![
            line("`info`", "info", ALL_OK),
            line("`info:mtls`", "info:mtls", ALL_OK),
        ],
        Verb::Noop => vec![line("`noop:0`", "noop:0", ALL_OK)],
        Verb::Enroll => vec![
            row(
                "`enroll:request` with an OTP",
                P::Line(
                    r#"enroll:request:{"appName":"m","deviceName":"d","namespaces":{"wavi":"r"},"otp":"{id}","apkamPublicKey":"a2V5","encryptedAPKAMSymmetricKey":"a2V5"}"#,
                ),
                S::Otp,
                [OK, E11, E11, E11, E11, E11, E11, E11],
            ),
            row(
                "`enroll:approve`",
                P::Line(
                    r#"enroll:approve:{"enrollmentId":"{id}","encryptedDefaultEncryptionPrivateKey":"ZQ==","encryptedDefaultSelfEncryptionKey":"cw=="}"#,
                ),
                S::Pending,
                MANAGE,
            ),
            row(
                "`enroll:deny`",
                P::Line(r#"enroll:deny:{"enrollmentId":"{id}"}"#),
                S::Pending,
                MANAGE,
            ),
            row(
                "`enroll:revoke`",
                P::Line(r#"enroll:revoke:{"enrollmentId":"{id}"}"#),
                S::Approved,
                MANAGE,
            ),
            row(
                "`enroll:unrevoke`",
                P::Line(r#"enroll:unrevoke:{"enrollmentId":"{id}"}"#),
                S::Revoked,
                MANAGE,
            ),
            row(
                "`enroll:delete`",
                P::Line(r#"enroll:delete:{"enrollmentId":"{id}"}"#),
                S::Revoked,
                MANAGE,
            ),
            line("`enroll:list`", "enroll:list", OWNER),
            row(
                "`enroll:fetch`",
                P::Line(r#"enroll:fetch:{"enrollmentId":"{id}"}"#),
                S::Pending,
                MANAGE,
            ),
            row(
                "`enroll:update` of another enrollment",
                P::Line(r#"enroll:update:{"enrollmentId":"{id}","metadata":{"note":"x"}}"#),
                S::Approved,
                [E401, E11, E11, E11, E11, E11, E401, E401],
            ),
            line(
                "`enroll:listns`",
                "enroll:listns:wavi",
                [E401, E401, E401, OK, E9, OK, E401, E401],
            ),
        ],
        Verb::Otp => vec![line(
            "`otp:get`",
            "otp:get",
            [E401, OK, OK, E9, E9, OK, E401, E401],
        )],
        Verb::Keys => vec![line(
            "`keys:get:public`",
            "keys:get:public",
            [E401, E11, E11, OK, OK, OK, E401, E401],
        )],
        Verb::Unknown => vec![line("unknown verb", "bogus:verb", [E3; 8])],
    }
}

/// Lists every verb, in table order, and matches on the same names without a wildcard: a verb added to
/// the protocol does not compile until it is listed here (and then in [`rows`]).
macro_rules! verbs {
    ($($verb:ident),* $(,)?) => {
        const VERBS: &[Verb] = &[$(Verb::$verb),*];
        #[allow(dead_code)]
        fn listed(verb: Verb) {
            match verb {
                $(Verb::$verb => {})*
            }
        }
    };
}

verbs!(
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
    Stream,
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
    Unknown,
);

/// Outcomes that mean "the server refused this connection the verb" (the others are `ok`, `closed`,
/// or an error about the input itself).
const REFUSALS: &[&str] = &["AT0401", "AT0009", "AT0011", "AT0025", "AT0026", "AT0027"];

/// How a reply reads in the table: `ok`, `closed`, or its error code.
fn outcome(reply: Option<String>) -> String {
    let Some(reply) = reply else {
        return "closed".into();
    };
    if reply.starts_with("data:") || is_pol_ok(&reply) {
        return OK.into();
    }
    if let Some(body) = reply.strip_prefix("error:") {
        if body.starts_with('{') {
            if let Ok(v) = serde_json::from_str::<serde_json::Value>(body) {
                if let Some(code) = v["errorCode"].as_str() {
                    return code.to_string();
                }
            }
        }
        if let Some(code) = body.get(..6) {
            return code.to_string();
        }
    }
    format!("unexpected reply {reply:?}")
}

/// A batch reply as the reply of the one command inside it: `[{"id":1,"response":{"data":…}}]`
/// or `{"error_code":…}`; a refused batch stays as it was.
fn batch_outcome(reply: Option<String>) -> Option<String> {
    let reply = reply?;
    let Some(data) = reply.strip_prefix("data:") else {
        return Some(reply);
    };
    let parsed: serde_json::Value = serde_json::from_str(data).expect("batch reply is JSON");
    let response = &parsed[0]["response"];
    if let Some(code) = response["error_code"].as_str() {
        return Some(format!("error:{code}-in batch"));
    }
    assert!(response["data"].is_string(), "batch reply: {reply}");
    Some(reply)
}

/// `@carol@`: the answer to a successful `pol`.
fn is_pol_ok(reply: &str) -> bool {
    reply.len() > 2
        && reply.starts_with('@')
        && reply.ends_with('@')
        && !reply[1..reply.len() - 1].contains(['@', '\n', ':'])
}

/// The client TLS settings: the fleet's CA, and optionally a client certificate.
fn tls_config(ca: &Path, leaf: Option<&Leaf>) -> Arc<rustls::ClientConfig> {
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(ca).expect("CA file") {
        roots
            .add(cert.expect("CA certificate"))
            .expect("CA accepted");
    }
    let builder = rustls::ClientConfig::builder_with_provider(Arc::new(
        rustls::crypto::ring::default_provider(),
    ))
    .with_safe_default_protocol_versions()
    .expect("TLS versions")
    .with_root_certificates(roots);
    let config = match leaf {
        Some(l) => {
            let chain: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&l.cert)
                .expect("leaf file")
                .map(|c| c.expect("leaf certificate"))
                .collect();
            let key = PrivateKeyDer::from_pem_file(&l.key).expect("leaf key");
            builder
                .with_client_auth_cert(chain, key)
                .expect("client certificate")
        }
        None => builder.with_no_client_auth(),
    };
    Arc::new(config)
}

/// A raw protocol connection: lines out, replies in. The protocol's client would hide what a cell
/// must see (a monitor that answers nothing, the close after `@exit`), so the matrix reads bytes.
struct Wire {
    stream: TlsStream<TcpStream>,
    buf: Vec<u8>,
}

/// Where the first reply in `buf` ends: its body (without `\r\n`) and the length with its prompt
/// (`\n@` or `\n@alice@`).
fn split_reply(buf: &[u8]) -> Option<(String, usize)> {
    let mut from = 0;
    while let Some(rel) = buf.get(from..)?.iter().position(|&b| b == b'\n') {
        let nl = from + rel;
        if buf.get(nl + 1) == Some(&b'@') {
            let name = buf[nl + 2..]
                .iter()
                .position(|&b| b == b'@' || b == b'\n' || b == b':' || b.is_ascii_whitespace());
            let end = match name {
                // `@alice@`
                Some(n) if n > 0 && buf[nl + 2 + n] == b'@' => nl + 3 + n,
                // `@` followed by the next line
                Some(_) => nl + 2,
                // `@` at the end of what arrived: a prompt name may still be on its way.
                None if buf.len() == nl + 2 => nl + 2,
                None => return None,
            };
            let body = String::from_utf8_lossy(&buf[..nl]);
            return Some((body.trim_end_matches('\r').to_string(), end));
        }
        from = nl + 1;
    }
    None
}

impl Wire {
    /// Connects from `source` (a loopback address of its own) to `node`, and reads the greeting.
    async fn connect(node: &Node, ca: &Path, leaf: Option<&Leaf>, source: Ipv4Addr) -> Wire {
        let socket = TcpSocket::new_v4().expect("socket");
        socket
            .bind(SocketAddr::from((source, 0)))
            .expect("bind a loopback source address");
        let host: Ipv4Addr = node.host.parse().expect("node host is an IPv4 address");
        let tcp = socket
            .connect(SocketAddr::from((host, node.tls.port())))
            .await
            .expect("connect");
        let name = ServerName::try_from(node.host.clone()).expect("server name");
        let stream = TlsConnector::from(tls_config(ca, leaf))
            .connect(name, tcp)
            .await
            .expect("TLS handshake");
        let mut wire = Wire {
            stream,
            buf: Vec::new(),
        };
        while wire.buf.is_empty() {
            assert!(wire.fill().await, "closed before the greeting");
        }
        assert_eq!(wire.buf.remove(0), b'@', "greeting");
        wire
    }

    /// Reads more bytes; false once the server closed.
    async fn fill(&mut self) -> bool {
        let mut chunk = [0u8; 16 * 1024];
        let read = tokio::time::timeout(Duration::from_secs(60), self.stream.read(&mut chunk))
            .await
            .unwrap_or_else(|_| {
                panic!(
                    "no reply within 60 s; have {:?}",
                    String::from_utf8_lossy(&self.buf)
                )
            });
        match read {
            Ok(0) | Err(_) => false,
            Ok(n) => {
                self.buf.extend_from_slice(&chunk[..n]);
                true
            }
        }
    }

    async fn write(&mut self, text: &str) {
        // A write to a connection the server already closed shows up as `closed` on the read.
        let _ = self.stream.write_all(text.as_bytes()).await;
        let _ = self.stream.flush().await;
    }

    /// The next reply without its prompt; `None` once the server closed.
    async fn reply(&mut self) -> Option<String> {
        loop {
            if let Some((body, end)) = split_reply(&self.buf) {
                self.buf.drain(..end);
                return Some(body);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    async fn send(&mut self, line: &str) -> Option<String> {
        self.write(&format!("{line}\n")).await;
        self.reply().await
    }

    /// `data:<text>` or a panic naming the step.
    async fn data(&mut self, line: &str) -> String {
        match self.send(line).await {
            Some(r) if r.starts_with("data:") => r["data:".len()..].to_string(),
            other => panic!("{line}: {other:?}"),
        }
    }

    /// `pol`: `@carol@` (no newline) on success, otherwise an ordinary reply.
    async fn pol(&mut self) -> Option<String> {
        self.write("pol\n").await;
        loop {
            if self.buf.first() == Some(&b'@') {
                if let Some(j) = self.buf[1..].iter().position(|&b| b == b'@' || b == b'\n') {
                    if self.buf[1 + j] == b'@' {
                        let text: Vec<u8> = self.buf.drain(..j + 2).collect();
                        return Some(String::from_utf8_lossy(&text).into_owned());
                    }
                }
            }
            if let Some((body, end)) = split_reply(&self.buf) {
                self.buf.drain(..end);
                return Some(body);
            }
            if !self.fill().await {
                return None;
            }
        }
    }

    /// `line` and `noop:0` in one write; the first `data:`/`error:` line is the outcome of `line`
    /// (one that is accepted answers nothing itself, so the noop's `data:ok` comes first).
    async fn quiet(&mut self, line: &str) -> Option<String> {
        self.write(&format!("{line}\nnoop:0\n")).await;
        loop {
            while let Some(nl) = self.buf.iter().position(|&b| b == b'\n') {
                let raw: Vec<u8> = self.buf.drain(..=nl).collect();
                let text = String::from_utf8_lossy(&raw);
                let mut text = text.trim();
                // Prompts glue onto the front of the next line in a monitor stream.
                while let Some(rest) = text.strip_prefix('@') {
                    text = match rest.find('@') {
                        Some(j) if !rest[..j].contains(':') => &rest[j + 1..],
                        _ => rest,
                    };
                }
                if text.starts_with("data:") || text.starts_with("error:") {
                    return Some(text.to_string());
                }
            }
            if !self.fill().await {
                return None;
            }
        }
    }
}

/// @alice's server, @carol's (the pol peer), and what the cells authenticate with.
struct World {
    fleet: Fleet,
    alice: Node,
    carol: Node,
    /// @alice's owner on CRAM, for setups.
    owner: AtConnection,
    /// @carol's owner, to publish pol signatures.
    carol_owner: AtConnection,
    /// @carol's server signing key (base64 PKCS#8).
    carol_signing_key: String,
    /// A `__manage` APKAM connection, for setups that need one (OTPs, approvals).
    manager: Wire,
    legacy: keys::KeyPair,
    manage: (keys::KeyPair, String),
    wavi: (keys::KeyPair, String),
    buzz: (keys::KeyPair, String),
    wrong_leaf: Leaf,
    spare_key: String,
    counter: u32,
}

impl World {
    async fn start() -> World {
        let fleet = Fleet::start().await;
        let alice = fleet.start_node("@alice", "127.0.0.2").await;
        let carol = fleet.start_node("@carol", "127.0.0.4").await;
        let mut owner = fleet.owner(&alice).await;
        let mut carol_owner = fleet.owner(&carol).await;
        let signing = send(&mut carol_owner, "llookup:@carol:signing_privatekey@carol").await;
        let carol_signing_key = signing
            .strip_prefix("data:")
            .unwrap_or_else(|| panic!("@carol's signing key: {signing}"))
            .to_string();

        // The first enrollment, made on CRAM, is approved at once with `__manage` and `*`.
        let manage_keys = keys::rsa_keypair();
        let first = json(&send(&mut owner, &format!(
            r#"enroll:request:{{"appName":"wavi","deviceName":"manager","apkamPublicKey":"{}","encryptedDefaultEncryptionPrivateKey":"ZW5j","encryptedDefaultSelfEncryptionKey":"c2Vs"}}"#,
            manage_keys.public
        )).await);
        assert_eq!(first["status"], "approved", "{first}");
        let manage_id = first["enrollmentId"].as_str().expect("id").to_string();
        // That enrollment wrote its key as the legacy PKAM key; the owner's PKAM column uses its own.
        let legacy = keys::rsa_keypair();
        let r = send(
            &mut owner,
            &format!("update:privatekey:at_pkam_publickey {}", legacy.public),
        )
        .await;
        assert!(r.starts_with("data:"), "{r}");
        for (key, value) in [
            ("public:card.wavi@alice", "v"),
            ("@carol:note.wavi@alice", "for-carol"),
            ("secret.wavi@alice", "s"),
        ] {
            let r = send(&mut owner, &format!("update:{key} {value}")).await;
            assert!(r.starts_with("data:"), "{key}: {r}");
        }
        let mut manager = Wire::connect(
            &alice,
            &fleet.pki.ca_path,
            None,
            Ipv4Addr::new(127, 0, 1, 1),
        )
        .await;
        let r = manager.pkam(&manage_keys.private, Some(&manage_id)).await;
        assert_eq!(r.as_deref(), Some("data:success"));
        let wrong_leaf = fleet.pki.leaf("127.0.0.3");
        let spare_key = keys::rsa_keypair().public;
        let mut world = World {
            fleet,
            alice,
            carol,
            owner,
            carol_owner,
            carol_signing_key,
            manager,
            legacy,
            manage: (manage_keys, manage_id),
            wavi: (keys::rsa_keypair(), String::new()),
            buzz: (keys::rsa_keypair(), String::new()),
            wrong_leaf,
            spare_key,
            counter: 0,
        };
        for ns in ["wavi", "buzz"] {
            let public = if ns == "wavi" {
                world.wavi.0.public.clone()
            } else {
                world.buzz.0.public.clone()
            };
            let id = world.enrollment(ns, &public).await;
            world.approve(&id).await;
            if ns == "wavi" {
                world.wavi.1 = id;
            } else {
                world.buzz.1 = id;
            }
        }
        world
    }

    fn next(&mut self) -> u32 {
        self.counter += 1;
        self.counter
    }

    async fn otp(&mut self) -> String {
        self.manager.data("otp:get").await
    }

    /// A pending enrollment for `namespace`, requested with an OTP on an anonymous connection.
    async fn enrollment(&mut self, namespace: &str, public_key: &str) -> String {
        let otp = self.otp().await;
        let n = self.next();
        let mut anon = self.fleet.connect(&self.alice, None).await;
        let r = json(&send(&mut anon, &format!(
            r#"enroll:request:{{"appName":"{namespace}","deviceName":"device-{n}","namespaces":{{"{namespace}":"rw"}},"otp":"{otp}","apkamPublicKey":"{public_key}","encryptedAPKAMSymmetricKey":"a2V5"}}"#
        )).await);
        assert_eq!(r["status"], "pending", "{r}");
        r["enrollmentId"].as_str().expect("id").to_string()
    }

    async fn approve(&mut self, id: &str) {
        let r = self.manager.data(&format!(
            r#"enroll:approve:{{"enrollmentId":"{id}","encryptedDefaultEncryptionPrivateKey":"ZQ==","encryptedDefaultSelfEncryptionKey":"cw=="}}"#
        )).await;
        assert!(r.contains("approved"), "{r}");
    }

    /// Makes what `setup` names; the result fills `{id}`.
    async fn prepare(&mut self, setup: Setup) -> String {
        let spare = self.spare_key.clone();
        match setup {
            Setup::None => String::new(),
            Setup::Key => {
                let r = send(&mut self.owner, "update:gone.wavi@alice x").await;
                assert!(r.starts_with("data:"), "{r}");
                String::new()
            }
            Setup::Otp => self.otp().await,
            Setup::Pending => self.enrollment("spare", &spare).await,
            Setup::Approved => {
                let id = self.enrollment("spare", &spare).await;
                self.approve(&id).await;
                id
            }
            Setup::Revoked => {
                let id = self.enrollment("spare", &spare).await;
                self.approve(&id).await;
                let r = self
                    .manager
                    .data(&format!(r#"enroll:revoke:{{"enrollmentId":"{id}"}}"#))
                    .await;
                assert!(r.contains("revoked"), "{r}");
                id
            }
            Setup::Fresh => format!("authz-{}", self.next()),
            Setup::Notification => {
                let id = format!("authz-{}", self.next());
                let r = send(
                    &mut self.owner,
                    &format!("notify:id:{id}:@alice:n.wavi@alice:v"),
                )
                .await;
                assert_eq!(r, format!("data:{id}"));
                id
            }
        }
    }

    /// A connection of `kind` from `source`, authenticated as that kind is.
    async fn open(&mut self, kind: Kind, source: Ipv4Addr) -> Wire {
        let ca = self.fleet.pki.ca_path.clone();
        let leaf = match kind {
            Kind::Peer => Some(&self.carol.leaf),
            Kind::WrongCert => Some(&self.wrong_leaf),
            _ => None,
        };
        let mut w = Wire::connect(&self.alice, &ca, leaf, source).await;
        let authenticated = match kind {
            Kind::Anonymous => return w,
            Kind::Cram => w.cram(&self.alice.secret).await,
            Kind::Pkam => w.pkam(&self.legacy.private, None).await,
            Kind::ApkamWithNs => w.pkam(&self.wavi.0.private, Some(&self.wavi.1)).await,
            Kind::ApkamWithoutNs => w.pkam(&self.buzz.0.private, Some(&self.buzz.1)).await,
            Kind::Manage => w.pkam(&self.manage.0.private, Some(&self.manage.1)).await,
            Kind::Peer => self.pol_handshake(&mut w).await,
            Kind::WrongCert => {
                // A certificate the fleet's CA issued, for a host that is not @carol's.
                let refused = w.send("from:@carol").await;
                assert_eq!(outcome(refused.clone()), E401, "{refused:?}");
                return w;
            }
        };
        let authenticated = authenticated.unwrap_or_default();
        assert!(
            authenticated == "data:success" || is_pol_ok(&authenticated),
            "{kind:?}: {authenticated}"
        );
        w
    }

    /// `from:@carol` on `w`; if a proof challenge comes back, @carol's server publishes its signature
    /// and `pol` follows. The reply that ended the handshake.
    async fn pol_handshake(&mut self, w: &mut Wire) -> Option<String> {
        let reply = w.send("from:@carol").await?;
        let Some(data) = reply.strip_prefix("data:") else {
            return Some(reply);
        };
        let challenge = PolChallenge::parse(data).expect("proof challenge");
        let key = private_key_from_b64(&self.carol_signing_key).expect("signing key");
        let signature = sign_data(&key, challenge.challenge.as_bytes());
        let r = send(
            &mut self.carol_owner,
            &format!("update:ttl:60000:{} {signature}", challenge.signature_key()),
        )
        .await;
        assert!(r.starts_with("data:"), "{r}");
        w.pol().await
    }

    async fn cell(&mut self, row: &Row, kind: Kind, source: Ipv4Addr) -> String {
        let id = self.prepare(row.setup).await;
        let mut w = self.open(kind, source).await;
        let reply = match row.probe {
            Probe::Line(text) => w.send(&text.replace("{id}", &id)).await,
            Probe::Cram => w.cram(&self.alice.secret).await,
            Probe::Pkam => w.pkam(&self.legacy.private, None).await,
            Probe::Pol => self.pol_handshake(&mut w).await,
            Probe::Batch(text) => batch_outcome(w.send(text).await),
            Probe::Exit => w.send("@exit").await,
            Probe::Quiet(text) => w.quiet(&text.replace("{id}", &id)).await,
        };
        outcome(reply)
    }
}

impl Wire {
    /// `from:@alice`, then `cram:` with the digest of `secret`; the reply to `cram:` (or to
    /// `from:` when that already failed).
    async fn cram(&mut self, secret: &str) -> Option<String> {
        let challenge = self.send("from:@alice").await?;
        let Some(challenge) = challenge.strip_prefix("data:") else {
            return Some(challenge);
        };
        let digest = cram_digest(secret, challenge.trim());
        self.send(&format!("cram:{digest}")).await
    }

    /// `from:@alice`, then `pkam:` (APKAM with `enrollment`) signed with `private_key`.
    async fn pkam(&mut self, private_key: &str, enrollment: Option<&str>) -> Option<String> {
        let challenge = self.send("from:@alice").await?;
        let Some(challenge) = challenge.strip_prefix("data:") else {
            return Some(challenge);
        };
        let signature = keys::sign(private_key, challenge.trim());
        match enrollment {
            Some(id) => {
                self.send(&format!("pkam:enrollmentId:{id}:{signature}"))
                    .await
            }
            None => self.send(&format!("pkam:{signature}")).await,
        }
    }
}

/// The verb a probe exercises.
fn probe_verb(probe: Probe) -> Verb {
    match probe {
        Probe::Line(text) => route(&text.replace("{id}", "x")),
        Probe::Cram => Verb::Cram,
        Probe::Pkam => Verb::Pkam,
        Probe::Pol => Verb::Pol,
        Probe::Exit => Verb::Exit,
        Probe::Quiet(text) => route(text),
        Probe::Batch(text) => route(text),
    }
}

/// Each row sits under the verb its line routes to, parses (but for the blank and unknown rows),
/// and every `enroll` and `stream` operation has a row.
#[test]
fn rows_cover_every_verb_and_enroll_operation() {
    let mut enroll_ops = Vec::new();
    let mut stream_ops = Vec::new();
    for &verb in VERBS {
        listed(verb);
        let rows = rows(verb);
        assert!(!rows.is_empty(), "{verb:?} has no row");
        for row in rows {
            assert_eq!(probe_verb(row.probe), verb, "{}", row.what);
            if let Probe::Line(text) | Probe::Batch(text) | Probe::Quiet(text) = row.probe {
                let text = text.replace("{id}", "x");
                match Command::parse(&text) {
                    Ok(Command::Enroll(p)) => enroll_ops.push(p.operation),
                    Ok(Command::Stream(p)) => stream_ops.push(p.operation),
                    Ok(_) => {}
                    Err(e) => assert!(
                        matches!(verb, Verb::Empty | Verb::Unknown),
                        "{}: {text}: {e}",
                        row.what
                    ),
                }
            }
        }
    }
    for op in EnrollOp::ALL {
        assert!(
            enroll_ops.contains(&op),
            "enroll:{} has no row",
            op.as_str()
        );
    }
    for op in StreamOp::ALL {
        assert!(
            stream_ops.contains(&op),
            "stream:{} has no row",
            op.as_str()
        );
    }
}

fn doc_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../docs/authorization.md")
}

/// A cell as the document shows it.
fn shown(outcome: &str) -> String {
    match outcome {
        OK => "allowed".into(),
        "closed" => "allowed (closes)".into(),
        code if REFUSALS.contains(&code) => format!("**denied** {code}"),
        code => format!("error {code}"),
    }
}

fn render(observed: &[(Verb, &'static str, Vec<String>)]) -> String {
    let mut doc = String::new();
    doc.push_str("# Authorization matrix\n\n");
    doc.push_str(
        "Generated by `atserver-image/tests/authz_matrix.rs` from what the atServer answered; do not \
edit by hand. The test drives every verb the protocol's router knows (`at_protocol::command::Verb`, \
and every `enroll` and `stream` operation) over TLS on a fresh connection of each kind, and fails when this file \
or its own expected table differs from what it observed (`ATFLEET_BLESS=1` rewrites this file).\n\n",
    );
    doc.push_str(
        "Connections: **unauthenticated** (TLS only); **CRAM** (`from:@alice` + `cram:`); **PKAM** \
with the owner's legacy key (no enrollment); **APKAM** enrollments approved for `wavi:rw`, for `buzz:rw` \
only, and the first enrollment (`__manage` and `*`); **peer `@carol`**: a client certificate for the \
host the atDirectory publishes for `@carol`, `from:@carol`, the signature published, `pol`; **peer with \
the wrong certificate**: a certificate from the same CA for another host, whose `from:@carol` is refused \
(the connection stays, unauthenticated). Keys in the rows are `@alice`'s, in namespace `wavi`.\n\n",
    );
    doc.push_str(
        "Cells: `allowed` is a `data:` reply (or the close `@exit` asks for); **denied** is a refusal \
of the connection: AT0401 not authenticated, AT0009 not authorised (namespace, owner, protected key), \
AT0011 refused by the enrollment rules (the operation needs `__manage`, an APKAM \
enrollment, or to be the enrollment itself), AT0025–AT0027 enrollment denied, pending or revoked; `error` \
is the verb running and failing on its input (AT0003 syntax, AT0015 not found or not visible to this \
connection, AT0022 illegal arguments, AT0030 invalid enrollment status).\n\n",
    );
    doc.push_str(
        "Defect found by this matrix and fixed: `notify:fetch` and `notify:remove` by id let an \
enrollment read and delete notifications about keys outside its namespaces, which `notify:list` \
and `monitor` already hid from it; both now answer AT0009 for those (`visible` in \
`atserver-image/src/commands/notify.rs`).\n\n",
    );
    let _ = write!(doc, "| verb | row |");
    for kind in KINDS {
        let _ = write!(doc, " {} |", kind.header());
    }
    doc.push_str("\n|---|---|");
    for _ in KINDS {
        doc.push_str("---|");
    }
    doc.push('\n');
    for (verb, what, cells) in observed {
        let _ = write!(doc, "| {} | {what} |", verb.label());
        for cell in cells {
            let _ = write!(doc, " {} |", shown(cell));
        }
        doc.push('\n');
    }
    doc
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_verb_by_every_kind_of_connection() {
    let mut world = World::start().await;
    let mut observed = Vec::new();
    let mut differences = Vec::new();
    let mut index: u16 = 0;
    for &verb in VERBS {
        for row in rows(verb) {
            index += 1;
            let mut cells = Vec::new();
            for (column, kind) in KINDS.into_iter().enumerate() {
                // Its own source address per cell: failed authentications are throttled per address.
                let [hi, lo] = index.to_be_bytes();
                let source = Ipv4Addr::new(127, 10 + column as u8, hi, lo);
                let got = world.cell(&row, kind, source).await;
                if got != row.expected[column] {
                    differences.push(format!(
                        "{} × {}: expected {}, observed {got}",
                        row.what,
                        kind.header(),
                        row.expected[column]
                    ));
                }
                cells.push(got);
            }
            observed.push((verb, row.what, cells));
        }
    }
    let doc = render(&observed);
    let path = doc_path();
    let stale = if std::env::var_os("ATFLEET_BLESS").is_some_and(|v| v == "1") {
        std::fs::write(&path, &doc).expect("write docs/authorization.md");
        false
    } else {
        std::fs::read_to_string(&path).unwrap_or_default() != doc
    };
    assert!(
        differences.is_empty() && !stale,
        "{} cells differ from the expected table:\n{}\n\ndocs/authorization.md {}; observed:\n{doc}",
        differences.len(),
        differences.join("\n"),
        if stale {
            "differs from what the atServer answered (rerun with ATFLEET_BLESS=1 and review the diff)"
        } else {
            "is up to date"
        }
    );
}
