//! The web client over https / wss with the generated development certificate: two pages in a
//! mesh room decode each other's video.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{Browser, enter_private_network, wait_for_reports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_web_client_works_over_wss() {
    if !enter_private_network("the_web_client_works_over_wss") {
        return;
    }
    let (_dir, certs, server) = TestServer::tls_with(|_| {}).await;
    // The listener is TLS only: the harness trusts the dev CA; the pages trust the server key
    // through Chromium's SPKI flag.
    let mut harness = common::TestClient::connect_tls(&server, &certs.ca_cert).await;
    assert_eq!(harness.register("harness").await["code"], "0000");
    let base = format!(
        "https://localhost:{}/?username=taoyao&password=taoyao&room=secure&report=harness",
        server.addr.port()
    );
    let trust = format!(
        "--ignore-certificate-errors-spki-list={}",
        certs.server_spki_sha256
    );
    let a = Browser::open_with(&format!("{base}&clientId=wss-a"), &[&trust]);
    let b = Browser::open_with(&format!("{base}&clientId=wss-b"), &[&trust]);
    wait_for_reports(&mut harness, &[&a, &b], Duration::from_secs(60), |r| {
        [("wss-a", "wss-b"), ("wss-b", "wss-a")]
            .iter()
            .all(|(me, other)| {
                r.get(*me).is_some_and(|rep| {
                    rep["room"]["peers"][*other]["video"]["framesDecoded"]
                        .as_u64()
                        .unwrap_or(0)
                        > 0
                })
            })
    })
    .await;
    a.close().await;
    b.close().await;
    server.stop().await;
}
