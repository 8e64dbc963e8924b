//! The session driven over channels (no socket, no HTTP), with tokio's clock paused so the
//! register and heartbeat timeouts pass in no real time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use async_trait::async_trait;
use axum::extract::ws::Message as WsMessage;
use serde_json::{Value, json};
use taoyao_boot::Shutdown;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;
use tokio_util::sync::PollSender;

use crate::config::{AuthConfig, SignalConfig};
use crate::error::SignalError;
use crate::hub::{Reply, Request, SignalHandler, SignalHub};
use crate::presence::PresenceMode;
use crate::signals::close;

/// Answers `test::slow` after `ms` of (paused) time, so requests of one connection can be
/// seen to be handled in order.
struct Slow;

#[async_trait]
impl SignalHandler for Slow {
    fn signals(&self) -> Vec<&'static str> {
        vec!["test::slow"]
    }
    async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
        let ms = req.message.body["ms"].as_u64().unwrap_or(0);
        tokio::time::sleep(Duration::from_millis(ms)).await;
        if req.message.body["fail"].as_bool() == Some(true) {
            return Err(SignalError::bad_request("asked to fail"));
        }
        Ok(Reply::Body(json!({ "ms": ms, "from": req.client.id() })))
    }
}

fn hub_with(config: SignalConfig, shutdown: Shutdown) -> SignalHub {
    let open = AuthConfig {
        users: vec![],
        token_secret: None,
        ..AuthConfig::default()
    };
    SignalHub::builder(config, open, shutdown)
        .handler(Arc::new(Slow))
        .build()
        .expect("one handler per signal")
}

fn hub(config: SignalConfig) -> SignalHub {
    hub_with(config, Shutdown::new())
}

/// The client's end of one connection.
struct Wire {
    to_server: Option<mpsc::UnboundedSender<Result<WsMessage, axum::Error>>>,
    from_server: mpsc::Receiver<WsMessage>,
    session: JoinHandle<()>,
    next_id: u64,
}

fn connect(hub: &SignalHub) -> Wire {
    let (to_server, mut inbound) = mpsc::unbounded_channel();
    let (outbound, from_server) = mpsc::channel(4096);
    let stream = futures_util::stream::poll_fn(move |cx| inbound.poll_recv(cx));
    let sink = PollSender::new(outbound);
    let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    let hub = hub.clone();
    let session = tokio::spawn(async move { hub.serve(sink, stream, remote).await });
    Wire {
        to_server: Some(to_server),
        from_server,
        session,
        next_id: 1,
    }
}

impl Wire {
    fn frame(&self, frame: WsMessage) {
        let tx = self.to_server.as_ref().expect("the client end is open");
        let _ = tx.send(Ok(frame));
    }

    fn request(&mut self, signal: &str, body: Value) -> u64 {
        let id = self.next_id;
        self.next_id += 1;
        let text = json!({"header": {"v": "1.0.0", "id": id, "signal": signal}, "body": body});
        self.frame(WsMessage::Text(text.to_string().into()));
        id
    }

    /// The next frame the server sends (at most 60 s of paused time away).
    async fn next(&mut self) -> Option<WsMessage> {
        tokio::time::timeout(Duration::from_secs(60), self.from_server.recv())
            .await
            .expect("the server sends something within 60 s")
    }

    async fn next_json(&mut self) -> Value {
        match self.next().await {
            Some(WsMessage::Text(t)) => serde_json::from_str(t.as_str()).unwrap(),
            other => panic!("expected a text frame, got {other:?}"),
        }
    }

    /// Reads until a message with this signal (skipping others, e.g. `client::config`).
    async fn until(&mut self, signal: &str) -> Value {
        loop {
            let m = self.next_json().await;
            if m["header"]["signal"] == signal {
                return m;
            }
        }
    }

    /// Reads until the close frame: its code and reason.
    async fn close_frame(&mut self) -> (u16, String) {
        loop {
            match self.next().await {
                Some(WsMessage::Close(Some(f))) => return (f.code, f.reason.to_string()),
                Some(WsMessage::Close(None)) => panic!("a close frame without a code"),
                Some(_) => continue,
                None => panic!("the sink ended without a close frame"),
            }
        }
    }

    async fn register(&mut self, id: &str) -> Value {
        self.request("client::register", json!({"clientId": id, "name": id}));
        let answer = self.until("client::register").await;
        assert_eq!(answer["code"], "0000", "{answer}");
        answer
    }

