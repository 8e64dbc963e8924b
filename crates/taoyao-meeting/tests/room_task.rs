//! The room task driven over its channel (through `Rooms`, the signal handler) with a fake
//! media backend and paused tokio time: timers (floor, anchor grace, empty room) fire in
//! milliseconds of real time, and what the backend emits while a request is handled reaches the
//! client after that request's answer.

use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use serde_json::{Value, json};
use taoyao_boot::{IdGenerator, Shutdown};
use taoyao_live::{AnchorDrop, LiveConfig};
use taoyao_meeting::{
    MeetingMode, RecordingConfig, RoomEvent, RoomEventKind, RoomObserver, Rooms, RoomsConfig,
};
use taoyao_signal::{
    AuthConfig, ClientHandle, ClientInfo, ClientType, Grants, Message, Request, SignalConfig,
    SignalHandler, SignalHub,
};
use taoyao_webrtc::{
    ArchitectureKind, Capabilities, Counterpart, JoinOptions, MediaArchitecture, MediaError,
    MediaEvent, MediaEvents, MediaGates, MediaKind, MediaRecorder, MediaRoom, MediaRoomStats,
    MemberId, Negotiation, RecordRequest, RecordingInfo, RoomId, StreamAction, StreamId,
    StreamRequest, Transport,
};
use tokio::sync::mpsc;

// ---------- a fake backend: records calls, emits what a server backend would ----------

#[derive(Default)]
struct FakeState {
    members: Vec<MemberId>,
    /// (owner, stream id, kind)
    streams: Vec<(MemberId, StreamId, MediaKind)>,
    /// (member, file, requester)
    recordings: Vec<(MemberId, String, MemberId)>,
}

struct FakeRoom {
    events: MediaEvents,
    calls: Arc<Mutex<Vec<String>>>,
    state: Mutex<FakeState>,
}

impl FakeRoom {
    fn call(&self, c: String) {
        self.calls.lock().unwrap().push(c);
    }

    fn offer(&self, to: &MemberId) {
        self.events.emit(MediaEvent::Negotiation {
            to: to.clone(),
            from: None,
            transport: Some(Transport::Subscribe),
            negotiation: Negotiation::Offer {
                sdp: format!("offer for {to}"),
            },
        });
    }

    fn end_streams(&self, member: &str, kind: Option<MediaKind>) {
        let ended: Vec<_> = {
            let mut st = self.state.lock().unwrap();
            let (gone, kept) = std::mem::take(&mut st.streams)
                .into_iter()
                .partition(|(o, _, k)| *o == *member && kind.is_none_or(|x| x == *k));
            st.streams = kept;
            gone
        };
        for (o, s, k) in ended {
            self.events.emit(MediaEvent::StreamEnded {
                member: o,
                stream: s,
                kind: k,
            });
        }
    }

    fn stop_recording(&self, member: &str) -> bool {
        let (rec, to) = {
            let mut st = self.state.lock().unwrap();
            let Some(i) = st.recordings.iter().position(|r| *r.0 == *member) else {
                return false;
            };
            (st.recordings.remove(i), st.members.clone())
        };
        let mut to = to;
        if !to.contains(&rec.2) {
            to.push(rec.2.clone());
        }
        for t in to {
            self.events.emit(MediaEvent::RecordingStopped {
                to: t,
                member: Some(rec.0.clone()),
                file: rec.1.clone(),
                duration_ms: 10,
                error: None,
            });
        }
        true
    }
}

#[async_trait]
impl MediaRoom for FakeRoom {
    fn capabilities(&self) -> Capabilities {
        Capabilities::forwarding(false)
    }

    async fn join(&self, member: &MemberId, _opts: JoinOptions) -> Result<(), MediaError> {
        self.call(format!("join {member}"));
        self.state.lock().unwrap().members.push(member.clone());
        Ok(())
    }

    async fn leave(&self, member: &MemberId) {
        self.call(format!("leave {member}"));
        self.stop_recording(member);
        self.end_streams(member, None);
        self.state.lock().unwrap().members.retain(|m| m != member);
    }

