//! Rooms: create / enter / leave / close / list / status / client list / invite / expel /
//! broadcast, ownership and membership rules, architecture choice, cleanup.

mod common;

use std::time::Duration;

use common::{ADMIN, TestServer, with_admin};
use serde_json::{Value, json};

fn ids(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|m| m["clientId"].as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test]
async fn create_enter_list_status_and_notifications() {
    let server = TestServer::start().await;
    let mut owner = server.client("owner").await;
    let mut bob = server.client("bob").await;
    let created = owner
        .request("room::create", json!({"name": "standup"}))
        .await;
    assert_eq!(created["code"], "0000", "{created}");
    let room = created["body"]["roomId"].as_str().unwrap().to_owned();
    assert_eq!(created["body"]["architecture"], "mesh");
    assert_eq!(created["body"]["owner"], "owner");
    assert_eq!(created["body"]["memberCount"], 0, "create does not enter");

    let entered = owner.request("room::enter", json!({"roomId": room})).await;
    assert_eq!(entered["code"], "0000", "{entered}");
    assert_eq!(entered["body"]["architecture"], "mesh");
    assert_eq!(ids(&entered["body"]["members"]), ["owner"]);
    let entered = bob.request("room::enter", json!({"roomId": room})).await;
    assert_eq!(ids(&entered["body"]["members"]), ["owner", "bob"]);
    assert_eq!(entered["body"]["members"][0]["owner"], true);
    let told = owner.expect("room::enter").await;
    assert_eq!(
        (
            told["body"]["roomId"].as_str(),
            told["body"]["client"]["clientId"].as_str()
        ),
        (Some(room.as_str()), Some("bob"))
    );
    assert_eq!(told["body"]["client"]["name"], "name-bob");

    let list = bob.request("room::list", json!({})).await;
    let rooms = list["body"]["rooms"].as_array().unwrap();
    assert_eq!(rooms.len(), 1);
    assert_eq!(rooms[0]["memberCount"], 2);
    assert_eq!(rooms[0]["name"], "standup");
    let status = bob.request("room::status", json!({"roomId": room})).await;
    assert_eq!(status["body"]["owner"], "owner");
    assert_eq!(status["body"]["architecture"], "mesh");
    let cl = bob
        .request("room::client::list", json!({"roomId": room}))
        .await;
    assert_eq!(ids(&cl["body"]["clients"]), ["owner", "bob"]);
    assert_eq!(cl["body"]["clients"][1]["clientType"], "WEB");

    assert_eq!(
        bob.request("room::enter", json!({"roomId": room})).await["code"],
        "3400",
        "already in"
    );
    let left = bob.request("room::leave", json!({"roomId": room})).await;
    assert_eq!(left["code"], "0000");
    let told = owner.expect("room::leave").await;
    assert_eq!(told["body"]["clientId"], "bob");
    assert_eq!(
        bob.request("room::leave", json!({"roomId": room})).await["code"],
        "3403",
        "double leave"
    );
    server.stop().await;
}

#[tokio::test]
async fn enter_creates_a_missing_room_with_the_enterer_as_owner() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let r = a
        .request("room::enter", json!({"roomId": "auto-1", "password": "pw"}))
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    assert_eq!(r["body"]["roomId"], "auto-1");
    assert_eq!(r["body"]["owner"], "a");
    assert_eq!(r["body"]["hasPassword"], true);
    assert_eq!(
        b.request("room::enter", json!({"roomId": "auto-1"})).await["code"],
        "3403"
    );
    assert_eq!(
        b.request("room::enter", json!({"roomId": "auto-1", "password": "px"}))
            .await["code"],
        "3403"
    );
    assert_eq!(
        b.request("room::enter", json!({"roomId": "auto-1", "password": "pw"}))
            .await["code"],
        "0000"
    );
    assert_eq!(b.request("room::enter", json!({})).await["code"], "3400");
    assert_eq!(
        b.request("room::enter", json!({"roomId": ""})).await["code"],
        "3400"
    );
    assert_eq!(
        b.request("room::enter", json!({"roomId": 7})).await["code"],
        "3400"
    );
    server.stop().await;
}

