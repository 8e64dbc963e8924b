//! A room member as a real client runs it: one signaling WebSocket, a publish peer connection
//! (it offers) and a subscribe peer connection (it answers the server's offers, automatically).

use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};
use tokio::sync::Notify;
use tokio::task::JoinHandle;

use crate::media::TestMedia;
use crate::peer::{ClientPeer, PeerOptions};
use crate::signal::{Link, SignalClient};

/// A connected, registered member.
pub struct Member {
    pub id: String,
    link: Arc<Link>,
    signal: SignalClient,
    answered: Arc<Mutex<Vec<(Instant, Instant)>>>,
    /// Subscribe offers still to be left unanswered (see [`Member::ignore_offers`]).
    ignore: Arc<AtomicUsize>,
    notes: Arc<Mutex<Vec<Value>>>,
    notes_changed: Arc<Notify>,
    /// Receives everything the server forwards to this member (replaced by
    /// [`Member::restart_subscribe`]).
    sub: Arc<Mutex<Arc<ClientPeer>>>,
    publisher: Mutex<Option<Arc<ClientPeer>>>,
    opts: PeerOptions,
    driver: JoinHandle<()>,
    room: Mutex<Option<String>>,
}

impl Member {
    /// Connects to `url` and registers with `register` (its body).
    pub async fn connect(
        url: &str,
        register: Value,
        opts: PeerOptions,
    ) -> anyhow::Result<Arc<Member>> {
        let (signal, mut rx) = SignalClient::connect(url, Duration::from_secs(15)).await?;
        let link = signal.link.clone();
        let notes = Arc::new(Mutex::new(Vec::new()));
        let notes_changed = Arc::new(Notify::new());
        let sub = Arc::new(Mutex::new(Arc::new(ClientPeer::new(&opts).await?)));
        let answered = Arc::new(Mutex::new(Vec::new()));
        let ignore = Arc::new(AtomicUsize::new(0));
        let (l, n, nc, s, a, ig) = (
            link.clone(),
            notes.clone(),
            notes_changed.clone(),
            sub.clone(),
            answered.clone(),
            ignore.clone(),
        );
        let driver = tokio::spawn(async move {
            while let Some(m) = rx.recv().await {
                if m["header"]["signal"] == "media::exchange"
                    && m["body"]["transport"] == "subscribe"
                    && m["body"]["type"] == "offer"
                    && ig
                        .fetch_update(Ordering::AcqRel, Ordering::Acquire, |n| n.checked_sub(1))
                        .is_err()
                {
                    // Offers come one at a time (the server waits for each answer).
                    // The current subscribe connection answers (a restart replaces it).
                    let s2 = s.lock().expect("sub lock").clone();
                    let (l2, n2, nc2) = (l.clone(), n.clone(), nc.clone());
                    let a2 = a.clone();
                    let offered = Instant::now();
                    let room = m["body"]["roomId"].clone();
                    let sdp = m["body"]["sdp"].as_str().unwrap_or_default().to_owned();
                    tokio::spawn(async move {
                        let result = match s2.answer(sdp).await {
                            Ok(answer) => l2.request("media::exchange", json!({"roomId": room, "transport": "subscribe", "type": "answer", "sdp": answer})).await.map_err(|e| e.to_string()),
                            Err(e) => Err(e.to_string()),
                        };
                        if matches!(&result, Ok(r) if r["code"] == "0000") {
                            a2.lock()
                                .expect("answered lock")
                                .push((offered, Instant::now()));
                        }
                        let note = match result {
                            Ok(r) if r["code"] == "0000" => {
                                json!({"header": {"signal": "bench-answered"}, "body": {}})
                            }
                            Ok(r) => {
                                json!({"header": {"signal": "bench-answer-failed"}, "body": r})
                            }
                            Err(e) => {
                                json!({"header": {"signal": "bench-answer-failed"}, "body": {"error": e}})
                            }
                        };
                        n2.lock().expect("notes lock").push(note);
                        nc2.notify_waiters();
                    });
                }
                n.lock().expect("notes lock").push(m);
                nc.notify_waiters();
            }
        });
        let m = Member {
            id: register["clientId"].as_str().unwrap_or("?").to_owned(),
            link,
            signal,
            answered,
            ignore,
            notes,
            notes_changed,
            sub,
            publisher: Mutex::new(None),
            opts,
            driver,
            room: Mutex::new(None),
        };
        let r = m.request("client::register", register).await?;
        if r["code"] != "0000" {
            bail!("register failed: {r}");
        }
        Ok(Arc::new(m))
    }

    /// Sends a request; returns the whole answer message.
    pub async fn request(&self, signal: &str, body: Value) -> anyhow::Result<Value> {
        self.link.request(signal, body).await
    }

    /// Enters a room with a subscribe policy (`all`, `audio`, `video`, `none`).
    pub async fn enter(&self, room: &str, subscribe: &str) -> anyhow::Result<Value> {
        self.enter_with(json!({"roomId": room, "subscribe": subscribe}))
            .await
    }

