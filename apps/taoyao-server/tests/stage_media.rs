//! Media flows again after every change that stops and restarts a member's sending, in sfu and
//! mcu rooms, with real webrtc-rs peers: publishing again from a new connection (after an
//! unpublish, or replacing the old connection outright), a subscriber restarting its subscribe
//! connection, a new audio track in the mix whatever its sequence numbers, and the stage paths
//! (pause / resume, broadcast mode, presenter add / remove / handover, intercom, live start /
//! stop, co-host accept / end). After each change the test checks what the others receive
//! (video packets rising on a track that started with a keyframe; audio packets in sfu, the
//! member's tone in the mix in mcu), not only the notifications.

mod common;

use std::sync::Arc;
use std::time::{Duration, Instant};

use common::{TestServer, code, heard, media_with_tone, member_in};
use serde_json::{Value, json};
use taoyao_bench::member::Member;
use taoyao_bench::peer::{PeerOptions, TrackRecord};
use taoyao_media::mix::tone_energy;

/// How long the others may take to receive a member's media after a change (the bar).
const AGAIN: Duration = Duration::from_secs(2);
/// A tone is heard in the mix above this Goertzel energy (as in the mcu tests).
const HEARD: f64 = 1e5;

async fn ok(m: &Member, signal: &str, body: Value) -> Value {
    let r = m.request(signal, body).await.unwrap();
    assert_eq!(code(&r), "0000", "{} {signal}: {r}", m.id);
    r
}

/// Waits until `m` receives `from`'s track of that kind flowing: on the newest such track,
/// `need` more packets than when first seen, and (video) a keyframe to start decoding from.
async fn flows(m: &Member, from: &str, video: bool, within: Duration) -> bool {
    let need = if video { 10 } else { 20 };
    let deadline = Instant::now() + within;
    let mut seen: Option<(Arc<TrackRecord>, u64)> = None;
    loop {
        if let Some(t) = m.sub().received.find(from, video) {
            match &seen {
                Some((s, base)) if Arc::ptr_eq(s, &t) => {
                    if t.packets() >= base + need && (!video || t.keyframes() > 0) {
                        return true;
                    }
                }
                _ => seen = Some((t.clone(), t.packets())),
            }
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(40)).await;
    }
}

