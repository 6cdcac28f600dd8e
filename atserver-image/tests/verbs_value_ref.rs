//! `atsign://` value references on `lookup` over TLS: followed for the connection that asks
//! (owner: its own keys, anonymous: public ones, with public as the fallback), up to three
//! levels, else `data:null`.

mod common;

use common::TestServer;

#[tokio::test]
async fn lookup_follows_value_references() {
    let server = TestServer::start().await;
    let mut owner = server.owner().await;
    for cmd in [
        "update:public:card.wavi@alice atsign://email.wavi@alice",
        "update:public:email.wavi@alice alice@example.com",
        // A chain of three references resolves; a chain of four does not.
        "update:public:r1.wavi@alice atsign://r2.wavi@alice",
        "update:public:r2.wavi@alice atsign://r3.wavi@alice",
        "update:public:r3.wavi@alice atsign://email.wavi@alice",
        "update:public:r0.wavi@alice atsign://r1.wavi@alice",
        "update:public:dangling.wavi@alice atsign://nothing.wavi@alice",
        // The owner's own (@alice:) keys refer to its own keys first, then public ones.
        "update:@alice:home.wavi@alice atsign://street.wavi@alice",
        "update:@alice:street.wavi@alice 1 Main St",
        "update:@alice:office.wavi@alice atsign://email.wavi@alice",
        // A public key may not reach the owner's self keys.
        "update:public:leak.wavi@alice atsign://street.wavi@alice",
    ] {
        assert!(owner.send(cmd).await.starts_with("data:"), "{cmd}");
    }

    let mut anon = server.connect().await;
    assert_eq!(
        anon.send("lookup:card.wavi@alice").await,
        "data:alice@example.com"
    );
    assert_eq!(
        anon.send("lookup:r1.wavi@alice").await,
        "data:alice@example.com"
    );
    assert_eq!(anon.send("lookup:r0.wavi@alice").await, "data:null");
    assert_eq!(anon.send("lookup:dangling.wavi@alice").await, "data:null");
    assert_eq!(anon.send("lookup:leak.wavi@alice").await, "data:null");

    assert_eq!(owner.send("lookup:home.wavi@alice").await, "data:1 Main St");
    assert_eq!(
        owner.send("lookup:office.wavi@alice").await,
        "data:alice@example.com"
    );
    // lookup:all resolves its data member; llookup returns what is stored.
    let all = common::json(&owner.send("lookup:all:home.wavi@alice").await);
    assert_eq!(all["data"], "1 Main St");
    assert_eq!(
        owner.send("llookup:@alice:home.wavi@alice").await,
        "data:atsign://street.wavi@alice"
    );
    server.stop().await;
}
