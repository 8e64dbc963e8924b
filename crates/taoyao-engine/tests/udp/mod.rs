//! Shared by the tests with real sockets (taoyao-bench client peers against shard threads):
//! test media, SDP and /proc readers, and subscribing a client peer.
#![allow(dead_code)]

use std::collections::HashSet;
use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::peer::{ClientPeer, PeerOptions};
use taoyao_engine::driver::ShardHandle;
use taoyao_engine::{Event, TrackRef};

pub fn media() -> Arc<TestMedia> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
    let spec = MediaSpec {
        seconds: 3,
        ..MediaSpec::default()
    };
    Arc::new(TestMedia::make(&dir, &spec).expect("test media (ffmpeg)"))
}

/// Ports of the `a=candidate` lines of an SDP.
pub fn candidate_ports(sdp: &str) -> Vec<u16> {
    sdp.lines()
        .filter(|l| l.starts_with("a=candidate:"))
        .filter_map(|l| l.split_whitespace().nth(5)?.parse().ok())
        .collect()
}

/// Local ports of this process's UDP sockets (/proc/self/fd socket inodes matched in
/// /proc/net/udp{,6}).
pub fn own_udp_ports() -> HashSet<u16> {
    let inodes: HashSet<String> = std::fs::read_dir("/proc/self/fd")
        .unwrap()
        .filter_map(|e| std::fs::read_link(e.ok()?.path()).ok())
        .filter_map(|l| {
            let l = l.to_string_lossy().into_owned();
            Some(l.strip_prefix("socket:[")?.strip_suffix(']')?.to_owned())
        })
        .collect();
    let mut ports = HashSet::new();
    for table in ["/proc/net/udp", "/proc/net/udp6"] {
        let Ok(text) = std::fs::read_to_string(table) else {
            continue;
        };
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split_whitespace().collect();
            if f.len() > 9 && inodes.contains(f[9]) {
                let port = f[1].rsplit(':').next().unwrap();
                ports.insert(u16::from_str_radix(port, 16).unwrap());
            }
        }
    }
    ports
}

/// The shard writes one host candidate (repeated per media section): its own port.
pub fn assert_only_shard_port(sdp: &str, port: u16) {
    let ports = candidate_ports(sdp);
    assert!(
        !ports.is_empty() && ports.iter().all(|&p| p == port),
        "candidates {ports:?}, shard port {port}"
    );
}

pub async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    tokio::task::spawn_blocking(f).await.unwrap()
}

/// Waits for `n` opened tracks among the shard's events.
pub async fn opened_tracks(events: Receiver<Event>, n: usize) -> (Receiver<Event>, Vec<TrackRef>) {
    blocking(move || {
        let mut tracks = Vec::new();
        while tracks.len() < n {
            match events.recv_timeout(Duration::from_secs(10)) {
                Ok(Event::TrackOpened { track, .. }) => tracks.push(track),
                Ok(_) => {}
                Err(e) => panic!("{} of {n} tracks opened: {e}", tracks.len()),
            }
        }
        (events, tracks)
    })
    .await
}

/// A client peer subscribed to `tracks`; also returns the server's offer and the client's answer.
pub async fn subscriber(shard: &ShardHandle, tracks: &[TrackRef]) -> (ClientPeer, String, String) {
    let peer = ClientPeer::new(&PeerOptions::default()).await.unwrap();
    let (s, t) = (shard.clone(), tracks.to_vec());
    let (conn, offer) = blocking(move || {
        let conn = s.open_connection().unwrap();
        (conn, s.add_subscriber(conn, t).unwrap())
    })
    .await;
    let answer = peer.answer(offer.clone()).await.unwrap();
    let (s, a) = (shard.clone(), answer.clone());
    blocking(move || s.accept_answer(conn, a).unwrap()).await;
    (peer, offer, answer)
}

/// A client peer publishing VP8 + Opus (`media`) to `shard`: returns it, its offer and the two
/// tracks as the shard opened them. The shard's answer names only its own port.
pub async fn publisher(
    shard: &ShardHandle,
    events: Receiver<Event>,
    media: Arc<TestMedia>,
) -> (ClientPeer, String, Vec<TrackRef>) {
    publisher_with(shard, events, media, &PeerOptions::default()).await
}

/// As [`publisher`], a client peer built with `opts` (e.g. sending audio levels).
pub async fn publisher_with(
    shard: &ShardHandle,
    events: Receiver<Event>,
    media: Arc<TestMedia>,
    opts: &PeerOptions,
) -> (ClientPeer, String, Vec<TrackRef>) {
    let port = shard.local_addr().port();
    let publisher = ClientPeer::new(opts).await.unwrap();
    publisher.add_media(true, true).await.unwrap();
    let offer = publisher.offer().await.unwrap();
    let (s, o) = (shard.clone(), offer.clone());
    let (_conn, answer) = blocking(move || s.accept_offer(o).unwrap()).await;
    assert_only_shard_port(&answer, port);
    publisher.accept_answer(answer).await.unwrap();
    publisher.connected(Duration::from_secs(10)).await.unwrap();
    publisher.start_sending(media).await.unwrap();
    let (_events, tracks) = opened_tracks(events, 2).await;
    (publisher, offer, tracks)
}

/// RTP packets `peer` has received: (video, audio).
pub fn received_packets(peer: &ClientPeer) -> (u64, u64) {
    let t = peer.received.tracks();
    let of = |video: bool| {
        t.iter()
            .filter(|r| r.video == video)
            .map(|r| r.packets())
            .sum::<u64>()
    };
    (of(true), of(false))
}
