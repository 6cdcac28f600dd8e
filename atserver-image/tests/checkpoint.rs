//! The server copies committed WAL frames into the database file in the background (a passive
//! checkpoint on its own connection), long before SQLite's automatic checkpoint threshold, and
//! every acknowledged write stays readable.

mod common;

use std::time::Duration;

use common::TestServer;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn committed_writes_reach_the_database_file_in_the_background() {
    let server = TestServer::start().await;
    let db = server.handle().shared().store.path().to_path_buf();
    let initial = std::fs::metadata(&db).expect("database file").len();
    let mut c = server.owner().await;
    // ~100 pages of new records: far below the store connection's own checkpoint threshold.
    let value = "v".repeat(3000);
    for i in 0..120 {
        let reply = c.send(&format!("update:k{i}.app@alice {value}")).await;
        assert!(reply.starts_with("data:"), "{reply}");
    }
    let grown = tokio::time::timeout(Duration::from_secs(30), async {
        loop {
            let len = std::fs::metadata(&db).expect("database file").len();
            if len > initial + 100 * 4096 {
                return len;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    })
    .await;
    assert!(grown.is_ok(), "the WAL was never checkpointed into {db:?}");
    assert_eq!(
        c.send("llookup:k119.app@alice").await,
        format!("data:{value}")
    );
    server.stop().await;
}
