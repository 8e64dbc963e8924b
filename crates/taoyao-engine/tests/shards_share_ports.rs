//! An engine of two shard threads on 127.0.0.1: a room of 50 connections (one publisher of
//! VP8 + Opus and 49 subscribers, taoyao-bench's webrtc-rs client peers) is placed on one
//! shard and every connection shares that shard's one UDP port; the process holds exactly the
//! two shards' server sockets whatever the number of connections, every subscriber receives
//! both tracks, and the next room goes to the other, emptier shard.

mod udp;

use std::collections::HashSet;
use std::time::Duration;

use taoyao_engine::{Engine, EngineConfig};
use udp::{
    assert_only_shard_port, blocking, candidate_ports, media, own_udp_ports, publisher,
    received_packets, subscriber,
};

const SUBSCRIBERS: usize = 49;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_connections_of_a_room_share_their_shards_port() {
    let media = blocking(media).await;
    let before = own_udp_ports();
    let engine = Engine::start(&EngineConfig {
        shards: 2,
        ..EngineConfig::default()
    })
    .unwrap();
    let shard_ports: HashSet<u16> = (0..2)
        .map(|i| engine.shard(i).unwrap().local_addr().port())
        .collect();
    assert_eq!(shard_ports.len(), 2);
    let started = own_udp_ports();
    let engine_sockets: HashSet<u16> = started.difference(&before).copied().collect();
    assert_eq!(
        engine_sockets, shard_ports,
        "the engine opened one socket per shard"
    );

    let room = engine.place_room();
    let shard = room.shard().clone();
    let port = shard.local_addr().port();
    let events = engine.take_events(room.index()).unwrap();

    let (publisher, offer, tracks) = publisher(&shard, events, media).await;

    let mut client_sdps = vec![offer];
    let mut subs = Vec::new();
    for _ in 0..SUBSCRIBERS {
        let (peer, offer, answer) = subscriber(&shard, &tracks).await;
        assert_only_shard_port(&offer, port);
        client_sdps.push(answer);
        subs.push(peer);
    }
    for (i, peer) in subs.iter().enumerate() {
        peer.connected(Duration::from_secs(20))
            .await
            .unwrap_or_else(|e| panic!("subscriber {i}: {e}"));
    }
    assert_eq!(shard.connections(), SUBSCRIBERS + 1);
    let other = 1 - room.index();
    assert_eq!(engine.shard(other).unwrap().connections(), 0);

    // Every subscriber gets both tracks.
    let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
    loop {
        let short: Vec<(usize, u64, u64)> = subs
            .iter()
            .enumerate()
            .map(|(i, p)| {
                let (v, a) = received_packets(p);
                (i, v, a)
            })
            .filter(|&(_, v, a)| v < 10 || a < 10)
            .collect();
        if short.is_empty() {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "subscribers short of (video, audio) packets: {short:?}"
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }

    // 50 server connections, still two server sockets: every UDP socket opened since the
    // engine started is a client's (its port is in a client's SDP).
    let client_ports: HashSet<u16> = client_sdps
        .iter()
        .flat_map(|s| candidate_ports(s))
        .collect();
    let now = own_udp_ports();
    for p in now.difference(&started) {
        assert!(client_ports.contains(p), "UDP port {p} is no client's");
    }
    assert!(shard_ports.is_subset(&now));
    let server_sockets = now
        .iter()
        .filter(|p| !client_ports.contains(p) && !before.contains(p))
        .count();
    eprintln!(
        "{} connections, {server_sockets} server UDP sockets, {} client sockets",
        SUBSCRIBERS + 1,
        now.difference(&started).count()
    );
    assert_eq!(server_sockets, 2);

    // The next room goes to the shard without connections.
    let next = engine.place_room();
    assert_eq!(next.index(), other);

    for p in subs.iter().chain([&publisher]) {
        p.close().await;
    }
    blocking(move || engine.stop()).await;
}
