//! A signaling-only service on taoyao-signal: the `client::` signals every taoyao server
//! answers, plus a signal group of its own (`echo::say`), with no rooms and no media.
//!
//! ```sh
//! cargo run -p taoyao-signal --example signal_only -- 127.0.0.1:9000
//! ```
//! Then connect a WebSocket to `ws://127.0.0.1:9000/websocket.signal`, send
//! `{"header":{"v":"1.0.0","id":1,"signal":"client::register"},"body":{"clientId":"me"}}` and
//! `{"header":{"v":"1.0.0","id":2,"signal":"echo::say"},"body":{"text":"hi"}}`. Ctrl-C stops it
//! (clients are told with `client::close`).

use std::net::SocketAddr;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::json;
use taoyao_boot::Shutdown;
use taoyao_signal::fields::required_str;
use taoyao_signal::{
    AuthConfig, Reply, Request, SignalConfig, SignalError, SignalHandler, SignalHub, WEBSOCKET_PATH,
};

/// `echo::say {text}`: answers with the text and who sent it; `echo::all {text}` also tells
/// every other client.
struct Echo;

#[async_trait]
impl SignalHandler for Echo {
    fn signals(&self) -> Vec<&'static str> {
        vec!["echo::say", "echo::all"]
    }

    async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
        let text = required_str(&req.message.body, "text")?;
        let body = json!({"text": text, "from": req.client.id()});
        if req.message.signal() == "echo::all" {
            let told = req
                .hub
                .broadcast("echo::all", body.clone(), Some(req.client.id()));
            return Ok(Reply::Body(json!({"told": told})));
        }
        Ok(Reply::Body(body))
    }
}

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:9000".to_owned());
    let shutdown = Shutdown::new();
    // No users and no token secret: anyone may register under any client id.
    let auth = AuthConfig {
        users: Vec::new(),
        ..AuthConfig::default()
    };
    let hub = SignalHub::builder(SignalConfig::default(), auth, shutdown.clone())
        .handler(Arc::new(Echo))
        .build()?;
    let listener = tokio::net::TcpListener::bind(&addr).await?;
    println!(
        "signaling on ws://{}{WEBSOCKET_PATH}",
        listener.local_addr()?
    );
    let stop = shutdown.clone();
    tokio::spawn(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.trigger();
    });
    let service = hub
        .router()
        .into_make_service_with_connect_info::<SocketAddr>();
    let stopping = shutdown.clone();
    axum::serve(listener, service)
        .with_graceful_shutdown(async move { stopping.triggered().await })
        .await?;
    // Sessions tell their clients and close; wait for them a moment.
    shutdown.drained(std::time::Duration::from_secs(2)).await;
    Ok(())
}
