//! In memory, virtual clock, no sockets: an rtc client publishes VP8 to the shard, three rtc
//! clients subscribe through server offers, and every packet the publisher sends reaches every
//! subscriber through the shard (one packet in, three writes out).

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, publish, subscribe};

#[test]
fn publisher_rtp_reaches_every_subscriber_through_the_shard() {
    let mut net = Net::new(|c| c.rtp_events = true);
    let publisher = net.add_client(Duration::from_millis(50));
    let (_pub_conn, track) = publish(&mut net, publisher);

    let subs: Vec<usize> = (0..3)
        .map(|_| net.add_client(Duration::from_millis(50)))
        .collect();
    for &s in &subs {
        subscribe(&mut net, s, &track);
    }
    assert!(
        net.run_until(Duration::from_secs(5), |n| subs
            .iter()
            .all(|&s| n.connected(s))),
        "subscribers not connected"
    );
    assert_eq!(net.shard.connection_count(), 4);

    let before = net.shard.stats();
    let sent = 100u64;
    for i in 0..sent {
        let now = net.now;
        let payload = Bytes::from(vec![0x90, 0x80, 0, (i % 200) as u8, 7, 7, 7, 7]);
        assert!(net.clients[publisher].send_rtp(now, payload), "send {i}");
        net.step(Duration::from_millis(10));
    }
    net.run_until(Duration::from_millis(200), |_| false);

    let stats = net.shard.stats();
    assert_eq!(
        stats.rtp_in - before.rtp_in,
        sent,
        "shard received every packet"
    );
    assert_eq!(
        stats.rtp_forwarded - before.rtp_forwarded,
        sent * subs.len() as u64,
        "one write per subscriber per packet"
    );
    for &s in &subs {
        // Every forwarded packet arrives, once (the net is lossless).
        assert!(
            net.clients[s].rtp_received == sent,
            "subscriber {s} received {} of {sent}",
            net.clients[s].rtp_received
        );
    }
    // The shard saw each packet as an event too (rtp_events) with the publisher's track id.
    let rtp_events = std::iter::from_fn(|| net.shard.poll_event())
        .filter(|e| matches!(e, taoyao_engine::Event::Rtp { track: t, .. } if *t == track))
        .count() as u64;
    assert_eq!(rtp_events, sent);
    assert_eq!(stats.unroutable, 0);
    // Sinks are written to only once connected, so rtc refused no copy.
    assert_eq!(stats.forward_errors, 0);
}
