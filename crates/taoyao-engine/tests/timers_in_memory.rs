//! In memory, virtual clock: the shard's timer heap touches only connections that are due.
//! With a publisher and five subscribers connected and idle, a `handle_timeout` before the
//! earliest deadline runs no connection's timers, and over ten virtual seconds each connection
//! is woken a bounded number of times (rtc's own idle rate is a few per second), not once per
//! call for every connection.

mod common;

use std::time::Duration;

use common::{Net, publish, subscribe};

#[test]
fn only_due_connections_get_handle_timeout() {
    let mut net = Net::new(|_| {});
    let publisher = net.add_client(Duration::from_millis(50));
    let (_, track) = publish(&mut net, publisher);
    let subs: Vec<usize> = (0..5)
        .map(|_| net.add_client(Duration::from_millis(50)))
        .collect();
    for &s in &subs {
        subscribe(&mut net, s, &track);
    }
    assert!(net.run_until(Duration::from_secs(5), |n| {
        subs.iter().all(|&s| n.connected(s))
    }));
    net.run_until(Duration::from_secs(1), |_| false);

    // Before the earliest deadline: nothing is due, nothing is touched.
    let next = net
        .shard
        .next_timeout()
        .expect("connected peers have timers");
    assert!(next > net.now);
    let before = net.shard.stats().conn_timeouts;
    net.shard.handle_timeout(net.now);
    assert_eq!(net.shard.stats().conn_timeouts, before);

    // Ten idle seconds, the clock jumping from deadline to deadline (shard's and clients').
    let steps_before = net.shard.stats().conn_timeouts;
    let mut calls = 0u64;
    let end = net.now + Duration::from_secs(10);
    while net.now < end {
        net.step(end - net.now);
        calls += 1;
    }
    let woken = net.shard.stats().conn_timeouts - steps_before;
    let conns = net.shard.connection_count() as u64;
    eprintln!("{woken} connection wakeups, {calls} handle_timeout calls, {conns} connections");
    assert_eq!(conns, 6);
    assert!(
        woken > 0,
        "idle connections still have timers (RTCP, ICE keepalives)"
    );
    // A walk over every connection per call would be `calls * conns`.
    assert!(
        woken < calls * conns / 2,
        "{woken} connection wakeups over {calls} handle_timeout calls for {conns} connections"
    );
    assert!(
        woken <= conns * 10 * 50,
        "{woken} wakeups in 10 s for {conns} connections: more than 50/s each"
    );
}
