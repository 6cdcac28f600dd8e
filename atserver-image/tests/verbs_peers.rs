//! Server-to-server over TLS with the real directory and two atserver processes: the atServer
//! issues `pol1.` bound challenges, sends `to:@peer` first when it dials, and resolves
//! `atsign://` references for a pol-authenticated peer with the peer's own view.

#[path = "common/fleet.rs"]
mod fleet;

use at_protocol::client::{challenge_binding, ChallengeBinding};
use at_protocol::AtSign;
use fleet::{metrics, send, Fleet};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn peers_meet_with_to_and_pol1_and_resolve_references() {
    let fleet = Fleet::start().await;
    let alice = fleet.start_node("@alice", "127.0.0.2").await;
    let bob = fleet.start_node("@bob", "127.0.0.3").await;
    let mut a = fleet.owner(&alice).await;
    let mut b = fleet.owner(&bob).await;

    // What @alice's server answers a peer presenting @bob's certificate: a bound challenge
    // naming @alice, colon-free.
    let mut raw = fleet.connect(&alice, Some(&bob.leaf)).await;
    let reply = send(&mut raw, "from:@bob").await;
    let challenge = reply
        .strip_prefix("data:proof:")
        .and_then(|r| r.split_once(':'))
        .map(|(_, c)| c)
        .unwrap_or_else(|| panic!("not a proof challenge: {reply}"));
    assert_eq!(
        challenge_binding(challenge),
        ChallengeBinding::Bound(AtSign::parse("@alice").unwrap())
    );

    // @alice shares a reference and its target with @bob (no ttr: @bob's server fetches).
    for cmd in [
        "update:@bob:card.wavi@alice atsign://email.wavi@alice",
        "update:@bob:email.wavi@alice bob-only@example.com",
        "update:public:email.wavi@alice public@example.com",
    ] {
        assert!(send(&mut a, cmd).await.starts_with("data:"), "{cmd}");
    }
    // @bob reads through his server, which dials @alice's with `to:@alice` first, then from/pol
    // on the pol1 challenge; @alice resolves the reference as @bob sees it.
    assert_eq!(
        send(&mut b, "lookup:card.wavi@alice").await,
        "data:bob-only@example.com"
    );
    let alice_metrics = metrics(&alice).await;
    assert!(
        alice_metrics.contains(r#"atserver_commands_total{verb="to",outcome="ok"}"#),
        "{alice_metrics}"
    );
    assert!(alice_metrics.contains(r#"atserver_commands_total{verb="pol",outcome="ok"}"#));
    // Anonymous callers see the public target.
    let mut anon = fleet.connect(&alice, None).await;
    assert_eq!(
        send(&mut anon, "lookup:email.wavi@alice").await,
        "data:public@example.com"
    );
}
