//! A client that writes commands and never reads the replies stops the server's writes, and with
//! them the reading of its lines; the idle limit must still end that connection (before the fix
//! it held its connection slot until the client went away; found by `make reliability`).

mod common;

use std::time::Duration;

use common::TestServer;
use rustls::pki_types::ServerName;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpSocket;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_client_that_never_reads_is_still_reaped() {
    let server = TestServer::start_with(|c| {
        c.limits.idle_unauthenticated = Duration::from_secs(60);
    })
    .await;
    // Public keys make every `scan` reply a few kilobytes.
    let mut owner = server.owner().await;
    for i in 0..100 {
        owner
            .send(&format!(
                "update:public:p{i}.stall@alice a-value-long-enough-{i}"
            ))
            .await;
    }

    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(4096).unwrap();
    let tcp = socket.connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    let mut tls = server.pki.connector().connect(name, tcp).await.unwrap();
    // Write until a write has not finished for a second: the server has stopped reading.
    let chunk = "scan\n".repeat(64);
    let mut stalled = false;
    for _ in 0..100_000 {
        match tokio::time::timeout(Duration::from_secs(1), tls.write_all(chunk.as_bytes())).await {
            Ok(Ok(())) => {}
            Ok(Err(_)) => panic!("the server closed the connection before it was idle"),
            Err(_) => {
                stalled = true;
                break;
            }
        }
    }
    assert!(stalled, "the server never stopped reading");

    // Idle past the limit on the server's clock; the reaper (every 50 ms) must end the
    // connection although the server is stuck writing to it: the owner's connection is then the
    // only one left. (Reading first would unblock the server and make the connection active.)
    let registry = &server.handle().shared().registry;
    assert_eq!(registry.count(), 2);
    server.clock.advance(120_000);
    // On a loaded machine the server may still be working through the queued `scan`s when the
    // clock jumps, and each reply it manages to write counts as activity after the jump: keep the
    // clock moving (1 s a step, far below the owner's 1 h limit) until the writes are stuck for good.
    let mut waited = 0;
    while registry.count() > 1 {
        assert!(
            waited < 600,
            "the stalled connection is still open 600 server-seconds past its idle limit"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
        server.clock.advance(1_000);
        waited += 1;
    }
    // What the server had sent comes first, then the end of the stream.
    let mut buf = vec![0u8; 64 * 1024];
    while let Ok(Ok(n)) = tokio::time::timeout(Duration::from_secs(30), tls.read(&mut buf)).await {
        if n == 0 {
            break;
        }
    }
    server.stop().await;
}
