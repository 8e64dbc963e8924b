//! Meeting modes with real WebRTC peers: broadcast mode refuses a listener's publish; intercom
//! forwards only the floor holder's audio and passes the floor in queue order.

mod common;

use std::time::Duration;

use common::{TestServer, code, eventually, media, member, received_from};
use serde_json::{Value, json};
use taoyao_bench::member::Member;

async fn floor(m: &Member, action: &str) -> Value {
    m.request("room::floor", json!({"roomId": "ic", "action": action}))
        .await
        .unwrap()
}

/// Packets `m` receives from `from`'s audio over `window`.
async fn audio_in(m: &Member, from: &str, window: Duration) -> u64 {
    let before = received_from(m, from, false);
    tokio::time::sleep(window).await;
    received_from(m, from, false) - before
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn broadcast_mode_lets_only_presenters_publish() {
    let server = TestServer::start().await;
    let owner = member(&server, "owner").await;
    let r = owner
        .enter_with(json!({"roomId": "bc", "architecture": "sfu", "mode": "broadcast"}))
        .await
        .unwrap();
    assert_eq!(r["body"]["mode"], "broadcast");
    assert_eq!(r["body"]["mayPublish"], true);
    let listener = member(&server, "listener").await;
    let r = listener.enter("bc", "all").await.unwrap();
    assert_eq!(r["body"]["mayPublish"], false);
    assert_eq!(r["body"]["presenters"], json!(["owner"]));

    // The listener's publish is refused with 3403, and the room carries on.
    let Err(err) = listener.publish(media(), true, true).await else {
        panic!("a listener published in broadcast mode");
    };
    assert!(err.to_string().contains("\"3403\""), "{err}");
    assert!(err.to_string().contains("only presenters publish"), "{err}");
    owner.publish(media(), true, true).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "the listener to see the owner",
        || {
            received_from(&listener, "owner", true) > 0
                && received_from(&listener, "owner", false) > 0
        },
    )
    .await;

    // Only the owner chooses presenters; once named, the listener may publish.
    let r = listener
        .request(
            "room::presenter",
            json!({"roomId": "bc", "clientId": "listener"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "3403", "{r}");
    let r = owner
        .request(
            "room::presenter",
            json!({"roomId": "bc", "clientId": "listener"}),
        )
        .await
        .unwrap();
    assert_eq!(r["body"]["presenters"], json!(["listener", "owner"]), "{r}");
    listener
        .note(Duration::from_secs(2), |n| {
            n["header"]["signal"] == "room::presenter"
        })
        .await
        .expect("members are told the presenters");
    listener.publish(media(), true, false).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "the owner to see the listener",
        || received_from(&owner, "listener", true) > 0,
    )
    .await;

    // Switching to meeting mode is the owner's, and everyone is told.
    let r = listener
        .request("room::mode", json!({"roomId": "bc", "mode": "meeting"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3403", "{r}");
    let r = owner
        .request("room::mode", json!({"roomId": "bc", "mode": "nonsense"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3400", "{r}");
    let r = owner
        .request("room::mode", json!({"roomId": "bc", "mode": "meeting"}))
        .await
        .unwrap();
    assert_eq!(r["body"]["mode"], "meeting");
    let told = listener
        .note(Duration::from_secs(2), |n| {
            n["header"]["signal"] == "room::mode" && n["body"]["mode"] == "meeting"
        })
        .await;
    assert!(told.is_some(), "members are told the mode");
    owner.close_peers().await;
    listener.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn intercom_forwards_only_the_floor_holders_audio_in_queue_order() {
    let server = TestServer::start().await;
    let ids = ["a", "b", "c", "d"];
    let mut members = Vec::new();
    for id in ids {
        let m = member(&server, id).await;
        m.enter_with(json!({"roomId": "ic", "architecture": "sfu", "mode": "intercom"}))
            .await
            .unwrap();
        members.push(m);
    }
    for m in &members[..3] {
        m.publish(media(), true, true).await.unwrap();
    }
    let (a, b, c, d) = (&members[0], &members[1], &members[2], &members[3]);
    // Video flows from everyone; nobody holds the floor, so no audio.
    eventually(Duration::from_secs(20), "d to see a, b and c", || {
        ["a", "b", "c"]
            .iter()
            .all(|o| received_from(d, o, true) > 0)
    })
    .await;
    for o in ["a", "b", "c"] {
        assert_eq!(
            audio_in(d, o, Duration::from_millis(300)).await,
            0,
            "{o} heard without the floor"
        );
    }

    let r = floor(a, "request").await;
    assert_eq!(r["body"]["granted"], true, "{r}");
    let r = floor(b, "request").await;
    assert_eq!(
        (r["body"]["granted"].clone(), r["body"]["position"].clone()),
        (json!(false), json!(1))
    );
    let r = floor(c, "request").await;
    assert_eq!(r["body"]["position"], 2, "{r}");
    assert_eq!(r["body"]["floor"]["queue"], json!(["b", "c"]));

    // Only a is heard: 50 packets/s of Opus.
    eventually(Duration::from_secs(5), "d to hear a", || {
        received_from(d, "a", false) > 0
    })
    .await;
    let (ha, hb, hc) = (
        audio_in(d, "a", Duration::from_millis(500)).await,
        received_from(d, "b", false),
        received_from(d, "c", false),
    );
    assert!(
        ha > 10,
        "d hears the floor holder a: {ha} packets in 500 ms"
    );
    assert_eq!((hb, hc), (0, 0), "d hears b or c without the floor");
    // The holder's own pause/resume cannot open someone else's gate: b resumes, still unheard.
    let r = b
        .request("media::resume", json!({"roomId": "ic", "kind": "audio"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(audio_in(d, "b", Duration::from_millis(300)).await, 0);

    // a releases: the floor goes to b (first in the queue), everyone is told.
    floor(a, "release").await;
    let n = d
        .note(Duration::from_secs(2), |n| {
            n["header"]["signal"] == "room::floor"
                && n["body"]["event"]["type"] == "granted"
                && n["body"]["event"]["clientId"] == "b"
        })
        .await
        .expect("d is told b holds the floor");
    assert_eq!(n["body"]["floor"]["holder"], "b");
    eventually(Duration::from_secs(5), "d to hear b", || {
        received_from(d, "b", false) > 0
    })
    .await;
    tokio::time::sleep(Duration::from_millis(100)).await;
    assert_eq!(
        audio_in(d, "a", Duration::from_millis(400)).await,
        0,
        "a still heard after releasing"
    );
    assert!(audio_in(d, "b", Duration::from_millis(400)).await > 10);

    // b vanishes: the floor is taken back and goes to c.
    b.vanish().await;
    let n = d
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "room::floor"
                && n["body"]["event"]["type"] == "granted"
                && n["body"]["event"]["clientId"] == "c"
        })
        .await
        .expect("the floor passes to c when b disconnects");
    assert_eq!(n["body"]["floor"]["queue"], json!([]));
    assert!(
        d.notes()
            .iter()
            .any(|n| n["body"]["event"]["type"] == "revoked"
                && n["body"]["event"]["clientId"] == "b")
    );
    eventually(Duration::from_secs(5), "d to hear c", || {
        received_from(d, "c", false) > 0
    })
    .await;

    // Outside intercom there is no floor.
    let r = c
        .request("room::mode", json!({"roomId": "ic", "mode": "meeting"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3403", "only the owner changes the mode: {r}");
    a.request("room::mode", json!({"roomId": "ic", "mode": "meeting"}))
        .await
        .unwrap();
    let r = floor(c, "request").await;
    assert_eq!(code(&r), "3400", "{r}");
    // In meeting mode everyone is heard again.
    eventually(Duration::from_secs(5), "d to hear a again", || {
        received_from(d, "a", false) > 0
    })
    .await;
    assert!(audio_in(d, "a", Duration::from_millis(400)).await > 10);
    for m in &members {
        m.close_peers().await;
    }
    server.stop().await;
}

#[tokio::test]
async fn the_floor_is_taken_back_after_floor_max_hold_ms_and_passes_on() {
    let server = TestServer::with(|c| c.rooms.floor_max_hold_ms = 300).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let r = a
        .request("room::enter", json!({"roomId": "ptt", "mode": "intercom"}))
        .await;
    assert_eq!(r["body"]["mode"], "intercom", "{r}");
    b.request("room::enter", json!({"roomId": "ptt"})).await;
    let started = std::time::Instant::now();
    let r = a
        .request("room::floor", json!({"roomId": "ptt", "action": "request"}))
        .await;
    assert_eq!(r["body"]["granted"], true, "{r}");
    let r = b
        .request("room::floor", json!({"roomId": "ptt", "action": "request"}))
        .await;
    assert_eq!(r["body"]["position"], 1, "{r}");
    // b is told the floor was revoked from a (timeout), then granted to b.
    let revoked = loop {
        let n = b.expect("room::floor").await;
        if n["body"]["event"]["type"] == "revoked" {
            break n;
        }
    };
    let held = started.elapsed();
    assert_eq!(revoked["body"]["event"]["clientId"], "a");
    assert_eq!(revoked["body"]["event"]["reason"], "timeout");
    assert!(
        held >= Duration::from_millis(290) && held < Duration::from_secs(3),
        "{held:?}"
    );
    let granted = b.expect("room::floor").await;
    assert_eq!(granted["body"]["event"]["type"], "granted");
    assert_eq!(granted["body"]["floor"]["holder"], "b");
    // A bad action is refused and the room carries on.
    let r = b
        .request("room::floor", json!({"roomId": "ptt", "action": "grab"}))
        .await;
    assert_eq!(r["code"], "3400", "{r}");
    server.stop().await;
}
