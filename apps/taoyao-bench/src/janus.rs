//! Janus as the side-by-side peer: its WebSocket API (subprotocol `janus-protocol`), and the
//! sfu-fanout, meeting and mcu scenarios run against VideoRoom and AudioBridge with the same
//! client peers, media and measurements as against taoyao (see [`crate::scenario`]).

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{Context, anyhow, bail};
use futures_util::{SinkExt, StreamExt};
use serde_json::{Value, json};
use tokio::sync::{mpsc, oneshot};
use tokio::task::JoinHandle;
use tokio_tungstenite::tungstenite::Message as Ws;
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::peer::ClientPeer;
use crate::report::Report;
use crate::scenario::{Bench, measure_media, wait_until};

const REQUEST_TIMEOUT: Duration = Duration::from_secs(20);
/// Janus ends sessions silent for `session_timeout` (60 s by default).
const KEEPALIVE: Duration = Duration::from_secs(25);

type Pending = Arc<Mutex<HashMap<String, oneshot::Sender<Value>>>>;

/// One Janus session over its own WebSocket.
pub struct JanusSession {
    out: mpsc::UnboundedSender<String>,
    pending: Pending,
    next: AtomicU64,
    pub session_id: u64,
    driver: JoinHandle<()>,
}

impl JanusSession {
    /// Connects to Janus's WebSocket transport and creates a session.
    pub async fn connect(url: &str) -> anyhow::Result<JanusSession> {
        let mut req = url.into_client_request()?;
        req.headers_mut().insert(
            "Sec-WebSocket-Protocol",
            "janus-protocol".parse().expect("header value"),
        );
        let (ws, _) = tokio_tungstenite::connect_async(req)
            .await
            .with_context(|| format!("connecting Janus at {url}"))?;
        let (mut sink, mut stream) = ws.split();
        let (out, mut out_rx) = mpsc::unbounded_channel::<String>();
        let pending: Pending = Arc::new(Mutex::new(HashMap::new()));
        let (p, ka) = (pending.clone(), out.clone());
        let session = Arc::new(AtomicU64::new(0));
        let s2 = session.clone();
        let driver = tokio::spawn(async move {
            let mut beat =
                tokio::time::interval_at(tokio::time::Instant::now() + KEEPALIVE, KEEPALIVE);
            loop {
                tokio::select! {
                    text = out_rx.recv() => {
                        let Some(text) = text else { break };
                        if sink.send(Ws::text(text)).await.is_err() { break }
                    }
                    _ = beat.tick() => {
                        let id = s2.load(Ordering::Relaxed);
                        let t = json!({"janus": "keepalive", "session_id": id, "transaction": format!("ka{}", rand::random::<u32>())});
                        let _ = ka.send(t.to_string());
                    }
                    frame = stream.next() => {
                        let Some(Ok(frame)) = frame else { break };
                        let Ws::Text(t) = frame else { continue };
                        let Ok(m) = serde_json::from_str::<Value>(t.as_str()) else { continue };
                        // An async plugin request is acked first; its answer is an event with
                        // the same transaction.
                        if m["janus"] == "ack" { continue }
                        let Some(tr) = m["transaction"].as_str() else { continue };
                        if let Some(tx) = p.lock().expect("pending lock").remove(tr) {
                            let _ = tx.send(m);
                        }
                    }
                }
            }
        });
        let mut s = JanusSession {
            out,
            pending,
            next: AtomicU64::new(1),
            session_id: 0,
            driver,
        };
        let r = s.call(json!({"janus": "create"})).await?;
        s.session_id = r["data"]["id"].as_u64().context("session id")?;
        session.store(s.session_id, Ordering::Relaxed);
        Ok(s)
    }

    /// Sends a request (with a new transaction) and waits for its answer.
    async fn call(&self, mut req: Value) -> anyhow::Result<Value> {
        let tr = format!("t{}", self.next.fetch_add(1, Ordering::Relaxed));
        req["transaction"] = json!(tr);
        if self.session_id != 0 {
            req["session_id"] = json!(self.session_id);
        }
        let (tx, rx) = oneshot::channel();
        self.pending
            .lock()
            .expect("pending lock")
            .insert(tr.clone(), tx);
        self.out
            .send(req.to_string())
            .map_err(|_| anyhow!("Janus connection closed"))?;
        let r = tokio::time::timeout(REQUEST_TIMEOUT, rx).await;
        self.pending.lock().expect("pending lock").remove(&tr);
        let r = r
            .map_err(|_| anyhow!("no answer from Janus to {req}"))?
            .map_err(|_| anyhow!("Janus connection closed"))?;
        if r["janus"] == "error" {
            bail!("Janus error: {}", r["error"]);
        }
        if let Some(e) = r["plugindata"]["data"].get("error") {
            bail!("Janus plugin error: {e}");
        }
        Ok(r)
    }

    /// Attaches a plugin handle.
    pub async fn attach(&self, plugin: &str) -> anyhow::Result<u64> {
        let r = self
            .call(json!({"janus": "attach", "plugin": plugin}))
            .await?;
        r["data"]["id"].as_u64().context("handle id")
    }

