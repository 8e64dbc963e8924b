//! A taoyao signaling connection as a client holds it: one WebSocket, requests matched to their
//! answers by id, a heartbeat, and every other message handed over as a notification. [`Member`]
//! drives media on top of it; the `signal` scenario runs thousands of these bare.
//!
//! [`Member`]: crate::member::Member

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Ws;

/// How long a request waits for its answer.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(15);

type Pending = Arc<Mutex<HashMap<u64, oneshot::Sender<Value>>>>;

/// The sending half, shared with tasks that answer the server.
pub struct Link {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next_id: AtomicU64,
}

fn envelope(id: u64, signal: &str, body: Value) -> String {
    json!({"header": {"v": "1.0.0", "id": id, "signal": signal}, "body": body}).to_string()
}

impl Link {
    /// Sends a request; returns the whole answer message.
    pub async fn request(&self, signal: &str, body: Value) -> anyhow::Result<Value> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = oneshot::channel();
        self.pending.lock().expect("pending lock").insert(id, tx);
        if self.out.send(envelope(id, signal, body)).is_err() {
            self.pending.lock().expect("pending lock").remove(&id);
            return Err(anyhow!("connection closed"));
        }
        let answer = tokio::time::timeout(REQUEST_TIMEOUT, rx).await;
        self.pending.lock().expect("pending lock").remove(&id);
        answer
            .map_err(|_| anyhow!("no answer to {signal}"))?
            .map_err(|_| anyhow!("connection closed before the answer to {signal}"))
    }

    /// Sends a request without waiting for (or keeping) its answer.
    pub fn send(&self, signal: &str, body: Value) -> anyhow::Result<()> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        self.out
            .send(envelope(id, signal, body))
            .map_err(|_| anyhow!("connection closed"))
    }
}

/// A connected signaling client.
pub struct SignalClient {
    pub link: Arc<Link>,
    driver: JoinHandle<()>,
    /// Text frames received (answers and notifications).
    pub received: Arc<AtomicU64>,
}

impl SignalClient {
    /// Connects; notifications (everything that is not an answer to a request of ours) arrive
    /// on the returned channel. Sends `client::heartbeat` every `heartbeat`.
    pub async fn connect(
        url: &str,
        heartbeat: Duration,
    ) -> anyhow::Result<(SignalClient, mpsc::UnboundedReceiver<Value>)> {
        Self::connect_from(url, heartbeat, None).await
    }

    /// [`SignalClient::connect`] from a chosen local address: one address has only
    /// `ip_local_port_range` ports (28,232 by default) to reach one server port, so tens of
    /// thousands of clients on loopback spread over 127.0.0.x.
    pub async fn connect_from(
        url: &str,
        heartbeat: Duration,
        local: Option<std::net::IpAddr>,
    ) -> anyhow::Result<(SignalClient, mpsc::UnboundedReceiver<Value>)> {
        use tokio_tungstenite::tungstenite::client::IntoClientRequest;
        let ws = match local {
            None => {
                tokio_tungstenite::connect_async(url)
                    .await
                    .with_context(|| format!("connecting {url}"))?
                    .0
            }
            Some(ip) => {
                let req = url.into_client_request()?;
                let host = req.uri().host().context("no host in the URL")?.to_owned();
                let port = req.uri().port_u16().unwrap_or(80);
                let remote = tokio::net::lookup_host((host.as_str(), port))
                    .await?
                    .find(|a| a.is_ipv4() == ip.is_ipv4())
                    .with_context(|| format!("{host} has no address like {ip}"))?;
                let socket = match ip {
                    std::net::IpAddr::V4(_) => tokio::net::TcpSocket::new_v4()?,
                    std::net::IpAddr::V6(_) => tokio::net::TcpSocket::new_v6()?,
                };
                socket.bind((ip, 0).into())?;
                let stream = socket
                    .connect(remote)
                    .await
                    .with_context(|| format!("connecting {remote} from {ip}"))?;
                tokio_tungstenite::client_async(
                    req,
                    tokio_tungstenite::MaybeTlsStream::Plain(stream),
                )
                .await
                .with_context(|| format!("WebSocket handshake with {url}"))?
                .0
            }
        };
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let (notes, notes_rx) = mpsc::unbounded_channel::<Value>();
        let link = Arc::new(Link {
            out,
            pending: Arc::new(Mutex::new(HashMap::new())),
            next_id: AtomicU64::new(1),
        });
        let received = Arc::new(AtomicU64::new(0));
        let (l, count) = (link.clone(), received.clone());
        let driver = tokio::spawn(async move {
            let mut beat =
                tokio::time::interval_at(tokio::time::Instant::now() + heartbeat, heartbeat);
            loop {
                tokio::select! {
                    text = out_rx.recv() => {
                        let Some(text) = text else { break };
                        if sink.send(Ws::text(text)).await.is_err() { break }
                    }
                    _ = beat.tick() => {
                        let id = l.next_id.fetch_add(1, Ordering::Relaxed);
                        if sink.send(Ws::text(envelope(id, "client::heartbeat", json!({})))).await.is_err() { break }
                    }
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let Ws::Text(t) = frame else { continue };
                        count.fetch_add(1, Ordering::Relaxed);
                        let Ok(m) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                        if m.get("code").is_some() {
                            let id = m["header"]["id"].as_u64().unwrap_or(0);
                            if let Some(tx) = l.pending.lock().expect("pending lock").remove(&id) {
                                let _ = tx.send(m);
                            }
                            continue;
                        }
                        let _ = notes.send(m);
                    }
                }
            }
        });
        Ok((
            SignalClient {
                link,
                driver,
                received,
            },
            notes_rx,
        ))
    }

    pub async fn request(&self, signal: &str, body: Value) -> anyhow::Result<Value> {
        self.link.request(signal, body).await
    }

    /// Drops the connection without a goodbye.
    pub fn abort(&self) {
        self.driver.abort();
    }
}

impl Drop for SignalClient {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