/// Waits until `hz` is heard in the last 0.3 s of `m`'s mix.
async fn hears(m: &Member, hz: u32, within: Duration) -> bool {
    let deadline = Instant::now() + within;
    loop {
        if m.sub().received.find("mix", false).is_some()
            && tone_energy(&heard(m, 15), f64::from(hz)) > HEARD
        {
            return true;
        }
        if Instant::now() >= deadline {
            return false;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

/// No packets of `from`'s video reach `m` over half a second.
async fn stalled(m: &Member, from: &str) -> bool {
    let count = || m.sub().received.find(from, true).map_or(0, |t| t.packets());
    // Packets already in flight when the change was made.
    tokio::time::sleep(Duration::from_millis(300)).await;
    let before = count();
    tokio::time::sleep(Duration::from_millis(500)).await;
    count() == before
}

struct Room {
    server: TestServer,
    id: &'static str,
    arch: &'static str,
}

impl Room {
    async fn new(id: &'static str, arch: &'static str) -> Room {
        Room {
            server: TestServer::start().await,
            id,
            arch,
        }
    }

    async fn member(&self, name: &str) -> Arc<Member> {
        member_in(&self.server, name, self.id, self.arch).await
    }

    /// `who` (sending `hz`) reaches `to` again within [`AGAIN`]: video, and audio (packets in
    /// sfu, the tone in the mix in mcu).
    async fn reaches(&self, who: &Member, hz: u32, to: &Member, after: &str) {
        assert!(
            flows(to, &who.id, true, AGAIN).await,
            "{}: {}'s video does not reach {} again",
            after,
            who.id,
            to.id
        );
        let audio = if self.arch == "mcu" {
            hears(to, hz, AGAIN).await
        } else {
            flows(to, &who.id, false, AGAIN).await
        };
        assert!(
            audio,
            "{}: {}'s audio does not reach {} again",
            after, who.id, to.id
        );
    }

    async fn publish(&self, m: &Member, hz: u32) {
        m.publish(media_with_tone(hz), true, true).await.unwrap();
    }

    async fn tell(&self, m: &Member, signal: &str, mut body: Value) -> Value {
        body["roomId"] = json!(self.id);
        ok(m, signal, body).await
    }

    /// Waits until `m` is told `media::unpublish` for `whose` streams (`count` of them in all).
    async fn unpublished(&self, m: &Member, whose: &str, count: usize) {
        let deadline = Instant::now() + Duration::from_secs(5);
        loop {
            let n = m
                .notes()
                .iter()
                .filter(|n| {
                    n["header"]["signal"] == "media::unpublish" && n["body"]["clientId"] == whose
                })
                .count();
            if n >= count {
                return;
            }
            assert!(
                Instant::now() < deadline,
                "{} was told of {n} of {whose}'s unpublished streams, not {count}",
                m.id
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }
}

async fn publish_again_from_a_new_connection(arch: &'static str) {
    let room = Room::new("again", arch).await;
    let a = room.member("a").await;
    let b = room.member("b").await;
    room.publish(&a, 440).await;
    room.reaches(&a, 440, &b, "first publish").await;

    // Unpublish everything, close the connection, publish again from a new one.
    room.tell(&a, "media::unpublish", json!({})).await;
    let streams = if arch == "mcu" { 1 } else { 2 };
    room.unpublished(&b, "a", streams).await;
    a.drop_publisher().await;
    let started = Instant::now();
    room.publish(&a, 660).await;
    room.reaches(&a, 660, &b, "publishing again from a new connection")
        .await;
    eprintln!("{arch}: media again {:?} after publish", started.elapsed());
    // a's publish connection and b's subscribe connection (and in mcu a's subscribe
    // connection for its mix): the replaced one is closed.
    let expected = if arch == "mcu" { 3 } else { 2 };
    let (_, streams_now, _, connections) = room.server.media_counts("again").await;
    assert_eq!(connections, expected, "the replaced connection is closed");
    assert_eq!(streams_now, if arch == "mcu" { 1 } else { 2 });

    // A new connection without a word about the old one: the server ends the old streams (the
    // others are told) and takes the new ones.
    room.publish(&a, 880).await;
    room.unpublished(&b, "a", 2 * streams).await;
    room.reaches(&a, 880, &b, "publishing from a third connection")
        .await;
    let (_, _, _, connections) = room.server.media_counts("again").await;
    assert_eq!(connections, expected);
    if arch == "mcu" {
        // The mix carries the new track alone.
        tokio::time::sleep(Duration::from_millis(400)).await;
        let pcm = heard(&b, 15);
        assert!(tone_energy(&pcm, 880.0) > 100.0 * tone_energy(&pcm, 660.0));
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_publish_again_from_a_new_connection() {
    publish_again_from_a_new_connection("sfu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_publish_again_from_a_new_connection() {
    publish_again_from_a_new_connection("mcu").await;
}

/// The answer timeout the ignored-offer tests run with (the default is 10 s).
const ANSWER_TIMEOUT_MS: u64 = 1500;

/// A subscriber that leaves a subscribe offer unanswered: after
/// `webrtc.subscribe_answer_timeout_ms` it is told (`media::subscribe::timeout`), forwarding
/// to it stops, a late answer is refused pointing at `media::restart`, the other members go on
/// sending and receiving, and after its `media::restart` it receives everything again,
/// including what the ignored offer carried.
async fn a_subscriber_ignores_an_offer(arch: &'static str) {
    let room = Room {
        server: TestServer::with(|c| c.webrtc.subscribe_answer_timeout_ms = ANSWER_TIMEOUT_MS)
            .await,
        id: "ignored",
        arch,
    };
    let a = room.member("a").await;
    let b = room.member("b").await;
    let c = room.member("c").await;
    room.publish(&a, 440).await;
    room.reaches(&a, 440, &b, "first publish").await;
    room.reaches(&a, 440, &c, "first publish").await;

    // b hangs on the offer that c's streams bring.
    b.ignore_offers(1);
    let offers_before = b.subscribe_offers().len();
    let asked = Instant::now();
    room.publish(&c, 660).await;
    let note = b
        .note(Duration::from_millis(ANSWER_TIMEOUT_MS + 3000), |n| {
            n["header"]["signal"] == "media::subscribe::timeout"
        })
        .await
        .expect("b is told its offer timed out");
    let waited = asked.elapsed();
    assert!(
        waited >= Duration::from_millis(ANSWER_TIMEOUT_MS),
        "told after {waited:?}"
    );
    assert_eq!(note["body"]["roomId"], "ignored", "{note}");
    assert_eq!(note["body"]["transport"], "subscribe", "{note}");
    assert_eq!(note["body"]["code"], "2001", "{note}");
    assert!(
        note["body"]["message"]
            .as_str()
            .is_some_and(|m| m.contains("media::restart")),
        "{note}"
    );
    assert_eq!(
        b.subscribe_offers().len(),
        offers_before,
        "b answered nothing"
    );
    eprintln!("{arch}: told after {waited:?}");

    // Forwarding to b's closed connection stopped; a late answer is refused.
    assert!(stalled(&b, "a").await, "a's video still reaches b");
    let offer = b
        .notes()
        .into_iter()
        .rev()
        .find(|n| n["header"]["signal"] == "media::exchange" && n["body"]["type"] == "offer")
        .and_then(|n| n["body"]["sdp"].as_str().map(str::to_owned))
        .expect("the ignored offer");
    let late = b.sub().answer(offer).await.unwrap();
    let r = b
        .request(
            "media::exchange",
            json!({"roomId": "ignored", "transport": "subscribe", "type": "answer", "sdp": late}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "3400", "{r}");
    assert!(
        r["message"]
            .as_str()
            .is_some_and(|m| m.contains("media::restart")),
        "{r}"
    );

    // Everyone else goes on.
    room.reaches(&a, 440, &c, "b's timeout").await;
    room.reaches(&c, 660, &a, "b's timeout").await;
    // a's publish, c's publish, a's and c's subscribe connections: b's is closed.
    let (_, _, _, connections) = room.server.media_counts("ignored").await;
    assert_eq!(connections, 4, "b's subscribe connection is closed");

    // b asks for a new connection and gets all of it, c's streams included.
    b.restart_subscribe().await.unwrap();
    room.reaches(&a, 440, &b, "restart after the timeout").await;
    room.reaches(&c, 660, &b, "restart after the timeout").await;
    let (_, _, _, connections) = room.server.media_counts("ignored").await;
    assert_eq!(connections, 5);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_a_subscriber_ignores_an_offer() {
    a_subscriber_ignores_an_offer("sfu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_a_subscriber_ignores_an_offer() {
    a_subscriber_ignores_an_offer("mcu").await;
}

async fn a_subscriber_restarts_its_subscribe_connection(arch: &'static str) {
    let room = Room::new("restart", arch).await;
    let a = room.member("a").await;
    let b = room.member("b").await;
    room.publish(&a, 440).await;
    room.reaches(&a, 440, &b, "first publish").await;
    let old = b.sub();
    b.restart_subscribe().await.unwrap();
    assert!(!Arc::ptr_eq(&old, &b.sub()));
    room.reaches(&a, 440, &b, "restarting the subscribe connection")
        .await;
    // a's publish connection, b's new subscribe connection (and a's in mcu, for its mix).
    let (_, _, subs, connections) = room.server.media_counts("restart").await;
    let expected = if arch == "mcu" { 3 } else { 2 };
    assert_eq!(
        connections, expected,
        "the old subscribe connection is closed"
    );
    assert_eq!(subs, if arch == "mcu" { 1 } else { 2 });
    // Restarting what does not exist is refused.
    let r = b
        .request(
            "media::restart",
            json!({"roomId": "restart", "transport": "publish"}),
        )
        .await
        .unwrap();
    assert_eq!(code(&r), "3400", "{r}");
    let r = b
        .request("media::restart", json!({"roomId": "restart"}))
        .await
        .unwrap();
    assert_eq!(code(&r), "3400", "{r}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_a_subscriber_restarts_its_subscribe_connection() {
    a_subscriber_restarts_its_subscribe_connection("sfu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_a_subscriber_restarts_its_subscribe_connection() {
    a_subscriber_restarts_its_subscribe_connection("mcu").await;
}

/// A member publishing again sends a new audio track with a new sequence space; whether its
/// numbers start below or above the old track's, the others hear it in the mix.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_a_new_audio_track_is_mixed_whatever_its_sequence_numbers() {
    let room = Room::new("seq", "mcu").await;
    let a = room.member("a").await;
    let b = room.member("b").await;
    let from = |seq: u16| PeerOptions {
        audio_first_seq: Some(seq),
        ..PeerOptions::default()
    };
    // 30000, then 10000 (below: the old single buffer dropped these as late), then 50000
    // (above, and also more than half the sequence space away from 10000).
    for (seq, hz) in [(30_000u16, 440u32), (10_000, 660), (50_000, 880)] {
        room.tell(&a, "media::unpublish", json!({})).await;
        a.drop_publisher().await;
        a.publish_with(&from(seq), media_with_tone(hz), false, true)
            .await
            .unwrap();
        assert!(
            hears(&b, hz, AGAIN).await,
            "a's audio from sequence number {seq} is not heard"
        );
    }
}

/// Pause / resume, broadcast mode, presenter add / remove / handover, intercom and back to
/// meeting mode: after each change the members who may publish reach the watcher again.
async fn meeting_stage_changes(arch: &'static str) {
    let room = Room::new("stage", arch).await;
    let owner = room.member("owner").await;
    let b = room.member("b").await;
    let w = room.member("w").await;
    room.publish(&owner, 440).await;
    room.publish(&b, 660).await;
    room.reaches(&owner, 440, &w, "first publish").await;
    room.reaches(&b, 660, &w, "first publish").await;

    room.tell(&b, "media::pause", json!({})).await;
    assert!(stalled(&w, "b").await, "a paused stream still flows");
    room.tell(&b, "media::resume", json!({})).await;
    room.reaches(&b, 660, &w, "resume").await;

    // Broadcast: only the owner presents; b's media is closed.
    room.tell(&owner, "room::mode", json!({"mode": "broadcast"}))
        .await;
    assert!(stalled(&w, "b").await, "a listener's video still flows");
    room.reaches(&owner, 440, &w, "broadcast mode").await;
    room.tell(&owner, "room::presenter", json!({"clientId": "b"}))
        .await;
    room.reaches(&b, 660, &w, "made presenter").await;
    // Removed from the stage: b's streams end; named again, b publishes again.
    room.tell(
        &owner,
        "room::presenter",
        json!({"clientId": "b", "action": "remove"}),
    )
    .await;
    room.unpublished(&w, "b", 1).await;
    assert!(stalled(&w, "b").await);
    room.tell(&owner, "room::presenter", json!({"clientId": "b"}))
        .await;
    room.publish(&b, 660).await;
    room.reaches(&b, 660, &w, "presenter again, published again")
        .await;
    // Handover: b alone presents, the owner's streams end.
    room.tell(
        &owner,
        "room::presenter",
        json!({"clientId": "b", "action": "handover"}),
    )
    .await;
    room.unpublished(&w, "owner", 1).await;
    assert!(stalled(&w, "owner").await);
    room.reaches(&b, 660, &w, "handover").await;

    // Intercom: no audio without the floor; the holder is heard; back to meeting, everyone.
    room.tell(&owner, "room::mode", json!({"mode": "intercom"}))
        .await;
    room.tell(&b, "room::floor", json!({"action": "request"}))
        .await;
    room.reaches(&b, 660, &w, "holding the floor").await;
    room.tell(&owner, "room::mode", json!({"mode": "meeting"}))
        .await;
    room.publish(&owner, 440).await;
    room.reaches(&owner, 440, &w, "back to meeting mode").await;
    room.reaches(&b, 660, &w, "back to meeting mode").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_meeting_stage_changes() {
    meeting_stage_changes("sfu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_meeting_stage_changes() {
    meeting_stage_changes("mcu").await;
}

/// Live start ends the others' streams; a viewer accepted as co-host publishes again and is
/// seen; the co-host ended, then accepted again (having published before); live stop, and in
/// meeting mode again everyone's media reaches the others.
async fn live_stage_changes(arch: &'static str) {
    let room = Room::new("onair", arch).await;
    let owner = room.member("owner").await;
    let b = room.member("b").await;
    let w = room.member("w").await;
    room.publish(&owner, 440).await;
    room.publish(&b, 660).await;
    room.reaches(&b, 660, &w, "before the live").await;

    room.tell(&owner, "live::start", json!({})).await;
    room.unpublished(&w, "b", 1).await;
    assert!(stalled(&w, "b").await, "a viewer's media still flows");
    room.reaches(&owner, 440, &w, "on air").await;
    for round in ["accepted as co-host", "accepted again"] {
        room.tell(&b, "live::cohost", json!({"action": "request"}))
            .await;
        room.tell(
            &owner,
            "live::cohost",
            json!({"action": "accept", "clientId": "b"}),
        )
        .await;
        room.publish(&b, 660).await;
        room.reaches(&b, 660, &w, round).await;
        room.reaches(&b, 660, &owner, round).await;
        room.tell(
            &owner,
            "live::cohost",
            json!({"action": "end", "clientId": "b"}),
        )
        .await;
        assert!(
            stalled(&w, "b").await,
            "an ended co-host's media still flows"
        );
    }
    room.tell(&owner, "live::stop", json!({})).await;
    room.reaches(&owner, 440, &w, "live stopped").await;
    room.publish(&b, 660).await;
    room.reaches(&b, 660, &w, "meeting after the live").await;
    room.reaches(&b, 660, &owner, "meeting after the live")
        .await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sfu_live_stage_changes() {
    live_stage_changes("sfu").await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn mcu_live_stage_changes() {
    live_stage_changes("mcu").await;
}
