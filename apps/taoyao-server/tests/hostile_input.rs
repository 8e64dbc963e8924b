//! Sixty-odd malformed or hostile inputs, each answered with its exact code, while a call in
//! another room keeps its media flowing the whole time.

mod common;

use std::sync::Arc;
use std::time::Duration;

use common::{TestClient, TestServer, envelope};
use serde_json::{Value, json};
use taoyao_bench::media::{MediaSpec, TestMedia};
use taoyao_bench::member::Member;
use taoyao_bench::peer::PeerOptions;
use taoyao_signal::{Claims, Grants, issue_token};
use tokio_tungstenite::tungstenite::Message as Ws;

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(sub: &str, exp: u64, secret: &str, jti: Option<&str>) -> String {
    issue_token(
        secret,
        &Claims {
            sub: sub.into(),
            name: None,
            exp,
            iat: None,
            jti: jti.map(Into::into),
            grants: Grants::default(),
        },
    )
    .unwrap()
}

fn now() -> u64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs()
}

/// Sends one raw frame and returns the first message that answers it: a response with `id`, or
/// a platform::error.
async fn answer_to_raw(c: &mut TestClient, text: &str, id: Option<u64>) -> Value {
    c.send_text(text).await;
    loop {
        let m = c.recv().await;
        let is_answer = m.get("code").is_some()
            && (m["header"]["signal"] == "platform::error"
                || id.is_some_and(|id| m["header"]["id"] == id));
        if is_answer {
            return m;
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn hostile_inputs_get_exact_codes_and_a_call_elsewhere_keeps_flowing() {
    let server = TestServer::with(|c| {
        c.auth.token_secret = Some(SECRET.into());
        c.auth.token_leeway_s = 0;
        c.signal.rate_per_sec = 1000;
        c.signal.rate_burst = 1000;
    })
    .await;

    // The call that must not notice anything: a publishes to b in an sfu room.
    let media_dir = std::path::Path::new(env!("CARGO_TARGET_TMPDIR")).join("media");
    let media = Arc::new(TestMedia::make(&media_dir, &MediaSpec::default()).unwrap());
    let reg = |id: &str| json!({"clientId": id, "username": "taoyao", "password": "taoyao"});
    let a = Member::connect(&server.url(), reg("a"), PeerOptions::default())
        .await
        .unwrap();
    let b = Member::connect(&server.url(), reg("b"), PeerOptions::default())
        .await
        .unwrap();
    a.enter_with(json!({"roomId": "call", "architecture": "sfu", "subscribe": "none"}))
        .await
        .unwrap();
    b.enter_with(json!({"roomId": "call", "subscribe": "all"}))
        .await
        .unwrap();
    a.publish(media, true, true).await.unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    while b
        .sub()
        .received
        .find("a", true)
        .is_none_or(|t| t.packets() == 0)
    {
        assert!(
            std::time::Instant::now() < deadline,
            "the call never started"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let video = b.sub().received.find("a", true).unwrap();
    let stream_id = b
        .note(Duration::from_secs(5), |n| {
            n["header"]["signal"] == "media::publish" && n["body"]["kind"] == "video"
        })
        .await
        .unwrap()["body"]["streamId"]
        .clone();
    let packets_before = video.packets();
    let attack_started = std::time::Instant::now();

    // The attacker: registered, in rooms of its own (one mesh, one sfu).
    let mut x = server.client("mallory").await;
    assert_eq!(
        x.request(
            "room::enter",
            json!({"roomId": "own-mesh", "architecture": "mesh"})
        )
        .await["code"],
        "0000"
    );
    assert_eq!(
        x.request(
            "room::enter",
            json!({"roomId": "own-sfu", "architecture": "sfu", "subscribe": "none"})
        )
        .await["code"],
        "0000"
    );
    let deep = format!("{}1{}", "[".repeat(300), "]".repeat(300));
    let huge = "x".repeat(60_000);

    // Raw frames answered with platform::error 1002 (id echoed where it could be read).
    let raw: Vec<String> = vec![
        "not json".into(),
        "".into(),
        "null".into(),
        "123".into(),
        "\"a string\"".into(),
        "[]".into(),
        "{}".into(),
        r#"{"header":null}"#.into(),
        r#"{"header":[]}"#.into(),
        r#"{"header":{"v":"1.0.0","id":-5,"signal":"client::list"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":1e20,"signal":"client::list"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":9007199254740993,"signal":"client::list"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":"7","signal":"client::list"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":true,"signal":"client::list"}}"#.into(),
        r#"{"header":{"id":8,"signal":"client::list"}}"#.into(),
        r#"{"header":{"v":123,"id":9,"signal":"client::list"}}"#.into(),
        format!(
            r#"{{"header":{{"v":"{}","id":10,"signal":"client::list"}}}}"#,
            "v".repeat(100)
        ),
        r#"{"header":{"v":"1.0.0","id":11}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":12,"signal":42}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":13,"signal":""}}"#.into(),
        format!(
            r#"{{"header":{{"v":"1.0.0","id":14,"signal":"{}"}}}}"#,
            "a".repeat(200)
        ),
        r#"{"header":{"v":"1.0.0","id":15,"signal":"client::list::"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":16,"signal":"client list"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":17,"signal":"客户端::列表"}}"#.into(),
        r#"{"header":{"v":"1.0.0","id":18,"signal":"client::list"},"body":[]}"#.into(),
        r#"{"header":{"v":"1.0.0","id":19,"signal":"client::list"},"body":"str"}"#.into(),
        r#"{"header":{"v":"1.0.0","id":20,"signal":"client::list"},"body":5}"#.into(),
        r#"{"code":0,"header":{"v":"1.0.0","id":21,"signal":"client::list"}}"#.into(),
        r#"{"message":{},"header":{"v":"1.0.0","id":22,"signal":"client::list"}}"#.into(),
        format!(
            r#"{{"header":{{"v":"1.0.0","id":23,"signal":"client::list"}},"body":{{"a":{deep}}}}}"#
        ),
    ];
    let mut checked = 0;
    for text in &raw {
        let m = answer_to_raw(&mut x, text, None).await;
        assert_eq!(
            (m["header"]["signal"].as_str(), m["code"].as_str()),
            (Some("platform::error"), Some("1002")),
            "{text:.80}: {m}"
        );
        checked += 1;
    }
    x.send_raw(Ws::binary(vec![0u8, 159, 146, 150])).await;
    let m = x.expect("platform::error").await;
    assert_eq!(m["code"], "1002");
    checked += 1;

    // Well-formed requests that must be refused with a precise code.
    let cand = json!({"candidate": "candidate:1 1 udp 1 127.0.0.1 9 typ host", "sdpMid": "0", "sdpMLineIndex": 0});
    let cases: Vec<(&str, Value, &str)> = vec![
        ("nosuch::signal", json!({}), "3415"),
        ("platform::script", json!({"script": "rm -rf /"}), "3415"),
        ("system::reboot", json!({}), "3415"),
        ("system::shutdown", json!({}), "3415"),
        (
            "client::register",
            json!({"clientId": "again", "username": "taoyao", "password": "taoyao"}),
            "3400",
        ),
        ("client::unicast", json!({"to": "ghost"}), "3404"),
        ("client::unicast", json!({"to": 123}), "3400"),
        ("client::status", json!({"clientId": []}), "3400"),
        ("client::list", json!({"clientType": "TOASTER"}), "3400"),
        ("room::enter", json!({"roomId": huge}), "3400"),
        ("room::enter", json!({"roomId": {}}), "3400"),
        ("room::enter", json!({"roomId": "bell\u{7}"}), "3400"),
        ("room::enter", json!({"roomId": 1e308}), "3400"),
        (
            "room::enter",
            json!({"roomId": "x", "subscribe": "everything"}),
            "3400",
        ),
        ("room::create", json!({}), "3400"),
        (
            "room::create",
            json!({"name": "q", "architecture": "quantum"}),
            "3400",
        ),
        ("room::create", json!({"name": "q", "password": ""}), "3400"),
        ("room::leave", json!({"roomId": "call"}), "3403"),
        ("room::status", json!({"roomId": "call"}), "3403"),
        ("room::status", json!({"roomId": "nowhere"}), "3404"),
        ("room::close", json!({"roomId": "call"}), "3403"),
        (
            "room::expel",
            json!({"roomId": "call", "clientId": "a"}),
            "3403",
        ),
        (
            "room::invite",
            json!({"roomId": "call", "clientId": "mallory"}),
            "3403",
        ),
        (
            "room::broadcast",
            json!({"roomId": "call", "spam": true}),
            "3403",
        ),
        ("room::client::list", json!({"roomId": "call"}), "3403"),
        (
            "media::exchange",
            json!({"roomId": "call", "transport": "publish", "type": "offer", "sdp": common::sdp("sendrecv")}),
            "3403",
        ),
        (
            "media::subscribe",
            json!({"roomId": "call", "streamId": stream_id}),
            "3403",
        ),
        (
            "media::publish",
            json!({"roomId": "call", "sdp": common::sdp("sendonly")}),
            "3403",
        ),
        (
            "media::pause",
            json!({"roomId": "call", "streamId": stream_id}),
            "3403",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-mesh", "to": "a", "type": "candidate", "candidate": cand}),
            "3404",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-mesh", "to": "ghost", "type": "offer", "sdp": common::sdp("sendrecv")}),
            "3404",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-mesh", "to": "a", "type": "offer", "sdp": "v=0\r\nm=garbage\r\n"}),
            "3400",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-sfu", "transport": "publish", "type": "offer", "sdp": "\u{0}\u{1}\u{2}"}),
            "3400",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-sfu", "transport": "subscribe", "type": "answer", "sdp": common::sdp("recvonly")}),
            "3400",
        ),
        (
            "media::exchange",
            json!({"roomId": "own-sfu", "transport": "publish", "type": "candidate", "candidate": cand}),
            "3400",
        ),
        (
            "media::subscribe",
            json!({"roomId": "own-sfu", "clientId": "mallory"}),
            "3400",
        ),
        (
            "media::subscribe",
            json!({"roomId": "own-sfu", "streamId": "ghost:video0"}),
            "3404",
        ),
        ("media::subscribe", json!({"roomId": "own-mesh"}), "3400"),
        (
            "session::exchange",
            json!({"sessionId": "nope", "type": "offer", "sdp": "v=0"}),
            "3404",
        ),
        ("session::call", json!({"clientId": "mallory"}), "3400"),
        ("session::close", json!({"sessionId": 5}), "3400"),
    ];
    for (signal, body, code) in &cases {
        let r = x.request(signal, body.clone()).await;
        assert_eq!(r["code"], *code, "{signal} {body:.100}: {r}");
        assert!(
            !r["message"].as_str().unwrap_or("").is_empty(),
            "{signal}: a readable message"
        );
        checked += 1;
    }
    // Signals out of order: leave twice.
    assert_eq!(
        x.request("room::leave", json!({"roomId": "own-mesh"}))
            .await["code"],
        "0000"
    );
    // The emptied room lingers for rooms.empty_room_timeout_ms: leaving again is "not a member".
    assert_eq!(
        x.request("room::leave", json!({"roomId": "own-mesh"}))
            .await["code"],
        "3403"
    );
    checked += 1;

    // New connections: credentials and transport abuse.
    let register = |body: Value| envelope(1, "client::register", body);
    let auth_cases: Vec<(String, &str)> = vec![
        (
            register(json!({"token": token("t1", now() - 10, SECRET, None)})),
            "1003",
        ),
        (
            register(
                json!({"token": token("t2", now() + 60, "ffffffffffffffffffffffffffffffff", None)}),
            ),
            "1003",
        ),
        (register(json!({"token": "a.b.c"})), "1003"),
        (
            register(json!({"clientId": "p", "username": "taoyao", "password": "wrong"})),
            "3401",
        ),
        (register(json!({"clientId": "p"})), "3401"),
        (
            envelope(1, "room::enter", json!({"roomId": "call"})),
            "3401",
        ),
    ];
    for (text, code) in &auth_cases {
        let mut c = server.connect().await;
        let m = answer_to_raw(&mut c, text, Some(1)).await;
        assert_eq!(m["code"], *code, "{text:.100}: {m}");
        checked += 1;
    }
    let once = token("once", now() + 60, SECRET, Some("j-1"));
    let mut c = server.connect().await;
    assert_eq!(
        answer_to_raw(&mut c, &register(json!({"token": once})), Some(1)).await["code"],
        "0000"
    );
    let mut c2 = server.connect().await;
    assert_eq!(
        answer_to_raw(&mut c2, &register(json!({"token": once})), Some(1)).await["code"],
        "1003",
        "a replayed token"
    );
    checked += 1;

    let mut c = server.client("utf8").await;
    let bad = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0xc3, 0x28],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    c.send_raw(Ws::Frame(bad)).await;
    assert_eq!(u16::from(c.expect_close().await.unwrap().code), 1007);
    checked += 1;
    let mut c = server.client("big").await;
    c.send_text(&"x".repeat(70_000)).await;
    assert_eq!(u16::from(c.expect_close().await.unwrap().code), 1009);
    checked += 1;
    assert!(checked >= 60, "{checked} inputs checked");

    // The attacker is still connected and served; the call never stopped.
    assert_eq!(x.request("client::status", json!({})).await["code"], "0000");
    let attack = attack_started.elapsed();
    let during = video.packets();
    tokio::time::sleep(Duration::from_millis(500)).await;
    assert!(
        video.packets() > during + 10,
        "video flows after the attack"
    );
    let window: Vec<_> = video
        .log()
        .into_iter()
        .filter(|p| p.at >= attack_started)
        .collect();
    let longest = window
        .windows(2)
        .map(|w| w[1].at.duration_since(w[0].at))
        .max()
        .unwrap_or_default();
    assert!(
        longest < Duration::from_millis(300),
        "the call's video stalled for {longest:?} during the attack ({attack:?})"
    );
    eprintln!(
        "{checked} hostile inputs in {attack:?}, each answered with its code; call video {packets_before} -> {} packets, longest gap {longest:?}",
        video.packets()
    );
    a.close_peers().await;
    b.close_peers().await;
    server.stop().await;
}