    async fn exchange(
        &self,
        from: &MemberId,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Option<Negotiation>, MediaError> {
        self.call(format!(
            "exchange {from} {with:?} {}",
            negotiation.type_name()
        ));
        match (with, negotiation) {
            (Counterpart::Server(Transport::Publish), Negotiation::Offer { .. }) => {
                let others: Vec<MemberId> = {
                    let mut st = self.state.lock().unwrap();
                    st.streams.push((
                        from.clone(),
                        format!("{from}:audio0").into(),
                        MediaKind::Audio,
                    ));
                    st.members.iter().filter(|m| *m != from).cloned().collect()
                };
                self.events.emit(MediaEvent::StreamStarted {
                    member: from.clone(),
                    stream: format!("{from}:audio0").into(),
                    kind: MediaKind::Audio,
                });
                for o in others {
                    self.offer(&o);
                }
                Ok(Some(Negotiation::Answer {
                    sdp: "fake answer".into(),
                }))
            }
            _ => Ok(None),
        }
    }

    async fn stream(
        &self,
        member: &MemberId,
        action: StreamAction,
        request: StreamRequest,
    ) -> Result<(), MediaError> {
        self.call(format!("stream {member} {}", action.as_str()));
        match action {
            StreamAction::Subscribe => {
                let any = self
                    .state
                    .lock()
                    .unwrap()
                    .streams
                    .iter()
                    .any(|(o, _, _)| o != member);
                // The offer is emitted while the request is being handled, as sfu does.
                if any {
                    self.offer(member);
                }
            }
            StreamAction::Unpublish => self.end_streams(member, request.kind),
            _ => {}
        }
        Ok(())
    }

    async fn stats(&self) -> MediaRoomStats {
        MediaRoomStats::default()
    }

    fn gates(&self) -> Option<&dyn MediaGates> {
        Some(self)
    }

    fn recorder(&self) -> Option<&dyn MediaRecorder> {
        Some(self)
    }

    async fn close(&self) {
        self.call("close".into());
        let members = self.state.lock().unwrap().members.clone();
        for m in members {
            self.leave(&m).await;
        }
    }
}

#[async_trait]
impl MediaGates for FakeRoom {
    async fn set_gate(
        &self,
        member: &MemberId,
        kind: Option<MediaKind>,
        open: bool,
    ) -> Result<(), MediaError> {
        self.call(format!("gate {member} {kind:?} {open}"));
        Ok(())
    }
}

#[async_trait]
impl MediaRecorder for FakeRoom {
    async fn record_start(
        &self,
        member: &MemberId,
        request: RecordRequest,
    ) -> Result<(), MediaError> {
        std::fs::create_dir_all(request.path.parent().unwrap()).unwrap();
        std::fs::write(&request.path, [7u8; 321]).unwrap();
        self.state.lock().unwrap().recordings.push((
            member.clone(),
            request.file.clone(),
            request.requester.clone(),
        ));
        Ok(())
    }

    async fn record_stop(&self, member: &MemberId) -> Result<(), MediaError> {
        if self.stop_recording(member) {
            Ok(())
        } else {
            Err(MediaError::NotRecording(member.to_string()))
        }
    }

    async fn recordings(&self) -> Vec<RecordingInfo> {
        self.state
            .lock()
            .unwrap()
            .recordings
            .iter()
            .map(|(m, f, by)| RecordingInfo {
                client_id: m.to_string(),
                mix: false,
                file: f.clone(),
                started_by: by.to_string(),
                started_at: 0,
            })
            .collect()
    }
}

struct FakeArchitecture {
    calls: Arc<Mutex<Vec<String>>>,
}

#[async_trait]
impl MediaArchitecture for FakeArchitecture {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Sfu
    }

    async fn open_room(
        &self,
        _room: &RoomId,
        events: MediaEvents,
    ) -> Result<Arc<dyn MediaRoom>, MediaError> {
        Ok(Arc::new(FakeRoom {
            events,
            calls: self.calls.clone(),
            state: Mutex::new(FakeState::default()),
        }))
    }
}

// ---------- the room service, clients over channels ----------

#[derive(Default)]
struct Seen(Mutex<Vec<RoomEvent>>);

impl RoomObserver for Seen {
    fn event(&self, e: RoomEvent) {
        self.0.lock().unwrap().push(e);
    }
}

