//! Many clients at once: every broadcast reaches every other client exactly once.

mod common;

use std::collections::HashMap;

use common::TestServer;
use futures_util::future::join_all;
use serde_json::json;

const N: usize = 200;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_hundred_clients_each_broadcast_once() {
    let server = TestServer::with(|c| c.auth.users.clear()).await;
    let mut clients = join_all((0..N).map(|i| {
        let url = server.url();
        async move {
            let mut c = common::TestClient::connect(&url).await;
            let r = c
                .request("client::register", json!({"clientId": format!("c{i:03}")}))
                .await;
            assert_eq!(r["code"], "0000");
            c
        }
    }))
    .await;
    assert_eq!(server.hub().client_count(), N);

    // Everyone broadcasts once, concurrently.
    join_all(clients.iter_mut().enumerate().map(|(i, c)| async move {
        let r = c.request("client::broadcast", json!({"seq": i})).await;
        assert_eq!(r["code"], "0000");
    }))
    .await;

    // Each client receives exactly one broadcast from each of the other N-1, none from itself.
    let counts = join_all(clients.iter_mut().enumerate().map(|(i, c)| async move {
        let mut seen: HashMap<u64, usize> = HashMap::new();
        for _ in 0..N - 1 {
            let m = c.expect("client::broadcast").await;
            *seen.entry(m["body"]["seq"].as_u64().unwrap()).or_default() += 1;
        }
        c.expect_none("client::broadcast", std::time::Duration::from_millis(100))
            .await;
        (i, seen)
    }))
    .await;
    for (i, seen) in counts {
        assert_eq!(seen.len(), N - 1, "client {i} heard {} senders", seen.len());
        assert!(!seen.contains_key(&(i as u64)), "client {i} heard itself");
        assert!(
            seen.values().all(|&n| n == 1),
            "client {i} heard a sender twice"
        );
    }
    server.stop().await;
}
