//! Every client:: signal, as a WebSocket client uses it.

mod common;

use common::TestServer;
use serde_json::json;
use taoyao_signal::PresenceMode;

#[tokio::test]
async fn register_answers_pushes_config_and_tells_others() {
    let server = TestServer::with(|c| c.signal.presence = PresenceMode::All).await;
    let mut a = server.client("a").await;
    let mut b = server.connect().await;
    let r = b.register("b").await;
    assert_eq!(r["code"], "0000");
    assert_eq!(r["header"]["signal"], "client::register");
    assert_eq!(r["body"]["clientId"], "b");
    assert_eq!(r["body"]["name"], "name-b");
    assert_eq!(r["body"]["clientType"], "WEB");
    assert_eq!(r["body"]["ip"], "127.0.0.1");
    let cfg = b.expect("client::config").await;
    assert!(
        cfg.get("code").is_none(),
        "a notification carries no code: {cfg}"
    );
    assert_eq!(cfg["body"]["iceServers"], json!([]));
    assert_eq!(cfg["body"]["limits"]["maxMessageBytes"], 65536);
    assert_eq!(cfg["body"]["limits"]["heartbeatIntervalMs"], 20000);
    let online = a.expect("client::online").await;
    assert_eq!(online["body"]["clientId"], "b");
    // The newcomer is not told about itself.
    b.expect_none("client::online", std::time::Duration::from_millis(200))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn register_checks_login_and_fields() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    let r = c
        .request(
            "client::register",
            json!({"clientId": "x", "username": "taoyao", "password": "nope"}),
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("3401"), Some("bad username or password"))
    );
    let r = c
        .request("client::register", json!({"clientId": "x"}))
        .await;
    assert_eq!(r["code"], "3401");
    let r = c
        .request(
            "client::register",
            json!({"username": "taoyao", "password": "taoyao"}),
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("3400"), Some("clientId is required"))
    );
    let r = c
        .request(
            "client::register",
            json!({"clientId": 5, "username": "taoyao", "password": "taoyao"}),
        )
        .await;
    assert_eq!(r["code"], "3400");
    let r = c
        .request(
            "client::register",
            json!({"clientId": "x".repeat(65), "username": "taoyao", "password": "taoyao"}),
        )
        .await;
    assert_eq!(r["code"], "3400");
    let r = c
        .request(
            "client::register",
            json!({"clientId": "x", "clientType": "TOASTER", "username": "taoyao", "password": "taoyao"}),
        )
        .await;
    assert_eq!(r["code"], "3400");
    assert!(r["message"].as_str().unwrap().contains("TOASTER"));
    // The same connection can still register properly after all those failures.
    assert_eq!(c.register("x").await["code"], "0000");
    assert_eq!(
        c.register("x").await["code"],
        "3400",
        "a second register on one connection"
    );
    server.stop().await;
}

#[tokio::test]
async fn open_registration_when_no_users_are_configured() {
    let server = TestServer::with(|c| c.auth.users.clear()).await;
    let mut c = server.connect().await;
    let r = c
        .request("client::register", json!({"clientId": "anon"}))
        .await;
    assert_eq!(r["code"], "0000");
    assert_eq!(r["body"]["name"], "anon");
    server.stop().await;
}

#[tokio::test]
async fn list_and_status() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut cam = server.connect().await;
    let r = cam
        .request(
            "client::register",
            json!({"clientId": "cam", "clientType": "CAMERA", "username": "taoyao", "password": "taoyao"}),
        )
        .await;
    assert_eq!(r["code"], "0000");
    let all = a.request("client::list", json!({})).await;
    let ids: Vec<_> = all["body"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].clone())
        .collect();
    assert_eq!(ids, vec![json!("a"), json!("cam")]);
    let cams = a
        .request("client::list", json!({"clientType": "CAMERA"}))
        .await;
    assert_eq!(cams["body"]["clients"].as_array().unwrap().len(), 1);
    assert_eq!(cams["body"]["clients"][0]["clientId"], "cam");
    assert_eq!(
        a.request("client::list", json!({"clientType": "X"})).await["code"],
        "3400"
    );

    // Heartbeats are acked and may carry a status that client::status then shows.
    let hb = cam
        .request(
            "client::heartbeat",
            json!({"status": {"battery": 80, "charging": true}}),
        )
        .await;
    assert_eq!(hb["code"], "0000");
    let st = a
        .request("client::status", json!({"clientId": "cam"}))
        .await;
    assert_eq!(st["body"]["clientType"], "CAMERA");
    assert_eq!(st["body"]["status"]["battery"], 80);
    let me = a.request("client::status", json!({})).await;
    assert_eq!(me["body"]["clientId"], "a");
    let gone = a
        .request("client::status", json!({"clientId": "nobody"}))
        .await;
    assert_eq!(gone["code"], "3404");
    server.stop().await;
}

#[tokio::test]
async fn unicast_reaches_only_the_target_with_a_trusted_from() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    let r = a
        .request(
            "client::unicast",
            json!({"to": "b", "text": "hi", "from": "forged"}),
        )
        .await;
    assert_eq!(r["code"], "0000");
    let m = b.expect("client::unicast").await;
    assert_eq!(m["body"]["text"], "hi");
    assert_eq!(
        m["body"]["from"], "a",
        "the server sets from, whatever the sender says"
    );
    c.expect_none("client::unicast", std::time::Duration::from_millis(200))
        .await;
    let r = a.request("client::unicast", json!({"to": "nobody"})).await;
    assert_eq!(r["code"], "3404");
    let r = a
        .request("client::unicast", json!({"text": "no target"}))
        .await;
    assert_eq!(r["code"], "3400");
    server.stop().await;
}

#[tokio::test]
async fn broadcast_excludes_the_sender_and_broadcast_all_includes_it() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    let r = a.request("client::broadcast", json!({"n": 1})).await;
    assert_eq!(r["body"]["delivered"], 2);
    for x in [&mut b, &mut c] {
        let m = x.expect("client::broadcast").await;
        assert_eq!(
            (m["body"]["n"].as_i64(), m["body"]["from"].as_str()),
            (Some(1), Some("a"))
        );
    }
    a.expect_none("client::broadcast", std::time::Duration::from_millis(200))
        .await;

    let r = a.request("client::broadcast::all", json!({"n": 2})).await;
    assert_eq!(r["body"]["delivered"], 3);
    for x in [&mut a, &mut b, &mut c] {
        let m = x.expect("client::broadcast::all").await;
        assert!(m.get("code").is_none(), "the copy is a notification: {m}");
        assert_eq!(m["body"]["n"], 2);
    }
    server.stop().await;
}

#[tokio::test]
async fn close_answers_then_closes_and_others_see_offline() {
    let server = TestServer::with(|c| c.signal.presence = PresenceMode::All).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let r = b.request("client::close", json!({})).await;
    assert_eq!(r["code"], "0000");
    let frame = b.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1000);
    let off = a.expect("client::offline").await;
    assert_eq!(off["body"]["clientId"], "b");
    let list = a.request("client::list", json!({})).await;
    assert_eq!(list["body"]["clients"].as_array().unwrap().len(), 1);
    server.stop().await;
}
