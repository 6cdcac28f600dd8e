//! RootClient against a scripted atDirectory: found, null, many lookups on one connection, reconnect.

mod client_support;

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::Arc;

use at_protocol::client::{ClientError, RootClient};
use at_protocol::AtSign;
use client_support::{serve, Pki};

fn atsign(s: &str) -> AtSign {
    AtSign::parse(s).unwrap()
}

/// A directory that knows alice and bob, closes after `carol` (like the reference directory's abuse
/// control), and counts connections and lookups.
async fn directory(pki: &Pki, connections: Arc<AtomicUsize>, lookups: Arc<AtomicUsize>) -> u16 {
    serve(pki, move |mut c| {
        connections.fetch_add(1, Ordering::SeqCst);
        let lookups = lookups.clone();
        async move {
            c.send("@").await;
            while let Some(line) = c.line().await {
                lookups.fetch_add(1, Ordering::SeqCst);
                match line.trim().to_lowercase().as_str() {
                    "alice" => c.send("alice.atfleet.test:6464\r\n@").await,
                    "bob" => c.send("10.0.0.7:1025\r\n@").await,
                    "carol" => {
                        c.send("null\r\n@").await;
                        c.close().await;
                        return;
                    }
                    "@exit" => return,
                    _ => c.send("null\r\n@").await,
                }
            }
        }
    })
    .await
}

#[tokio::test]
async fn many_lookups_share_one_connection() {
    let pki = Pki::new();
    let (connections, lookups) = (Arc::default(), Arc::default());
    let port = directory(&pki, Arc::clone(&connections), Arc::clone(&lookups)).await;
    let root = RootClient::new(pki.client_config(), "127.0.0.1", port).with_sni("localhost");
    for _ in 0..5 {
        assert_eq!(
            root.lookup(&atsign("@alice")).await.unwrap(),
            Some(("alice.atfleet.test".to_owned(), 6464))
        );
        assert_eq!(
            root.lookup(&atsign("@bob")).await.unwrap(),
            Some(("10.0.0.7".to_owned(), 1025))
        );
        assert_eq!(root.lookup(&atsign("@nobody")).await.unwrap(), None);
    }
    assert_eq!(connections.load(Ordering::SeqCst), 1);
    assert_eq!(lookups.load(Ordering::SeqCst), 15);
}

#[tokio::test]
async fn reconnects_after_the_directory_closes() {
    let pki = Pki::new();
    let (connections, lookups) = (Arc::new(AtomicUsize::new(0)), Arc::default());
    let port = directory(&pki, Arc::clone(&connections), lookups).await;
    let root = Arc::new(RootClient::new(pki.client_config(), "localhost", port));
    assert_eq!(root.lookup(&atsign("@carol")).await.unwrap(), None);
    // The directory has closed this connection; the next lookup opens a new one transparently.
    assert!(root.lookup(&atsign("@alice")).await.unwrap().is_some());
    assert_eq!(connections.load(Ordering::SeqCst), 2);
    // Shared between tasks, lookups serialise on the one connection.
    let tasks: Vec<_> = (0..4)
        .map(|_| {
            let root = Arc::clone(&root);
            tokio::spawn(async move { root.lookup(&atsign("@bob")).await.unwrap() })
        })
        .collect();
    for task in tasks {
        assert_eq!(task.await.unwrap(), Some(("10.0.0.7".to_owned(), 1025)));
    }
    assert_eq!(connections.load(Ordering::SeqCst), 2);
}

#[tokio::test]
async fn unreachable_directory_is_a_connect_error() {
    let pki = Pki::new();
    // Bind and drop to get a port nobody listens on.
    let port = {
        let l = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        l.local_addr().unwrap().port()
    };
    let root = RootClient::new(pki.client_config(), "127.0.0.1", port);
    match root.lookup(&atsign("@alice")).await {
        Err(ClientError::Io { step, .. }) => assert!(step.starts_with("connecting to"), "{step}"),
        other => panic!("{other:?}"),
    }
}
