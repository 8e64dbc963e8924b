//! The CPU one egress batch costs per datagram, `sendmmsg` alone against GSO runs
//! ([`taoyao_engine::egress`]), on loopback. Each round is what one receive batch of a
//! publisher's packets becomes in a fan-out: 32 packets (28 video of 1,200 B, 4 audio of
//! 100 B, interleaved) to each of SUBSCRIBERS destinations. The receivers are never read: the
//! kernel drops what overflows their queues after the send, so only the sending side is
//! timed (on loopback the delivery's softirq runs in the sender's syscall, counted here; a
//! real NIC moves that off the sending thread). Thread CPU time, `CLOCK_THREAD_CPUTIME_ID`.
//!
//!     cargo run --release -p taoyao-engine --example egress_cost [-- SUBSCRIBERS ROUNDS]

use std::net::{SocketAddr, UdpSocket};
use std::time::Duration;

use taoyao_engine::egress::Egress;

fn thread_cpu() -> Duration {
    let mut ts = libc::timespec {
        tv_sec: 0,
        tv_nsec: 0,
    };
    // SAFETY: ts is a valid timespec for the call to fill.
    unsafe { libc::clock_gettime(libc::CLOCK_THREAD_CPUTIME_ID, &mut ts) };
    Duration::new(ts.tv_sec as u64, ts.tv_nsec as u32)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let subscribers: usize = args.next().map_or(40, |a| a.parse().expect("SUBSCRIBERS"));
    let rounds: usize = args.next().map_or(2000, |a| a.parse().expect("ROUNDS"));
    let receivers: Vec<UdpSocket> = (0..subscribers)
        .map(|_| UdpSocket::bind("127.0.0.1:0").unwrap())
        .collect();
    let video = vec![0x80u8; 1200];
    let audio = vec![0x80u8; 100];
    let mut batch: Vec<(SocketAddr, &[u8])> = Vec::new();
    for n in 0..32 {
        let p: &[u8] = if n % 8 == 7 { &audio } else { &video };
        for r in &receivers {
            batch.push((r.local_addr().unwrap(), p));
        }
    }
    println!(
        "egress: {} datagrams per batch ({subscribers} destinations x 32), {rounds} batches",
        batch.len()
    );
    let mut per = Vec::new();
    for gso in [false, true] {
        let sender = UdpSocket::bind("127.0.0.1:0").unwrap();
        let mut egress = Egress::new(&sender, gso).unwrap();
        let start = thread_cpu();
        for _ in 0..rounds {
            egress.send(&sender, &batch);
        }
        let cpu = thread_cpu() - start;
        let s = egress.stats();
        let ns = cpu.as_nanos() as f64 / (s.sent + s.dropped).max(1) as f64;
        per.push(ns);
        println!(
            "{:<9} {ns:>7.0} ns/datagram  sent {} dropped {} in runs {} ({} GSO sends)",
            if gso { "gso" } else { "sendmmsg" },
            s.sent,
            s.dropped,
            s.in_runs,
            s.runs
        );
    }
    println!("gso / sendmmsg: {:.2}x", per[1] / per[0]);
}
