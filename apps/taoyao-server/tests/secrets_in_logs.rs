//! Passwords and tokens never reach the logs, even at trace level.

mod common;

use std::io::Write;
use std::sync::{Arc, Mutex};

use common::TestServer;
use serde_json::json;

#[derive(Clone, Default)]
struct Capture(Arc<Mutex<Vec<u8>>>);

impl Write for Capture {
    fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(b);
        Ok(b.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn secrets_stay_out_of_the_logs() {
    let capture = Capture::default();
    let writer = capture.clone();
    // The server's own filter at the most verbose level a user can ask for.
    tracing_subscriber::fmt()
        .with_env_filter(taoyao_boot::log::filter(
            "trace,tungstenite=trace,hyper=trace",
        ))
        .with_writer(move || writer.clone())
        .init();
    let secret = "0123456789abcdef0123456789abcdef";
    let server = TestServer::with(|c| {
        c.auth.users[0].password = "Pa55-w0rd-XYZ".into();
        c.auth.token_secret = Some(secret.into());
    })
    .await;
    let token = taoyao_signal::issue_token(
        secret,
        &taoyao_signal::Claims {
            sub: "tok".into(),
            name: None,
            exp: 4_000_000_000,
            iat: None,
            jti: None,
            grants: Default::default(),
        },
    )
    .unwrap();
    let mut a = server.connect().await;
    assert_eq!(
        a.request(
            "client::register",
            json!({"clientId": "a", "username": "taoyao", "password": "Pa55-w0rd-XYZ"})
        )
        .await["code"],
        "0000"
    );
    let mut b = server.connect().await;
    assert_eq!(
        b.request("client::register", json!({"token": token})).await["code"],
        "0000"
    );
    let mut c = server.connect().await;
    assert_eq!(
        c.request(
            "client::register",
            json!({"clientId": "c", "username": "taoyao", "password": "wrong-Secret-123"})
        )
        .await["code"],
        "3401"
    );
    a.request(
        "room::enter",
        json!({"roomId": "r", "password": "RoomPass-777"}),
    )
    .await;
    tracing::debug!(config = ?server.parts().hub.config(), "the test logs the signal config too");
    server.stop().await;
    let logs = String::from_utf8(capture.0.lock().unwrap().clone()).unwrap();
    assert!(
        logs.contains("client registered"),
        "the capture works: {logs}"
    );
    for s in [
        "Pa55-w0rd-XYZ",
        "wrong-Secret-123",
        "RoomPass-777",
        secret,
        token.as_str(),
    ] {
        let lines: Vec<&str> = logs.lines().filter(|l| l.contains(s)).collect();
        assert!(lines.is_empty(), "{s} leaked into the logs: {lines:#?}");
    }
}
