//! A monitor stream: notifications interleaved with replies to commands on the same connection.

mod client_support;

use std::time::Duration;

use at_protocol::client::{AtConnection, ClientError};
use at_protocol::Reply;
use client_support::{serve, Pki};

fn note(id: u32) -> String {
    format!(
        "{{\"id\":\"{id}\",\"from\":\"@bob\",\"to\":\"@alice\",\"key\":\"@alice:phone.wavi@bob\",\
         \"value\":\"c2VjcmV0\",\"operation\":\"update\",\"epochMillis\":1729733702123,\
         \"messageType\":\"MessageType.key\",\"isEncrypted\":true,\"metadata\":{{\"ivNonce\":\"AAAA\"}}}}"
    )
}

#[tokio::test]
async fn notifications_and_replies_are_separated() {
    let pki = Pki::new();
    let port = serve(&pki, |mut c| async move {
        c.send("@").await;
        assert_eq!(c.line().await.as_deref(), Some("monitor:0 .*"));
        // Replay: two notifications in one record, the second split across two records.
        let second = format!("notification: {}\n", note(2));
        let (head, tail) = second.split_at(40);
        c.send(&format!("notification: {}\n{head}", note(1))).await;
        c.send(tail).await;
        // Dart answers noop with a prompt that sticks to the next notification line.
        assert_eq!(c.line().await.as_deref(), Some("noop:0"));
        c.send("data:ok\n@alice@").await;
        c.send(&format!("notification: {}\n", note(3))).await;
        // atfleet answers noop on a monitor connection without a prompt (atsdk §7).
        assert_eq!(c.line().await.as_deref(), Some("noop:0"));
        c.send(&format!("notification:{}\ndata:ok\n", note(4)))
            .await;
        assert_eq!(c.line().await.as_deref(), Some("llookup:x@alice"));
        c.send("error:AT0015-key not found : x@alice does not exist in keystore\n@alice@")
            .await;
        c.send(&format!("notification: {}\n", note(5))).await;
        c.close().await;
    })
    .await;

    let conn = AtConnection::connect(&pki.client_config(), "127.0.0.1", port)
        .await
        .unwrap();
    let mut monitor = conn.monitor("monitor:0 .*").await.unwrap();
    let first = monitor.next_notification().await.unwrap();
    let v: serde_json::Value = serde_json::from_str(&first).unwrap();
    assert_eq!(v["id"], "1");
    let second = monitor.next_notification_json().await.unwrap().unwrap();
    assert_eq!(second.id, "2");
    assert_eq!(second.key, "@alice:phone.wavi@bob");
    assert_eq!(second.metadata.unwrap().iv_nonce.as_deref(), Some("AAAA"));
    assert_eq!(
        monitor.send("noop:0").await.unwrap(),
        Reply::Data("ok".into())
    );
    let mut notifications = monitor.take_notifications().unwrap();
    assert!(monitor.take_notifications().is_none());
    let third: serde_json::Value =
        serde_json::from_str(&notifications.recv().await.unwrap()).unwrap();
    assert_eq!(third["id"], "3");
    assert_eq!(
        monitor.send("noop:0").await.unwrap(),
        Reply::Data("ok".into())
    );
    match monitor.send("llookup:x@alice").await.unwrap() {
        Reply::Error { code, .. } => assert_eq!(code, Some(at_protocol::ErrorCode::KeyNotFound)),
        other => panic!("{other:?}"),
    }
    let ids: Vec<String> = [
        notifications.recv().await.unwrap(),
        notifications.recv().await.unwrap(),
    ]
    .iter()
    .map(|j| serde_json::from_str::<serde_json::Value>(j).unwrap()["id"].to_string())
    .collect();
    assert_eq!(ids, ["\"4\"", "\"5\""]);
    // The server closed: the channel ends and commands report the close.
    assert!(notifications.recv().await.is_none());
    assert!(matches!(
        monitor.send("noop:0").await,
        Err(ClientError::Closed { .. } | ClientError::Io { .. })
    ));
}

#[tokio::test]
async fn monitor_reply_timeout() {
    let pki = Pki::new();
    let port = serve(&pki, |mut c| async move {
        c.send("@").await;
        c.line().await;
        // Streams notifications but never answers the noop.
        while c.line().await.is_some() {
            c.send(&format!("notification: {}\n", note(9))).await;
        }
    })
    .await;
    let mut conn = AtConnection::connect(&pki.client_config(), "127.0.0.1", port)
        .await
        .unwrap();
    conn.set_response_timeout(Duration::from_millis(250));
    let mut monitor = conn.monitor("monitor").await.unwrap();
    match monitor.send("noop:0").await {
        Err(ClientError::Timeout { step, .. }) => assert!(step.contains("monitor"), "{step}"),
        other => panic!("{other:?}"),
    }
    assert!(monitor
        .next_notification()
        .await
        .unwrap()
        .contains("\"id\":\"9\""));
}
