//! 1 publisher -> N subscribers through one shard, in memory on a virtual clock, with rtc client
//! peers on both ends (the harness of the in-memory tests). Prints forwarded packets/s of shard
//! time and microseconds of shard time per forwarded copy: the time spent inside the shard's own
//! calls (demux, rtc receive + decrypt once, N rtc sends + encrypts, timers), measured around
//! them with the wall clock; the clients' work is excluded. Single-threaded, so shard time is
//! CPU time unless the machine is loaded (then preemption inflates it: compare the run's wall
//! and CPU columns, which cover shard and clients together).
//!
//!     cargo run --release -p taoyao-engine --example fanout [-- 10 20 40]
//!
//! No kernel cost is in it (no sockets): add about 0.5-2.5 us per copy for sendmmsg / GSO
//! (shared/notes/engine.md) to compare with a server's CPU per forwarded packet.

#[path = "../tests/common/mod.rs"]
mod common;

use std::time::{Duration, Instant};

use bytes::Bytes;
use common::{Net, publish, subscribe};

/// CPU time of this thread so far (ns; /proc/thread-self/schedstat, first field). The example
/// is single-threaded, so this is the run's CPU: shard and clients together.
fn thread_cpu() -> Duration {
    let text = std::fs::read_to_string("/proc/thread-self/schedstat").unwrap_or_default();
    let ns = text
        .split_whitespace()
        .next()
        .and_then(|f| f.parse().ok())
        .unwrap_or(0);
    Duration::from_nanos(ns)
}

fn run(subscribers: usize, packets: u64) {
    let mut net = Net::new(|_| {});
    let publisher = net.add_client(Duration::from_millis(50));
    let (_, track) = publish(&mut net, publisher);
    let subs: Vec<usize> = (0..subscribers)
        .map(|_| net.add_client(Duration::from_millis(50)))
        .collect();
    for &s in &subs {
        subscribe(&mut net, s, &track);
    }
    assert!(
        net.run_until(Duration::from_secs(10), |n| subs
            .iter()
            .all(|&s| n.connected(s))),
        "subscribers not connected"
    );
    // Let DTLS-SRTP settle and the first RTCP go out before measuring.
    net.run_until(Duration::from_millis(500), |_| false);

    // A VP8 keyframe first (descriptor S=1, payload header P=0: sinks start on it), then
    // delta frames (P=1), 1100 bytes each.
    let vp8 = |key: bool| {
        let mut p = vec![0x5a; 1100];
        p[0] = 0x10;
        p[1] = if key { 0x00 } else { 0x01 };
        Bytes::from(p)
    };
    let (key, delta) = (vp8(true), vp8(false));
    let before = net.shard.stats();
    net.shard_time = Duration::ZERO;
    let wall = Instant::now();
    let cpu = thread_cpu();
    for i in 0..packets {
        let now = net.now;
        let payload = if i == 0 { &key } else { &delta };
        net.clients[publisher].send_rtp(now, payload.clone());
        // ~900 packets/s of virtual time: a 720p stream at ~8 Mbps; timers fire as they would.
        net.step(Duration::from_micros(1100));
    }
    let wall = wall.elapsed();
    let cpu = thread_cpu() - cpu;
    let after = net.shard.stats();
    let copies = after.rtp_forwarded - before.rtp_forwarded;
    let received: u64 = subs.iter().map(|&s| net.clients[s].rtp_received).sum();
    let shard = net.shard_time.as_secs_f64();
    println!(
        "subscribers {subscribers:>3}: {copies:>8} copies, shard {:>7.1} ms = {:>6.2} us/copy, \
         {:>9.0} copies/s of shard time; whole run incl. clients: wall {:>7.1} ms, \
         CPU {:>7.1} ms; received {received}, forward errors {}, conn timeouts {}",
        shard * 1e3,
        shard * 1e6 / copies.max(1) as f64,
        copies as f64 / shard.max(1e-9),
        wall.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e3,
        after.forward_errors - before.forward_errors,
        after.conn_timeouts - before.conn_timeouts,
    );
}

fn main() {
    let sizes: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let sizes = if sizes.is_empty() {
        vec![1, 10, 20, 40]
    } else {
        sizes
    };
    for n in sizes {
        run(n, 5000);
    }
}