impl Seen {
    fn names(&self) -> Vec<String> {
        self.0
            .lock()
            .unwrap()
            .iter()
            .map(|e| {
                let v = serde_json::to_value(e).unwrap();
                match v["clientId"].as_str() {
                    Some(c) => format!("{}:{c}", v["event"].as_str().unwrap()),
                    None => v["event"].as_str().unwrap().to_owned(),
                }
            })
            .collect()
    }
}

struct Service {
    rooms: Rooms,
    hub: SignalHub,
    ids: Arc<IdGenerator>,
    shutdown: Shutdown,
    seen: Arc<Seen>,
    _dir: tempfile::TempDir,
}

fn service(tweak: impl FnOnce(&mut RoomsConfig, &mut LiveConfig)) -> Service {
    let mut rooms_cfg = RoomsConfig {
        default_architecture: ArchitectureKind::Sfu,
        ..RoomsConfig::default()
    };
    let mut live = LiveConfig::default();
    tweak(&mut rooms_cfg, &mut live);
    let dir = tempfile::tempdir().unwrap();
    let recording = RecordingConfig {
        dir: dir.path().to_owned(),
        ..RecordingConfig::default()
    };
    let ids = Arc::new(IdGenerator::new());
    let shutdown = Shutdown::new();
    let rooms = Rooms::new(
        rooms_cfg,
        live,
        recording,
        vec![Arc::new(FakeArchitecture {
            calls: Arc::default(),
        })],
        ids.clone(),
        shutdown.clone(),
    )
    .unwrap();
    let seen = Arc::new(Seen::default());
    assert!(rooms.observe(seen.clone()));
    let hub = SignalHub::builder(
        SignalConfig::default(),
        AuthConfig::default(),
        shutdown.clone(),
    )
    .build()
    .unwrap();
    Service {
        rooms,
        hub,
        ids,
        shutdown,
        seen,
        _dir: dir,
    }
}

struct Client {
    handle: ClientHandle,
    rx: mpsc::Receiver<axum::extract::ws::Utf8Bytes>,
}

impl Client {
    /// The next message this client was sent, if one is queued.
    fn next(&mut self) -> Option<Value> {
        let text = self.rx.try_recv().ok()?;
        Some(serde_json::from_str(text.as_str()).unwrap())
    }

    /// Every message queued for it, as `signal` (answers: `signal=code`).
    fn drain(&mut self) -> Vec<String> {
        let mut out = Vec::new();
        while let Some(m) = self.next() {
            let signal = m["header"]["signal"].as_str().unwrap_or("").to_owned();
            out.push(match m["code"].as_str() {
                Some(code) => format!("{signal}={code}"),
                None => signal,
            });
        }
        out
    }

    /// Waits (on the paused clock, so at once in real time) for a notification matching.
    async fn wait_for(&mut self, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
        tokio::time::timeout(within, async {
            loop {
                let text = self.rx.recv().await.expect("client channel open");
                let m: Value = serde_json::from_str(text.as_str()).unwrap();
                if pred(&m) {
                    return m;
                }
            }
        })
        .await
        .expect("the notification comes in time")
    }
}

impl Service {
    fn client(&self, id: &str) -> Client {
        let info = ClientInfo {
            client_id: id.into(),
            name: id.into(),
            client_type: ClientType::Web,
            ip: "test".into(),
            registered_at: 0,
            username: None,
            grants: Grants::default(),
        };
        let (handle, rx) = ClientHandle::over_channel(info, self.ids.clone(), 256);
        Client { handle, rx }
    }

    /// Sends a request as `c` and returns its answer (the room answers the client itself).
    async fn request(&self, c: &mut Client, signal: &str, body: Value) -> Value {
        let message = Message::new(self.ids.message_id(), signal, body);
        let id = message.id();
        let req = Request {
            hub: self.hub.clone(),
            client: c.handle.clone(),
            message,
        };
        match self.rooms.handle(req).await {
            Ok(taoyao_signal::Reply::Deferred) => {}
            Ok(taoyao_signal::Reply::Body(b)) => return json!({"code": "0000", "body": b}),
            Err(e) => return json!({"code": e.code.as_str(), "message": e.message}),
        }
        // Deferred: the answer is on the client's channel, maybe behind notifications.
        loop {
            let m = c.next().expect("the room answered before saying so");
            if m["header"]["id"].as_u64() == Some(id) && m["code"].is_string() {
                return m;
            }
        }
    }
}

