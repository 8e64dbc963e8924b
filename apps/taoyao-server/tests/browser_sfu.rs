//! The real web client in three headless Chromium pages: a sfu room where every page decodes, through the server,
//! video from both others and receives their audio.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{Browser, enter_private_network, wait_for_reports};
use serde_json::Value;

const PAGES: [&str; 3] = ["sfu-a", "sfu-b", "sfu-c"];

/// Every page has a connected peer with decoded video frames and audio from every other page.
fn all_media_flowing(reports: &std::collections::HashMap<String, Value>) -> bool {
    PAGES.iter().all(|me| {
        let Some(r) = reports.get(*me) else {
            return false;
        };
        PAGES.iter().filter(|p| *p != me).all(|other| {
            let peer = &r["room"]["peers"][*other];
            peer["connectionState"] == "connected"
                && peer["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
                && peer["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 0
                && peer["audio"]["totalSamplesReceived"].as_u64().unwrap_or(0) > 0
        })
    })
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_in_an_sfu_room_see_and_hear_each_other() {
    if !enter_private_network("three_pages_in_an_sfu_room_see_and_hear_each_other") {
        return;
    }
    let server = TestServer::start().await;
    let mut harness = server.client("harness").await;
    let base = format!("http://{}/", server.addr);
    let browsers: Vec<Browser> = PAGES
        .iter()
        .map(|id| {
            Browser::open(&format!(
                "{base}?clientId={id}&name={id}&username=taoyao&password=taoyao&room=sfu-e2e&architecture=sfu&report=harness"
            ))
        })
        .collect();
    let refs: Vec<&Browser> = browsers.iter().collect();
    let reports = wait_for_reports(
        &mut harness,
        &refs,
        Duration::from_secs(60),
        all_media_flowing,
    )
    .await;
    for id in PAGES {
        let peers = &reports[id]["room"]["peers"];
        eprintln!("{id}: {peers}");
        assert_eq!(
            reports[id]["local"],
            serde_json::json!(["audio", "video"]),
            "{id} sends camera and microphone"
        );
    }
    // Every page sent its media once, to the server, which forwarded it twice.
    let stats = server
        .parts()
        .rooms
        .media_stats("sfu-e2e")
        .await
        .expect("room exists");
    assert_eq!(
        (
            stats.members,
            stats.streams,
            stats.subscriptions,
            stats.peer_connections
        ),
        (3, 6, 12, 6),
        "{stats:?}"
    );
    for b in browsers {
        b.close().await;
    }
    server.stop().await;
}
