//! Tokens, grants, rate limits, connection caps, TLS.

mod common;

use std::time::Duration;

use common::{TestClient, TestServer};
use serde_json::json;
use taoyao_signal::{Claims, Grants, issue_token};

const SECRET: &str = "0123456789abcdef0123456789abcdef";

fn token(sub: &str, exp_in: i64, grants: Grants, jti: Option<&str>) -> String {
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs() as i64;
    let claims = Claims {
        sub: sub.into(),
        name: Some(format!("Token {sub}")),
        exp: (now + exp_in) as u64,
        iat: None,
        jti: jti.map(Into::into),
        grants,
    };
    issue_token(SECRET, &claims).unwrap()
}

async fn token_server() -> TestServer {
    TestServer::with(|c| {
        c.auth.users.clear();
        c.auth.token_secret = Some(SECRET.into());
        c.auth.token_leeway_s = 0;
    })
    .await
}

#[tokio::test]
async fn with_tokens_identity_comes_from_the_token() {
    let server = token_server().await;
    let mut c = server.connect().await;
    let r = c
        .request(
            "client::register",
            json!({"token": token("alice", 60, Grants::default(), None), "name": "A"}),
        )
        .await;
    assert_eq!(r["code"], "0000", "{r}");
    assert_eq!(r["body"]["clientId"], "alice");
    assert_eq!(r["body"]["grants"]["publish"], true);

    let mut c = server.connect().await;
    let r = c
        .request("client::register", json!({"clientId": "bob"}))
        .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("3401"), Some("a token is required"))
    );
    let r = c
        .request(
            "client::register",
            json!({"clientId": "mallory", "token": token("bob", 60, Grants::default(), None)}),
        )
        .await;
    assert_eq!(
        r["code"], "3401",
        "a body clientId that differs from the token: {r}"
    );
    let r = c
        .request(
            "client::register",
            json!({"token": token("bob", -5, Grants::default(), None)}),
        )
        .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("1003"), Some("token expired"))
    );
    let forged = issue_token(
        "ffffffffffffffffffffffffffffffff",
        &Claims {
            sub: "bob".into(),
            name: None,
            exp: 4_000_000_000,
            iat: None,
            jti: None,
            grants: Grants::default(),
        },
    )
    .unwrap();
    let r = c
        .request("client::register", json!({"token": forged}))
        .await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("1003"), Some("token signature is wrong"))
    );
    let r = c.request("client::register", json!({"token": 42})).await;
    assert_eq!(r["code"], "3400");
    let r = c
        .request(
            "client::register",
            json!({"username": "taoyao", "password": "taoyao", "clientId": "x"}),
        )
        .await;
    assert_eq!(
        r["code"], "3401",
        "password login is off unless users are configured"
    );

    // A single-use token cannot be replayed.
    let once = token("carol", 60, Grants::default(), Some("jti-1"));
    assert_eq!(
        c.request("client::register", json!({"token": once})).await["code"],
        "0000"
    );
    let mut d = server.connect().await;
    let r = d.request("client::register", json!({"token": once})).await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("1003"), Some("token already used (jti)"))
    );
    server.stop().await;
}

#[tokio::test]
async fn room_grants_are_enforced() {
    let server = token_server().await;
    let mut c = server.connect().await;
    let grants = Grants {
        rooms: Some(vec!["allowed".into()]),
        ..Grants::default()
    };
    assert_eq!(
        c.request(
            "client::register",
            json!({"token": token("t", 60, grants, None)})
        )
        .await["code"],
        "0000"
    );
    assert_eq!(
        c.request("room::enter", json!({"roomId": "allowed"})).await["code"],
        "0000"
    );
    let r = c.request("room::enter", json!({"roomId": "other"})).await;
    assert_eq!(
        (r["code"].as_str(), r["message"].as_str()),
        (Some("3403"), Some("not granted: room other"))
    );
    assert_eq!(
        c.request("room::create", json!({"name": "other"})).await["code"],
        "3403"
    );
    server.stop().await;
}

#[tokio::test]
async fn messages_over_the_rate_are_refused_and_sustained_abuse_is_closed() {
    let server = TestServer::with(|c| {
        c.signal.rate_per_sec = 2;
        c.signal.rate_burst = 5;
        c.signal.rate_close_after = 10;
    })
    .await;
    let mut other = server.client("other").await;
    let mut c = server.client("flood").await;
    // register + config used one token; flood well past the burst.
    let mut ids = vec![];
    for _ in 0..30 {
        ids.push(c.send("client::heartbeat", json!({})).await);
    }
    let frame = c.expect_close().await.expect("a close frame");
    assert_eq!(u16::from(frame.code), 1008);
    let refused = c
        .kept()
        .iter()
        .filter(|m| {
            m["code"] == "3403" && m["message"].as_str().unwrap_or("").contains("rate limited")
        })
        .count();
    assert!(refused >= 9, "refused {refused}: {:?}", c.kept());
    let answered = c
        .kept()
        .iter()
        .filter(|m| m["code"] == "0000" && m["header"]["signal"] == "client::heartbeat")
        .count();
    assert!(
        (3..=5).contains(&answered),
        "the burst is answered: {answered}"
    );
    // Nobody else is affected.
    assert_eq!(
        other.request("client::status", json!({})).await["code"],
        "0000"
    );
    server.stop().await;
}

#[tokio::test]
async fn connections_over_the_cap_are_refused() {
    let server = TestServer::with(|c| c.signal.max_connections = 2).await;
    let _a = server.client("a").await;
    let _b = server.connect().await;
    let third = tokio_tungstenite::connect_async(server.url()).await;
    match third {
        Err(tokio_tungstenite::tungstenite::Error::Http(resp)) => assert_eq!(resp.status(), 503),
        other => panic!("expected HTTP 503, got {:?}", other.map(|_| ())),
    }
    server.stop().await;
}

#[tokio::test]
async fn wss_with_the_generated_certificate() {
    let (_dir, certs, server) = TestServer::tls_with(|_| {}).await;
    let mut c = TestClient::connect_tls(&server, &certs.ca_cert).await;
    assert_eq!(c.register("secure").await["code"], "0000");
    // Plain ws to the TLS listener does not work.
    let plain = tokio::time::timeout(
        Duration::from_secs(5),
        tokio_tungstenite::connect_async(server.url()),
    )
    .await
    .unwrap();
    assert!(plain.is_err());
    server.stop().await;
}

#[tokio::test]
async fn a_missing_certificate_is_a_clear_error_at_start() {
    let mut cfg = taoyao_server::Config::default();
    cfg.server.listen = "127.0.0.1:0".parse().unwrap();
    cfg.server.tls.cert = Some("/nonexistent/server.pem".into());
    cfg.server.tls.key = Some("/nonexistent/server-key.pem".into());
    let err = taoyao_server::start(cfg, taoyao_boot::Shutdown::new())
        .await
        .err()
        .expect("refuses to start");
    let msg = err.to_string();
    assert!(
        msg.contains("cannot read TLS certificate /nonexistent/server.pem"),
        "{msg}"
    );
}