fn code(v: &Value) -> &str {
    v["code"].as_str().unwrap_or("")
}

const OFFER: &str = "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\nm=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=mid:0\r\na=sendonly\r\na=rtpmap:111 opus/48000/2\r\n";

// ---------- the scenarios ----------

#[tokio::test(start_paused = true)]
async fn answers_go_out_before_the_offers_their_request_made() {
    let s = service(|_, _| {});
    let mut a = s.client("a");
    let mut b = s.client("b");
    let r = s
        .request(&mut a, "room::enter", json!({"roomId": "r"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    let r = s
        .request(&mut b, "room::enter", json!({"roomId": "r"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    a.drain();
    b.drain();
    // a publishes: its answer, then (for b) the offer the backend made while answering.
    let r = s
        .request(
            &mut a,
            "media::publish",
            json!({"roomId": "r", "sdp": OFFER}),
        )
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(r["body"]["type"], "answer");
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(b.drain(), ["media::exchange"], "b is offered a's stream");
    // A newcomer subscribing to everything on enter: the backend offers while the enter is
    // handled; the answer is queued first.
    let mut c = s.client("c");
    let message = Message::new(s.ids.message_id(), "room::enter", json!({"roomId": "r"}));
    let req = Request {
        hub: s.hub.clone(),
        client: c.handle.clone(),
        message,
    };
    assert!(matches!(
        s.rooms.handle(req).await,
        Ok(taoyao_signal::Reply::Deferred)
    ));
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(c.drain(), ["room::enter=0000", "media::exchange"]);
    // media::subscribe likewise.
    b.drain();
    let message = Message::new(
        s.ids.message_id(),
        "media::subscribe",
        json!({"roomId": "r", "clientId": "a"}),
    );
    let req = Request {
        hub: s.hub.clone(),
        client: b.handle.clone(),
        message,
    };
    s.rooms.handle(req).await.unwrap();
    tokio::time::sleep(Duration::from_millis(1)).await;
    assert_eq!(b.drain(), ["media::subscribe=0000", "media::exchange"]);
}

#[tokio::test(start_paused = true)]
async fn the_floor_is_revoked_after_its_longest_hold() {
    let s = service(|r, _| {
        r.default_mode = MeetingMode::Intercom;
        r.floor_max_hold_ms = 5_000;
    });
    let mut a = s.client("a");
    let mut b = s.client("b");
    assert_eq!(
        code(
            &s.request(&mut a, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    assert_eq!(
        code(
            &s.request(&mut b, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    let r = s
        .request(&mut a, "room::floor", json!({"roomId": "r"}))
        .await;
    assert_eq!(r["body"]["granted"], true, "{r}");
    let started = tokio::time::Instant::now();
    let revoked = b
        .wait_for(Duration::from_secs(60), |m| {
            m["header"]["signal"] == "room::floor" && m["body"]["event"]["type"] == "revoked"
        })
        .await;
    let held = started.elapsed();
    assert_eq!(revoked["body"]["event"]["clientId"], "a");
    assert!(
        held >= Duration::from_millis(5_000) && held < Duration::from_millis(5_100),
        "revoked after {held:?}"
    );
    assert_eq!(revoked["body"]["floor"]["holder"], Value::Null);
}

#[tokio::test(start_paused = true)]
async fn an_away_anchor_has_its_grace_then_the_live_stops() {
    let s = service(|_, l| {
        l.on_anchor_drop = AnchorDrop::Pause;
        l.anchor_grace_ms = 10_000;
    });
    let mut a = s.client("a");
    let mut v = s.client("v");
    assert_eq!(
        code(
            &s.request(&mut a, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    assert_eq!(
        code(
            &s.request(&mut v, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    let r = s
        .request(&mut a, "live::start", json!({"roomId": "r"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    // The anchor's connection ends: the live pauses for the grace, then stops.
    s.rooms.client_closed(&s.hub, &a.handle).await;
    let paused = v
        .wait_for(Duration::from_secs(1), |m| {
            m["header"]["signal"] == "live::pause"
        })
        .await;
    assert_eq!(paused["body"]["resumeWithinMs"], 10_000);
    let t = tokio::time::Instant::now();
    let stopped = v
        .wait_for(Duration::from_secs(60), |m| {
            m["header"]["signal"] == "live::stop"
        })
        .await;
    let waited = t.elapsed();
    assert_eq!(stopped["body"]["reason"], "the anchor did not come back");
    assert!(
        waited >= Duration::from_millis(9_900) && waited < Duration::from_millis(10_100),
        "stopped after {waited:?}"
    );
    let names = s.seen.names();
    assert!(names.contains(&"live_finished".to_owned()), "{names:?}");
}

#[tokio::test(start_paused = true)]
async fn an_empty_room_closes_after_its_timeout() {
    let s = service(|r, _| r.empty_room_timeout_ms = 30_000);
    let mut a = s.client("a");
    let r = s
        .request(&mut a, "room::create", json!({"name": "quiet"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    assert_eq!(s.rooms.room_count(), 1);
    tokio::time::sleep(Duration::from_millis(29_900)).await;
    assert_eq!(s.rooms.room_count(), 1, "still open just before its time");
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert_eq!(s.rooms.room_count(), 0, "closed once empty for 30 s");
    assert_eq!(s.seen.names(), ["room_started", "room_finished"]);
}

#[tokio::test(start_paused = true)]
async fn shutdown_ends_recordings_the_live_and_the_members_before_the_room() {
    let s = service(|_, _| {});
    let mut a = s.client("a");
    let mut b = s.client("b");
    assert_eq!(
        code(
            &s.request(&mut a, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    assert_eq!(
        code(
            &s.request(&mut b, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    let r = s
        .request(
            &mut a,
            "media::publish",
            json!({"roomId": "r", "sdp": OFFER}),
        )
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    let r = s
        .request(
            &mut a,
            "record::start",
            json!({"roomId": "r", "clientId": "a"}),
        )
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    let file = r["body"]["recordings"][0]["file"]
        .as_str()
        .unwrap()
        .to_owned();
    let r = s
        .request(&mut a, "live::start", json!({"roomId": "r"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    s.shutdown.trigger();
    tokio::time::timeout(Duration::from_secs(5), async {
        while s.rooms.room_count() > 0 {
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    })
    .await
    .expect("the room ends");
    tokio::time::sleep(Duration::from_millis(10)).await;
    let names = s.seen.names();
    let tail: Vec<&str> = names
        .iter()
        .map(String::as_str)
        .skip_while(|n| !n.starts_with("recording_finished"))
        .collect();
    assert_eq!(
        tail,
        [
            "recording_finished:a",
            "live_finished",
            "track_unpublished:a",
            "participant_left:a",
            "participant_left:b",
            "room_finished"
        ],
        "{names:?}"
    );
    let events = s.seen.0.lock().unwrap().clone();
    let finished = events
        .iter()
        .find_map(|e| match &e.kind {
            RoomEventKind::RecordingFinished { file, bytes, .. } => Some((file.clone(), *bytes)),
            _ => None,
        })
        .unwrap();
    assert_eq!(finished, (file, 321), "the real file and its size");
    for e in &events {
        match &e.kind {
            RoomEventKind::ParticipantLeft { reason, .. } => assert_eq!(reason, "shutdown"),
            RoomEventKind::LiveFinished { reason } => assert_eq!(reason, "shutdown"),
            _ => {}
        }
    }
}

#[tokio::test(start_paused = true)]
async fn a_closed_room_lets_each_member_go_once() {
    let s = service(|_, _| {});
    let mut a = s.client("a");
    let mut b = s.client("b");
    assert_eq!(
        code(
            &s.request(&mut a, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    assert_eq!(
        code(
            &s.request(&mut b, "room::enter", json!({"roomId": "r"}))
                .await
        ),
        "0000"
    );
    let r = s
        .request(&mut a, "room::close", json!({"roomId": "r"}))
        .await;
    assert_eq!(code(&r), "0000", "{r}");
    tokio::time::sleep(Duration::from_millis(10)).await;
    assert_eq!(s.rooms.room_count(), 0);
    assert_eq!(
        s.seen.names(),
        [
            "room_started",
            "participant_joined:a",
            "participant_joined:b",
            "participant_left:a",
            "participant_left:b",
            "room_finished"
        ]
    );
    assert!(b.drain().contains(&"room::close".to_owned()));
}
