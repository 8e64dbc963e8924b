//! `signal.presence`: who hears `client::online` / `client::offline` in each mode.

mod common;

use std::time::Duration;

use common::{TestClient, TestServer};
use serde_json::json;
use taoyao_signal::PresenceMode;

/// Long enough for the presence task to have sent what it would send.
const QUIET: Duration = Duration::from_millis(300);

async fn server(mode: PresenceMode) -> TestServer {
    TestServer::with(|c| c.signal.presence = mode).await
}

async fn enter(c: &mut TestClient, room: &str) {
    let r = c.request("room::enter", json!({"roomId": room})).await;
    assert_eq!(r["code"], "0000", "enter {room}: {r}");
}

#[tokio::test]
async fn default_is_rooms() {
    assert_eq!(
        taoyao_signal::SignalConfig::default().presence,
        PresenceMode::Rooms
    );
}

#[tokio::test]
async fn all_tells_everyone_registered_before() {
    let server = server(PresenceMode::All).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    assert_eq!(a.expect("client::online").await["body"]["clientId"], "b");
    let c = server.client("c").await;
    for x in [&mut a, &mut b] {
        let m = x.expect("client::online").await;
        assert_eq!(m["body"]["clientId"], "c");
        assert_eq!(m["body"]["name"], "name-c", "the client's status: {m}");
    }
    // b registered after a: it is not told of a, nor anyone of themselves.
    b.expect_none("client::online", QUIET).await;
    c.vanish();
    for x in [&mut a, &mut b] {
        assert_eq!(x.expect("client::offline").await["body"]["clientId"], "c");
    }
    server.stop().await;
}

#[tokio::test]
async fn rooms_tells_only_those_sharing_a_room() {
    let server = server(PresenceMode::Rooms).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    let mut lobby = server.client("lobby").await;
    // Registering shares no room yet: nobody hears of it.
    for x in [&mut a, &mut b, &mut c, &mut lobby] {
        x.expect_none("client::online", QUIET).await;
    }
    enter(&mut a, "r1").await;
    enter(&mut b, "r1").await;
    enter(&mut b, "r2").await;
    enter(&mut c, "r2").await;
    // b shares r1 with a and r2 with c: both hear b go; the lobby client does not.
    b.vanish();
    assert_eq!(a.expect("client::offline").await["body"]["clientId"], "b");
    assert_eq!(c.expect("client::offline").await["body"]["clientId"], "b");
    // Its disconnect reached its rooms: the members see it leave.
    assert_eq!(a.expect("room::leave").await["body"]["clientId"], "b");
    lobby.expect_none("client::offline", QUIET).await;
    // a and c never shared a room: c does not hear a go.
    a.vanish();
    c.expect_none("client::offline", QUIET).await;
    // Still online clients are all listed, whatever the mode.
    let list = lobby.request("client::list", json!({})).await;
    let ids: Vec<_> = list["body"]["clients"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["clientId"].as_str().unwrap().to_owned())
        .collect();
    assert_eq!(ids, ["c", "lobby"]);
    server.stop().await;
}

#[tokio::test]
async fn rooms_forgets_a_room_left() {
    let server = server(PresenceMode::Rooms).await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    enter(&mut a, "r").await;
    enter(&mut b, "r").await;
    let r = b.request("room::leave", json!({"roomId": "r"})).await;
    assert_eq!(r["code"], "0000");
    a.expect("room::leave").await;
    b.vanish();
    a.expect_none("client::offline", QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn rooms_says_nothing_when_a_connection_is_replaced() {
    let server = server(PresenceMode::Rooms).await;
    let mut a = server.client("a").await;
    let mut old = server.client("dup").await;
    enter(&mut a, "r").await;
    enter(&mut old, "r").await;
    let _new = server.client("dup").await;
    old.expect_close().await;
    // The old connection left the room, but the id is still online.
    a.expect("room::leave").await;
    a.expect_none("client::offline", QUIET).await;
    server.stop().await;
}

#[tokio::test]
async fn none_tells_nobody() {
    let server = server(PresenceMode::None).await;
    let mut a = server.client("a").await;
    enter(&mut a, "r").await;
    let mut b = server.client("b").await;
    enter(&mut b, "r").await;
    a.expect("room::enter").await;
    b.vanish();
    a.expect("room::leave").await;
    a.expect_none("client::online", QUIET).await;
    a.expect_none("client::offline", QUIET).await;
    let list = a.request("client::list", json!({})).await;
    assert_eq!(list["body"]["clients"].as_array().unwrap().len(), 1);
    server.stop().await;
}