    /// Enters a room with this `room::enter` body (roomId, subscribe, architecture, password).
    pub async fn enter_with(&self, body: Value) -> anyhow::Result<Value> {
        let room = body["roomId"].as_str().context("roomId")?.to_owned();
        let r = self.request("room::enter", body).await?;
        if r["code"] != "0000" {
            bail!("enter failed: {r}");
        }
        *self.room.lock().expect("room lock") = Some(room);
        Ok(r)
    }

    /// Publishes video and/or audio: offers on a new publish connection (`media::publish`),
    /// applies the answer, waits until connected and starts sending.
    pub async fn publish(
        &self,
        media: Arc<TestMedia>,
        video: bool,
        audio: bool,
    ) -> anyhow::Result<Arc<ClientPeer>> {
        self.publish_with(&self.opts, media, video, audio).await
    }

    /// [`Member::publish`] from a connection made with `opts`.
    pub async fn publish_with(
        &self,
        opts: &PeerOptions,
        media: Arc<TestMedia>,
        video: bool,
        audio: bool,
    ) -> anyhow::Result<Arc<ClientPeer>> {
        let room = self.room()?;
        let peer = Arc::new(ClientPeer::new(opts).await?);
        peer.add_media(video, audio).await?;
        let offer = peer.offer().await?;
        let r = self
            .request("media::publish", json!({"roomId": room, "sdp": offer}))
            .await?;
        if r["code"] != "0000" {
            bail!("publish failed: {r}");
        }
        let answer = r["body"]["sdp"]
            .as_str()
            .context("publish answer without sdp")?
            .to_owned();
        peer.accept_answer(answer).await?;
        peer.connected(Duration::from_secs(10)).await?;
        peer.start_sending(media).await?;
        *self.publisher.lock().expect("publisher lock") = Some(peer.clone());
        Ok(peer)
    }

    /// The connection that receives what the server forwards to this member.
    pub fn sub(&self) -> Arc<ClientPeer> {
        self.sub.lock().expect("sub lock").clone()
    }

    /// Replaces the subscribe connection as a client that restarts it would: closes it,
    /// makes a new one and asks the server for a new subscribe connection (`media::restart`),
    /// whose offer the new one answers.
    pub async fn restart_subscribe(&self) -> anyhow::Result<Arc<ClientPeer>> {
        let room = self.room()?;
        let new = Arc::new(ClientPeer::new(&self.opts).await?);
        let old = std::mem::replace(&mut *self.sub.lock().expect("sub lock"), new.clone());
        old.close().await;
        let r = self
            .request(
                "media::restart",
                json!({"roomId": room, "transport": "subscribe"}),
            )
            .await?;
        if r["code"] != "0000" {
            bail!("restart failed: {r}");
        }
        Ok(new)
    }

    /// Closes the publish connection without a word to the server (as a page that stops
    /// sending may), so the next [`Member::publish`] comes from a new connection.
    pub async fn drop_publisher(&self) {
        let p = self.publisher.lock().expect("publisher lock").take();
        if let Some(p) = p {
            p.close().await;
        }
    }

    fn room(&self) -> anyhow::Result<String> {
        self.room
            .lock()
            .expect("room lock")
            .clone()
            .context("enter a room first")
    }

    pub fn publisher(&self) -> Option<Arc<ClientPeer>> {
        self.publisher.lock().expect("publisher lock").clone()
    }

    /// Leaves the next `n` subscribe offers unanswered (a client that hangs or loses them);
    /// they are still kept in [`Member::notes`].
    pub fn ignore_offers(&self, n: usize) {
        self.ignore.store(n, Ordering::Release);
    }

    /// When each subscribe offer arrived and when the server accepted the answer to it.
    pub fn subscribe_offers(&self) -> Vec<(Instant, Instant)> {
        self.answered.lock().expect("answered lock").clone()
    }

    /// Every notification received so far.
    pub fn notes(&self) -> Vec<Value> {
        self.notes.lock().expect("notes lock").clone()
    }

    /// Waits for a notification (received before or after the call) that `pred` accepts.
    pub async fn note(&self, within: Duration, pred: impl Fn(&Value) -> bool) -> Option<Value> {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            let changed = self.notes_changed.notified();
            if let Some(v) = self
                .notes
                .lock()
                .expect("notes lock")
                .iter()
                .find(|v| pred(v))
            {
                return Some(v.clone());
            }
            if tokio::time::timeout_at(deadline, changed).await.is_err() {
                return None;
            }
        }
    }

    /// Ends the member like a crashed client: the WebSocket drops without a goodbye and its
    /// peer connections go silent.
    pub async fn vanish(&self) {
        self.signal.abort();
        self.driver.abort();
        self.close_peers().await;
    }

    pub async fn close_peers(&self) {
        self.sub().close().await;
        let p = self.publisher();
        if let Some(p) = p {
            p.close().await;
        }
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        self.driver.abort();
    }
}
