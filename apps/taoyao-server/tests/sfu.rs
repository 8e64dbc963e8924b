//! SFU rooms with real WebRTC peers (webrtc-rs) sending VP8 and Opus made by ffmpeg.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestServer, eventually};
use serde_json::{Value, json};
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::member::Member;
use taoyao_bench::peer::PeerOptions;

fn media() -> Arc<TestMedia> {
    static MEDIA: std::sync::OnceLock<Arc<TestMedia>> = std::sync::OnceLock::new();
    MEDIA
        .get_or_init(|| {
            let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
            Arc::new(TestMedia::make(&dir, &MediaSpec::default()).expect("test media (ffmpeg)"))
        })
        .clone()
}

async fn member(server: &TestServer, id: &str, opts: PeerOptions) -> Arc<Member> {
    Member::connect(
        &server.url(),
        json!({"clientId": id, "username": "taoyao", "password": "taoyao"}),
        opts,
    )
    .await
    .expect("member connects")
}

async fn enter(m: &Member, room: &str, subscribe: &str) -> Value {
    let r = m
        .enter_with(json!({"roomId": room, "architecture": "sfu", "subscribe": subscribe}))
        .await
        .unwrap();
    assert_eq!(r["body"]["architecture"], "sfu");
    r
}

fn receives(m: &Member, from: &str, video: bool) -> bool {
    m.sub()
        .received
        .find(from, video)
        .is_some_and(|t| t.packets() > 0)
}

