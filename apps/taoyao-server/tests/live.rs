//! Live streaming with real WebRTC peers: one anchor to 20 viewers, the co-host flow, live stop
//! and the anchor dropping off.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestServer, code, eventually, heard, media, member, member_in, received_from};
use serde_json::{Value, json};
use taoyao_bench::member::Member;

/// `room::enter` was refused because the room is full.
fn full<E: std::fmt::Display>(r: Result<Value, E>) {
    let e = r.expect_err("entered a full room").to_string();
    assert!(e.contains("\"3403\"") && e.contains("is full"), "{e}");
}

async fn told(m: &Member, signal: &str, pred: impl Fn(&Value) -> bool) -> Value {
    m.note(Duration::from_secs(5), |n| {
        n["header"]["signal"] == signal && pred(&n["body"])
    })
    .await
    .unwrap_or_else(|| panic!("{} was not told {signal}", m.id))
}

/// The anchor enters `room` (sfu), publishes and goes on air.
async fn go_live(server: &TestServer, room: &str) -> Arc<Member> {
    go_live_on(server, room, "sfu").await
}

async fn go_live_on(server: &TestServer, room: &str, architecture: &str) -> Arc<Member> {
    let anchor = member_in(server, "anchor", room, architecture).await;
    anchor.publish(media(), true, true).await.unwrap();
    let r = anchor
        .request("live::start", json!({"roomId": room}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(r["body"]["anchor"], "anchor");
    anchor
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn one_anchor_to_twenty_viewers_then_live_stop_tells_every_viewer() {
    // 21 members in a room of the default `rooms.max_members` (16): a live holds
    // `live.max_viewers` (200) viewers.
    let server = TestServer::start().await;
    let anchor = go_live(&server, "live-20").await;
    let mut viewers = Vec::new();
    for i in 0..20 {
        let v = member(&server, &format!("v{i:02}")).await;
        let r = v.enter("live-20", "all").await.unwrap();
        assert_eq!(r["body"]["mayPublish"], false);
        assert_eq!(r["body"]["live"]["anchor"], "anchor");
        viewers.push(v);
    }
    for v in &viewers {
        eventually(
            Duration::from_secs(30),
            &format!("{} to receive the anchor's audio and video", v.id),
            || received_from(v, "anchor", true) > 0 && received_from(v, "anchor", false) > 0,
        )
        .await;
        // A viewer joining late starts on a keyframe.
        let video = v.sub().received.find("anchor", true).unwrap();
        assert!(video.log()[0].keyframe, "{} started mid-frame", v.id);
    }
    // The live client list shows the live with its viewers.
    let r = viewers[0].request("live::list", json!({})).await.unwrap();
    let lives = r["body"]["lives"].as_array().unwrap();
    assert_eq!(lives.len(), 1, "{r}");
    assert_eq!(
        (
            lives[0]["roomId"].clone(),
            lives[0]["anchor"].clone(),
            lives[0]["viewers"].clone()
        ),
        (json!("live-20"), json!("anchor"), json!(20))
    );
    // A viewer does not publish; nor stop the live.
    let Err(e) = viewers[1].publish(media(), true, true).await else {
        panic!("a viewer published");
    };
    assert!(e.to_string().contains("\"3403\""), "{e}");
    let r = viewers[1]
        .request("live::stop", json!({"roomId": "live-20"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3403", "{r}");

    let r = anchor
        .request("live::stop", json!({"roomId": "live-20"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    for v in &viewers {
        let n = told(v, "live::stop", |b| b["roomId"] == "live-20").await;
        assert_eq!(n["body"]["reason"], "stopped by anchor");
    }
    let r = viewers[0].request("live::list", json!({})).await.unwrap();
    assert_eq!(r["body"]["lives"], json!([]));
    anchor.close_peers().await;
    for v in &viewers {
        v.close_peers().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_room_holds_max_viewers_a_meeting_max_members() {
    let server = TestServer::with(|c| {
        c.rooms.max_members = 2;
        c.live.max_cohosts = 1;
        c.live.max_viewers = 2;
    })
    .await;
    let anchor = member_in(&server, "anchor", "cap", "sfu").await;
    let mut viewers = vec![member_in(&server, "m1", "cap", "sfu").await];
    // A meeting: rooms.max_members.
    let late = member(&server, "m2").await;
    full(late.enter("cap", "none").await);
    // On air: the stage (anchor + 1 co-host) and 2 viewers = 4 members.
    let r = anchor
        .request("live::start", json!({"roomId": "cap"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    late.enter("cap", "none").await.unwrap();
    viewers.push(late);
    let v3 = member(&server, "m3").await;
    v3.enter("cap", "none").await.unwrap();
    viewers.push(v3);
    let v4 = member(&server, "m4").await;
    full(v4.enter("cap", "none").await);
    // Off air the meeting's limit is back: nobody new while 4 > 2 are in.
    let r = anchor
        .request("live::stop", json!({"roomId": "cap"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    full(v4.enter("cap", "none").await);
    for v in &viewers {
        v.close_peers().await;
    }
    anchor.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_viewer_asks_the_anchor_accepts_every_viewer_sees_the_cohost_until_it_ends() {
    let server = TestServer::start().await;
    let anchor = go_live(&server, "live-co").await;
    let guest = member(&server, "guest").await;
    guest.enter("live-co", "all").await.unwrap();
    let watcher = member(&server, "watcher").await;
    watcher.enter("live-co", "all").await.unwrap();

    // Ask; only the anchor accepts.
    let r = guest
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "request"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    told(&anchor, "live::cohost", |b| {
        b["action"] == "request" && b["clientId"] == "guest"
    })
    .await;
    let r = watcher
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "accept", "clientId": "guest"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "3403", "{r}");
    let r = anchor
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "accept", "clientId": "guest"}),
        )
        .await
        .unwrap();
    assert_eq!(r["body"]["live"]["cohosts"], json!(["guest"]), "{r}");
    told(&watcher, "live::cohost", |b| {
        b["action"] == "accept" && b["clientId"] == "guest"
    })
    .await;

    // On stage: the guest publishes and the viewers and the anchor receive it.
    guest.publish(media(), true, true).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "the watcher to see the guest",
        || {
            received_from(&watcher, "guest", true) > 0
                && received_from(&watcher, "guest", false) > 0
        },
    )
    .await;
    eventually(
        Duration::from_secs(15),
        "the anchor to see the guest",
        || received_from(&anchor, "guest", true) > 0,
    )
    .await;

    // The anchor ends it: the guest's streams end for everyone and it is a viewer again.
    let r = anchor
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "end", "clientId": "guest"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    told(&watcher, "live::cohost", |b| {
        b["action"] == "end" && b["clientId"] == "guest"
    })
    .await;
    told(&watcher, "media::unpublish", |b| b["clientId"] == "guest").await;
    let Err(e) = guest.publish(media(), true, false).await else {
        panic!("an ex-co-host published");
    };
    assert!(e.to_string().contains("\"3403\""), "{e}");

    // The anchor invites instead; the viewer declines and the anchor is told.
    anchor
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "invite", "clientId": "watcher"}),
        )
        .await
        .unwrap();
    told(&watcher, "live::cohost", |b| {
        b["action"] == "invite" && b["from"] == "anchor"
    })
    .await;
    let r = watcher
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "decline"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "0000", "{r}");
    told(&anchor, "live::cohost", |b| {
        b["action"] == "decline" && b["clientId"] == "watcher"
    })
    .await;
    let r = watcher
        .request(
            "live::cohost",
            json!({"roomId": "live-co", "action": "dance"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "3400", "{r}");
    for m in [&anchor, &guest, &watcher] {
        m.close_peers().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_that_drops_stops_the_live_or_pauses_it_by_config() {
    // Default: stop.
    let server = TestServer::start().await;
    let anchor = go_live(&server, "live-drop").await;
    let v = member(&server, "viewer").await;
    v.enter("live-drop", "all").await.unwrap();
    anchor.vanish().await;
    let n = told(&v, "live::stop", |_| true).await;
    assert_eq!(n["body"]["reason"], "the anchor disconnected");
    v.close_peers().await;
    server.stop().await;

    // Pause: viewers are told, and told again when the anchor is back.
    let server = TestServer::with(|c| {
        c.live.on_anchor_drop = taoyao_live::AnchorDrop::Pause;
    })
    .await;
    let anchor = go_live(&server, "live-pause").await;
    let v = member(&server, "viewer").await;
    v.enter("live-pause", "all").await.unwrap();
    anchor.vanish().await;
    let n = told(&v, "live::pause", |_| true).await;
    assert_eq!(n["body"]["resumeWithinMs"], 30000);
    let r = v.request("live::list", json!({})).await.unwrap();
    assert_eq!(r["body"]["lives"][0]["paused"], true, "{r}");
    let back = member(&server, "anchor").await;
    back.enter("live-pause", "all").await.unwrap();
    told(&v, "live::resume", |b| b["anchor"] == "anchor").await;
    // Back on stage: it publishes again and the viewer receives it.
    back.publish(media(), true, false).await.unwrap();
    eventually(
        Duration::from_secs(15),
        "the viewer to see the anchor again",
        || received_from(&v, "anchor", true) > 0,
    )
    .await;
    back.close_peers().await;
    v.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_live_runs_on_mcu_too_viewers_hear_the_anchor_in_the_mix() {
    let server = TestServer::start().await;
    let anchor = go_live_on(&server, "live-mcu", "mcu").await;
    let viewers = [member(&server, "w1").await, member(&server, "w2").await];
    for v in &viewers {
        let r = v.enter("live-mcu", "all").await.unwrap();
        assert_eq!(r["body"]["architecture"], "mcu");
        assert_eq!(r["body"]["mayPublish"], false);
    }
    for v in &viewers {
        eventually(
            Duration::from_secs(20),
            &format!("{} to see the anchor and hear the mix", v.id),
            || received_from(v, "anchor", true) > 0 && received_from(v, "mix", false) > 60,
        )
        .await;
        // The mix holds the anchor's 440 Hz tone (threshold as in tests/mcu.rs).
        let e = taoyao_media::mix::tone_energy(&heard(v, 50), 440.0);
        assert!(e > 1e5, "{} hears the anchor too faintly: {e:.0}", v.id);
    }
    let Err(e) = viewers[0].publish(media(), false, true).await else {
        panic!("a viewer published audio into the mix");
    };
    assert!(e.to_string().contains("\"3403\""), "{e}");
    anchor.close_peers().await;
    for v in &viewers {
        v.close_peers().await;
    }
    server.stop().await;
}