    /// Hangs up (the stream ends) and waits for the session to finish.
    async fn hang_up(mut self) {
        self.to_server = None;
        tokio::time::timeout(Duration::from_secs(60), self.session)
            .await
            .expect("the session ends once the client hangs up")
            .unwrap();
    }
}

#[tokio::test(start_paused = true)]
async fn registers_then_handles_requests_in_order_and_cleans_up() {
    let hub = hub(SignalConfig::default());
    let mut w = connect(&hub);
    let early = w.request("test::slow", json!({}));
    let refused = w.until("test::slow").await;
    assert_eq!(refused["header"]["id"], early);
    assert_eq!(refused["code"], "3401", "{refused}");

    let answer = w.register("ann").await;
    assert_eq!(answer["body"]["clientId"], "ann");
    assert_eq!(answer["body"]["ip"], "192.0.2.7");
    let config = w.until("client::config").await;
    assert_eq!(config["body"]["limits"]["maxMessageBytes"], 64 * 1024);
    assert_eq!(hub.client_count(), 1);
    assert_eq!(hub.connection_count(), 1);

    // The second request waits for the first, however much longer the first takes.
    let slow = w.request("test::slow", json!({"ms": 500}));
    let fast = w.request("test::slow", json!({"ms": 0, "fail": true}));
    let unknown = w.request("test::nothing", json!({}));
    let first = w.until("test::slow").await;
    assert_eq!(
        (first["header"]["id"].as_u64(), first["code"].as_str()),
        (Some(slow), Some("0000"))
    );
    assert_eq!(first["body"]["from"], "ann");
    let second = w.until("test::slow").await;
    assert_eq!(second["header"]["id"], fast);
    assert_eq!(second["code"], "3400");
    assert_eq!(second["message"], "asked to fail");
    let third = w.until("test::nothing").await;
    assert_eq!(third["header"]["id"], unknown);
    assert_eq!(third["code"], "3415", "{third}");

    w.hang_up().await;
    assert_eq!(hub.client_count(), 0);
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn a_connection_that_never_registers_is_closed_at_the_register_timeout() {
    let hub = hub(SignalConfig {
        register_timeout_ms: 2_000,
        ..SignalConfig::default()
    });
    let mut w = connect(&hub);
    let start = tokio::time::Instant::now();
    let error = w.until("platform::error").await;
    assert_eq!(error["code"], "3401", "{error}");
    assert_eq!(start.elapsed(), Duration::from_millis(2_000));
    let (code, reason) = w.close_frame().await;
    assert_eq!(code, close::POLICY);
    assert!(reason.contains("register timeout"), "{reason}");
    w.hang_up().await;
    assert_eq!(hub.connection_count(), 0);
}

#[tokio::test(start_paused = true)]
async fn heartbeats_keep_a_client_and_silence_times_it_out() {
    let hub = hub(SignalConfig {
        heartbeat_timeout_ms: 3_000,
        ..SignalConfig::default()
    });
    let mut w = connect(&hub);
    w.register("ann").await;
    for _ in 0..5 {
        tokio::time::sleep(Duration::from_millis(2_000)).await;
        w.request("client::heartbeat", json!({"status": {"battery": 80}}));
        let beat = w.until("client::heartbeat").await;
        assert_eq!(beat["code"], "0000");
    }
    assert_eq!(
        hub.client("ann").unwrap().reported_status(),
        json!({"battery": 80})
    );
    let silent = tokio::time::Instant::now();
    let error = w.until("platform::error").await;
    assert_eq!(error["code"], "2001", "{error}");
    assert_eq!(silent.elapsed(), Duration::from_millis(3_000));
    assert_eq!(w.close_frame().await.0, close::POLICY);
    w.hang_up().await;
    assert!(hub.client("ann").is_none());
}

#[tokio::test(start_paused = true)]
async fn bad_frames_are_refused_and_the_connection_goes_on_until_one_is_too_big() {
    let hub = hub(SignalConfig {
        max_message_bytes: 1024,
        ..SignalConfig::default()
    });
    let mut w = connect(&hub);
    w.register("ann").await;
    w.frame(WsMessage::Binary(vec![1, 2, 3].into()));
    let binary = w.until("platform::error").await;
    assert_eq!(binary["code"], "1002");
    assert!(binary["message"].as_str().unwrap().contains("binary"));
    w.frame(WsMessage::Text("{not json".into()));
    assert_eq!(w.until("platform::error").await["code"], "1002");
    // Still served.
    w.request("test::slow", json!({}));
    assert_eq!(w.until("test::slow").await["code"], "0000");

    let big = "x".repeat(2048);
    w.request("test::slow", json!({ "pad": big }));
    let error = w.until("platform::error").await;
    assert!(
        error["message"]
            .as_str()
            .unwrap()
            .contains("over the limit of 1024"),
        "{error}"
    );
    assert_eq!(w.close_frame().await.0, close::TOO_BIG);
    w.hang_up().await;
    assert!(hub.client("ann").is_none());
}

#[tokio::test(start_paused = true)]
async fn a_flood_is_answered_3403_then_closed() {
    let hub = hub(SignalConfig {
        rate_per_sec: 1,
        rate_burst: 2,
        rate_close_after: 3,
        ..SignalConfig::default()
    });
    let mut w = connect(&hub);
    // The register takes one token of the burst.
    w.register("ann").await;
    let ids: Vec<u64> = (0..5).map(|_| w.request("test::slow", json!({}))).collect();
    let mut codes = Vec::new();
    for id in &ids[..4] {
        let m = w.until("test::slow").await;
        assert_eq!(m["header"]["id"], *id);
        codes.push(m["code"].as_str().unwrap().to_owned());
    }
    assert_eq!(codes, ["0000", "3403", "3403", "3403"]);
    let error = w.until("platform::error").await;
    assert_eq!(error["code"], "3403", "{error}");
    assert_eq!(w.close_frame().await.0, close::POLICY);
    w.hang_up().await;
}

#[tokio::test(start_paused = true)]
async fn a_second_connection_with_the_same_id_replaces_the_first() {
    let hub = hub(SignalConfig {
        presence: PresenceMode::All,
        ..SignalConfig::default()
    });
    let mut bob = connect(&hub);
    bob.register("bob").await;
    let mut first = connect(&hub);
    first.register("ann").await;
    assert_eq!(bob.until("client::online").await["body"]["clientId"], "ann");
    let mut second = connect(&hub);
    second.register("ann").await;

    let told = first.until("client::close").await;
    assert!(
        told["body"]["reason"]
            .as_str()
            .unwrap()
            .starts_with("replaced")
    );
    assert_eq!(first.close_frame().await.0, close::REPLACED);
    first.hang_up().await;
    // The id lives on in the second connection: still online, nobody told it went.
    assert_eq!(hub.client_count(), 2);
    second.request("test::slow", json!({}));
    assert_eq!(second.until("test::slow").await["code"], "0000");
    second.hang_up().await;
    assert_eq!(
        bob.until("client::offline").await["body"]["clientId"],
        "ann"
    );
    bob.hang_up().await;
}

#[tokio::test(start_paused = true)]
async fn shutdown_tells_the_client_then_closes_1001() {
    let shutdown = Shutdown::new();
    let hub = hub_with(SignalConfig::default(), shutdown.clone());
    let mut w = connect(&hub);
    w.register("ann").await;
    shutdown.trigger();
    let told = w.until("client::close").await;
    assert_eq!(told["body"]["reason"], "server shutting down");
    assert_eq!(w.close_frame().await.0, close::GOING_AWAY);
    // The session ends by itself, though the client never hangs up.
    assert!(shutdown.drained(Duration::from_secs(5)).await);
    assert_eq!(hub.connection_count(), 0);
    drop(w);
}

#[tokio::test(start_paused = true)]
async fn a_client_that_cannot_be_written_to_is_let_go() {
    let hub = hub(SignalConfig::default());
    let (to_server, mut inbound) = mpsc::unbounded_channel::<Result<WsMessage, axum::Error>>();
    let stream = futures_util::stream::poll_fn(move |cx| inbound.poll_recv(cx));
    // A sink whose far end is gone: every write fails.
    let (outbound, gone) = mpsc::channel::<WsMessage>(1);
    drop(gone);
    let remote: SocketAddr = "192.0.2.7:5000".parse().unwrap();
    let session = {
        let hub = hub.clone();
        tokio::spawn(async move { hub.serve(PollSender::new(outbound), stream, remote).await })
    };
    let text = json!({"header": {"v": "1.0.0", "id": 1, "signal": "client::register"},
                      "body": {"clientId": "ann"}});
    to_server
        .send(Ok(WsMessage::Text(text.to_string().into())))
        .unwrap();
    tokio::time::timeout(Duration::from_secs(60), session)
        .await
        .expect("the session ends when its writes fail")
        .unwrap();
    assert_eq!(hub.client_count(), 0);
    assert_eq!(hub.connection_count(), 0);
    // The stream half is dropped with the session.
    assert!(to_server.is_closed());
}
