//! The real web client records: an owner page in an sfu room records itself on the server for
//! ~3 s (`&record=3000`), lists the room's recordings and shows download links; the harness
//! downloads the page's link over HTTP and ffprobe finds VP8 + Opus. A mesh page is asked by the
//! server to record locally (`control::client::record`) and offers a WebM made by MediaRecorder.

mod common;

use std::time::Duration;

use common::browser::{enter_private_network, open_pages, wait_for_reports};
use common::{TestServer, http_get};
use taoyao_media::ffcheck::{decode_errors, probe};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_owner_page_records_itself_and_downloads_the_file() {
    if !enter_private_network("an_owner_page_records_itself_and_downloads_the_file") {
        return;
    }
    let (dir, server) = TestServer::recording().await;
    let (mut harness, mut pages) = open_pages(
        &server,
        "rec-web",
        "&architecture=sfu&record=3000",
        &["rec-page"],
    )
    .await;
    let page = pages.remove(0);
    let reports = wait_for_reports(&mut harness, &[&page], Duration::from_secs(60), |r| {
        r.get("rec-page").is_some_and(|r| {
            r["recording"]["active"]
                .as_array()
                .is_some_and(Vec::is_empty)
                && r["recording"]["links"]
                    .as_array()
                    .is_some_and(|l| !l.is_empty())
        })
    })
    .await;
    let rec = &reports["rec-page"]["recording"];
    eprintln!("{rec}");
    let files = rec["files"].as_array().unwrap();
    assert_eq!(files.len(), 1, "{rec}");
    assert!(
        files[0]["file"]
            .as_str()
            .unwrap()
            .starts_with("rec-web/rec-page-"),
        "{rec}"
    );
    // The page shows the link record::list gave it; the harness follows it.
    let link = rec["links"][0].as_str().unwrap();
    assert_eq!(link, files[0]["url"].as_str().unwrap());
    let (status, head, body) = http_get(server.addr, link, "").await;
    assert_eq!(status, 200, "{head}");
    assert!(head.contains("content-type: video/webm"), "{head}");
    let local = dir.path().join("downloaded.webm");
    std::fs::write(&local, &body).unwrap();
    let (mut codecs, duration) = probe(&local);
    eprintln!(
        "downloaded {} bytes: {codecs:?}, {duration:.3} s",
        body.len()
    );
    codecs.sort();
    assert_eq!(codecs, ["opus", "vp8"], "{rec}");
    assert!(
        (2.0..=4.0).contains(&duration),
        "a ~3 s recording lasts {duration:.3} s"
    );
    let errors = decode_errors(&local);
    assert!(errors.is_empty(), "{errors}");
    page.close().await;
    server.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mesh_page_records_locally_when_the_server_asks() {
    if !enter_private_network("a_mesh_page_records_locally_when_the_server_asks") {
        return;
    }
    let (dir, server) = TestServer::recording().await;
    let (mut harness, mut pages) = open_pages(
        &server,
        "rec-mesh-web",
        "&architecture=mesh&record=2000",
        &["mesh-rec"],
    )
    .await;
    let page = pages.remove(0);
    let reports = wait_for_reports(&mut harness, &[&page], Duration::from_secs(60), |r| {
        r.get("mesh-rec").is_some_and(|r| {
            r["recording"]["local"]
                .as_array()
                .is_some_and(|l| !l.is_empty())
        })
    })
    .await;
    let rec = &reports["mesh-rec"]["recording"];
    eprintln!("{rec}");
    let file = &rec["local"][0];
    assert!(file["type"].as_str().unwrap().contains("webm"), "{rec}");
    // EBML magic: a WebM file, with ~2 s of camera and microphone in it.
    assert_eq!(file["head"], "1a45dfa3", "{rec}");
    assert!(file["bytes"].as_u64().unwrap() > 10_000, "{rec}");
    // It is offered on the page as a download (a blob: link), and the server wrote nothing.
    assert!(
        rec["links"]
            .as_array()
            .unwrap()
            .iter()
            .any(|l| l.as_str().unwrap().starts_with("blob:")),
        "{rec}"
    );
    assert!(!dir.path().join("rec-mesh-web").exists());
    page.close().await;
    server.stop().await;
}
