//! Real sockets on 127.0.0.1: a shard thread with its one UDP socket; taoyao-bench's client
//! peers (the async `webrtc` crate: an independent stack from the server side's `rtc` core)
//! publish VP8 + Opus made by ffmpeg, three more subscribe through server offers and receive
//! both tracks. Every connection uses the shard's one port: each SDP the shard writes has one
//! candidate, that port, and the process opened no UDP socket for them beyond the clients' own.
//! The publisher puts RFC 6464 levels on its audio, as browsers do: the shard thread's commands
//! read them back, and tap both tracks for a recording.

mod udp;

use std::collections::HashSet;
use std::time::Duration;

use taoyao_bench::peer::PeerOptions;
use taoyao_engine::driver::{self, ShardThreadConfig};
use taoyao_media::tap::{self, TapKind};
use udp::{
    assert_only_shard_port, blocking, candidate_ports, media, own_udp_ports, publisher_with,
    received_packets, subscriber,
};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn bench_peers_publish_and_subscribe_through_one_shard_port() {
    let media = blocking(media).await;
    let (shard, events, thread) = driver::spawn(ShardThreadConfig {
        bind: "127.0.0.1:0".parse().unwrap(),
        announced_ip: None,
        early_checks: 8,
        gso: true,
        index: 0,
        tcp: None,
        tcp_send_limit: 0,
    })
    .unwrap();
    let port = shard.local_addr().port();
    let before = own_udp_ports();
    assert!(before.contains(&port));

    let opts = PeerOptions {
        audio_level: Some(30),
        ..PeerOptions::default()
    };
    let (publisher, offer, tracks) = publisher_with(&shard, events, media, &opts).await;

    let mut client_sdps = vec![offer];
    let mut subs = Vec::new();
    for _ in 0..3 {
        let (peer, offer, answer) = subscriber(&shard, &tracks).await;
        assert_only_shard_port(&offer, port);
        client_sdps.push(answer);
        subs.push(peer);
    }
    for peer in &subs {
        peer.connected(Duration::from_secs(10)).await.unwrap();
    }

    // Both tracks arrive at every subscriber.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    loop {
        let counts: Vec<(u64, u64)> = subs.iter().map(received_packets).collect();
        if counts.iter().all(|&(v, a)| v >= 30 && a >= 30) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "(video, audio) packets per subscriber: {counts:?}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }

    // Each subscriber's connect asked the publisher for a keyframe (PLI through the shard).
    assert!(
        publisher
            .keyframe_requests
            .load(std::sync::atomic::Ordering::Relaxed)
            >= 1,
        "no keyframe request reached the publisher"
    );

    // Four server connections, one server socket: every UDP socket the process opened since
    // the shard started belongs to a client (its port is in a client's SDP).
    let client_ports: HashSet<u16> = client_sdps
        .iter()
        .flat_map(|s| candidate_ports(s))
        .collect();
    let new: Vec<u16> = own_udp_ports().difference(&before).copied().collect();
    assert!(!new.is_empty(), "the client peers' own sockets are seen");
    for p in &new {
        assert!(
            client_ports.contains(p),
            "UDP port {p} is no client's: {new:?} vs {client_ports:?}"
        );
    }
    // Through the shard thread's commands: the audio track's levels (the video track has
    // none), and a tap on each track that gets its packets until it is removed.
    let levels = {
        let (s, t) = (shard.clone(), tracks.clone());
        blocking(move || s.audio_levels(t).unwrap()).await
    };
    assert_eq!(
        levels.len(),
        1,
        "only the audio track has levels: {levels:?}"
    );
    assert_eq!(
        (levels[0].loudest, levels[0].speaking > 0),
        (30, true),
        "{levels:?}"
    );
    let mut taps = Vec::new();
    for t in &tracks {
        let (tap, rx) = tap::channel(1000);
        let (s, t) = (shard.clone(), t.clone());
        let id = blocking({
            let t = t.clone();
            move || s.add_tap(t, tap).unwrap()
        })
        .await;
        taps.push((t, id, rx));
    }
    tokio::time::sleep(Duration::from_millis(500)).await;
    let mut kinds = Vec::new();
    for (t, id, rx) in taps {
        let s = shard.clone();
        blocking(move || s.remove_tap(t, id).unwrap()).await;
        let got: Vec<tap::Tapped> = rx.try_iter().collect();
        assert!(got.len() >= 5, "{} tapped packets in 500 ms", got.len());
        assert!(got.windows(2).all(|w| w[0].kind == w[1].kind));
        kinds.push(got[0].kind);
        assert!(rx.recv().is_err(), "removed: the writer sees the end");
    }
    kinds.sort_by_key(|k| *k == TapKind::Video);
    assert_eq!(kinds, [TapKind::Audio, TapKind::Video]);
    let stats = {
        let s = shard.clone();
        blocking(move || s.stats().unwrap()).await
    };
    assert!(
        stats.tap_offered >= 10 && stats.tap_dropped == 0,
        "{stats:?}"
    );
    eprintln!("{stats:?}");
    assert!(
        stats.rtp_forwarded > 0 && stats.unroutable == 0,
        "{stats:?}"
    );
    // Checks a subscriber sends before its answer is applied (here usually its first one,
    // sent while `answer` waits for gathering: 3 of 3 in every run seen) are all replayed.
    assert_eq!(stats.early_checks_kept, stats.early_checks_replayed);
    // Everything the shard wrote went out through its egress (GSO runs or sendmmsg), with
    // nothing dropped on a loopback that keeps up.
    let egress = stats.egress;
    assert_eq!(
        egress.sent + egress.dropped,
        stats.datagrams_out,
        "{egress:?}"
    );
    assert_eq!(egress.dropped, 0, "{egress:?}");

    for p in subs.iter().chain([&publisher]) {
        p.close().await;
    }
    shard.stop();
    blocking(move || thread.join().unwrap()).await;
}
