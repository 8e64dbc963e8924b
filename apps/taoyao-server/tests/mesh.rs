//! Mesh rooms: the server relays negotiation between members and never touches media.

mod common;

use std::time::Duration;

use common::{TestServer, sdp};
use serde_json::json;

#[tokio::test]
async fn offers_answers_and_candidates_are_relayed_to_the_named_member() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    for x in [&mut a, &mut b, &mut c] {
        assert_eq!(
            x.request("room::enter", json!({"roomId": "m"})).await["code"],
            "0000"
        );
    }
    // The newcomer (c) offers to those already there.
    let offer_sdp = sdp("sendrecv");
    let r = c
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": offer_sdp}),
        )
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    let offer = a.expect("media::exchange").await;
    assert_eq!(
        offer["body"],
        json!({"roomId": "m", "from": "c", "type": "offer", "sdp": offer_sdp})
    );
    b.expect_none("media::exchange", Duration::from_millis(150))
        .await;

    a.request(
        "media::exchange",
        json!({"roomId": "m", "to": "c", "type": "answer", "sdp": sdp("sendrecv")}),
    )
    .await;
    let answer = c.expect("media::exchange").await;
    assert_eq!(
        (
            answer["body"]["type"].as_str(),
            answer["body"]["from"].as_str()
        ),
        (Some("answer"), Some("a"))
    );

    let cand = json!({"candidate": "candidate:1 1 udp 2122260223 127.0.0.1 50000 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    a.request(
        "media::exchange",
        json!({"roomId": "m", "to": "c", "type": "candidate", "candidate": cand}),
    )
    .await;
    let got = c.expect("media::exchange").await;
    assert_eq!(got["body"]["candidate"], cand);
    assert_eq!(
        server
            .parts()
            .rooms
            .media_stats("m")
            .await
            .unwrap()
            .negotiations,
        3
    );
    assert_eq!(
        server
            .parts()
            .rooms
            .media_stats("m")
            .await
            .unwrap()
            .peer_connections,
        0,
        "mesh holds no media"
    );
    server.stop().await;
}

#[tokio::test]
async fn bad_exchanges_are_refused_without_disturbing_the_room() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let _outsider = server.client("outsider").await;
    a.request("room::enter", json!({"roomId": "m"})).await;
    b.request("room::enter", json!({"roomId": "m"})).await;
    let good = sdp("sendrecv");
    for (body, code) in [
        (
            json!({"roomId": "m", "to": "b", "type": "offer", "sdp": "v=0 garbage"}),
            "3400",
        ),
        (
            json!({"roomId": "m", "to": "b", "type": "answer", "sdp": "\u{0}\u{1}"}),
            "3400",
        ),
        (
            json!({"roomId": "m", "to": "outsider", "type": "offer", "sdp": good}),
            "3404",
        ),
        (
            json!({"roomId": "m", "to": "ghost", "type": "offer", "sdp": good}),
            "3404",
        ),
        (
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": good}),
            "3400",
        ),
        (json!({"roomId": "m", "type": "offer", "sdp": good}), "3400"),
        (
            json!({"roomId": "m", "to": "b", "type": "bogus", "sdp": good}),
            "3400",
        ),
        (json!({"roomId": "m", "to": "b", "type": "offer"}), "3400"),
        (
            json!({"roomId": "m", "to": "b", "type": "offer", "sdp": ""}),
            "3400",
        ),
        (
            json!({"roomId": "m", "to": "b", "type": "candidate", "candidate": 5}),
            "3400",
        ),
        (
            json!({"roomId": "m", "to": 5, "type": "offer", "sdp": good}),
            "3400",
        ),
    ] {
        let r = a.request("media::exchange", body.clone()).await;
        assert_eq!(r["code"], code, "{body}: {r}");
    }
    b.expect_none("media::exchange", Duration::from_millis(150))
        .await;
    let r = a
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "b", "type": "offer", "sdp": good}),
        )
        .await;
    assert_eq!(r["code"], "0000");
    b.expect("media::exchange").await;
    server.stop().await;
}

#[tokio::test]
async fn publish_pause_resume_unpublish_are_relayed_to_the_others() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    for x in [&mut a, &mut b, &mut c] {
        x.request("room::enter", json!({"roomId": "m"})).await;
    }
    for (signal, kind) in [
        ("media::publish", json!(null)),
        ("media::pause", json!("audio")),
        ("media::resume", json!("audio")),
        ("media::unpublish", json!("video")),
    ] {
        let r = a
            .request(signal, json!({"roomId": "m", "kind": kind}))
            .await;
        assert_eq!(r["code"], "0000", "{signal}: {r}");
        for x in [&mut b, &mut c] {
            let m = x.expect(signal).await;
            assert_eq!(
                m["body"],
                json!({"roomId": "m", "clientId": "a", "kind": kind}),
                "{signal}"
            );
        }
        a.expect_none(signal, Duration::from_millis(50)).await;
    }
    assert_eq!(
        a.request("media::pause", json!({"roomId": "m", "kind": "smell"}))
            .await["code"],
        "3400"
    );
    server.stop().await;
}

#[tokio::test]
async fn grants_and_the_track_limit_are_held_against_the_sdp() {
    let secret = "0123456789abcdef0123456789abcdef";
    let server = TestServer::with(|c| {
        c.auth.token_secret = Some(secret.into());
        c.rooms.max_tracks_per_member = 1;
    })
    .await;
    let token = |sub: &str, publish: bool, subscribe: bool| {
        let claims = taoyao_signal::Claims {
            sub: sub.into(),
            name: None,
            exp: 4_000_000_000,
            iat: None,
            jti: None,
            grants: taoyao_signal::Grants {
                publish,
                subscribe,
                ..Default::default()
            },
        };
        taoyao_signal::issue_token(secret, &claims).unwrap()
    };
    let mut viewer = server.connect().await;
    assert_eq!(
        viewer
            .request(
                "client::register",
                json!({"token": token("viewer", false, true)})
            )
            .await["code"],
        "0000"
    );
    let mut deaf = server.connect().await;
    assert_eq!(
        deaf.request(
            "client::register",
            json!({"token": token("deaf", true, false)})
        )
        .await["code"],
        "0000"
    );
    let mut a = server.client("a").await;
    for x in [&mut viewer, &mut deaf, &mut a] {
        assert_eq!(
            x.request("room::enter", json!({"roomId": "m"})).await["code"],
            "0000"
        );
    }
    let r = viewer
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": sdp("sendrecv")}),
        )
        .await;
    assert_eq!(r["code"], "3403");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("not granted: publish"),
        "{r}"
    );
    assert_eq!(
        viewer
            .request("media::publish", json!({"roomId": "m"}))
            .await["code"],
        "3403"
    );
    let r = viewer
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": sdp("recvonly")}),
        )
        .await;
    assert_eq!(r["code"], "0000", "receiving only is fine: {r}");
    let r = deaf
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": sdp("sendonly")}),
        )
        .await;
    assert_eq!(
        r["code"], "3403",
        "two sending sections over a limit of one: {r}"
    );
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("max_tracks_per_member")
    );
    let r = deaf
        .request(
            "media::exchange",
            json!({"roomId": "m", "to": "a", "type": "offer", "sdp": sdp("recvonly")}),
        )
        .await;
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("not granted: subscribe"),
        "{r}"
    );
    server.stop().await;
}
