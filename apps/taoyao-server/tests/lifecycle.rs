//! Connections over time: timeouts, replacement, vanishing, server requests, shutdown.

mod common;

use std::time::Duration;

use common::TestServer;
use serde_json::json;
use taoyao_signal::PresenceMode;

#[tokio::test]
async fn silent_client_is_closed_after_the_heartbeat_timeout() {
    let server = TestServer::with(|c| {
        c.signal.heartbeat_timeout_ms = 400;
        c.signal.presence = PresenceMode::All;
    })
    .await;
    let mut watcher = server.client("watcher").await;
    let mut silent = server.client("silent").await;
    let started = std::time::Instant::now();
    // The watcher keeps beating; the silent one does not.
    let beat = async {
        for _ in 0..8 {
            tokio::time::sleep(Duration::from_millis(150)).await;
            assert_eq!(
                watcher.request("client::heartbeat", json!({})).await["code"],
                "0000"
            );
        }
        watcher
    };
    let (mut watcher, frame) = tokio::join!(beat, silent.expect_close());
    let frame = frame.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    assert!(frame.reason.contains("heartbeat"), "{}", frame.reason);
    assert!(started.elapsed() >= Duration::from_millis(400));
    let err = silent
        .kept()
        .iter()
        .find(|m| m["header"]["signal"] == "platform::error")
        .unwrap();
    assert_eq!(err["code"], "2001");
    let off = watcher.expect("client::offline").await;
    assert_eq!(off["body"]["clientId"], "silent");
    assert!(server.hub().client("silent").is_none());
    assert!(
        server.hub().client("watcher").is_some(),
        "a beating client stays"
    );
    server.stop().await;
}

#[tokio::test]
async fn connection_that_never_registers_is_closed() {
    let server = TestServer::with(|c| c.signal.register_timeout_ms = 300).await;
    let mut c = server.connect().await;
    let frame = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    let err = &c.kept()[0];
    assert_eq!(err["code"], "3401");
    server.stop().await;
}

#[tokio::test]
async fn registering_an_online_id_replaces_the_old_connection() {
    let server = TestServer::with(|c| c.signal.presence = PresenceMode::All).await;
    let mut watcher = server.client("watcher").await;
    let mut old = server.client("dup").await;
    watcher.expect("client::online").await;
    let mut new = server.client("dup").await;
    let why = old.expect("client::close").await;
    assert!(
        why["body"]["reason"].as_str().unwrap().contains("replaced"),
        "{why}"
    );
    let frame = old.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 4000);
    // The id stays online on the new connection: no offline, no second online.
    watcher
        .expect_none("client::offline", Duration::from_millis(300))
        .await;
    watcher
        .expect_none("client::online", Duration::from_millis(1))
        .await;
    let r = watcher
        .request("client::unicast", json!({"to": "dup", "x": 1}))
        .await;
    assert_eq!(r["code"], "0000");
    assert_eq!(new.expect("client::unicast").await["body"]["x"], 1);
    assert_eq!(server.hub().client_count(), 2);
    server.stop().await;
}

#[tokio::test]
async fn vanished_client_is_cleaned_up_and_others_told() {
    let server = TestServer::with(|c| c.signal.presence = PresenceMode::All).await;
    let mut a = server.client("a").await;
    let b = server.client("b").await;
    a.expect("client::online").await;
    b.vanish();
    let off = a.expect("client::offline").await;
    assert_eq!(off["body"]["clientId"], "b");
    assert!(server.hub().client("b").is_none());
    server.stop().await;
}

#[tokio::test]
async fn server_requests_are_correlated_and_time_out_with_2001() {
    let server = TestServer::with(|c| c.signal.request_timeout_ms = 300).await;
    let mut c = server.client("c").await;
    let handle = server.hub().client("c").unwrap();
    let timeout = server.hub().request_timeout();

    // The client answers: the server's request resolves with the answer.
    let h = handle.clone();
    let ask =
        tokio::spawn(async move { h.request("control::bell", json!({"n": 1}), timeout).await });
    let req = c.expect("control::bell").await;
    let id = req["header"]["id"].as_u64().unwrap();
    c.send_text(
        &json!({"code": "0000", "message": "success",
                "header": {"v": "1.0.0", "id": id, "signal": "control::bell"}, "body": {"rang": true}})
        .to_string(),
    )
    .await;
    let answer = ask.await.unwrap().expect("answered");
    assert_eq!(answer.body["rang"], true);

    // An error answer keeps its code.
    let h = handle.clone();
    let ask = tokio::spawn(async move { h.request("control::bell", json!({}), timeout).await });
    let id = c.expect("control::bell").await["header"]["id"]
        .as_u64()
        .unwrap();
    c.send_text(
        &json!({"code": "3403", "message": "not now",
                "header": {"v": "1.0.0", "id": id, "signal": "control::bell"}})
        .to_string(),
    )
    .await;
    let err = ask.await.unwrap().unwrap_err();
    assert_eq!(
        (err.code.as_str(), err.message.as_str()),
        ("3403", "not now")
    );

    // No answer: 2001 after the configured timeout; a late answer is ignored harmlessly.
    let err = handle
        .request("control::bell", json!({}), timeout)
        .await
        .unwrap_err();
    assert_eq!(err.code.as_str(), "2001");
    let id = c.expect("control::bell").await["header"]["id"]
        .as_u64()
        .unwrap();
    c.send_text(
        &json!({"code": "0000", "header": {"v": "1.0.0", "id": id, "signal": "control::bell"}})
            .to_string(),
    )
    .await;
    assert_eq!(c.request("client::status", json!({})).await["code"], "0000");
    server.stop().await;
}

#[tokio::test]
async fn shutdown_tells_every_client_then_closes_with_1001() {
    let server = TestServer::start().await;
    let mut clients = Vec::new();
    for i in 0..5 {
        clients.push(server.client(&format!("c{i}")).await);
    }
    let mut unregistered = server.connect().await;
    server.stop().await;
    for c in clients.iter_mut().chain(std::iter::once(&mut unregistered)) {
        let frame = c.expect_close().await.expect("a close frame");
        assert_eq!(u16::from(frame.code), 1001);
        let told = c
            .kept()
            .iter()
            .find(|m| m["header"]["signal"] == "client::close")
            .cloned();
        let told = told.expect("told before the close");
        assert!(
            told["body"]["reason"]
                .as_str()
                .unwrap()
                .contains("shutting down")
        );
    }
}
