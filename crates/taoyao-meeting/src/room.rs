//! One room as a task: it owns the room's rules, its members' connections and its media room,
//! and takes commands over a channel, so nothing about a room is shared behind a lock but the
//! small summary `room::list` reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use taoyao_signal::fields::{optional_str, required_str};
use taoyao_signal::{ClientHandle, Grants, Reply, Request, SignalError, SignalHub};
use taoyao_webrtc::sdp_check::media_sections;
use taoyao_webrtc::{
    ArchitectureKind, JoinOptions, MediaEvent, MediaKind, MediaRoom, Negotiation, StreamAction,
    StreamRequest, SubscribePolicy, Transport,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::events::{MediaEventDedup, RoomEventKind};
use crate::modes::{FloorEvent, MeetingMode, Modes};
use crate::rooms::RoomsShared;
use crate::rules::{Actor, RoomRules};
use crate::signals;
use taoyao_live::{AnchorDrop, Live, LiveEvent};

mod lane;
mod recording;
pub(crate) use lane::{Lane, lane};
pub(crate) use recording::list_files as list_recordings;

pub(crate) enum RoomCommand {
    /// A room-scoped signal from a client. The room task answers the client itself (so the
    /// answer is queued before anything the backend emitted while handling it), then drops
    /// `answered`'s sender with a value; a command dropped unhandled (the room closing) drops
    /// it without one, and the caller answers "the room closed".
    Signal {
        req: Request,
        answered: oneshot::Sender<()>,
    },
    /// A client's connection ended: if this connection is a member, it leaves.
    ClientGone { client: ClientHandle },
}

pub(crate) struct RoomSettings {
    pub id: String,
    pub name: String,
    pub architecture: ArchitectureKind,
    pub owner: String,
    pub password: Option<String>,
    pub max_members: usize,
    pub mode: MeetingMode,
}

pub(crate) struct RoomTask {
    id: String,
    name: String,
    architecture: ArchitectureKind,
    created_at: u64,
    rules: RoomRules,
    /// The room's member limit when it is not live (`rooms.max_members` or the named room's).
    max_members: usize,
    /// Members' connections, by client id.
    clients: HashMap<String, ClientHandle>,
    media: Arc<dyn MediaRoom>,
    hub: SignalHub,
    summary: Arc<Mutex<Value>>,
    shared: Arc<RoomsShared>,
    serial: u64,
    closed: bool,
    /// Meeting mode, presenters and the intercom floor.
    modes: Modes,
    /// Set while the room is (or was, until the next start) a live.
    live: Option<Live>,
    /// What each member's media gate was last set to: (video open, audio open).
    gates: HashMap<String, (bool, bool)>,
    /// Members a manager muted on the server (`room::mute`): (video muted, audio muted).
    muted: HashMap<String, (bool, bool)>,
    /// With the pause policy: when the away anchor's live stops.
    anchor_deadline: Option<Instant>,
    /// mesh: members whose clients were asked to record locally.
    mesh_recordings: Vec<taoyao_webrtc::RecordingInfo>,
    /// What the media backend emits, in order; this task alone delivers it.
    lane: Lane,
    /// Finished recordings are told to several members; webhooks want each once.
    dedup: MediaEventDedup,
}

/// Now, on the room's clock: tokio's (so a test with paused time moves it), in the std type the
/// pure state machines take.
fn clock_now() -> std::time::Instant {
    Instant::now().into_std()
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn actor(c: &ClientHandle) -> Actor<'_> {
    Actor {
        id: c.id(),
        admin: c.info().grants.admin,
    }
}

/// Delivers a media backend's event as a signal to the client it is for (`find` looks it up:
/// the room's members, else the hub, for a requester outside the room).
pub(crate) fn deliver(find: impl Fn(&str) -> Option<ClientHandle>, room: &str, event: MediaEvent) {
    match event {
        MediaEvent::Negotiation {
            to,
            from,
            transport,
            negotiation,
        } => {
            let mut body = negotiation.to_body();
            body.insert("roomId".into(), json!(room));
            if let Some(from) = from {
                body.insert("from".into(), json!(from));
            }
            if let Some(t) = transport {
                body.insert("transport".into(), json!(t));
            }
            if let Some(c) = find(&to) {
                c.notify(signals::MEDIA_EXCHANGE, Value::Object(body));
            }
        }
        MediaEvent::Stream {
            to,
            member,
            stream,
            kind,
            action,
        } => {
            if let Some(c) = find(&to) {
                let mut body = json!({"roomId": room, "clientId": member, "kind": kind});
                if let Some(s) = stream {
                    body["streamId"] = json!(s);
                }
                c.notify(signals::media_signal(action), body);
            }
        }
        MediaEvent::AudioLevels {
            to,
            levels,
            speaker,
        } => {
            if let Some(c) = find(&to) {
                // taoyao's form: volume in dB below full scale, 0 loudest .. -127 silent.
                let volumes: Vec<Value> = levels
                    .iter()
                    .map(|(id, dbov)| json!({"clientId": id, "volume": -i32::from(*dbov)}))
                    .collect();
                c.notify(
                    signals::MEDIA_AUDIO_VOLUME,
                    json!({"roomId": room, "volumes": volumes, "speaker": speaker}),
                );
            }
        }
        MediaEvent::RecordingStopped {
            to,
            member,
            mix,
            file,
            duration_ms,
            error,
        } => {
            if let Some(c) = find(&to) {
                let mut body = json!({"roomId": room, "file": file, "durationMs": duration_ms});
                if mix {
                    body["mix"] = json!(true);
                } else {
                    body["clientId"] = json!(member);
                }
                if let Some(e) = error {
                    body["error"] = json!(e);
                }
                c.notify(signals::RECORD_STOP, body);
            }
        }
        // The room's own: for the observer, no member is told.
        MediaEvent::StreamStarted { .. } | MediaEvent::StreamEnded { .. } => {}
        other => tracing::warn!(room, ?other, "media event with no signal"),
    }
}

impl RoomTask {
    pub(crate) fn new(
        s: RoomSettings,
        media: Arc<dyn MediaRoom>,
        hub: SignalHub,
        shared: Arc<RoomsShared>,
        serial: u64,
        summary: Arc<Mutex<Value>>,
        lane: Lane,
    ) -> Self {
        let max_hold = Duration::from_millis(shared.config.floor_max_hold_ms);
        let task = RoomTask {
            modes: Modes::new(s.mode, &s.owner, max_hold),
            live: None,
            gates: HashMap::new(),
            muted: HashMap::new(),
            anchor_deadline: None,
            rules: RoomRules::new(s.id.clone(), s.owner, s.password, s.max_members),
            max_members: s.max_members,
            id: s.id,
            name: s.name,
            architecture: s.architecture,
            created_at: now_ms(),
            clients: HashMap::new(),
            media,
            hub,
            summary,
            shared,
            serial,
            closed: false,
            mesh_recordings: Vec::new(),
            lane,
            dedup: MediaEventDedup::default(),
        };
        task.publish_summary();
        task
    }

    /// The room's entry in `room::list`.
    pub(crate) fn summary_json(&self) -> Value {
        json!({
            "roomId": self.id,
            "name": self.name,
            "architecture": self.architecture,
            "owner": self.rules.owner(),
            "hasPassword": self.rules.has_password(),
            "memberCount": self.rules.members().len(),
            "createdAt": self.created_at,
            "mode": self.modes.mode(),
            "live": self.live_json(),
        })
    }

    /// The live's state while on air, else null.
    fn live_json(&self) -> Value {
        match &self.live {
            Some(l) if l.is_on_air() => {
                let on_stage = |id: &str| id == l.anchor() || l.cohosts().any(|c| c == id);
                let viewers = self
                    .rules
                    .members()
                    .iter()
                    .filter(|m| !on_stage(&m.id))
                    .count();
                json!({
                    "anchor": l.anchor(),
                    "cohosts": l.cohosts().collect::<Vec<_>>(),
                    "viewers": viewers,
                    "paused": l.is_paused(),
                    "startedAt": l.started_at(),
                })
            }
            _ => Value::Null,
        }
    }

    /// Mode, presenters and floor, as members are told them.
    fn mode_json(&self) -> Value {
        json!({
            "roomId": self.id,
            "mode": self.modes.mode(),
            "presenters": self.modes.presenters().collect::<Vec<_>>(),
            "floor": {
                "holder": self.modes.floor_holder(),
                "queue": self.modes.queue().collect::<Vec<_>>(),
            },
        })
    }

    fn live_on_air(&self) -> Option<&Live> {
        self.live.as_ref().filter(|l| l.is_on_air())
    }

    /// May `member` publish now? On air, the anchor and co-hosts; else by the meeting mode.
    fn may_publish(&self, member: &str) -> bool {
        match self.live_on_air() {
            Some(l) => l.may_publish(member),
            None => self.modes.may_publish(member),
        }
    }

    fn publish_refusal(&self) -> SignalError {
        if self.live_on_air().is_some() {
            SignalError::forbidden(
                "viewers of a live do not publish: ask the anchor to co-host (live::cohost)",
            )
        } else {
            SignalError::forbidden("only presenters publish in broadcast mode")
        }
    }

    /// Sets every member's media gate to what the rules allow now (only the changes reach the
    /// backend): video open if the member may publish; audio also needs the floor in intercom;
    /// either stays closed while a manager has it muted.
    async fn apply_gates(&mut self) {
        let ids: Vec<String> = self.clients.keys().cloned().collect();
        for id in ids {
            let publish = self.may_publish(&id);
            let audio =
                publish && (self.live_on_air().is_some() || self.modes.audio_forwarded(&id));
            let (video_muted, audio_muted) = self.muted.get(&id).copied().unwrap_or_default();
            let want = (publish && !video_muted, audio && !audio_muted);
            if self.gates.get(&id).copied().unwrap_or((true, true)) == want {
                continue;
            }
            for (kind, open) in [(MediaKind::Video, want.0), (MediaKind::Audio, want.1)] {
                if let Err(e) = self.media.set_gate(&id, Some(kind), open).await {
                    tracing::warn!(room = self.id, member = id, "gate: {e}");
                }
            }
            self.gates.insert(id, want);
        }
    }

    /// Tells everyone about floor changes.
    fn tell_floor(&self, events: Vec<FloorEvent>) {
        for e in events {
            let (kind, member, reason) = match &e {
                FloorEvent::Granted(m) => ("granted", m, None),
                FloorEvent::Queued { member, .. } => ("queued", member, None),
                FloorEvent::Released(m) => ("released", m, None),
                FloorEvent::Revoked { member, reason } => ("revoked", member, Some(*reason)),
            };
            let mut body = self.mode_json();
            body["event"] = json!({"type": kind, "clientId": member, "reason": reason});
            self.tell_members(signals::ROOM_FLOOR, body, None);
        }
    }

    fn tell_live(&self, e: &LiveEvent) {
        let Some(l) = &self.live else { return };
        let anchor = l.anchor().to_owned();
        let (body, to): (Value, Option<&str>) = match e {
            // A request goes to the anchor; an invitation to the viewer.
            LiveEvent::Requested(v) => (
                json!({"roomId": self.id, "action": "request", "clientId": v}),
                Some(anchor.as_str()),
            ),
            LiveEvent::Invited(v) => (
                json!({"roomId": self.id, "action": "invite", "clientId": v, "from": anchor}),
                Some(v.as_str()),
            ),
            LiveEvent::Declined { viewer, by } => {
                let other = if by == &anchor {
                    viewer.as_str()
                } else {
                    anchor.as_str()
                };
                (
                    json!({"roomId": self.id, "action": "decline", "clientId": viewer, "by": by}),
                    Some(other),
                )
            }
            LiveEvent::OnStage(v) => (
                json!({"roomId": self.id, "action": "accept", "clientId": v}),
                None,
            ),
            LiveEvent::OffStage { cohost, by } => (
                json!({"roomId": self.id, "action": "end", "clientId": cohost, "by": by}),
                None,
            ),
        };
        match to {
            Some(to) => {
                if let Some(c) = self.clients.get(to) {
                    c.notify(signals::LIVE_COHOST, body);
                }
            }
            None => {
                self.tell_members(signals::LIVE_COHOST, body, None);
            }
        }
    }

    /// Takes a member off stage: its streams end, so viewers' connections drop them.
    async fn unpublish_all(&self, member: &str) {
        if self.architecture != ArchitectureKind::Mesh
            && let Err(e) = self
                .media
                .stream(member, StreamAction::Unpublish, StreamRequest::default())
                .await
        {
            tracing::debug!(room = self.id, member, "unpublish: {e}");
        }
    }

    fn stop_live(&mut self, reason: &str) {
        self.anchor_deadline = None;
        self.shared.emit(
            &self.id,
            RoomEventKind::LiveFinished {
                reason: reason.to_owned(),
            },
        );
        self.tell_members(
            signals::LIVE_STOP,
            json!({"roomId": self.id, "reason": reason}),
            None,
        );
    }

    fn publish_summary(&self) {
        *self.summary.lock().expect("summary lock") = self.summary_json();
    }

    fn members_json(&self) -> Vec<Value> {
        self.rules
            .members()
            .iter()
            .map(|m| {
                let client_type = self.clients.get(&m.id).map(|c| c.info().client_type);
                json!({
                    "clientId": m.id,
                    "name": m.name,
                    "clientType": client_type,
                    "joinedAt": m.joined_at,
                    "owner": m.id == self.rules.owner(),
                })
            })
            .collect()
    }

    async fn status_json(&self) -> Value {
        let mut v = self.summary_json();
        v["members"] = Value::Array(self.members_json());
        v["streams"] = json!(self.media.streams().await);
        let m = self.mode_json();
        v["presenters"] = m["presenters"].clone();
        v["floor"] = m["floor"].clone();
        v["recordings"] = self.recordings_json().await;
        v
    }

    /// Notifies every member but `except`; returns how many were told.
    fn tell_members(&self, signal: &str, body: Value, except: Option<&str>) -> usize {
        self.clients
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter(|(_, c)| c.notify(signal, body.clone()))
            .count()
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<RoomCommand>) {
        let empty_timeout = Duration::from_millis(self.shared.config.empty_room_timeout_ms);
        let shutdown = self.shared.shutdown.clone();
        let mut empty_since = Some(Instant::now());
        tracing::info!(room = self.id, architecture = %self.architecture, "room open");
        while !self.closed {
            let deadline = empty_since.map(|t| t + empty_timeout);
            let floor_deadline = self.modes.floor_deadline().map(Instant::from_std);
            let anchor_deadline = self.anchor_deadline;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(RoomCommand::Signal { req, answered }) => {
                        let r = self.handle(&req).await;
                        // Before the lane is read again: whatever the backend emitted while
                        // handling this request (the offer after a publish or subscribe) reaches
                        // the client after this answer.
                        match r {
                            Ok(Reply::Body(b)) => { req.reply(b); }
                            Ok(Reply::Deferred) => {}
                            Err(e) => { req.reply_error(&e); }
                        }
                        let _ = answered.send(());
                    }
                    Some(RoomCommand::ClientGone { client }) => self.client_gone(client).await,
                },
                Some(e) = self.lane.recv() => self.on_media_event(e),
                _ = sleep_until_opt(floor_deadline) => {
                    let events = self.modes.tick(clock_now());
                    self.tell_floor(events);
                    self.apply_gates().await;
                }
                _ = sleep_until_opt(anchor_deadline) => {
                    if let Some(l) = &mut self.live {
                        l.anchor_dropped(AnchorDrop::Stop);
                    }
                    self.stop_live("the anchor did not come back");
                    self.apply_gates().await;
                }
                _ = sleep_until_opt(deadline) => {
                    tracing::info!(room = self.id, "room empty for {empty_timeout:?}: closing");
                    break;
                }
                _ = shutdown.triggered() => break,
            }
            match (self.rules.is_empty(), empty_since) {
                (true, None) => empty_since = Some(Instant::now()),
                (false, Some(_)) => empty_since = None,
                _ => {}
            }
            self.publish_summary();
        }
        // Stop taking commands first, so nothing is accepted that will not be handled.
        rx.close();
        self.shared.remove(&self.id, self.serial);
        let reason = if self.shared.shutdown.is_triggered() {
            "shutdown"
        } else {
            "the room closed"
        };
        self.finish(reason).await;
        tracing::info!(
            room = self.id,
            audio_levels_dropped = self.lane.dropped(),
            "room closed"
        );
    }

    /// Ends what the room still holds, told in this order: its recordings (each file
    /// finalized), its live, its members (their streams first), then the room.
    async fn finish(&mut self, reason: &str) {
        for r in self.media.recordings().await {
            let stopped = if r.mix {
                self.media.record_mix_stop().await
            } else {
                self.media.record_stop(&r.client_id).await
            };
            if let Err(e) = stopped {
                tracing::debug!(room = self.id, file = r.file, "stopping at close: {e}");
            }
        }
        self.drain_lane();
        if self.live_on_air().is_some() {
            self.anchor_deadline = None;
            self.shared.emit(
                &self.id,
                RoomEventKind::LiveFinished {
                    reason: reason.to_owned(),
                },
            );
        }
        // In join order, so the observer hears a stable story.
        let members: Vec<String> = self.rules.members().iter().map(|m| m.id.clone()).collect();
        for m in members {
            self.leave_media(&m).await;
            self.shared.emit(
                &self.id,
                RoomEventKind::ParticipantLeft {
                    client_id: m,
                    reason: reason.to_owned(),
                },
            );
        }
        self.clients.clear();
        self.media.close().await;
        self.drain_lane();
        self.shared.emit(&self.id, RoomEventKind::RoomFinished);
    }

    /// Releases a member's media and hands on what that emitted (its recording's end, its
    /// streams' end) before the caller tells anyone the member left.
    async fn leave_media(&mut self, member: &str) {
        self.media.leave(member).await;
        self.drain_lane();
    }

    /// Delivers whatever the backend has emitted so far.
    fn drain_lane(&mut self) {
        while let Some(e) = self.lane.try_recv() {
            self.on_media_event(e);
        }
    }

    /// One backend event: the room's own (a stream started or ended) goes to the observer;
    /// the rest is delivered to the member it is for (a finished recording also to the
    /// observer, once).
    fn on_media_event(&mut self, e: MediaEvent) {
        let kind = match &e {
            MediaEvent::StreamStarted {
                member,
                stream,
                kind,
            } => Some(RoomEventKind::TrackPublished {
                client_id: member.clone(),
                stream_id: stream.clone(),
                kind: Some(*kind),
            }),
            MediaEvent::StreamEnded {
                member,
                stream,
                kind,
            } => Some(RoomEventKind::TrackUnpublished {
                client_id: member.clone(),
                stream_id: stream.clone(),
                kind: Some(*kind),
            }),
            MediaEvent::RecordingStopped { .. } if self.shared.observed() => self
                .dedup
                .recording_finished(&self.shared.recording.dir, &e),
            _ => None,
        };
        if let Some(kind) = kind {
            self.shared.emit(&self.id, kind);
        }
        let (clients, hub) = (&self.clients, &self.hub);
        deliver(
            |to| clients.get(to).cloned().or_else(|| hub.client(to)),
            &self.id,
            e,
        );
    }

    async fn handle(&mut self, req: &Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        let who = actor(&req.client);
        let err = |e: crate::rules::RoomError| SignalError::from_coded(&e);
        match req.message.signal() {
            signals::ROOM_ENTER => {
                let password = optional_str(body, "password")?;
                let subscribe = match optional_str(body, "subscribe")? {
                    None => SubscribePolicy::All,
                    Some(s) => SubscribePolicy::parse(s).ok_or_else(|| {
                        SignalError::bad_request(format!(
                            "subscribe must be all, audio, video or none, not {s:?}"
                        ))
                    })?,
                };
                // A live holds an audience (`live.max_viewers`), a meeting `max_members`.
                let capacity = match self.live_on_air() {
                    Some(_) => self.shared.live.room_capacity(self.max_members),
                    None => self.max_members,
                };
                self.rules.set_max_members(capacity);
                self.rules
                    .enter(who, &req.client.info().name, password, now_ms())
                    .map_err(err)?;
                if let Err(e) = self
                    .media
                    .join(
                        req.client.id(),
                        JoinOptions::new(req.client.info().name.clone()).with_subscribe(subscribe),
                    )
                    .await
                {
                    let _ = self.rules.leave(req.client.id());
                    return Err(SignalError::from_coded(&e));
                }
                self.clients
                    .insert(req.client.id().to_owned(), req.client.clone());
                let member = self
                    .members_json()
                    .into_iter()
                    .find(|m| m["clientId"] == req.client.id())
                    .unwrap_or(Value::Null);
                self.tell_members(
                    signals::ROOM_ENTER,
                    json!({"roomId": self.id, "client": member}),
                    Some(req.client.id()),
                );
                self.shared.emit(
                    &self.id,
                    RoomEventKind::ParticipantJoined {
                        client_id: req.client.id().to_owned(),
                        name: req.client.info().name.clone(),
                    },
                );
                // The room's rules close what the newcomer may not send (before it sends).
                self.apply_gates().await;
                let anchor_back = self.live.as_mut().is_some_and(|l| {
                    l.is_on_air() && l.anchor() == req.client.id() && l.anchor_back()
                });
                // The answer is what the room is now; the offers the subscriptions below make
                // wait on the lane until this task has sent it.
                let mut status = self.status_json().await;
                status["mayPublish"] = json!(self.may_publish(req.client.id()));
                if anchor_back {
                    self.anchor_deadline = None;
                    self.tell_members(
                        signals::LIVE_RESUME,
                        json!({"roomId": self.id, "anchor": req.client.id()}),
                        Some(req.client.id()),
                    );
                }
                if self.architecture != ArchitectureKind::Mesh && subscribe != SubscribePolicy::None
                {
                    let kind = match subscribe {
                        SubscribePolicy::AudioOnly => Some(MediaKind::Audio),
                        SubscribePolicy::VideoOnly => Some(MediaKind::Video),
                        _ => None,
                    };
                    let all = StreamRequest {
                        kind,
                        ..Default::default()
                    };
                    if let Err(e) = self
                        .media
                        .stream(req.client.id(), StreamAction::Subscribe, all)
                        .await
                    {
                        tracing::warn!(
                            room = self.id,
                            client = req.client.id(),
                            "subscribing the newcomer: {e}"
                        );
                    }
                }
                Ok(Reply::Body(status))
            }
            signals::ROOM_LEAVE => {
                self.rules.require_member(who).map_err(err)?;
                self.remove_member(req.client.id(), "left").await;
                Ok(Reply::empty())
            }
            signals::ROOM_CLOSE => {
                self.rules.close(who).map_err(err)?;
                let by = req.client.id().to_owned();
                self.tell_members(
                    signals::ROOM_CLOSE,
                    json!({"roomId": self.id, "reason": format!("closed by {by}")}),
                    Some(&by),
                );
                let reason = format!("the room was closed by {by}");
                // In join order, so the observer hears a stable story.
                let members: Vec<String> =
                    self.rules.members().iter().map(|m| m.id.clone()).collect();
                for m in members {
                    self.leave_media(&m).await;
                    self.shared.emit(
                        &self.id,
                        RoomEventKind::ParticipantLeft {
                            client_id: m,
                            reason: reason.clone(),
                        },
                    );
                }
                self.clients.clear();
                self.closed = true;
                Ok(Reply::empty())
            }
            signals::ROOM_STATUS => {
                self.rules.require_viewer(who).map_err(err)?;
                Ok(Reply::Body(self.status_json().await))
            }
            signals::ROOM_CLIENT_LIST => {
                self.rules.require_viewer(who).map_err(err)?;
                Ok(Reply::Body(
                    json!({"roomId": self.id, "clients": self.members_json()}),
                ))
            }
            signals::ROOM_INVITE => {
                let target = required_str(body, "clientId")?;
                self.rules.require_manager(who, "invite").map_err(err)?;
                let client = self.hub.client(target).ok_or_else(|| {
                    SignalError::not_found(format!("client {target} is not online"))
                })?;
                self.rules.invite(who, target).map_err(err)?;
                client.notify(
                    signals::ROOM_INVITE,
                    json!({"roomId": self.id, "name": self.name, "architecture": self.architecture,
                           "from": req.client.id(), "hasPassword": self.rules.has_password()}),
                );
                Ok(Reply::empty())
            }
            signals::ROOM_EXPEL => {
                let target = required_str(body, "clientId")?;
                self.rules.expel(who, target).map_err(err)?;
                // The rules removed the member; release its media and connection too.
                let reason = format!("expelled by {}", req.client.id());
                if let Some(c) = self.clients.remove(target) {
                    c.notify(
                        signals::ROOM_EXPEL,
                        json!({"roomId": self.id, "reason": reason}),
                    );
                }
                self.leave_media(target).await;
                self.gates.remove(target);
                self.muted.remove(target);
                self.tell_members(
                    signals::ROOM_LEAVE,
                    json!({"roomId": self.id, "clientId": target, "reason": reason}),
                    None,
                );
                self.shared.emit(
                    &self.id,
                    RoomEventKind::ParticipantLeft {
                        client_id: target.to_owned(),
                        reason,
                    },
                );
                Ok(Reply::empty())
            }
            signals::ROOM_BROADCAST => {
                // Members, and admins from outside (an operator's announcement).
                self.rules.require_viewer(who).map_err(err)?;
                let mut b = body.clone();
                b["from"] = json!(req.client.id());
                let n = self.tell_members(signals::ROOM_BROADCAST, b, Some(req.client.id()));
                Ok(Reply::Body(json!({"delivered": n})))
            }
            signals::MEDIA_EXCHANGE => {
                self.rules.require_member(who).map_err(err)?;
                let to = optional_str(body, "to")?;
                let transport = transport(body)?;
                let negotiation =
                    Negotiation::from_body(body).map_err(|e| SignalError::from_coded(&e))?;
                self.negotiate(&req.client, to, transport, negotiation)
                    .await
            }
            signals::MEDIA_RESTART => {
                self.rules.require_member(who).map_err(err)?;
                let transport = transport(body)?.ok_or_else(|| {
                    SignalError::bad_request("transport (publish or subscribe) is required")
                })?;
                self.media
                    .restart(req.client.id(), transport)
                    .await
                    .map_err(|e| SignalError::from_coded(&e))?;
                Ok(Reply::empty())
            }
            signals::MEDIA_PUBLISH if body.get("sdp").is_some() => {
                // sfu / mcu: publishing is the offer on the member's publish connection.
                self.rules.require_member(who).map_err(err)?;
                if !req.client.info().grants.publish {
                    return Err(Grants::denied("publish"));
                }
                if !self.may_publish(req.client.id()) {
                    return Err(self.publish_refusal());
                }
                let offer = Negotiation::Offer {
                    sdp: required_str(body, "sdp")?.to_owned(),
                };
                self.negotiate(&req.client, None, Some(Transport::Publish), offer)
                    .await
            }
            s @ (signals::MEDIA_PUBLISH
            | signals::MEDIA_UNPUBLISH
            | signals::MEDIA_PAUSE
            | signals::MEDIA_RESUME
            | signals::MEDIA_SUBSCRIBE
            | signals::MEDIA_UNSUBSCRIBE) => {
                self.rules.require_member(who).map_err(err)?;
                let grants = &req.client.info().grants;
                if s == signals::MEDIA_PUBLISH && !grants.publish {
                    return Err(Grants::denied("publish"));
                }
                if s == signals::MEDIA_PUBLISH && !self.may_publish(req.client.id()) {
                    return Err(self.publish_refusal());
                }
                if s == signals::MEDIA_SUBSCRIBE && !grants.subscribe {
                    return Err(Grants::denied("subscribe"));
                }
                let kind = match optional_str(body, "kind")? {
                    None => None,
                    Some(k) => Some(MediaKind::parse(k).ok_or_else(|| {
                        SignalError::bad_request(format!("kind must be audio or video, not {k:?}"))
                    })?),
                };
                let action = match s {
                    signals::MEDIA_PUBLISH => StreamAction::Publish,
                    signals::MEDIA_UNPUBLISH => StreamAction::Unpublish,
                    signals::MEDIA_PAUSE => StreamAction::Pause,
                    signals::MEDIA_RESUME => StreamAction::Resume,
                    signals::MEDIA_SUBSCRIBE => StreamAction::Subscribe,
                    _ => StreamAction::Unsubscribe,
                };
                let request = StreamRequest {
                    stream: optional_str(body, "streamId")?.map(str::to_owned),
                    client: optional_str(body, "clientId")?.map(str::to_owned),
                    kind,
                };
                if request.client.as_deref() == Some(req.client.id())
                    && matches!(action, StreamAction::Subscribe | StreamAction::Unsubscribe)
                {
                    return Err(SignalError::bad_request("you cannot subscribe to yourself"));
                }
                if let Some(c) = &request.client
                    && !self.rules.is_member(c)
                {
                    return Err(SignalError::not_found(format!(
                        "client {c} is not in this room"
                    )));
                }
                self.media
                    .stream(req.client.id(), action, request)
                    .await
                    .map_err(|e| SignalError::from_coded(&e))?;
                Ok(Reply::empty())
            }
            signals::ROOM_MODE => {
                self.rules
                    .require_manager(who, "change the mode")
                    .map_err(err)?;
                let m = required_str(body, "mode")?;
                let mode = MeetingMode::parse(m).ok_or_else(|| {
                    SignalError::bad_request(format!(
                        "unknown mode {m:?}: meeting, broadcast or intercom"
                    ))
                })?;
                let events = self.modes.set_mode(mode);
                self.tell_floor(events);
                self.apply_gates().await;
                self.tell_members(signals::ROOM_MODE, self.mode_json(), None);
                Ok(Reply::Body(self.mode_json()))
            }
            signals::ROOM_PRESENTER => {
                self.rules
                    .require_manager(who, "choose presenters")
                    .map_err(err)?;
                let target = required_str(body, "clientId")?;
                if !self.rules.is_member(target) {
                    return Err(SignalError::not_found(format!(
                        "client {target} is not in this room"
                    )));
                }
                let before: Vec<String> = self.modes.presenters().map(str::to_owned).collect();
                match optional_str(body, "action")?.unwrap_or("add") {
                    "add" => self.modes.add_presenter(target),
                    "remove" => self.modes.remove_presenter(target),
                    "handover" => self.modes.hand_over(target),
                    a => {
                        return Err(SignalError::bad_request(format!(
                            "action must be add, remove or handover, not {a:?}"
                        )));
                    }
                }
                self.apply_gates().await;
                // Presenters who lost the stage stop publishing (in broadcast mode).
                if self.modes.mode() == MeetingMode::Broadcast {
                    for gone in before {
                        if !self.modes.presenters().any(|p| p == gone) {
                            self.unpublish_all(&gone).await;
                        }
                    }
                }
                self.tell_members(signals::ROOM_PRESENTER, self.mode_json(), None);
                Ok(Reply::Body(self.mode_json()))
            }
            signals::ROOM_MUTE => self.mute(req).await,
            signals::ROOM_FLOOR => {
                self.rules.require_member(who).map_err(err)?;
                if self.modes.mode() != MeetingMode::Intercom {
                    return Err(SignalError::bad_request(
                        "the floor exists only in intercom mode",
                    ));
                }
                let now = clock_now();
                let events = match optional_str(body, "action")?.unwrap_or("request") {
                    "request" => self.modes.request_floor(req.client.id(), now),
                    "release" => self.modes.release_floor(req.client.id(), now),
                    a => {
                        return Err(SignalError::bad_request(format!(
                            "action must be request or release, not {a:?}"
                        )));
                    }
                };
                self.tell_floor(events);
                self.apply_gates().await;
                let mut reply = self.mode_json();
                reply["granted"] = json!(self.modes.floor_holder() == Some(req.client.id()));
                if let Some(p) = self.modes.queue().position(|q| q == req.client.id()) {
                    reply["position"] = json!(p + 1);
                }
                Ok(Reply::Body(reply))
            }
            signals::LIVE_START => {
                // The owner starts its own live; an admin may put a member on air as anchor.
                let (anchor, anchor_client) = match optional_str(body, "clientId")? {
                    Some(a) if who.admin => {
                        let c = self.clients.get(a).cloned().ok_or_else(|| {
                            SignalError::not_found(format!("client {a} is not in this room"))
                        })?;
                        (a.to_owned(), c)
                    }
                    Some(_) => {
                        return Err(SignalError::forbidden(
                            "only an admin names the anchor; the owner starts its own live",
                        ));
                    }
                    None => {
                        self.rules.require_member(who).map_err(err)?;
                        if req.client.id() != self.rules.owner() {
                            return Err(SignalError::forbidden(
                                "only the room's owner may start a live (as its anchor)",
                            ));
                        }
                        (req.client.id().to_owned(), req.client.clone())
                    }
                };
                if !anchor_client.info().grants.anchor {
                    return Err(Grants::denied("anchor"));
                }
                if self.architecture == ArchitectureKind::Mesh {
                    return Err(SignalError::bad_request(
                        "a live runs on sfu or mcu, not in a mesh room",
                    ));
                }
                if self.live_on_air().is_some() {
                    return Err(SignalError::bad_request("the room is already live"));
                }
                self.live = Some(Live::start(&anchor, now_ms(), self.shared.live.max_cohosts));
                // Viewers stop publishing: their streams end, their gates close.
                let viewers: Vec<String> = self
                    .clients
                    .keys()
                    .filter(|id| **id != anchor)
                    .cloned()
                    .collect();
                self.apply_gates().await;
                for v in viewers {
                    self.unpublish_all(&v).await;
                }
                let mut body = self.live_json();
                body["roomId"] = json!(self.id);
                self.tell_members(signals::LIVE_START, body.clone(), Some(req.client.id()));
                self.shared
                    .emit(&self.id, RoomEventKind::LiveStarted { anchor });
                Ok(Reply::Body(body))
            }
            signals::LIVE_STOP => {
                // Members (the live's rules say which), and admins from outside.
                self.rules.require_viewer(who).map_err(err)?;
                let live = self
                    .live
                    .as_mut()
                    .filter(|l| l.is_on_air())
                    .ok_or_else(|| SignalError::bad_request("the room is not live"))?;
                let cohosts = live
                    .stop(req.client.id(), who.admin)
                    .map_err(|e| SignalError::from_coded(&e))?;
                for c in cohosts {
                    self.unpublish_all(&c).await;
                }
                self.stop_live(&format!("stopped by {}", req.client.id()));
                self.apply_gates().await;
                Ok(Reply::empty())
            }
            signals::LIVE_COHOST => {
                self.rules.require_member(who).map_err(err)?;
                let me = req.client.id().to_owned();
                let action = required_str(body, "action")?;
                let target = optional_str(body, "clientId")?;
                let live = self
                    .live
                    .as_mut()
                    .filter(|l| l.is_on_air())
                    .ok_or_else(|| SignalError::bad_request("the room is not live"))?;
                let anchor = live.anchor().to_owned();
                // The anchor names the viewer; a viewer acts for itself.
                let viewer = match (target, me == anchor) {
                    (Some(t), _) => t.to_owned(),
                    (None, false) => me.clone(),
                    (None, true) => {
                        return Err(SignalError::bad_request("clientId: which viewer?"));
                    }
                };
                if !self.rules.is_member(&viewer) {
                    return Err(SignalError::not_found(format!(
                        "client {viewer} is not in this room"
                    )));
                }
                let event = match action {
                    "request" if viewer == me => live.request(&me),
                    "request" => {
                        return Err(SignalError::bad_request("you can only ask for yourself"));
                    }
                    "invite" => live.invite(&me, &viewer),
                    "accept" => live.accept(&me, &viewer),
                    "decline" => live.decline(&me, &viewer),
                    "end" => live.end(&me, &viewer),
                    a => {
                        return Err(SignalError::bad_request(format!(
                            "action must be request, invite, accept, decline or end, not {a:?}"
                        )));
                    }
                }
                .map_err(|e| SignalError::from_coded(&e))?;
                if let LiveEvent::OffStage { cohost, .. } = &event {
                    let cohost = cohost.clone();
                    self.apply_gates().await;
                    self.unpublish_all(&cohost).await;
                } else {
                    self.apply_gates().await;
                }
                self.tell_live(&event);
                Ok(Reply::Body(
                    json!({"roomId": self.id, "live": self.live_json()}),
                ))
            }
            signals::RECORD_START => self.record_start(req).await,
            signals::RECORD_STOP => self.record_stop(req).await,
            signals::RECORD_LIST => self.record_list(req),
            other => Err(SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {other}"),
            )),
        }
    }

    /// Hands a negotiation message to the media backend; an answer it makes is the reply.
    async fn negotiate(
        &self,
        client: &ClientHandle,
        to: Option<&str>,
        transport: Option<Transport>,
        negotiation: Negotiation,
    ) -> Result<Reply, SignalError> {
        self.check_sdp(client, &negotiation)?;
        let answer = self
            .media
            .exchange(client.id(), to, transport, negotiation)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(match answer {
            Some(n) => {
                let mut body = n.to_body();
                body.insert("roomId".into(), json!(self.id));
                if let Some(t) = transport {
                    body.insert("transport".into(), json!(t));
                }
                Reply::Body(Value::Object(body))
            }
            None => Reply::empty(),
        })
    }

    /// Holds an offer or answer to the sender's grants and to the published-tracks limit.
    fn check_sdp(&self, client: &ClientHandle, n: &Negotiation) -> Result<(), SignalError> {
        let (Negotiation::Offer { sdp } | Negotiation::Answer { sdp }) = n else {
            return Ok(());
        };
        let sections = media_sections(sdp).map_err(|e| SignalError::from_coded(&e))?;
        let grants = &client.info().grants;
        let sending = sections
            .iter()
            .filter(|m| m.sends && m.kind != "application")
            .count();
        if sending > 0 && !grants.publish {
            return Err(Grants::denied("publish (the SDP sends media)"));
        }
        if sending > 0 && !self.may_publish(client.id()) {
            return Err(self.publish_refusal());
        }
        if sections
            .iter()
            .any(|m| m.receives && m.kind != "application")
            && !grants.subscribe
        {
            return Err(Grants::denied("subscribe (the SDP receives media)"));
        }
        let max = self.shared.config.max_tracks_per_member;
        if sending > max {
            return Err(SignalError::forbidden(format!(
                "{sending} sending media sections: at most {max} per member (rooms.max_tracks_per_member)"
            )));
        }
        Ok(())
    }

    /// A member leaves (asked, or its connection ended): media released, others told.
    async fn remove_member(&mut self, id: &str, reason: &str) {
        if self.rules.leave(id).is_err() {
            return;
        }
        self.clients.remove(id);
        self.gates.remove(id);
        self.muted.remove(id);
        self.mesh_recordings.retain(|r| r.client_id != id);
        self.leave_media(id).await;
        self.tell_members(
            signals::ROOM_LEAVE,
            json!({"roomId": self.id, "clientId": id, "reason": reason}),
            None,
        );
        self.shared.emit(
            &self.id,
            RoomEventKind::ParticipantLeft {
                client_id: id.to_owned(),
                reason: reason.to_owned(),
            },
        );
        let floor = self.modes.member_left(id, clock_now());
        self.tell_floor(floor);
        let on_air_anchor = self
            .live_on_air()
            .is_some_and(|l| l.anchor() == id && !l.is_paused());
        if on_air_anchor {
            let policy = self.shared.live.on_anchor_drop;
            let paused = self.live.as_mut().is_some_and(|l| l.anchor_dropped(policy));
            if paused {
                let grace = Duration::from_millis(self.shared.live.anchor_grace_ms);
                self.anchor_deadline = Some(Instant::now() + grace);
                self.tell_members(
                    signals::LIVE_PAUSE,
                    json!({"roomId": self.id, "reason": format!("the anchor {reason}"),
                           "resumeWithinMs": grace.as_millis() as u64}),
                    None,
                );
            } else {
                self.stop_live(&format!("the anchor {reason}"));
            }
        } else if let Some(e) = self.live.as_mut().and_then(|l| l.member_left(id)) {
            self.tell_live(&e);
        }
        self.apply_gates().await;
    }

    /// `room::mute`: a manager closes (or reopens) a member's audio and/or video on the server
    /// through the room's gate, and the room is told; the member's own publishing is untouched,
    /// so unmuting resumes it. Not in mesh: media does not pass through the server there.
    async fn mute(&mut self, req: &Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        self.rules
            .require_manager(actor(&req.client), "mute members")
            .map_err(|e| SignalError::from_coded(&e))?;
        let target = required_str(body, "clientId")?;
        if !self.rules.is_member(target) {
            return Err(SignalError::not_found(format!(
                "client {target} is not in this room"
            )));
        }
        let kind = match optional_str(body, "kind")? {
            None => None,
            Some(k) => Some(MediaKind::parse(k).ok_or_else(|| {
                SignalError::bad_request(format!("kind must be audio or video, not {k:?}"))
            })?),
        };
        let muted = match body.get("muted") {
            None | Some(Value::Null) => true,
            Some(Value::Bool(b)) => *b,
            Some(_) => return Err(SignalError::bad_request("muted must be true or false")),
        };
        if self.architecture == ArchitectureKind::Mesh {
            return Err(SignalError::bad_request(
                "a mesh room's media does not pass through the server: it cannot be muted there",
            ));
        }
        let entry = self.muted.entry(target.to_owned()).or_default();
        if kind != Some(MediaKind::Audio) {
            entry.0 = muted;
        }
        if kind != Some(MediaKind::Video) {
            entry.1 = muted;
        }
        let (video, audio) = *entry;
        if !video && !audio {
            self.muted.remove(target);
        }
        self.apply_gates().await;
        let note = json!({"roomId": self.id, "clientId": target, "audio": audio, "video": video,
                          "by": req.client.id()});
        self.tell_members(signals::ROOM_MUTE, note.clone(), None);
        Ok(Reply::Body(note))
    }

    async fn client_gone(&mut self, client: ClientHandle) {
        let is_this_connection = self
            .clients
            .get(client.id())
            .is_some_and(|c| c.same_connection(&client));
        if is_this_connection {
            self.remove_member(client.id(), "disconnected").await;
        }
    }
}

fn transport(body: &Value) -> Result<Option<Transport>, SignalError> {
    match optional_str(body, "transport")? {
        None => Ok(None),
        Some(t) => Transport::parse(t).map(Some).ok_or_else(|| {
            SignalError::bad_request(format!("transport must be publish or subscribe, not {t:?}"))
        }),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