/// The id of `owner`'s stream of that kind, as announced to `m`.
async fn stream_id(m: &Member, owner: &str, kind: &str) -> String {
    let n = m
        .note(Duration::from_secs(10), |n| {
            n["header"]["signal"] == "media::publish"
                && n["body"]["clientId"] == owner
                && n["body"]["kind"] == kind
        })
        .await
        .unwrap_or_else(|| panic!("{} was not told of {owner}'s {kind}", m.id));
    n["body"]["streamId"].as_str().unwrap().to_owned()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_members_each_receive_the_other_twos_audio_and_video() {
    let server = TestServer::start().await;
    let media = media();
    let ids = ["a", "b", "c"];
    let mut members = Vec::new();
    for id in ids {
        let m = member(&server, id, PeerOptions::default()).await;
        enter(&m, "sfu-3", "all").await;
        members.push(m);
    }
    for m in &members {
        m.publish(media.clone(), true, true).await.expect("publish");
    }
    for m in &members {
        for other in ids.iter().filter(|o| **o != m.id) {
            eventually(
                Duration::from_secs(20),
                &format!("{} to receive {other}'s audio and video", m.id),
                || receives(m, other, true) && receives(m, other, false),
            )
            .await;
            let video = m.sub().received.find(other, true).unwrap();
            assert!(
                video.log()[0].keyframe,
                "{} got {other}'s video starting mid-frame",
                m.id
            );
        }
    }
    assert_eq!(server.media_counts("sfu-3").await, (3, 6, 12, 6));
    for m in &members {
        m.close_peers().await;
    }
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn pause_stops_forwarding_and_resume_restarts_on_a_keyframe() {
    let server = TestServer::start().await;
    let a = member(&server, "a", PeerOptions::default()).await;
    let b = member(&server, "b", PeerOptions::default()).await;
    enter(&a, "sfu-pause", "none").await;
    enter(&b, "sfu-pause", "all").await;
    a.publish(media(), true, true).await.unwrap();
    let video = stream_id(&b, "a", "video").await;
    eventually(Duration::from_secs(15), "b to receive a's video", || {
        receives(&b, "a", true)
    })
    .await;
    let track = b.sub().received.find("a", true).unwrap();

    for (who, by_publisher) in [(&b, false), (&a, true)] {
        // Pause: nothing arrives 300 ms after the answer.
        let r = who
            .request(
                "media::pause",
                json!({"roomId": "sfu-pause", "streamId": video}),
            )
            .await
            .unwrap();
        assert_eq!(r["code"], "0000", "{r}");
        let paused_at = Instant::now();
        tokio::time::sleep(Duration::from_millis(1300)).await;
        let late: Vec<_> = track
            .log()
            .into_iter()
            .filter(|p| p.at > paused_at + Duration::from_millis(300))
            .collect();
        assert!(
            late.is_empty(),
            "{} packets arrived more than 300 ms after the pause (publisher pause: {by_publisher})",
            late.len()
        );
        if by_publisher {
            let n = b
                .note(Duration::from_secs(2), |n| {
                    n["header"]["signal"] == "media::pause" && n["body"]["streamId"] == video
                })
                .await;
            assert!(n.is_some(), "subscribers are told the publisher paused");
        }
        // Resume: packets come back, and the first one starts a keyframe.
        let resumed_at = Instant::now();
        let r = who
            .request(
                "media::resume",
                json!({"roomId": "sfu-pause", "streamId": video}),
            )
            .await
            .unwrap();
        assert_eq!(r["code"], "0000", "{r}");
        eventually(Duration::from_secs(5), "video after resume", || {
            track.log().iter().any(|p| p.at > resumed_at)
        })
        .await;
        let first = track.log().into_iter().find(|p| p.at > resumed_at).unwrap();
        assert!(
            first.keyframe,
            "the first packet after resume is not a keyframe (publisher pause: {by_publisher})"
        );
    }
    // Audio kept flowing throughout: only the video stream was paused.
    assert!(b.sub().received.find("a", false).unwrap().packets() > 100);
    a.close_peers().await;
    b.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn unpublish_ends_the_stream_at_subscribers() {
    let server = TestServer::start().await;
    let a = member(&server, "a", PeerOptions::default()).await;
    let b = member(&server, "b", PeerOptions::default()).await;
    enter(&a, "sfu-unpub", "none").await;
    enter(&b, "sfu-unpub", "all").await;
    a.publish(media(), true, true).await.unwrap();
    let video = stream_id(&b, "a", "video").await;
    eventually(Duration::from_secs(15), "b to receive a's video", || {
        receives(&b, "a", true)
    })
    .await;
    let r = a
        .request(
            "media::unpublish",
            json!({"roomId": "sfu-unpub", "streamId": video}),
        )
        .await
        .unwrap();
    assert_eq!(r["code"], "0000", "{r}");
    let n = b
        .note(Duration::from_secs(3), |n| {
            n["header"]["signal"] == "media::unpublish" && n["body"]["streamId"] == video
        })
        .await;
    assert!(n.is_some(), "subscribers are told");
    let at = Instant::now();
    tokio::time::sleep(Duration::from_millis(800)).await;
    let track = b.sub().received.find("a", true).unwrap();
    assert!(
        track
            .log()
            .iter()
            .all(|p| p.at < at + Duration::from_millis(300)),
        "video still arrives"
    );
    let status = b
        .request("room::status", json!({"roomId": "sfu-unpub"}))
        .await
        .unwrap();
    let streams: Vec<&str> = status["body"]["streams"]
        .as_array()
        .unwrap()
        .iter()
        .map(|s| s["streamId"].as_str().unwrap())
        .collect();
    assert!(
        !streams.contains(&video.as_str()) && streams.len() == 1,
        "{streams:?}"
    );
    let stats = server.parts().rooms.media_stats("sfu-unpub").await.unwrap();
    assert_eq!((stats.streams, stats.subscriptions), (1, 1));
    assert!(
        b.sub().received.find("a", false).unwrap().packets() > 0,
        "audio still flows"
    );
    a.close_peers().await;
    b.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_vanished_member_leaves_nothing_behind() {
    let server = TestServer::start().await;
    let media = media();
    let mut members = Vec::new();
    for id in ["a", "b", "c"] {
        let m = member(&server, id, PeerOptions::default()).await;
        enter(&m, "sfu-vanish", "all").await;
        m.publish(media.clone(), true, true).await.unwrap();
        members.push(m);
    }
    let sfu = server.parts().sfu.clone();
    eventually(Duration::from_secs(20), "every subscription to run", || {
        members.iter().all(|m| {
            members
                .iter()
                .filter(|o| o.id != m.id)
                .all(|o| receives(m, &o.id, true) && receives(m, &o.id, false))
        })
    })
    .await;
    // 3 members x (publish + subscribe); 6 forwarders + 12 sinks' feedback tasks + the room's
    // audio level reports.
    assert_eq!(sfu.stats().peer_connections, 6);
    assert_eq!(sfu.stats().tasks, 19);
    let c = members.pop().unwrap();
    c.vanish().await;
    for m in &members {
        let left = m
            .note(Duration::from_secs(5), |n| {
                n["header"]["signal"] == "room::leave" && n["body"]["clientId"] == "c"
            })
            .await;
        assert!(left.is_some(), "{} told c left", m.id);
        let gone = m
            .note(Duration::from_secs(5), |n| {
                n["header"]["signal"] == "media::unpublish" && n["body"]["clientId"] == "c"
            })
            .await;
        assert!(gone.is_some(), "{} told c's streams ended", m.id);
    }
    eventually(
        Duration::from_secs(5),
        "c's connections and tasks to end",
        || sfu.stats().peer_connections == 4 && sfu.stats().tasks == 9,
    )
    .await;
    assert_eq!(server.media_counts("sfu-vanish").await, (2, 4, 4, 4));
    // The others still receive each other.
    let before = members[0].sub().received.find("b", true).unwrap().packets();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(members[0].sub().received.find("b", true).unwrap().packets() > before);
    for m in &members {
        m.close_peers().await;
    }
    server.stop().await;
    assert_eq!(
        sfu.stats().peer_connections,
        0,
        "shutdown closes every connection"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn nack_repairs_five_percent_loss_at_a_subscriber() {
    let server = TestServer::start().await;
    let a = member(&server, "a", PeerOptions::default()).await;
    let lossy = PeerOptions {
        drop_incoming_pct: 5,
        ..Default::default()
    };
    let b = member(&server, "b", lossy).await;
    enter(&a, "sfu-nack", "none").await;
    enter(&b, "sfu-nack", "video").await;
    a.publish(media(), true, false).await.unwrap();
    eventually(Duration::from_secs(15), "b to receive a's video", || {
        receives(&b, "a", true)
    })
    .await;
    tokio::time::sleep(Duration::from_secs(6)).await;
    let track = b.sub().received.find("a", true).unwrap();
    let (distinct, missing) = track.sequence_stats();
    let dropped = b.sub().dropped.load(std::sync::atomic::Ordering::Relaxed);
    eprintln!(
        "video packets {distinct}, dropped by the network {dropped}, still missing {missing}"
    );
    assert!(
        dropped as f64 >= distinct as f64 * 0.02,
        "the 5% loss happened: {dropped} of {distinct}"
    );
    // Without repair about 5% would be missing; with NACK almost none (a retransmission can be
    // lost again, and the last few may still be in flight).
    assert!(
        (missing as f64) < distinct as f64 * 0.005 + 2.0,
        "{missing} of {distinct} still missing after NACK"
    );
    a.close_peers().await;
    b.close_peers().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn wrong_input_gets_a_clear_code_and_disturbs_nothing() {
    let server = TestServer::start().await;
    let a = member(&server, "a", PeerOptions::default()).await;
    let b = member(&server, "b", PeerOptions::default()).await;
    let outsider = member(&server, "outsider", PeerOptions::default()).await;
    enter(&a, "sfu-bad", "none").await;
    enter(&b, "sfu-bad", "all").await;
    a.publish(media(), true, true).await.unwrap();
    let video = stream_id(&b, "a", "video").await;
    eventually(Duration::from_secs(15), "b to receive a's video", || {
        receives(&b, "a", true)
    })
    .await;
    let cases: Vec<(&Arc<Member>, &str, Value, &str)> = vec![
        (
            &b,
            "media::subscribe",
            json!({"roomId": "sfu-bad", "streamId": "nope:video0"}),
            "3404",
        ),
        (
            &a,
            "media::subscribe",
            json!({"roomId": "sfu-bad", "streamId": video}),
            "3400",
        ),
        (
            &a,
            "media::subscribe",
            json!({"roomId": "sfu-bad", "clientId": "a"}),
            "3400",
        ),
        (
            &b,
            "media::subscribe",
            json!({"roomId": "sfu-bad", "clientId": "ghost"}),
            "3404",
        ),
        (
            &outsider,
            "media::publish",
            json!({"roomId": "sfu-bad", "sdp": "v=0"}),
            "3403",
        ),
        (
            &b,
            "media::publish",
            json!({"roomId": "sfu-bad", "sdp": "this is not sdp"}),
            "3400",
        ),
        (
            &b,
            "media::exchange",
            json!({"roomId": "sfu-bad", "type": "offer", "sdp": "v=0\r\n"}),
            "3400",
        ),
        (
            &b,
            "media::exchange",
            json!({"roomId": "sfu-bad", "transport": "subscribe", "type": "offer", "sdp": taoyao_sdp()}),
            "3400",
        ),
        (
            &a,
            "media::exchange",
            json!({"roomId": "sfu-bad", "transport": "subscribe", "type": "answer", "sdp": taoyao_sdp()}),
            "3400",
        ),
        (
            &b,
            "media::exchange",
            json!({"roomId": "sfu-bad", "transport": "publish", "type": "candidate", "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host"}}),
            "3400",
        ),
        (
            &b,
            "media::exchange",
            json!({"roomId": "sfu-bad", "transport": "sideways", "type": "answer", "sdp": taoyao_sdp()}),
            "3400",
        ),
        (
            &b,
            "media::pause",
            json!({"roomId": "sfu-bad", "streamId": "nope"}),
            "3404",
        ),
        (
            &b,
            "media::unpublish",
            json!({"roomId": "sfu-bad", "streamId": video}),
            "3400",
        ),
    ];
    for (who, signal, body, code) in cases {
        let r = who.request(signal, body.clone()).await.unwrap();
        assert_eq!(r["code"], code, "{signal} {body}: {r}");
        assert!(!r["message"].as_str().unwrap_or("").is_empty());
    }
    // The room's media is undisturbed.
    let track = b.sub().received.find("a", true).unwrap();
    let before = track.packets();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(track.packets() > before + 5, "video still flows");
    a.close_peers().await;
    b.close_peers().await;
    server.stop().await;
}

fn taoyao_sdp() -> String {
    common::sdp("sendrecv")
}

/// sfu rooms tell who speaks as mcu rooms do (`media::audio::volume`), from the RFC 6464 levels
/// publishers put on their audio: the member sending -20 dBov is the speaker, a silent one is
/// not; paused, nobody speaks and the room is told once.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_active_speaker_comes_from_the_levels_publishers_send() {
    let server = TestServer::start().await;
    let level = |l: u8| PeerOptions {
        audio_level: Some(l),
        ..PeerOptions::default()
    };
    let talker = member(&server, "talker", level(20)).await;
    let quiet = member(&server, "quiet", level(127)).await;
    let w = member(&server, "w", PeerOptions::default()).await;
    for m in [&talker, &quiet, &w] {
        enter(m, "levels", "all").await;
    }
    talker.publish(media(), false, true).await.unwrap();
    quiet.publish(media(), false, true).await.unwrap();
    let volume = |n: &Value, who: &str| {
        n["body"]["volumes"]
            .as_array()
            .and_then(|v| v.iter().find(|x| x["clientId"] == who))
            .map(|x| x["volume"].clone())
    };
    let told = w
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "media::audio::volume"
                && n["body"]["speaker"] == "talker"
                && volume(n, "quiet").is_some()
        })
        .await
        .expect("the room is told who speaks");
    assert_eq!(volume(&told, "talker"), Some(json!(-20)), "{told}");
    assert_eq!(volume(&told, "quiet"), Some(json!(-127)), "{told}");
    assert_eq!(told["body"]["roomId"], "levels");

    let r = talker
        .request("media::pause", json!({"roomId": "levels", "kind": "audio"}))
        .await
        .unwrap();
    assert_eq!(r["code"], "0000", "{r}");
    w.note(Duration::from_secs(5), |n| {
        n["header"]["signal"] == "media::audio::volume" && n["body"]["speaker"].is_null()
    })
    .await
    .expect("a silent room is told once nobody speaks");
}