    /// A plugin message (with an SDP when `jsep`); returns Janus's whole answer.
    pub async fn message(
        &self,
        handle: u64,
        body: Value,
        jsep: Option<Value>,
    ) -> anyhow::Result<Value> {
        let mut req = json!({"janus": "message", "handle_id": handle, "body": body});
        if let Some(j) = jsep {
            req["jsep"] = j;
        }
        self.call(req).await
    }

    /// Tells Janus this handle's client has no more candidates (they were all in its SDP).
    pub fn trickle_done(&self, handle: u64) {
        let t = json!({"janus": "trickle", "session_id": self.session_id, "handle_id": handle,
            "candidate": {"completed": true}, "transaction": "trickle"});
        let _ = self.out.send(t.to_string());
    }
}

impl Drop for JanusSession {
    fn drop(&mut self) {
        let t = json!({"janus": "destroy", "session_id": self.session_id, "transaction": "bye"});
        let _ = self.out.send(t.to_string());
        let driver = self.driver.abort_handle();
        // Let the goodbye go out before the socket drops.
        tokio::spawn(async move {
            tokio::time::sleep(Duration::from_millis(200)).await;
            driver.abort();
        });
    }
}

fn sdp_of(r: &Value) -> anyhow::Result<String> {
    r["jsep"]["sdp"]
        .as_str()
        .map(str::to_owned)
        .with_context(|| format!("Janus answered without an SDP: {r}"))
}

/// A VideoRoom publisher: its session, feed id and sending peer.
struct Publisher {
    _session: JanusSession,
    feed: u64,
    peer: Arc<ClientPeer>,
}

async fn create_room(url: &str, plugin: &str, body: Value) -> anyhow::Result<(JanusSession, u64)> {
    let s = JanusSession::connect(url).await?;
    let h = s.attach(plugin).await?;
    let room = u64::from(rand::random::<u32>() >> 1) + 1;
    let mut body = body;
    body["request"] = json!("create");
    body["room"] = json!(room);
    body["permanent"] = json!(false);
    s.message(h, body, None).await.context("creating a room")?;
    Ok((s, room))
}

async fn publish(b: &Bench, url: &str, room: u64, name: &str) -> anyhow::Result<Publisher> {
    let s = JanusSession::connect(url).await?;
    let h = s.attach("janus.plugin.videoroom").await?;
    let r = s
        .message(
            h,
            json!({"request": "join", "room": room, "ptype": "publisher", "display": name}),
            None,
        )
        .await?;
    let feed = r["plugindata"]["data"]["id"]
        .as_u64()
        .with_context(|| format!("publisher id in {r}"))?;
    let peer = Arc::new(ClientPeer::new(&b.peer).await?);
    peer.add_media(true, true).await?;
    let offer = peer.offer().await?;
    let r = s
        .message(
            h,
            json!({"request": "publish", "audio": true, "video": true}),
            Some(json!({"type": "offer", "sdp": offer})),
        )
        .await?;
    s.trickle_done(h);
    peer.accept_answer(sdp_of(&r)?).await?;
    peer.connected(Duration::from_secs(10)).await?;
    peer.start_sending(b.media.clone()).await?;
    Ok(Publisher {
        _session: s,
        feed,
        peer,
    })
}

