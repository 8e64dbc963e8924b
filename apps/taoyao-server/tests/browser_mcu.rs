//! The real web client in three headless Chromium pages in an mcu room: every page receives one
//! mixed audio track with signal energy in it and decodes both others' video.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{Browser, enter_private_network, open_pages, wait_for_reports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_in_an_mcu_room_hear_one_mix_and_see_each_other() {
    if !enter_private_network("three_pages_in_an_mcu_room_hear_one_mix_and_see_each_other") {
        return;
    }
    let server = TestServer::start().await;
    let pages = ["mcu-a", "mcu-b", "mcu-c"];
    let (mut harness, browsers) = open_pages(&server, "mcu-e2e", "&architecture=mcu", &pages).await;
    let refs: Vec<&Browser> = browsers.iter().collect();
    let reports = wait_for_reports(&mut harness, &refs, Duration::from_secs(60), |reports| {
        pages.iter().all(|me| {
            let Some(r) = reports.get(*me) else {
                return false;
            };
            let peers = &r["room"]["peers"];
            let mix = &peers["mix"]["audio"];
            mix["packetsReceived"].as_u64().unwrap_or(0) > 0
                && mix["totalAudioEnergy"].as_f64().unwrap_or(0.0) > 0.0
                && pages.iter().filter(|p| *p != me).all(|other| {
                    peers[*other]["connectionState"] == "connected"
                        && peers[*other]["video"]["framesDecoded"].as_u64().unwrap_or(0) > 0
                        // No per-member audio in an mcu room: only the mix.
                        && peers[*other]["audio"]["packetsReceived"].is_null()
                })
        })
    })
    .await;
    for id in pages {
        eprintln!("{id}: {}", reports[id]["room"]["peers"]);
    }
    // Each page publishes audio + video once. Audio goes into the mixer, so the forwarded
    // streams are the three videos, each subscribed by the two others.
    assert_eq!(server.media_counts("mcu-e2e").await, (3, 3, 6, 6));
    for b in browsers {
        b.close().await;
    }
    server.stop().await;
}
