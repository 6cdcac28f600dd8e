//! `scan:cl` over TLS (3.16.3): the commit log as `[{"atKey","operation","commitId","opTime"}]`,
//! one entry per key, with regex, showHidden and page, for owner connections only.

mod common;

use common::{data, json, TestServer};

fn commit_id(reply: &str) -> i64 {
    data(reply).parse().unwrap()
}

#[tokio::test]
async fn scan_cl_lists_the_commit_log() {
    let server = TestServer::start().await;
    let mut c = server.owner().await;
    let first = commit_id(&c.send("update:phone.wavi@alice 1").await);
    let meta = commit_id(&c.send("update:meta:phone.wavi@alice:ttr:10").await);
    let email = commit_id(&c.send("update:public:email.wavi@alice a@b").await);
    let gone = commit_id(&c.send("update:note.buzz@alice n").await);
    let deleted = commit_id(&c.send("delete:note.buzz@alice").await);
    let hidden = commit_id(&c.send("update:_hidden.wavi@alice h").await);
    assert!(first < meta && meta < email && email < gone && gone < deleted && deleted < hidden);

    let all = json(&c.send("scan:cl").await);
    let entries = all.as_array().unwrap();
    let keys: Vec<&str> = entries
        .iter()
        .map(|e| e["atKey"].as_str().unwrap())
        .collect();
    // One entry per key (the latest), ascending; hidden keys need showHidden.
    let ours = [
        "phone.wavi@alice",
        "public:email.wavi@alice",
        "note.buzz@alice",
    ];
    let listed: Vec<&str> = keys.iter().copied().filter(|k| ours.contains(k)).collect();
    assert_eq!(listed, ours);
    assert!(!keys.contains(&"_hidden.wavi@alice"));
    let entry = |key: &str| entries.iter().find(|e| e["atKey"] == key).unwrap().clone();
    let phone = entry("phone.wavi@alice");
    assert_eq!(phone["commitId"], meta);
    assert_eq!(phone["operation"], "#");
    assert!(phone["opTime"].as_str().unwrap().starts_with("2024-10-24"));
    let note = entry("note.buzz@alice");
    assert_eq!(
        (note["commitId"].as_i64(), note["operation"].as_str()),
        (Some(deleted), Some("-"))
    );

    let shown = json(&c.send("scan:cl:showHidden:true").await);
    assert!(shown
        .as_array()
        .unwrap()
        .iter()
        .any(|e| e["atKey"] == "_hidden.wavi@alice" && e["commitId"] == hidden));
    let wavi = json(&c.send("scan:cl .*\\.wavi@alice").await);
    let wavi: Vec<&str> = wavi
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["atKey"].as_str().unwrap())
        .collect();
    assert_eq!(wavi, ["phone.wavi@alice", "public:email.wavi@alice"]);
    // Pages of 100: a store this small has one.
    assert_eq!(json(&c.send("scan:cl:page:0").await), all);
    assert_eq!(c.send("scan:cl:page:1").await, "data:[]");

    // Not for anonymous connections; a bad regex is AT0003.
    let mut anon = server.connect().await;
    assert!(anon.send("scan:cl").await.starts_with("error:AT0401"));
    assert!(c.send("scan:cl [").await.starts_with("error:AT0003"));
    server.stop().await;
}