#[tokio::test]
async fn passwords_are_never_echoed() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let secret = "s3cr3t-value";
    let created = a
        .request(
            "room::create",
            json!({"name": "private", "password": secret}),
        )
        .await;
    let room = created["body"]["roomId"].as_str().unwrap().to_owned();
    let entered = a.request("room::enter", json!({"roomId": room})).await;
    let list = a.request("room::list", json!({})).await;
    let status = a.request("room::status", json!({"roomId": room})).await;
    for v in [&created, &entered, &list, &status] {
        assert!(!v.to_string().contains(secret), "password leaked: {v}");
    }
    assert_eq!(status["body"]["hasPassword"], true);
    server.stop().await;
}

#[tokio::test]
async fn members_only_and_unknown_rooms() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut outsider = server.client("outsider").await;
    a.request("room::enter", json!({"roomId": "r"})).await;
    for (signal, body) in [
        ("room::status", json!({"roomId": "r"})),
        ("room::client::list", json!({"roomId": "r"})),
        ("room::broadcast", json!({"roomId": "r", "x": 1})),
        ("room::leave", json!({"roomId": "r"})),
        (
            "media::exchange",
            json!({"roomId": "r", "to": "a", "type": "offer", "sdp": "v=0"}),
        ),
        ("media::pause", json!({"roomId": "r", "kind": "audio"})),
    ] {
        let r = outsider.request(signal, body).await;
        assert_eq!(r["code"], "3403", "{signal}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains("not a member"),
            "{r}"
        );
    }
    for signal in [
        "room::status",
        "room::leave",
        "room::close",
        "room::broadcast",
        "media::exchange",
        "room::expel",
    ] {
        let r = outsider.request(signal, json!({"roomId": "nowhere"})).await;
        assert_eq!(r["code"], "3404", "{signal}: {r}");
    }
    assert_eq!(
        outsider.request("room::status", json!({})).await["code"],
        "3400"
    );
    server.stop().await;
}

#[tokio::test]
async fn only_the_owner_or_an_admin_closes_expels_and_invites() {
    let server = TestServer::with(with_admin).await;
    let mut owner = server.client("owner").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    let mut guest = server.client("guest").await;
    owner
        .request("room::enter", json!({"roomId": "r", "password": "pw"}))
        .await;
    b.request("room::enter", json!({"roomId": "r", "password": "pw"}))
        .await;
    c.request("room::enter", json!({"roomId": "r", "password": "pw"}))
        .await;
    for (signal, body) in [
        ("room::close", json!({"roomId": "r"})),
        ("room::expel", json!({"roomId": "r", "clientId": "c"})),
        ("room::invite", json!({"roomId": "r", "clientId": "guest"})),
    ] {
        let r = b.request(signal, body).await;
        assert_eq!(r["code"], "3403", "{signal}: {r}");
        assert!(
            r["message"].as_str().unwrap().contains("owner"),
            "says which right is missing: {r}"
        );
    }

    // Invite: the guest is told and may enter without the password.
    assert_eq!(
        owner
            .request("room::invite", json!({"roomId": "r", "clientId": "nobody"}))
            .await["code"],
        "3404"
    );
    assert_eq!(
        owner
            .request("room::invite", json!({"roomId": "r", "clientId": "guest"}))
            .await["code"],
        "0000"
    );
    let inv = guest.expect("room::invite").await;
    assert_eq!(
        (inv["body"]["roomId"].as_str(), inv["body"]["from"].as_str()),
        (Some("r"), Some("owner"))
    );
    assert_eq!(inv["body"]["architecture"], "mesh");
    assert_eq!(
        guest.request("room::enter", json!({"roomId": "r"})).await["code"],
        "0000"
    );

    // Expel: the server removes the member, tells it and the others.
    let r = owner
        .request("room::expel", json!({"roomId": "r", "clientId": "c"}))
        .await;
    assert_eq!(r["code"], "0000");
    let ex = c.expect("room::expel").await;
    assert!(ex["body"]["reason"].as_str().unwrap().contains("expelled"));
    let told = b.expect("room::leave").await;
    assert_eq!(told["body"]["clientId"], "c");
    assert_eq!(
        c.request("room::status", json!({"roomId": "r"})).await["code"],
        "3403",
        "no longer a member"
    );
    assert_eq!(
        owner
            .request("room::expel", json!({"roomId": "r", "clientId": "c"}))
            .await["code"],
        "3404"
    );
    let members = owner
        .request("room::client::list", json!({"roomId": "r"}))
        .await;
    assert_eq!(ids(&members["body"]["clients"]), ["owner", "b", "guest"]);

    // An admin who is not even a member may close it; every member is removed and told.
    let mut admin = server.connect().await;
    let r = admin
        .request(
            "client::register",
            json!({"clientId": "adm", "username": ADMIN.0, "password": ADMIN.1}),
        )
        .await;
    assert_eq!(r["body"]["grants"]["admin"], true);
    assert_eq!(
        admin.request("room::status", json!({"roomId": "r"})).await["code"],
        "0000",
        "admins may look"
    );
    assert_eq!(
        admin.request("room::close", json!({"roomId": "r"})).await["code"],
        "0000"
    );
    for m in [&mut owner, &mut b, &mut guest] {
        let closed = m.expect("room::close").await;
        assert_eq!(closed["body"]["roomId"], "r");
    }
    assert_eq!(
        owner.request("room::status", json!({"roomId": "r"})).await["code"],
        "3404"
    );
    assert_eq!(
        owner.request("room::list", json!({})).await["body"]["rooms"],
        json!([])
    );
    server.stop().await;
}

