//! In memory, virtual clock: a subscriber's ICE checks reach the shard before the shard has
//! applied its answer (the client answers and starts checking at once; its answer travels over
//! signaling). rtc alone drops such checks, so the client would wait for its next check, 200 ms
//! later at webrtc-rs's default pacing. The shard keeps them and replays them when the answer
//! is set: the connection is up as soon as the answer is applied plus the DTLS round trips.

mod common;

use std::time::Duration;

use common::{Net, publish};

/// Virtual time from the shard applying the answer to the subscriber being connected.
fn time_to_connected(early_checks: usize) -> (Duration, taoyao_engine::ShardStats) {
    let mut net = Net::new(|c| c.early_checks = early_checks);
    let publisher = net.add_client(Duration::from_millis(50));
    let (_, track) = publish(&mut net, publisher);
    // webrtc-rs's default check pacing, as in the bench's `--ice-check-ms 200`.
    let sub = net.add_client(Duration::from_millis(200));

    let now = net.now;
    let conn = net.shard.open_connection(now).unwrap();
    let offer = net
        .shard
        .add_subscriber(now, conn, std::slice::from_ref(&track))
        .unwrap();
    let answer = net.clients[sub].answer(now, offer);
    // Signaling takes 30 ms; the client's first checks arrive meanwhile.
    let signaling = Duration::from_millis(30);
    net.run_until(signaling, |_| false);
    assert!(
        net.shard.stats().datagrams_in > 0,
        "the client's checks reached the shard before the answer"
    );
    let applied = net.now;
    net.shard.accept_answer(applied, conn, answer).unwrap();
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.connected(sub)),
        "subscriber not connected"
    );
    let at = net.clients[sub].connected_at.unwrap();
    (at - applied, net.shard.stats())
}

#[test]
fn checks_before_the_answer_do_not_delay_the_connection() {
    let (kept, stats) = time_to_connected(8);
    assert!(stats.early_checks_kept > 0, "{stats:?}");
    assert_eq!(stats.early_checks_kept, stats.early_checks_replayed);
    let (dropped, stats0) = time_to_connected(0);
    assert_eq!(stats0.early_checks_replayed, 0);
    eprintln!("answer applied -> connected: kept {kept:?}, dropped {dropped:?}");
    // Virtual time, so exact: with the checks kept the connection does not wait for the
    // client's next check (200 ms pacing), without them it does.
    assert!(
        kept < Duration::from_millis(50),
        "connected {kept:?} after the answer with early checks kept"
    );
    assert!(
        dropped > kept + Duration::from_millis(100),
        "dropping the checks should cost a check interval: kept {kept:?}, dropped {dropped:?}"
    );
}
