//! The real web client in two headless Chromium pages: a 1:1 call carries video both ways.

mod common;

use std::time::Duration;

use common::TestServer;
use common::browser::{Browser, enter_private_network, wait_for_reports};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_one_to_one_call_carries_video_both_ways() {
    if !enter_private_network("a_one_to_one_call_carries_video_both_ways") {
        return;
    }
    let server = TestServer::start().await;
    let mut harness = server.client("harness").await;
    let base = format!(
        "http://{}/?username=taoyao&password=taoyao&report=harness",
        server.addr
    );
    let callee = Browser::open(&format!("{base}&clientId=callee&autoAnswer=1"));
    let caller = Browser::open(&format!("{base}&clientId=caller&call=callee"));
    let reports = wait_for_reports(
        &mut harness,
        &[&caller, &callee],
        Duration::from_secs(60),
        |r| {
            ["caller", "callee"].iter().all(|id| {
                r.get(*id).is_some_and(|rep| {
                    rep["call"]["stats"]["video"]["framesDecoded"]
                        .as_u64()
                        .unwrap_or(0)
                        > 0
                        && rep["call"]["stats"]["connectionState"] == "connected"
                        && rep["call"]["stats"]["audio"]["packetsReceived"]
                            .as_u64()
                            .unwrap_or(0)
                            > 0
                        && rep["call"]["stats"]["audio"]["totalSamplesReceived"]
                            .as_u64()
                            .unwrap_or(0)
                            > 0
                })
            })
        },
    )
    .await;
    assert_eq!(reports["caller"]["call"]["remoteId"], "callee");
    assert_eq!(reports["callee"]["call"]["remoteId"], "caller");
    assert_eq!(server.parts().calls.count(), 1);
    caller.close().await;
    callee.close().await;
    server.stop().await;
}
