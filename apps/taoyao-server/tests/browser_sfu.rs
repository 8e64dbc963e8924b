//! The real web client in three headless Chromium pages: an sfu room where every page decodes
//! video from both others and receives their audio, through the server.

mod common;

use common::TestServer;
use common::browser::{enter_private_network, pages_see_and_hear_each_other};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_in_an_sfu_room_see_and_hear_each_other() {
    if !enter_private_network("three_pages_in_an_sfu_room_see_and_hear_each_other") {
        return;
    }
    let server = TestServer::start().await;
    let (_, browsers) = pages_see_and_hear_each_other(
        &server,
        "sfu-e2e",
        "&architecture=sfu",
        &["sfu-a", "sfu-b", "sfu-c"],
    )
    .await;
    // Every page sent its media once, to the server, which forwarded it twice.
    assert_eq!(server.media_counts("sfu-e2e").await, (3, 6, 12, 6));
    for b in browsers {
        b.close().await;
    }
    server.stop().await;
}
