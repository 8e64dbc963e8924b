//! The real web client in headless Chromium: an anchor page goes live in an sfu room and two
//! viewer pages (no camera, subscribe-only) decode the anchor's video; then a third viewer asks
//! to co-host, the anchor's page accepts, and the co-host's camera reaches the other viewers.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{Browser, enter_private_network, wait_for_reports};
use serde_json::json;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_anchor_page_goes_live_viewer_pages_watch_and_one_cohosts() {
    if !enter_private_network("an_anchor_page_goes_live_viewer_pages_watch_and_one_cohosts") {
        return;
    }
    let server = TestServer::start().await;
    let mut harness = server.client("harness").await;
    let base = format!("http://{}/", server.addr);
    let page = |id: &str, live: &str| {
        Browser::open(&format!(
            "{base}?clientId={id}&name={id}&username=taoyao&password=taoyao&room=live-e2e&architecture=sfu&live={live}&report=harness"
        ))
    };
    let anchor = page("anchor", "anchor&autoAccept=1");
    // The anchor makes the room (it is its owner) and goes on air before viewers arrive.
    wait_for_reports(&mut harness, &[&anchor], Duration::from_secs(30), |r| {
        r.get("anchor")
            .is_some_and(|a| a["stage"]["live"]["anchor"] == "anchor")
    })
    .await;
    let viewers = [page("viewer-1", "viewer"), page("viewer-2", "viewer")];
    let all = [&anchor, &viewers[0], &viewers[1]];
    let reports = wait_for_reports(&mut harness, &all, Duration::from_secs(60), |r| {
        ["viewer-1", "viewer-2"].iter().all(|v| {
            r.get(*v).is_some_and(|v| {
                let a = &v["room"]["peers"]["anchor"];
                a["connectionState"] == "connected"
                    && a["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
                    && a["audio"]["packetsReceived"].as_u64().unwrap_or(0) > 0
            })
        })
    })
    .await;
    for v in ["viewer-1", "viewer-2"] {
        let r = &reports[v];
        eprintln!("{v}: {}", r["room"]["peers"]);
        assert_eq!(r["local"], json!([]), "{v} sends nothing");
        assert_eq!(r["stage"]["mayPublish"], false, "{v}");
        assert_eq!(r["stage"]["live"]["anchor"], "anchor", "{v}");
    }
    // The server holds only the anchor's two streams, each sent to both viewers.
    let stats = server
        .parts()
        .rooms
        .media_stats("live-e2e")
        .await
        .expect("room exists");
    assert_eq!(
        (stats.members, stats.streams, stats.subscriptions),
        (3, 2, 4),
        "{stats:?}"
    );
    let r = harness.request("live::list", json!({})).await;
    assert_eq!(r["body"]["lives"][0]["viewers"], 2, "{r}");

    // Co-host: a third viewer asks, the anchor's page accepts, the guest's page starts sending
    // and both other viewers decode it.
    let guest = page("guest", "viewer&cohost=ask");
    let all = [&anchor, &viewers[0], &viewers[1], &guest];
    let reports = wait_for_reports(&mut harness, &all, Duration::from_secs(60), |r| {
        r.get("guest")
            .is_some_and(|g| g["local"] == json!(["audio", "video"]))
            && ["viewer-1", "viewer-2"].iter().all(|v| {
                r.get(*v).is_some_and(|v| {
                    v["room"]["peers"]["guest"]["video"]["framesDecoded"]
                        .as_u64()
                        .unwrap_or(0)
                        > 0
                })
            })
    })
    .await;
    assert_eq!(
        reports["guest"]["stage"]["live"]["cohosts"],
        json!(["guest"])
    );
    anchor.close().await;
    guest.close().await;
    for b in viewers {
        b.close().await;
    }
    server.stop().await;
}
