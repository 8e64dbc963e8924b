//! The forwarder's rules inside the shard, in memory on a virtual clock: a video subscriber
//! starts on a keyframe, pausing a copy or the whole track sends nothing and resuming waits for
//! the next keyframe, sequence numbers stay contiguous across what a subscriber was not sent,
//! keyframe requests are rate-limited (and deferred, not lost), and a subscriber's PLI reaches
//! the publisher.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, publish, subscribe};

/// A VP8 payload (descriptor with S=1 and a picture id): a keyframe or a delta frame by the
/// payload header's P bit.
fn vp8(key: bool) -> Bytes {
    Bytes::from(vec![0x90, 0x80, 0, if key { 0x9c } else { 0x9d }, 1, 42])
}

fn send(net: &mut Net, publisher: usize, key: bool, n: usize) {
    for _ in 0..n {
        let now = net.now;
        assert!(net.clients[publisher].send_rtp(now, vp8(key)));
        net.step(Duration::from_millis(10));
    }
    net.run_until(Duration::from_millis(30), |_| false);
}

fn received(net: &Net, c: usize) -> usize {
    net.clients[c].received.len()
}

/// Sequence numbers of everything `c` received are consecutive.
fn assert_contiguous(net: &Net, c: usize) {
    let seqs: Vec<u16> = net.clients[c].received.iter().map(|(s, _)| *s).collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "sequence numbers {seqs:?}");
    }
}

#[test]
fn a_video_copy_starts_and_resumes_on_a_keyframe_with_contiguous_numbers() {
    let mut net = Net::new(|c| c.keyframe_interval = Duration::from_millis(500));
    let publisher = net.add_client(Duration::from_millis(50));
    let (_p, track) = publish(&mut net, publisher);
    let sub = net.add_client(Duration::from_millis(50));
    let sink = subscribe(&mut net, sub, &track);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    net.run_until(Duration::from_millis(50), |_| false);
    assert!(
        net.clients[publisher].plis_received >= 1,
        "the subscriber's connect asked the publisher for a keyframe: {:?}",
        net.shard.stats()
    );

    // Delta frames first: the new subscriber could not decode them, so it gets none.
    send(&mut net, publisher, false, 5);
    assert_eq!(received(&net, sub), 0, "no delta frame before a keyframe");
    assert!(net.shard.stats().keyframe_waits >= 5);
    send(&mut net, publisher, true, 1);
    send(&mut net, publisher, false, 4);
    assert_eq!(received(&net, sub), 5, "the keyframe and what follows");
    assert!(
        net.clients[sub].received[0].1[3] & 1 == 0,
        "starts on the keyframe"
    );

    // Its copy paused: nothing; resumed: a keyframe is asked for and nothing goes before it.
    let plis = net.clients[publisher].plis_received;
    net.shard
        .set_sink_paused(net.now, &track, sink, true)
        .unwrap();
    send(&mut net, publisher, true, 1);
    send(&mut net, publisher, false, 3);
    assert_eq!(received(&net, sub), 5, "paused: nothing sent");
    net.shard
        .set_sink_paused(net.now, &track, sink, false)
        .unwrap();
    // The ask may wait out the rate limit (a keyframe was asked for at connect); it is not lost.
    net.run_until(Duration::from_millis(600), |_| false);
    assert!(
        net.clients[publisher].plis_received > plis,
        "resuming asked for a keyframe"
    );
    send(&mut net, publisher, false, 3);
    assert_eq!(
        received(&net, sub),
        5,
        "resumed, but waiting for a keyframe"
    );
    send(&mut net, publisher, true, 1);
    send(&mut net, publisher, false, 2);
    assert_eq!(received(&net, sub), 8);

    // The whole track paused (the publisher's pause, the room's gate), then resumed.
    net.shard.set_track_paused(net.now, &track, true).unwrap();
    send(&mut net, publisher, true, 2);
    assert_eq!(received(&net, sub), 8, "track paused: nothing sent");
    net.shard.set_track_paused(net.now, &track, false).unwrap();
    send(&mut net, publisher, false, 2);
    assert_eq!(received(&net, sub), 8, "waiting for a keyframe again");
    send(&mut net, publisher, true, 1);
    assert_eq!(received(&net, sub), 9);

    // 13 packets were not sent to it: its numbers have no hole anyway.
    assert_contiguous(&net, sub);
    let stats = net.shard.stats();
    assert!(stats.paused_skips >= 6, "{stats:?}");
    assert_eq!(stats.forward_errors, 0, "{stats:?}");

    // Unknown track or sink: an error, nothing else changes.
    assert!(
        net.shard
            .set_sink_paused(net.now, &track, taoyao_engine::ConnId(999), true)
            .is_err()
    );
}

#[test]
fn keyframe_requests_are_rate_limited_and_a_subscribers_pli_reaches_the_publisher() {
    let interval = Duration::from_millis(500);
    let mut net = Net::new(|c| c.keyframe_interval = interval);
    let publisher = net.add_client(Duration::from_millis(50));
    let (_p, track) = publish(&mut net, publisher);
    let sub = net.add_client(Duration::from_millis(50));
    subscribe(&mut net, sub, &track);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    send(&mut net, publisher, true, 3);
    assert!(received(&net, sub) >= 1);
    net.run_until(interval * 2, |_| false);

    // Ten asks within 100 ms: one PLI now, one deferred to the interval's end, no more.
    let plis = net.clients[publisher].plis_received;
    for _ in 0..10 {
        let now = net.now;
        net.shard.request_keyframe(now, &track);
        net.step(Duration::from_millis(10));
    }
    net.run_until(Duration::from_millis(50), |_| false);
    assert_eq!(
        net.clients[publisher].plis_received,
        plis + 1,
        "one at once"
    );
    net.run_until(interval, |_| false);
    assert_eq!(
        net.clients[publisher].plis_received,
        plis + 2,
        "the held-back asks went as one, at the interval"
    );
    assert!(net.shard.stats().keyframe_asks_deferred >= 9);

    // A subscriber that lost a keyframe sends a PLI: the shard asks the publisher.
    net.run_until(interval * 2, |_| false);
    let plis = net.clients[publisher].plis_received;
    let now = net.now;
    assert!(net.clients[sub].send_pli(now));
    net.run_until(Duration::from_millis(100), |_| false);
    assert_eq!(net.shard.stats().subscriber_keyframe_requests, 1);
    assert_eq!(net.clients[publisher].plis_received, plis + 1);
}
