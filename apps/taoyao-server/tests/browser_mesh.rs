//! The real web client in three headless Chromium pages: a mesh room where every page decodes
//! video from both others and receives their audio, peer to peer.

mod common;

use common::TestServer;
use common::browser::{enter_private_network, pages_see_and_hear_each_other};

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_pages_in_a_mesh_room_see_and_hear_each_other() {
    if !enter_private_network("three_pages_in_a_mesh_room_see_and_hear_each_other") {
        return;
    }
    let server = TestServer::start().await;
    let (_, browsers) =
        pages_see_and_hear_each_other(&server, "mesh-e2e", "", &["page-a", "page-b", "page-c"])
            .await;
    // The server only relayed negotiation: the room's media backend holds no peer connection.
    let stats = server
        .parts()
        .rooms
        .media_stats("mesh-e2e")
        .await
        .expect("room exists");
    assert_eq!(stats.members, 3);
    assert_eq!(stats.peer_connections, 0);
    assert!(
        stats.negotiations >= 6,
        "offers and answers for 3 pairs at least: {stats:?}"
    );
    for b in browsers {
        b.close().await;
    }
    server.stop().await;
}
