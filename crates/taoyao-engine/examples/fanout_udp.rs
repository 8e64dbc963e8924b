//! 1 publisher -> N subscribers through one shard thread on real UDP sockets (127.0.0.1), with
//! taoyao-bench's async webrtc client peers sending ffmpeg-made VP8 + Opus at real time. Prints
//! the copies the shard forwarded and the shard thread's own CPU (its /proc schedstat) per
//! copy, kernel send cost included. On loopback the receivers' softirq work partly runs in the
//! shard's send syscalls, and the clients share the machine: a first figure, not a benchmark.
//!
//!     cargo run --release -p taoyao-engine --example fanout_udp [-- SUBSCRIBERS SECONDS]

use std::sync::Arc;
use std::sync::mpsc::Receiver;
use std::time::Duration;

use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::peer::{ClientPeer, PeerOptions};
use taoyao_engine::driver::{self, ShardThreadConfig};
use taoyao_engine::{Event, TrackRef};

/// CPU time of the thread named `name` in this process.
fn thread_cpu(name: &str) -> Duration {
    for task in std::fs::read_dir("/proc/self/task").unwrap().flatten() {
        let comm = std::fs::read_to_string(task.path().join("comm")).unwrap_or_default();
        if comm.trim() == name {
            let stat = std::fs::read_to_string(task.path().join("schedstat")).unwrap_or_default();
            let ns = stat.split_whitespace().next().and_then(|f| f.parse().ok());
            return Duration::from_nanos(ns.unwrap_or(0));
        }
    }
    Duration::ZERO
}

fn opened(events: &Receiver<Event>, n: usize) -> Vec<TrackRef> {
    let mut tracks = Vec::new();
    while tracks.len() < n {
        if let Event::TrackOpened { track, .. } = events
            .recv_timeout(Duration::from_secs(10))
            .expect("tracks open")
        {
            tracks.push(track);
        }
    }
    tracks
}

#[tokio::main(flavor = "multi_thread", worker_threads = 2)]
async fn main() -> anyhow_free::Result {
    let args: Vec<u64> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let subscribers = args.first().copied().unwrap_or(10) as usize;
    let seconds = args.get(1).copied().unwrap_or(5);
    let dir = std::env::temp_dir().join("taoyao-engine-media");
    let spec = MediaSpec {
        width: 1280,
        height: 720,
        video_kbps: 1500,
        seconds: 5,
        ..MediaSpec::default()
    };
    let media = Arc::new(TestMedia::make(&dir, &spec).expect("test media (ffmpeg)"));
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
    let name = format!("shard-{}", shard.local_addr().port());

    let publisher = ClientPeer::new(&PeerOptions::default()).await.unwrap();
    publisher.add_media(true, true).await.unwrap();
    let offer = publisher.offer().await.unwrap();
    let (_, answer) = shard.accept_offer(offer).unwrap();
    publisher.accept_answer(answer).await.unwrap();
    publisher.connected(Duration::from_secs(10)).await.unwrap();
    publisher.start_sending(media).await.unwrap();
    let tracks = opened(&events, 2);

    let mut subs = Vec::new();
    for _ in 0..subscribers {
        let peer = ClientPeer::new(&PeerOptions::default()).await.unwrap();
        let conn = shard.open_connection().unwrap();
        let offer = shard.add_subscriber(conn, tracks.clone()).unwrap();
        let answer = peer.answer(offer).await.unwrap();
        shard.accept_answer(conn, answer).unwrap();
        subs.push(peer);
    }
    for p in &subs {
        p.connected(Duration::from_secs(10)).await.unwrap();
    }
    tokio::time::sleep(Duration::from_secs(1)).await;

    let (s0, c0) = (shard.stats().unwrap(), thread_cpu(&name));
    tokio::time::sleep(Duration::from_secs(seconds)).await;
    let (s1, c1) = (shard.stats().unwrap(), thread_cpu(&name));
    let copies = s1.rtp_forwarded - s0.rtp_forwarded;
    let cpu = c1 - c0;
    println!(
        "subscribers {subscribers}: {copies} copies in {seconds} s ({:.0}/s), shard thread CPU \
         {:.1} ms = {:.2} us/copy ({:.1}% of a core); packets in {}",
        copies as f64 / seconds as f64,
        cpu.as_secs_f64() * 1e3,
        cpu.as_secs_f64() * 1e6 / copies.max(1) as f64,
        cpu.as_secs_f64() * 100.0 / seconds as f64,
        s1.rtp_in - s0.rtp_in,
    );
    for p in subs.iter().chain([&publisher]) {
        p.close().await;
    }
    shard.stop();
    let _ = thread.join();
    Ok(())
}

/// The example's result type without pulling anyhow in as a dependency.
mod anyhow_free {
    pub type Result = std::result::Result<(), Box<dyn std::error::Error>>;
}