/// A VideoRoom subscriber to `feeds` (one multistream subscription).
async fn subscribe(
    b: &Bench,
    url: &str,
    room: u64,
    feeds: &[u64],
) -> anyhow::Result<(JanusSession, Arc<ClientPeer>)> {
    let s = JanusSession::connect(url).await?;
    let h = s.attach("janus.plugin.videoroom").await?;
    let streams: Vec<Value> = feeds.iter().map(|f| json!({"feed": f})).collect();
    let join = json!({"request": "join", "room": room, "ptype": "subscriber", "streams": streams});
    // A feed is subscribable once Janus has set its publisher's media up, which may be a moment
    // after the publisher's side of the connection is up: "No such feed" until then.
    let mut tries = 0;
    let r = loop {
        match s.message(h, join.clone(), None).await {
            Err(e) if tries < 50 && e.to_string().contains("No such feed") => {
                tries += 1;
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            r => break r?,
        }
    };
    let peer = Arc::new(ClientPeer::new(&b.peer).await?);
    let answer = peer.answer(sdp_of(&r)?).await?;
    s.message(
        h,
        json!({"request": "start"}),
        Some(json!({"type": "answer", "sdp": answer})),
    )
    .await?;
    s.trickle_done(h);
    peer.connected(Duration::from_secs(10)).await?;
    Ok((s, peer))
}

fn video_tracks_flowing(p: &ClientPeer) -> usize {
    p.received
        .tracks()
        .iter()
        .filter(|t| t.video && t.packets() > 0)
        .count()
}

async fn close(peers: &[Arc<ClientPeer>]) {
    for p in peers {
        p.close().await;
    }
}

/// sfu-fanout against VideoRoom: `publishers` publish VP8 + Opus, `subscribers` receive all.
pub async fn sfu_fanout(
    b: &Bench,
    url: &str,
    publishers: usize,
    subscribers: usize,
    seconds: f64,
) -> anyhow::Result<Report> {
    let (_admin, room) = create_room(
        url,
        "janus.plugin.videoroom",
        json!({"publishers": publishers.max(1), "bitrate": 0, "audiocodec": "opus", "videocodec": "vp8"}),
    )
    .await?;
    let bar = b.bar((publishers + subscribers) as u64, "connecting");
    let mut pubs = Vec::new();
    for i in 0..publishers {
        pubs.push(publish(b, url, room, &format!("pub-{i}")).await?);
        bar.inc(1);
    }
    let feeds: Vec<u64> = pubs.iter().map(|p| p.feed).collect();
    let mut subs = Vec::new();
    for _ in 0..subscribers {
        subs.push(subscribe(b, url, room, &feeds).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let receivers: Vec<_> = subs.iter().map(|(_, p)| p.clone()).collect();
    let senders: Vec<_> = pubs.iter().map(|p| p.peer.clone()).collect();
    let result = async {
        wait_until(b.ready_timeout, "every subscriber to receive video", || {
            receivers
                .iter()
                .all(|p| video_tracks_flowing(p) >= publishers)
        })
        .await?;
        measure_media(
            b,
            Report::new("janus", "sfu-fanout", subscribers, "subscribers"),
            seconds,
            &receivers,
            &senders,
        )
        .await
    }
    .await;
    close(&receivers).await;
    close(&senders).await;
    result
}

/// meeting against VideoRoom: every member publishes and subscribes to all the others.
pub async fn meeting(b: &Bench, url: &str, members: usize, seconds: f64) -> anyhow::Result<Report> {
    let (_admin, room) = create_room(
        url,
        "janus.plugin.videoroom",
        json!({"publishers": members.max(1), "bitrate": 0, "audiocodec": "opus", "videocodec": "vp8"}),
    )
    .await?;
    let bar = b.bar(2 * members as u64, "connecting");
    let mut pubs = Vec::new();
    for i in 0..members {
        pubs.push(publish(b, url, room, &format!("m{i}")).await?);
        bar.inc(1);
    }
    let mut subs = Vec::new();
    for i in 0..members {
        let others: Vec<u64> = pubs
            .iter()
            .enumerate()
            .filter(|(j, _)| *j != i)
            .map(|(_, p)| p.feed)
            .collect();
        if others.is_empty() {
            continue;
        }
        subs.push(subscribe(b, url, room, &others).await?);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let receivers: Vec<_> = subs.iter().map(|(_, p)| p.clone()).collect();
    let senders: Vec<_> = pubs.iter().map(|p| p.peer.clone()).collect();
    let result = async {
        wait_until(
            b.ready_timeout,
            "every member to receive every other's video",
            || {
                receivers
                    .iter()
                    .all(|p| video_tracks_flowing(p) >= members - 1)
            },
        )
        .await?;
        measure_media(
            b,
            Report::new("janus", "meeting", members, "members"),
            seconds,
            &receivers,
            &senders,
        )
        .await
    }
    .await;
    close(&receivers).await;
    close(&senders).await;
    result
}

/// mcu against AudioBridge: every member sends Opus and receives the mix of the others.
pub async fn mcu(b: &Bench, url: &str, members: usize, seconds: f64) -> anyhow::Result<Report> {
    let (_admin, room) = create_room(
        url,
        "janus.plugin.audiobridge",
        json!({"sampling_rate": 48000}),
    )
    .await?;
    let bar = b.bar(members as u64, "connecting");
    let mut sessions = Vec::new();
    let mut peers = Vec::new();
    for i in 0..members {
        let s = JanusSession::connect(url).await?;
        let h = s.attach("janus.plugin.audiobridge").await?;
        let peer = Arc::new(ClientPeer::new(&b.peer).await?);
        peer.add_media(false, true).await?;
        let offer = peer.offer().await?;
        let r = s
            .message(
                h,
                json!({"request": "join", "room": room, "display": format!("m{i}"), "muted": false}),
                Some(json!({"type": "offer", "sdp": offer})),
            )
            .await?;
        s.trickle_done(h);
        peer.accept_answer(sdp_of(&r)?).await?;
        peer.connected(Duration::from_secs(10)).await?;
        peer.start_sending(b.media.clone()).await?;
        sessions.push(s);
        peers.push(peer);
        bar.inc(1);
    }
    bar.finish_and_clear();
    let result = async {
        wait_until(b.ready_timeout, "every member to receive the mix", || {
            peers.iter().all(|p| {
                p.received
                    .tracks()
                    .iter()
                    .any(|t| !t.video && t.packets() > 0)
            })
        })
        .await?;
        let mut r = measure_media(
            b,
            Report::new("janus", "mcu", members, "members"),
            seconds,
            &peers,
            &peers,
        )
        .await?;
        r.derive_per_participant();
        Ok(r)
    }
    .await;
    close(&peers).await;
    drop(sessions);
    result
}
