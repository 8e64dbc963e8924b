//! Bad input gets a clear code; the connection stays usable unless it cannot be; nobody else
//! is affected.

mod common;

use common::{TestServer, envelope};
use std::time::Duration;

use serde_json::{Value, json};
use tokio_tungstenite::tungstenite::Message as Ws;

#[tokio::test]
async fn malformed_messages_get_1002_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut c = server.client("c").await;
    let cases = [
        ("not json at all", None, "not valid JSON"),
        ("[1,2,3]", None, "JSON object"),
        (r#"{"body":{}}"#, None, "missing header"),
        (
            r#"{"header":{"v":"1.0.0","signal":"client::list"}}"#,
            None,
            "missing header.id",
        ),
        (
            r#"{"header":{"id":77,"signal":"client::list"}}"#,
            Some(77),
            "missing header.v",
        ),
        (
            r#"{"header":{"v":"1.0.0","id":78}}"#,
            Some(78),
            "missing header.signal",
        ),
        (
            r#"{"header":{"v":"1.0.0","id":79,"signal":"client::list"},"body":"x"}"#,
            Some(79),
            "body",
        ),
        (
            r#"{"header":{"v":"1.0.0","id":"80","signal":"client::list"}}"#,
            None,
            "number",
        ),
    ];
    for (text, id, reason) in cases {
        c.send_text(text).await;
        let m = c.expect("platform::error").await;
        assert_eq!(m["code"], "1002", "{text}: {m}");
        assert!(
            m["message"].as_str().unwrap().contains(reason),
            "{text}: {m}"
        );
        if let Some(id) = id {
            assert_eq!(
                m["header"]["id"], id,
                "the error answers the id it could read"
            );
        }
    }
    // Still registered and working.
    let r = c.request("client::status", json!({})).await;
    assert_eq!(r["code"], "0000");
    server.stop().await;
}

#[tokio::test]
async fn unknown_signal_is_3415_with_the_request_id() {
    let server = TestServer::start().await;
    let mut c = server.client("c").await;
    let r = c.request("nosuch::signal", json!({})).await;
    assert_eq!(r["code"], "3415");
    assert_eq!(r["header"]["signal"], "nosuch::signal");
    assert!(r["message"].as_str().unwrap().contains("nosuch::signal"));
    // taoyao's remote shell signals do not exist here.
    for s in ["platform::script", "system::reboot", "system::shutdown"] {
        assert_eq!(c.request(s, json!({})).await["code"], "3415", "{s}");
    }
    server.stop().await;
}

#[tokio::test]
async fn signals_before_register_are_3401() {
    let server = TestServer::start().await;
    let mut c = server.connect().await;
    for s in [
        "client::list",
        "client::heartbeat",
        "client::broadcast",
        "nosuch::signal",
    ] {
        let r = c.request(s, json!({})).await;
        assert_eq!(r["code"], "3401", "{s}: {r}");
        assert_eq!(r["header"]["signal"], s);
    }
    assert_eq!(c.register("late").await["code"], "0000");
    server.stop().await;
}

#[tokio::test]
async fn binary_frames_get_an_error_and_the_connection_stays_open() {
    let server = TestServer::start().await;
    let mut c = server.client("c").await;
    c.send_raw(Ws::binary(vec![1u8, 2, 3])).await;
    let m = c.expect("platform::error").await;
    assert_eq!(m["code"], "1002");
    assert!(m["message"].as_str().unwrap().contains("binary"));
    assert_eq!(c.request("client::status", json!({})).await["code"], "0000");
    server.stop().await;
}

#[tokio::test]
async fn oversize_frame_gets_an_error_and_close_1009_without_touching_others() {
    let server = TestServer::with(|c| c.signal.max_message_bytes = 4096).await;
    let mut other = server.client("other").await;
    let mut c = server.client("big").await;
    let big = envelope(5, "client::broadcast", json!({"pad": "x".repeat(5000)}));
    c.send_text(&big).await;
    let frame = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1009);
    let err = c
        .kept()
        .iter()
        .find(|m| m["header"]["signal"] == "platform::error")
        .cloned();
    let err = err.expect("an error message before the close");
    assert!(err["message"].as_str().unwrap().contains("4096"), "{err}");
    // The oversize broadcast never reached anyone; the other client is fine.
    other
        .expect_none("client::broadcast", std::time::Duration::from_millis(200))
        .await;
    assert_eq!(
        other.request("client::status", json!({})).await["code"],
        "0000"
    );
    server.stop().await;
}

#[tokio::test]
async fn eight_mib_frame_gets_close_1009_unread_and_others_are_served() {
    use futures_util::{SinkExt, StreamExt};
    let server = TestServer::start().await;
    let mut other = server.client("other").await;
    let (ws, _) = tokio_tungstenite::connect_async(server.url())
        .await
        .unwrap();
    let (mut sink, mut stream) = ws.split();
    let register = envelope(
        1,
        "client::register",
        json!({"clientId": "big", "username": "taoyao", "password": "taoyao"}),
    );
    sink.send(Ws::text(register)).await.unwrap();
    // 8 MiB against the default 64 KiB limit: far over what the server reads of a message
    // (4x the limit), so it stops at the frame header. The client keeps sending while it reads,
    // as a browser does.
    let big = envelope(2, "client::broadcast", json!({"pad": "x".repeat(8 << 20)}));
    let sending = tokio::spawn(async move {
        let _ = sink.send(Ws::text(big)).await;
        sink
    });
    let mut seen = Vec::new();
    let close = tokio::time::timeout(Duration::from_secs(10), async {
        loop {
            match stream.next().await {
                Some(Ok(Ws::Text(t))) => seen.push(serde_json::from_str::<Value>(&t).unwrap()),
                Some(Ok(Ws::Close(f))) => return f,
                Some(Ok(_)) => {}
                other => panic!("the connection ended without a close frame: {other:?}"),
            }
        }
    })
    .await
    .expect("a close frame in time")
    .expect("a close frame with a code");
    assert_eq!(u16::from(close.code), 1009, "{close:?}");
    let err = seen
        .iter()
        .find(|m| m["header"]["signal"] == "platform::error")
        .expect("an error message before the close");
    assert_eq!(err["code"], "1002");
    assert!(err["message"].as_str().unwrap().contains("65536"), "{err}");
    sending.abort();
    // The server serves the others, old and new, and never broadcast the oversize message.
    other
        .expect_none("client::broadcast", Duration::from_millis(200))
        .await;
    assert_eq!(
        other.request("client::status", json!({})).await["code"],
        "0000"
    );
    let mut newcomer = server.client("newcomer").await;
    assert_eq!(
        newcomer.request("client::list", json!({})).await["code"],
        "0000"
    );
    server.stop().await;
}

#[tokio::test]
async fn invalid_utf8_text_is_refused_with_1007() {
    let server = TestServer::start().await;
    let mut c = server.client("c").await;
    // A text frame whose payload is not UTF-8 (sent raw, bypassing the client's own check).
    let frame = tokio_tungstenite::tungstenite::protocol::frame::Frame::message(
        vec![0xff, 0xfe, 0x00],
        tokio_tungstenite::tungstenite::protocol::frame::coding::OpCode::Data(
            tokio_tungstenite::tungstenite::protocol::frame::coding::Data::Text,
        ),
        true,
    );
    c.send_raw(Ws::Frame(frame)).await;
    let close = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(close.code), 1007);
    server.stop().await;
}
