//! Smoke runs of every taoyao-bench scenario at tiny sizes against a real server, so the load
//! tool cannot rot: it must count the packets it sends and receives, see no loss on loopback,
//! measure latency, and write its JSON. Not a speed test.

mod common;

use std::sync::Arc;

use common::TestServer;
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::report::{self, Report};
use taoyao_bench::scenario::{self, Bench};

fn media() -> Arc<TestMedia> {
    let dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
    Arc::new(TestMedia::make(&dir, &MediaSpec::default()).expect("test media (ffmpeg)"))
}

fn media_ok(r: &Report) {
    assert!(r.packets_sent > 0, "{r:?}");
    assert!(r.packets_received > 0, "{r:?}");
    assert!(r.bytes_received > r.packets_received, "{r:?}");
    assert_eq!(r.lost, 0, "loss on loopback: {r:?}");
    assert!(r.server_cpu.is_some_and(|c| c > 0.0), "{r:?}");
    assert!(r.server_rss_mb.is_some_and(|m| m > 1.0), "{r:?}");
    assert!(r.window_s >= 1.9, "{r:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_scenario_runs_counts_and_reports() {
    let server = TestServer::start().await;
    // The server runs in this process: its CPU figure includes the bench's own.
    let b = Bench::new(&server.url(), Some(std::process::id()), media());
    let mut reports = Vec::new();

    let r = scenario::sfu_fanout(&b, 1, 2, 2.0)
        .await
        .expect("sfu-fanout");
    media_ok(&r);
    // Every packet the publisher sent in the window reaches both subscribers (give or take the
    // ones in flight at the window's edges).
    let ratio = r.packets_received as f64 / (2 * r.packets_sent) as f64;
    assert!((0.9..1.1).contains(&ratio), "{r:?}");
    let lat = r.latency.expect("forwarding latency measured");
    assert!(
        lat.count as u64 * 10 >= r.packets_received * 9,
        "{lat:?} {r:?}"
    );
    assert!(lat.p50_ms > 0.0 && lat.p50_ms < 200.0, "{lat:?}");
    assert!(r.cpu_per_packet_us.is_some(), "{r:?}");
    reports.push(r);

    let r = scenario::meeting(&b, 3, 2.0).await.expect("meeting");
    media_ok(&r);
    // Three members each receive the other two: twice what was sent.
    let ratio = r.packets_received as f64 / (2 * r.packets_sent) as f64;
    assert!((0.9..1.1).contains(&ratio), "{r:?}");
    assert!(r.latency.is_some(), "{r:?}");
    reports.push(r);

    let r = scenario::mcu(&b, 3, 2.0).await.expect("mcu");
    media_ok(&r);
    // One mixed Opus packet per 20 ms per member, as many as the members sent.
    let ratio = r.packets_received as f64 / r.packets_sent as f64;
    assert!((0.9..1.1).contains(&ratio), "{r:?}");
    assert!(r.cpu_per_participant_pct.is_some(), "{r:?}");
    reports.push(r);

    let r = scenario::join(&b, 3).await.expect("join");
    let first = r.join_first_packet.expect("join times");
    let key = r.join_first_keyframe.expect("join keyframe times");
    assert_eq!((first.count, key.count), (3, 3), "{r:?}");
    assert!(key.p50_ms >= first.p50_ms && first.p50_ms > 0.0, "{r:?}");
    assert!(r.packets_received >= 3, "{r:?}");
    reports.push(r);

    // From two loopback addresses (127.0.0.1 and 127.0.0.2), as a 50,000-client run needs.
    let r = scenario::signal(&b, 20, 5, 2.0, std::time::Duration::from_secs(1), 2.0, 2)
        .await
        .expect("signal");
    assert!(
        r.notes
            .iter()
            .any(|n| n.starts_with("registered 20 clients")),
        "the time to register is reported: {r:?}"
    );
    // 4 rooms of 5: each broadcast reaches 4 others; 20 clients x 2/s x 2 s x 4 = 320.
    assert!(
        (250..=400).contains(&r.packets_received),
        "broadcasts received: {r:?}"
    );
    assert!(r.messages_per_s.is_some_and(|m| m > 100.0), "{r:?}");
    assert!(
        r.latency
            .is_some_and(|l| l.count as u64 == r.packets_received)
    );
    reports.push(r);

    let json = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("bench-smoke.json");
    report::write_json(&json, &reports).unwrap();
    let back: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(&json).unwrap()).unwrap();
    let names: Vec<_> = back
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["scenario"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(names, ["sfu-fanout", "meeting", "mcu", "join", "signal"]);
    assert!(back[0]["latency"]["p99_ms"].is_number());
    let table = report::table(&reports);
    assert_eq!(table.lines().filter(|l| l.starts_with("| ")).count(), 6);
    server.stop().await;
}
