//! `stream:init/receive/done/resume` over TLS, as at_client's `AtClient.stream()` and its
//! `StreamNotificationHandler` drive it: 10 MiB move from the sender's connection to a receiver
//! that learnt the stream id from its monitor, byte for byte.

mod common;

use std::time::Duration;

use at_protocol::command::StreamAnnouncement;
use common::{TestServer, ATSIGN};
use rand::RngCore;
use rustls::pki_types::ServerName;
use sha2::{Digest, Sha256};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpStream;
use tokio_rustls::client::TlsStream;

const LEN: usize = 10 * 1024 * 1024;

/// A bare TLS connection: the receiver reads raw bytes, not replies.
async fn raw(server: &TestServer) -> TlsStream<TcpStream> {
    let tcp = TcpStream::connect(server.addr).await.unwrap();
    let name = ServerName::try_from("localhost").unwrap();
    server.pki.connector().connect(name, tcp).await.unwrap()
}

async fn read_exact(stream: &mut TlsStream<TcpStream>, n: usize) -> Vec<u8> {
    let mut out = vec![0u8; n];
    tokio::time::timeout(Duration::from_secs(60), stream.read_exact(&mut out))
        .await
        .expect("bytes arrive in time")
        .unwrap();
    out
}

fn notification(line: &str) -> serde_json::Value {
    let body = line
        .strip_prefix("notification: ")
        .unwrap_or_else(|| panic!("expected a notification, got {line}"));
    serde_json::from_str(body).unwrap()
}

async fn at_end(stream: &mut TlsStream<TcpStream>) -> bool {
    let mut b = [0u8; 1];
    match tokio::time::timeout(Duration::from_secs(20), stream.read(&mut b)).await {
        Ok(Ok(0)) | Ok(Err(_)) => true,
        Ok(Ok(_)) => false,
        Err(_) => panic!("connection neither closed nor spoke"),
    }
}

#[tokio::test]
async fn ten_mib_move_intact_from_sender_to_receiver() {
    let server = TestServer::start().await;
    let mut monitor = server.owner().await;
    monitor.write(b"monitor\n").await;

    let mut payload = vec![0u8; LEN];
    rand::thread_rng().fill_bytes(&mut payload);
    let sent_digest = Sha256::digest(&payload);

    // The sender announces the stream as at_client does (to itself here, so this server's
    // monitor hears the announcement the receiver acts on).
    let mut sender = server.owner().await;
    let id = uuid::Uuid::new_v4().to_string();
    sender
        .write(format!("stream:init{ATSIGN} namespace:null {id} ZmlsZS5iaW4= {LEN}\n").as_bytes())
        .await;

    let note = monitor.read_line().await;
    let note = notification(&note);
    let text = note["key"].as_str().unwrap().to_string();
    assert_eq!(
        text,
        format!("{ATSIGN}:stream_id {ATSIGN}:{id}:ZmlsZS5iaW4=:{LEN}")
    );
    // The receiver takes the id and length from the announcement.
    let announced = StreamAnnouncement::parse(&text).unwrap();
    let (stream_id, length) = (announced.stream_id.as_str(), announced.length as usize);

    let mut receiver = raw(&server).await;
    assert_eq!(read_exact(&mut receiver, 1).await, b"@");
    receiver
        .write_all(format!("stream:receive {stream_id}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(sender.read_line().await, format!("stream:ack {id}"));

    let (_, received) = tokio::join!(sender.write(&payload), read_exact(&mut receiver, length));
    assert_eq!(received.len(), LEN);
    assert_eq!(Sha256::digest(&received), sent_digest);

    receiver
        .write_all(format!("stream:done {stream_id}\n").as_bytes())
        .await
        .unwrap();
    assert_eq!(sender.read_line().await, format!("stream:done {id}"));
    assert!(sender.closed().await);
    assert!(at_end(&mut receiver).await);
    server.stop().await;
}

#[tokio::test]
async fn stream_refusals_and_resume() {
    let server = TestServer::start().await;
    // init needs authentication (owner or pol), as in the reference.
    let mut anon = server.connect().await;
    let r = anon
        .send("stream:init@bob namespace:null s1 ZmlsZQ== 10")
        .await;
    assert!(r.starts_with("error:AT0401"), "{r}");
    // An unknown id is refused, and the connection stays usable.
    let r = anon.send("stream:receive nosuchstream").await;
    assert!(r.starts_with("error:AT0401"), "{r}");
    let r = anon.send("stream:done nosuchstream").await;
    assert!(r.starts_with("error:AT0401"), "{r}");
    // Grammar and the one operation a server does not perform.
    assert!(anon.send("stream:fly x").await.starts_with("error:AT0003"));
    assert!(anon.send("stream:send x").await.starts_with("error:AT0003"));

    // A stream id is claimed once.
    let mut sender = server.owner().await;
    sender
        .write(b"stream:init@alice namespace:wavi s2 ZmlsZQ== 3\n")
        .await;
    let mut first = raw(&server).await;
    assert_eq!(read_exact(&mut first, 1).await, b"@");
    first.write_all(b"stream:receive s2\n").await.unwrap();
    assert_eq!(sender.read_line().await, "stream:ack s2");
    let mut second = server.connect().await;
    assert!(second
        .send("stream:receive s2")
        .await
        .starts_with("error:AT0401"));
    sender.write(b"abc").await;
    assert_eq!(read_exact(&mut first, 3).await, b"abc");

    // resume announces the restart point to the other party.
    let mut monitor = server.owner().await;
    monitor.write(b"monitor\n").await;
    let mut owner = server.owner().await;
    owner.write(b"stream:resume@alice startByte:512 s3\n").await;
    let note = monitor.read_line().await;
    let note = notification(&note);
    assert_eq!(note["key"], "@alice:stream_resume s3:512");
    server.stop().await;
}