#[tokio::test]
async fn room_broadcast_reaches_members_but_the_sender() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    let mut outside = server.client("outside").await;
    for x in [&mut a, &mut b, &mut c] {
        x.request("room::enter", json!({"roomId": "r"})).await;
    }
    let r = a
        .request(
            "room::broadcast",
            json!({"roomId": "r", "text": "hello", "from": "forged"}),
        )
        .await;
    assert_eq!(r["body"]["delivered"], 2);
    for x in [&mut b, &mut c] {
        let m = x.expect("room::broadcast").await;
        assert_eq!(
            (m["body"]["text"].as_str(), m["body"]["from"].as_str()),
            (Some("hello"), Some("a"))
        );
    }
    a.expect_none("room::broadcast", Duration::from_millis(150))
        .await;
    outside
        .expect_none("room::broadcast", Duration::from_millis(1))
        .await;
    server.stop().await;
}

#[tokio::test]
async fn a_vanished_or_replaced_client_leaves_its_rooms() {
    let server = TestServer::start().await;
    let mut a = server.client("a").await;
    let b = server.client("b").await;
    let mut c = server.client("c").await;
    for (x, name) in [(&mut a, "r1"), (&mut c, "r1")] {
        x.request("room::enter", json!({"roomId": name})).await;
    }
    let mut b = b;
    b.request("room::enter", json!({"roomId": "r1"})).await;
    b.request("room::enter", json!({"roomId": "r2"})).await;
    c.request("room::enter", json!({"roomId": "r2"})).await;
    assert_eq!(
        server
            .parts()
            .rooms
            .media_stats("r1")
            .await
            .unwrap()
            .members,
        3
    );
    b.vanish();
    let left = a.expect("room::leave").await;
    assert_eq!(
        (
            left["body"]["clientId"].as_str(),
            left["body"]["reason"].as_str()
        ),
        (Some("b"), Some("disconnected"))
    );
    // c was with b in both rooms: told twice, once per room.
    let mut rooms = vec![];
    for _ in 0..2 {
        let m = c.expect("room::leave").await;
        rooms.push(m["body"]["roomId"].as_str().unwrap().to_owned());
    }
    rooms.sort();
    assert_eq!(rooms, ["r1", "r2"]);
    assert_eq!(
        server
            .parts()
            .rooms
            .media_stats("r1")
            .await
            .unwrap()
            .members,
        2
    );

    // The same id registering again replaces the connection: the old one's memberships end.
    let _a2 = server.client("a").await;
    let left = c.expect("room::leave").await;
    assert_eq!(left["body"]["clientId"], "a");
    let members = c
        .request("room::client::list", json!({"roomId": "r1"}))
        .await;
    assert_eq!(ids(&members["body"]["clients"]), ["c"]);
    server.stop().await;
}

