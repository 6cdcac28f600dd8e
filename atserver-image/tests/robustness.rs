//! No panic is reachable from the network: random bytes, oversized lines, invalid UTF-8 and
//! half-open handshakes leave the server serving other clients.

mod common;

use std::time::Duration;

use common::TestServer;
use rand::{Rng, SeedableRng};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;

const VERBS: &[&str] = &[
    "from:",
    "cram:",
    "pkam:",
    "pol",
    "update:",
    "update:meta:",
    "update:json:",
    "llookup:",
    "lookup:",
    "plookup:",
    "scan",
    "delete:",
    "stats",
    "config:",
    "monitor",
    "notify:",
    "notify:list",
    "notify:status:",
    "notify:all:",
    "notify:remove:",
    "notify:fetch:",
    "batch:",
    "sync:from:",
    "info",
    "noop:",
    "enroll:",
    "otp:",
    "keys:",
    "",
];

fn random_command(rng: &mut impl Rng) -> Vec<u8> {
    let mut out = VERBS[rng.gen_range(0..VERBS.len())].as_bytes().to_vec();
    let len = rng.gen_range(0..80);
    for _ in 0..len {
        let b = match rng.gen_range(0..6) {
            0 => b':',
            1 => b'@',
            2 => rng.gen_range(0x80..=0xff),
            3 => b' ',
            _ => rng.gen_range(0x20..0x7f),
        };
        out.push(b);
    }
    out.push(b'\n');
    out
}

async fn still_serving(server: &TestServer) {
    let mut c = server.connect().await;
    assert_eq!(c.send("noop:0").await, "data:ok");
}

#[tokio::test]
async fn random_commands_anonymous_and_owner() {
    let server = TestServer::start().await;
    let mut rng = rand::rngs::StdRng::seed_from_u64(0xA75E);
    for owner in [false, true] {
        let mut c = if owner {
            server.owner().await
        } else {
            server.connect().await
        };
        for _ in 0..300 {
            let cmd = random_command(&mut rng);
            c.write(&cmd).await;
            // Every line gets exactly one answer (monitor and @exit-like inputs aside).
            if cmd.starts_with(b"monitor") {
                break;
            }
            let r = c.read_reply().await;
            assert!(r.starts_with("data:") || r.starts_with("error:"), "{r}");
            if r.starts_with("error:AT0013") || r.contains("AT0002") {
                break;
            }
        }
        still_serving(&server).await;
    }
    server.stop().await;
}

#[tokio::test]
async fn raw_random_bytes_and_invalid_utf8() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    c.write(b"llookup:\xff\xfe@alice\n").await;
    assert!(c.read_reply().await.starts_with("error:AT0003"));
    assert_eq!(c.send("noop:0").await, "data:ok");
    let mut rng = rand::rngs::StdRng::seed_from_u64(7);
    for _ in 0..20 {
        let mut d = server.connect().await;
        let bytes: Vec<u8> = (0..rng.gen_range(1..4096)).map(|_| rng.gen()).collect();
        d.write(&bytes).await;
        d.write(b"\n@exit\n").await;
        // Whatever it answers, the server closes cleanly or keeps going; never a crash.
        drop(d);
    }
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn oversized_line_is_at0005_and_closes() {
    let server = TestServer::start_with(|c| c.limits.max_line_len = 4096).await;
    let mut c = server.connect().await;
    c.write(&vec![b'a'; 5000]).await;
    let line = c.read_line().await;
    assert_eq!(line, "error:AT0005-Exception: Buffer limit exceeded");
    assert!(c.closed().await);
    // A long line that ends in time is fine.
    let mut d = server.connect().await;
    let r = d.send(&format!("llookup:{}@alice", "a".repeat(3000))).await;
    assert!(r.starts_with("error:AT0401"), "{r}");
    still_serving(&server).await;
    server.stop().await;
}

#[tokio::test]
async fn half_open_and_non_tls_connections() {
    let server =
        TestServer::start_with(|c| c.limits.handshake_timeout = Duration::from_millis(300)).await;
    // Plain text instead of TLS.
    let mut plain = TcpStream::connect(server.addr).await.unwrap();
    plain.write_all(b"from:@alice\n").await.unwrap();
    let mut buf = [0u8; 64];
    let n = tokio::time::timeout(Duration::from_secs(10), plain.read(&mut buf))
        .await
        .unwrap()
        .unwrap_or(0);
    assert!(n == 0 || !buf[..n].starts_with(b"data:"));
    // A truncated ClientHello, then silence: closed by the handshake timeout.
    let mut half = TcpStream::connect(server.addr).await.unwrap();
    half.write_all(&[0x16, 0x03, 0x01, 0x02, 0x00, 0x01, 0x00])
        .await
        .unwrap();
    let closed = tokio::time::timeout(Duration::from_secs(10), half.read(&mut buf))
        .await
        .unwrap();
    assert!(
        matches!(closed, Ok(0) | Err(_)),
        "half-open handshake was not closed"
    );
    // Many idle TCP connections do not stop others.
    let mut idle = Vec::new();
    for _ in 0..20 {
        idle.push(TcpStream::connect(server.addr).await.unwrap());
    }
    still_serving(&server).await;
    drop(idle);
    server.stop().await;
}
