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

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use base64::Engine;
use serde::Serialize;
use sha2::{Digest, Sha256};
use taoyao_boot::IdGenerator;
use taoyao_meeting::RoomEvent;
use tokio::sync::mpsc;
use tokio::task::JoinHandle;

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

/// The sending side, shared by the room observer and the server's shutdown.
pub struct Webhooks {
    /// One queue per receiver; taken (closed) by [`Webhooks::finish`].
    queues: Mutex<Vec<mpsc::Sender<Body>>>,
    workers: Mutex<Vec<JoinHandle<()>>>,
    /// Events queued and not yet delivered or given up, over all receivers.
    pending: Arc<AtomicUsize>,
    drain: Duration,
    ids: Arc<IdGenerator>,
    metrics: Arc<Metrics>,
}

impl Webhooks {
    /// Starts one delivery task per URL; None when no URL is configured. The tasks run until
    /// [`Webhooks::finish`] (not until the shutdown signal: the rooms' last events are queued
    /// after it).
    pub fn start(
        cfg: &WebhooksConfig,
        ids: Arc<IdGenerator>,
        metrics: Arc<Metrics>,
    ) -> Result<Option<Webhooks>, String> {
        if cfg.urls.is_empty() {
            return Ok(None);
        }
        let secret = cfg
            .secret
            .clone()
            .ok_or("webhooks.secret is required with webhooks.urls")?;
        let mut client = reqwest::Client::builder()
            .timeout(Duration::from_millis(cfg.timeout_ms))
            .redirect(reqwest::redirect::Policy::none());
        if let Some(path) = &cfg.ca_file {
            let pem = std::fs::read(path)
                .map_err(|e| format!("webhooks.ca_file {}: {e}", path.display()))?;
            let certs = reqwest::Certificate::from_pem_bundle(&pem)
                .map_err(|e| format!("webhooks.ca_file {}: {e}", path.display()))?;
            if certs.is_empty() {
                return Err(format!(
                    "webhooks.ca_file {}: no PEM certificate in it",
                    path.display()
                ));
            }
            for c in certs {
                client = client.add_root_certificate(c);
            }
        }
        let client = client
            .build()
            .map_err(|e| format!("webhook HTTP client: {e}"))?;
        let pending = Arc::new(AtomicUsize::new(0));
        let mut queues = Vec::new();
        let mut workers = Vec::new();
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
                pending: pending.clone(),
            };
            workers.push(tokio::spawn(worker.run(rx)));
        }
        Ok(Some(Webhooks {
            queues: Mutex::new(queues),
            workers: Mutex::new(workers),
            pending,
            drain: Duration::from_millis(cfg.drain_ms),
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
        let queues = self.queues.lock().expect("webhook queues");
        if queues.is_empty() {
            // After finish: nothing delivers any more.
            self.metrics.webhook("dropped");
        }
        for q in queues.iter() {
            // Counted before it is queued, so the worker's decrement never comes first.
            self.pending.fetch_add(1, Ordering::Relaxed);
            if q.try_send(body.clone()).is_err() {
                self.pending.fetch_sub(1, Ordering::Relaxed);
                self.metrics.webhook("dropped");
            }
        }
    }

    /// Called at shutdown once the rooms have ended: closes the queues, lets the receivers'
    /// tasks deliver what is queued for up to `webhooks.drain_ms`, then gives up the rest
    /// (counted as dropped). Later events are dropped.
    pub async fn finish(&self) {
        drop(std::mem::take(
            &mut *self.queues.lock().expect("webhook queues"),
        ));
        let workers = std::mem::take(&mut *self.workers.lock().expect("webhook workers"));
        let aborts: Vec<_> = workers.iter().map(|w| w.abort_handle()).collect();
        let all = async {
            for w in workers {
                let _ = w.await;
            }
        };
        if tokio::time::timeout(self.drain, all).await.is_err() {
            for a in aborts {
                a.abort();
            }
            let left = self.pending.swap(0, Ordering::Relaxed);
            tracing::warn!(
                "{left} webhook deliveries still queued after {:?} at shutdown: dropped",
                self.drain
            );
            for _ in 0..left {
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
    pending: Arc<AtomicUsize>,
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
                        self.pending.fetch_sub(1, Ordering::Relaxed);
                        break;
                    }
                    Err(why) if attempt >= self.retries => {
                        tracing::warn!(
                            url = self.url,
                            "webhook given up after {attempt} retries: {why}"
                        );
                        self.metrics.webhook("failed");
                        self.pending.fetch_sub(1, Ordering::Relaxed);
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
