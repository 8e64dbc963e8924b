//! Webhooks: room events POSTed as JSON to `[webhooks] urls`, signed the way LiveKit signs
//! its webhooks, so receivers written for that scheme verify ours alike.
//!
//! A room emits an event inline ([`Webhooks::send`]): it is serialized once and offered to
//! each receiver's bounded queue with `try_send`, so a room never waits for a receiver. One
//! task per receiver delivers its queue strictly in order (that keeps every room's events in
//! order), retrying a failed delivery with a doubling backoff before moving on; events that
//! find a queue full are dropped and counted (`taoyao_webhook_events_total{outcome="dropped"}`).
//!
//! Signature: the `Authorization` header carries a JWT (HS256 with `webhooks.secret`) whose
//! `sha256` claim is the base64 (standard, padded) SHA-256 of the exact body bytes; `iat` /
//! `exp` bound its age (5 minutes) and `iss` is "taoyao". The receiver checks the JWT with the
//! shared secret, then hashes the body it received and compares.

use std::sync::Arc;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use taoyao_boot::{IdGenerator, Shutdown};
use taoyao_meeting::RoomEvent;
use tokio::sync::mpsc;

use crate::config::WebhooksConfig;
use crate::metrics::Metrics;

/// How long a delivery's signature stays valid.
const SIGNATURE_TTL_S: u64 = 300;

/// The JSON a receiver gets: the event's own fields, plus `id` (unique) and `timestamp`
/// (Unix milliseconds when it happened).
#[derive(Serialize)]
struct Envelope<'a> {
    id: String,
    timestamp: u64,
    #[serde(flatten)]
    event: &'a RoomEvent,
}

#[derive(Serialize)]
struct SignatureClaims<'a> {
    iss: &'static str,
    iat: u64,
    exp: u64,
    sha256: &'a str,
}

/// One serialized event, shared by every receiver's queue.
type Body = Arc<Vec<u8>>;

/// The sending side: cheap to clone into a room observer.
pub struct Webhooks {
    queues: Vec<mpsc::Sender<Body>>,
    ids: Arc<IdGenerator>,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Starts one delivery task per URL (ending on shutdown); None when no URL is configured.
    pub fn start(
        cfg: &WebhooksConfig,
        ids: Arc<IdGenerator>,
        metrics: Arc<Metrics>,
        shutdown: &Shutdown,
    ) -> Result<Option<Webhooks>, String> {
        if cfg.urls.is_empty() {
            return Ok(None);
        }
        let secret = cfg
            .secret
            .clone()
            .ok_or("webhooks.secret is required with webhooks.urls")?;
        let client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none())
            .build()
            .map_err(|e| format!("webhook HTTP client: {e}"))?;
        let mut queues = Vec::new();
        for url in &cfg.urls {
            let (tx, rx) = mpsc::channel(cfg.queue);
            queues.push(tx);
            let worker = Worker {
                url: url.clone(),
                client: client.clone(),
                key: jsonwebtoken::EncodingKey::from_secret(secret.as_bytes()),
                retries: cfg.retries,
                backoff: Duration::from_millis(cfg.backoff_ms),
                max_backoff: Duration::from_millis(cfg.max_backoff_ms),
                metrics: metrics.clone(),
            };
            let stop = shutdown.clone();
            shutdown.spawn(async move {
                tokio::select! {
                    _ = worker.run(rx) => {}
                    // Events still queued at shutdown are not delivered (they are lost with the
                    // process anyway); room_finished of the closing rooms may be among them.
                    _ = stop.triggered() => {}
                }
            });
        }
        Ok(Some(Webhooks {
            queues,
            ids,
            metrics,
        }))
    }

    /// Queues `e` for every receiver without waiting.
    pub fn send(&self, e: &RoomEvent) {
        let envelope = Envelope {
            id: self.ids.unique(),
            timestamp: now_ms(),
            event: e,
        };
        let body: Body = match serde_json::to_vec(&envelope) {
            Ok(b) => Arc::new(b),
            Err(err) => {
                tracing::warn!("webhook event does not serialize: {err}");
                return;
            }
        };
        for q in &self.queues {
            if q.try_send(body.clone()).is_err() {
                self.metrics.webhook("dropped");
            }
        }
    }
}

struct Worker {
    url: String,
    client: reqwest::Client,
    key: jsonwebtoken::EncodingKey,
    retries: u32,
    backoff: Duration,
    max_backoff: Duration,
    metrics: Arc<Metrics>,
}

impl Worker {
    async fn run(self, mut rx: mpsc::Receiver<Body>) {
        while let Some(body) = rx.recv().await {
            let mut wait = self.backoff;
            let mut attempt = 0;
            loop {
                match self.deliver(&body).await {
                    Ok(()) => {
                        self.metrics.webhook("delivered");
                        break;
                    }
                    Err(why) if attempt >= self.retries => {
                        tracing::warn!(
                            url = self.url,
                            "webhook given up after {attempt} retries: {why}"
                        );
                        self.metrics.webhook("failed");
                        break;
                    }
                    Err(why) => {
                        tracing::debug!(
                            url = self.url,
                            "webhook attempt failed ({why}); retrying in {wait:?}"
                        );
                        tokio::time::sleep(wait).await;
                        wait = (wait * 2).min(self.max_backoff);
                        attempt += 1;
                    }
                }
            }
        }
    }

    async fn deliver(&self, body: &[u8]) -> Result<(), String> {
        let token = sign(&self.key, body).map_err(|e| format!("signing: {e}"))?;
        let res = self
            .client
            .post(&self.url)
            .header(reqwest::header::CONTENT_TYPE, "application/json")
            .header(reqwest::header::AUTHORIZATION, token)
            .body(body.to_vec())
            .send()
            .await
            .map_err(|e| e.to_string())?;
        if res.status().is_success() {
            Ok(())
        } else {
            Err(format!("HTTP {}", res.status()))
        }
    }
}

/// The `Authorization` value for `body`.
fn sign(
    key: &jsonwebtoken::EncodingKey,
    body: &[u8],
) -> Result<String, jsonwebtoken::errors::Error> {
    let hash = base64::engine::general_purpose::STANDARD.encode(Sha256::digest(body));
    let iat = now_ms() / 1000;
    jsonwebtoken::encode(
        &jsonwebtoken::Header::new(jsonwebtoken::Algorithm::HS256),
        &SignatureClaims {
            iss: "taoyao",
            iat,
            exp: iat + SIGNATURE_TTL_S,
            sha256: &hash,
        },
        key,
    )
}

fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}