#[tokio::test]
async fn an_empty_room_closes_after_the_timeout() {
    let server = TestServer::with(|c| c.rooms.empty_room_timeout_ms = 200).await;
    let mut a = server.client("a").await;
    a.request("room::enter", json!({"roomId": "brief"})).await;
    a.request("room::create", json!({"name": "never-entered"}))
        .await;
    assert_eq!(server.parts().rooms.room_count(), 2);
    a.request("room::leave", json!({"roomId": "brief"})).await;
    tokio::time::sleep(Duration::from_millis(600)).await;
    assert_eq!(server.parts().rooms.room_count(), 0);
    assert_eq!(
        a.request("room::status", json!({"roomId": "brief"})).await["code"],
        "3404"
    );
    // Entering again makes it anew.
    assert_eq!(
        a.request("room::enter", json!({"roomId": "brief"})).await["code"],
        "0000"
    );
    server.stop().await;
}

#[tokio::test]
async fn architecture_choice_follows_config() {
    let server = TestServer::with(|c| {
        c.rooms.named.push(taoyao_meeting::NamedRoom {
            name: "lobby".into(),
            architecture: Some(taoyao_webrtc::ArchitectureKind::Mesh),
            mode: None,
            password: Some("lobbypw".into()),
            max_members: Some(2),
        });
    })
    .await;
    let mut a = server.client("a").await;
    for arch in ["mesh", "sfu", "mcu"] {
        let r = a
            .request(
                "room::create",
                json!({"name": format!("x-{arch}"), "architecture": arch}),
            )
            .await;
        assert_eq!(r["body"]["architecture"], arch, "{r}");
    }
    assert_eq!(
        a.request("room::create", json!({"name": "x", "architecture": "p2p"}))
            .await["code"],
        "3400"
    );
    assert_eq!(
        a.request("room::create", json!({"name": "x", "architecture": "mesh"}))
            .await["code"],
        "0000"
    );
    assert_eq!(a.request("room::create", json!({})).await["code"], "3400");
    // The named room brings its password and member limit, whoever makes it.
    let r = a.request("room::enter", json!({"roomId": "lobby"})).await;
    assert_eq!(r["body"]["hasPassword"], true);
    let mut b = server.client("b").await;
    let mut c = server.client("c").await;
    assert_eq!(
        b.request("room::enter", json!({"roomId": "lobby"})).await["code"],
        "3403"
    );
    assert_eq!(
        b.request(
            "room::enter",
            json!({"roomId": "lobby", "password": "lobbypw"})
        )
        .await["code"],
        "0000"
    );
    let full = c
        .request(
            "room::enter",
            json!({"roomId": "lobby", "password": "lobbypw"}),
        )
        .await;
    assert_eq!(full["code"], "3403");
    assert!(full["message"].as_str().unwrap().contains("full"));
    server.stop().await;

    let server = TestServer::with(|c| c.rooms.client_may_choose_architecture = false).await;
    let mut a = server.client("a").await;
    assert_eq!(
        a.request("room::create", json!({"name": "x", "architecture": "mesh"}))
            .await["code"],
        "3403"
    );
    assert_eq!(
        a.request("room::create", json!({"name": "x"})).await["code"],
        "0000"
    );
    server.stop().await;
}

#[tokio::test]
async fn room_and_member_limits() {
    let server = TestServer::with(|c| c.rooms.max_rooms = 2).await;
    let mut a = server.client("a").await;
    assert_eq!(
        a.request("room::create", json!({"name": "1"})).await["code"],
        "0000"
    );
    assert_eq!(
        a.request("room::enter", json!({"roomId": "2"})).await["code"],
        "0000"
    );
    let r = a.request("room::create", json!({"name": "3"})).await;
    assert_eq!(r["code"], "3403");
    assert!(
        r["message"]
            .as_str()
            .unwrap()
            .contains("maximum of 2 rooms")
    );
    server.stop().await;
}
