//! One room as a task: it owns the room's rules, its members' connections and its media room,
//! and takes commands over a channel, so nothing about a room is shared behind a lock but the
//! small summary `room::list` reads.
//!
//! By concern, each an `impl RoomTask` block of its own file: [`task`] (the loop: commands,
//! the backend's lane, timers, closing), `membership` (enter, leave, close, invite, expel,
//! status, broadcast), `media` (negotiation and stream signals), `stage` (meeting modes, floor,
//! mute, live) and `recording`. Request bodies are decoded once into the typed structs of
//! `requests`; every JSON shape the room sends is built in `wire`.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::Value;
use taoyao_signal::fields::decode;
use taoyao_signal::{ClientHandle, Reply, Request, SignalError, SignalHub};
use taoyao_webrtc::{ArchitectureKind, Capabilities, MediaRoom, MemberId};
use tokio::sync::oneshot;
use tokio::time::Instant;

use crate::config::{RecordingConfig, RoomsConfig};
use crate::download::DownloadLinks;
use crate::events::{MediaEventDedup, RoomEvent, RoomEventKind, RoomObserver};
use crate::member_index::MemberIndex;
use crate::modes::{MeetingMode, Modes};
use crate::rules::{Actor, RoomRules};
use crate::signals;
use taoyao_boot::Shutdown;
use taoyao_live::Live;
use taoyao_live::LiveConfig;

mod lane;
mod media;
mod membership;
mod recording;
mod requests;
mod stage;
mod task;
mod wire;
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

/// What every room of a server shares: settings, the recording slots and links, shutdown and
/// the observer. The registry makes it; a room reads it and knows nothing of the registry.
pub(crate) struct RoomEnv {
    pub(crate) config: RoomsConfig,
    pub(crate) live: LiveConfig,
    pub(crate) recording: RecordingConfig,
    /// One permit per running recording (`recording.max_concurrent`).
    pub(crate) record_slots: Arc<tokio::sync::Semaphore>,
    /// Signs the download links `record::list` hands out.
    pub(crate) links: DownloadLinks,
    pub(crate) shutdown: Shutdown,
    /// Who watches rooms from outside the protocol (webhooks, metrics); set once at wiring.
    pub(crate) observer: std::sync::OnceLock<Arc<dyn RoomObserver>>,
    /// Who is in which room, kept from the membership events this emits (what a disconnect and
    /// `presence = rooms` read).
    pub(crate) members: Mutex<MemberIndex>,
}

impl RoomEnv {
    /// Keeps the member index, then tells the observer, if any (it never waits: see
    /// [`RoomObserver`]).
    pub(crate) fn emit(&self, room: &str, kind: RoomEventKind) {
        match &kind {
            RoomEventKind::ParticipantJoined { client_id, .. } => self
                .members
                .lock()
                .expect("members lock")
                .joined(room, client_id),
            RoomEventKind::ParticipantLeft { client_id, .. } => self
                .members
                .lock()
                .expect("members lock")
                .left(room, client_id),
            _ => {}
        }
        if let Some(o) = self.observer.get() {
            o.event(RoomEvent {
                room: room.to_owned(),
                kind,
            });
        }
    }

    /// Whether anyone watches (so work done only for the observer can be skipped).
    pub(crate) fn observed(&self) -> bool {
        self.observer.get().is_some()
    }
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
    /// What `media` can do, asked once (the room never asks which architecture it is).
    caps: Capabilities,
    hub: SignalHub,
    summary: Arc<Mutex<Value>>,
    shared: Arc<RoomEnv>,
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

/// The client as the room's media knows it.
fn member_id(c: &ClientHandle) -> MemberId {
    MemberId::from(c.id())
}

fn actor(c: &ClientHandle) -> Actor<'_> {
    Actor {
        id: c.id(),
        admin: c.info().grants.admin,
    }
}

/// A rules refusal as the protocol's error.
fn refused(e: crate::rules::RoomError) -> SignalError {
    SignalError::from_coded(&e)
}

impl RoomTask {
    pub(crate) fn new(
        s: RoomSettings,
        media: Arc<dyn MediaRoom>,
        hub: SignalHub,
        shared: Arc<RoomEnv>,
        summary: Arc<Mutex<Value>>,
        lane: Lane,
    ) -> Self {
        let max_hold = Duration::from_millis(shared.config.floor_max_hold_ms);
        // The room asks `caps` in places and the facets in others: they must agree.
        debug_assert_eq!(taoyao_webrtc::facets_match_capabilities(&*media), Ok(()));
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
            caps: media.capabilities(),
            media,
            hub,
            summary,
            shared,
            closed: false,
            mesh_recordings: Vec::new(),
            lane,
            dedup: MediaEventDedup::default(),
        };
        task.publish_summary();
        task
    }

    fn publish_summary(&self) {
        *self.summary.lock().expect("summary lock") = self.summary_json();
    }

    /// Notifies every member but `except`; returns how many were told.
    fn tell_members(&self, signal: &str, body: Value, except: Option<&str>) -> usize {
        self.clients
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter(|(_, c)| c.notify(signal, body.clone()))
            .count()
    }

    /// One request: its body decoded once into the signal's typed form, then to its concern.
    async fn handle(&mut self, req: &Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        match req.message.signal() {
            signals::ROOM_ENTER => self.enter(req, decode(body)?).await,
            signals::ROOM_LEAVE => self.leave(req).await,
            signals::ROOM_CLOSE => self.close(req).await,
            signals::ROOM_STATUS => self.status(req).await,
            signals::ROOM_CLIENT_LIST => self.client_list(req),
            signals::ROOM_INVITE => self.invite(req, decode(body)?),
            signals::ROOM_EXPEL => self.expel(req, decode(body)?).await,
            signals::ROOM_BROADCAST => self.broadcast(req),
            signals::MEDIA_EXCHANGE => self.exchange(req, decode(body)?).await,
            signals::MEDIA_RESTART => self.restart(req, decode(body)?).await,
            // sfu / mcu: publishing is the offer on the member's publish connection.
            signals::MEDIA_PUBLISH if body.get("sdp").is_some() => {
                self.publish_offer(req, decode(body)?).await
            }
            s @ (signals::MEDIA_PUBLISH
            | signals::MEDIA_UNPUBLISH
            | signals::MEDIA_PAUSE
            | signals::MEDIA_RESUME
            | signals::MEDIA_SUBSCRIBE
            | signals::MEDIA_UNSUBSCRIBE) => self.stream_action(req, s, decode(body)?).await,
            signals::ROOM_MODE => self.set_mode(req, decode(body)?).await,
            signals::ROOM_PRESENTER => self.presenter(req, decode(body)?).await,
            signals::ROOM_MUTE => self.mute(req, decode(body)?).await,
            signals::ROOM_FLOOR => self.floor(req, decode(body)?).await,
            signals::LIVE_START => self.live_start(req, decode(body)?).await,
            signals::LIVE_STOP => self.live_stop(req).await,
            signals::LIVE_COHOST => self.cohost(req, decode(body)?).await,
            signals::RECORD_START => self.record_start(req, decode(body)?).await,
            signals::RECORD_STOP => self.record_stop(req, decode(body)?).await,
            signals::RECORD_LIST => self.record_list(req),
            other => Err(SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {other}"),
            )),
        }
    }
}
