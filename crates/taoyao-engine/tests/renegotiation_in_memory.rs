//! In memory, virtual clock: a connected subscriber gets a second track by renegotiation
//! (server offers again on the same connection, client answers). Packets of the first track
//! flow throughout; the second track's packets reach the subscriber only once the answer is
//! applied, and then every one does; rtc refuses no copy on the way.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, publish, subscribe};

#[test]
fn a_second_track_added_to_a_connected_subscriber_flows_after_its_answer() {
    let mut net = Net::new(|_| {});
    let first = net.add_client(Duration::from_millis(50));
    let second = net.add_client(Duration::from_millis(50));
    let (_, track1) = publish(&mut net, first);
    let (_, track2) = publish(&mut net, second);
    let sub = net.add_client(Duration::from_millis(50));
    let conn = subscribe(&mut net, sub, &track1);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));

    let send_both = |net: &mut Net, count: u64| {
        for _ in 0..count {
            let now = net.now;
            for publisher in [first, second] {
                // Keyframes (P bit clear): a new video leg starts on one, and this test is about
                // negotiation, not gating (forwarding_rules_in_memory covers that).
                let payload = Bytes::from_static(&[0x90, 0x80, 0, 0, 9, 9, 9]);
                assert!(net.clients[publisher].send_rtp(now, payload));
            }
            net.step(Duration::from_millis(10));
        }
    };
    send_both(&mut net, 20);
    assert_eq!(
        net.clients[sub].rtp_received, 20,
        "only the first track so far"
    );

    // Offer the second track; while the answer is pending only the first one flows.
    let now = net.now;
    let offer = net
        .shard
        .add_subscriber(now, conn, std::slice::from_ref(&track2))
        .unwrap();
    let answer = net.clients[sub].answer(now, offer);
    send_both(&mut net, 10);
    assert_eq!(net.clients[sub].rtp_received, 30);

    let now = net.now;
    net.shard.accept_answer(now, conn, answer).unwrap();
    send_both(&mut net, 20);
    assert_eq!(
        net.clients[sub].rtp_received,
        30 + 40,
        "both tracks after the answer"
    );
    assert_eq!(net.shard.stats().forward_errors, 0);
}
