//! 1:1 P2P calls: session::call / exchange / pause / resume / close.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;

#[tokio::test]
async fn a_call_from_ring_to_hang_up() {
    let server = TestServer::start().await;
    let mut alice = server.client("alice").await;
    let mut bob = server.client("bob").await;
    let mut eve = server.client("eve").await;
    let r = alice
        .request(
            "session::call",
            json!({"clientId": "bob", "audio": true, "video": false}),
        )
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    let sid = r["body"]["sessionId"].as_str().unwrap().to_owned();
    let ring = bob.expect("session::call").await;
    assert_eq!(
        ring["body"],
        json!({"sessionId": sid, "clientId": "alice", "name": "name-alice", "audio": true, "video": false})
    );

    alice
        .request(
            "session::exchange",
            json!({"sessionId": sid, "type": "offer", "sdp": "v=0 o"}),
        )
        .await;
    let offer = bob.expect("session::exchange").await;
    assert_eq!(
        offer["body"],
        json!({"sessionId": sid, "from": "alice", "type": "offer", "sdp": "v=0 o"})
    );
    bob.request(
        "session::exchange",
        json!({"sessionId": sid, "type": "answer", "sdp": "v=0 a"}),
    )
    .await;
    assert_eq!(
        alice.expect("session::exchange").await["body"]["type"],
        "answer"
    );
    let cand = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    bob.request(
        "session::exchange",
        json!({"sessionId": sid, "type": "candidate", "candidate": cand}),
    )
    .await;
    assert_eq!(
        alice.expect("session::exchange").await["body"]["candidate"],
        cand
    );

    bob.request("session::pause", json!({"sessionId": sid, "type": "video"}))
        .await;
    assert_eq!(
        alice.expect("session::pause").await["body"],
        json!({"sessionId": sid, "from": "bob", "type": "video"})
    );
    bob.request(
        "session::resume",
        json!({"sessionId": sid, "type": "video"}),
    )
    .await;
    assert_eq!(
        alice.expect("session::resume").await["body"]["type"],
        "video"
    );
    assert_eq!(
        bob.request("session::pause", json!({"sessionId": sid, "type": "x"}))
            .await["code"],
        "3400"
    );

    // Someone else cannot meddle.
    assert_eq!(
        eve.request(
            "session::exchange",
            json!({"sessionId": sid, "type": "offer", "sdp": "v=0"})
        )
        .await["code"],
        "3403"
    );
    assert_eq!(
        eve.request("session::close", json!({"sessionId": sid}))
            .await["code"],
        "3403"
    );

    assert_eq!(
        alice
            .request("session::close", json!({"sessionId": sid}))
            .await["code"],
        "0000"
    );
    let closed = bob.expect("session::close").await;
    assert_eq!(closed["body"]["sessionId"], sid);
    assert_eq!(
        bob.request(
            "session::exchange",
            json!({"sessionId": sid, "type": "offer", "sdp": "v=0"})
        )
        .await["code"],
        "3404"
    );
    assert_eq!(server.parts().calls.count(), 0);
    server.stop().await;
}

#[tokio::test]
async fn bad_calls_are_refused() {
    let server = TestServer::with(|c| c.calls.max_per_client = 1).await;
    let mut a = server.client("a").await;
    let _b = server.client("b").await;
    let _c = server.client("c").await;
    assert_eq!(
        a.request("session::call", json!({"clientId": "a"})).await["code"],
        "3400"
    );
    assert_eq!(
        a.request("session::call", json!({"clientId": "ghost"}))
            .await["code"],
        "3404"
    );
    assert_eq!(a.request("session::call", json!({})).await["code"], "3400");
    assert_eq!(
        a.request("session::call", json!({"clientId": "b", "audio": "yes"}))
            .await["code"],
        "3400"
    );
    assert_eq!(
        a.request("session::call", json!({"clientId": "b"})).await["code"],
        "0000"
    );
    let r = a.request("session::call", json!({"clientId": "c"})).await;
    assert_eq!(r["code"], "3403", "over calls.max_per_client");
    assert_eq!(
        a.request(
            "session::exchange",
            json!({"sessionId": "nope", "type": "offer", "sdp": "v=0"})
        )
        .await["code"],
        "3404"
    );
    server.stop().await;
}

#[tokio::test]
async fn a_disconnect_ends_the_call_and_tells_the_peer() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let r = a.request("session::call", json!({"clientId": "b"})).await;
    let sid = r["body"]["sessionId"].clone();
    b.expect("session::call").await;
    a.vanish();
    let closed = b.expect("session::close").await;
    assert_eq!(closed["body"]["sessionId"], sid);
    assert_eq!(closed["body"]["reason"], "peer disconnected");
    assert_eq!(server.parts().calls.count(), 0);
    b.expect_none("session::close", Duration::from_millis(100))
        .await;
    server.stop().await;
}
