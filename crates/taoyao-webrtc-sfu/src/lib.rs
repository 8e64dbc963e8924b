//! The SFU implementation of the `MediaArchitecture` seam: every member sends its media once to
//! the server, and the server forwards it to each subscriber. It knows rooms only as ids and
//! never formats a signaling message.
//!
//! Transport model: two peer connections per member, whatever the number of streams.
//! - **publish**: the member offers (`media::publish` with its SDP, or `media::exchange` with
//!   `transport: publish`), the server answers. A renegotiation (a track added) is a new offer.
//! - **subscribe**: the server offers whenever the member's subscriptions change; the member
//!   answers (`media::exchange` `transport: subscribe`, `type: answer`). While an offer waits for
//!   its answer, further changes are collected and offered together after it: the server is the
//!   only offerer on this connection, so there is never glare.
//!
//! Each published track runs one `Forwarder` (taoyao-webrtc); each subscription is one sink with
//! its own local track, SSRC and payload type. Keyframe requests from subscribers reach the
//! publisher rate-limited; NACKs from subscribers are answered from the send buffer of the
//! subscriber's connection; TWCC feedback and receiver reports go to publishers from the
//! default interceptors.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use crate::forwarder::{AudioLevel, Forwarder, LevelMeter, Sink};
use crate::peer::{OnState, OnTrack, Peer, PeerEvents, PeerFactory, codec_for};
use crate::recorder::{Recording, Taps};
use async_trait::async_trait;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpRtxParameters, RtpCodecKind,
};
use taoyao_media::levels::LevelWindow;
use taoyao_media::record::Tracks;
use taoyao_webrtc::{
    ArchitectureKind, Capabilities, Counterpart, JoinOptions, MediaArchitecture, MediaError,
    MediaEvent, MediaEvents, MediaGates, MediaKind, MediaRecorder, MediaRoom, MediaRoomStats,
    MemberId, Negotiation, RecordRequest, RecordingInfo, RoomId, StreamAction, StreamId,
    StreamInfo, StreamRequest, SubscribePolicy, Transport, WebrtcConfig,
};
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::RTCPeerConnectionState;
use webrtc::rtp_transceiver::{RTCRtpTransceiverDirection, RTCRtpTransceiverInit, RtpSender};

pub mod audio_path;
pub mod forwarder;
pub mod peer;
pub mod recorder;
pub mod rtcp;

use audio_path::{AudioOutput, AudioPath};

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> MediaError {
    MediaError::Backend(taoyao_webrtc::source(e))
}

/// Counters across every room of one SFU (tests assert cleanup with them).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SfuStats {
    pub peer_connections: usize,
    /// Forwarder and feedback tasks running.
    pub tasks: usize,
}

/// The SFU architecture: shares one peer-connection factory across rooms.
pub struct Sfu {
    factory: Arc<PeerFactory>,
    tasks: Arc<AtomicUsize>,
}

impl Sfu {
    pub fn new(config: WebrtcConfig) -> Self {
        Self::with_factory(Arc::new(PeerFactory::new(config)))
    }

    /// An SFU over an existing factory (the mcu backend shares one with it, and opens its rooms
    /// on an `Sfu` of its own with [`Sfu::open_room_as`]).
    pub fn with_factory(factory: Arc<PeerFactory>) -> Self {
        Sfu {
            factory,
            tasks: Arc::new(AtomicUsize::new(0)),
        }
    }

    /// The counter of this backend's tasks (`stats().tasks`): a backend built on it counts its
    /// own tasks here too.
    pub fn task_counter(&self) -> &Arc<AtomicUsize> {
        &self.tasks
    }

    pub fn factory(&self) -> &Arc<PeerFactory> {
        &self.factory
    }

    /// The media totals of the factory this backend runs on (shared with an mcu built on the
    /// same factory: read them from one of the two).
    pub fn media_counters(&self) -> crate::forwarder::MediaCountersSnapshot {
        self.factory.counters().snapshot()
    }

    pub fn stats(&self) -> SfuStats {
        SfuStats {
            peer_connections: self.factory.open_count(),
            tasks: self.tasks.load(Ordering::Relaxed),
        }
    }
}

#[async_trait]
impl MediaArchitecture for Sfu {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Sfu
    }

    async fn open_room(
        &self,
        room: &RoomId,
        events: MediaEvents,
    ) -> Result<Arc<dyn MediaRoom>, MediaError> {
        Ok(Arc::new(self.open_room_as(
            room,
            events,
            ArchitectureKind::Sfu,
            None,
        )))
    }
}

impl Sfu {
    /// Opens a room for a backend built on this one (the mcu): its refusals name
    /// `architecture` (the room its members are in), and its audio goes to `audio` instead of
    /// being forwarded (the mcu's mixer), or is forwarded like video when `None`.
    pub fn open_room_as(
        &self,
        room: &RoomId,
        events: MediaEvents,
        architecture: ArchitectureKind,
        audio: Option<Arc<dyn AudioPath>>,
    ) -> SfuRoom {
        let level_reports = audio.is_none();
        let shared = Arc::new_cyclic(|me| Shared {
            me: me.clone(),
            room: room.to_string(),
            factory: self.factory.clone(),
            events: events.clone(),
            tasks: self.tasks.clone(),
            keyframe_interval: Duration::from_millis(
                self.factory.config().keyframe_request_interval_ms,
            ),
            state: Mutex::new(State::default()),
            negotiations: AtomicU64::new(0),
            kind: architecture,
            audio,
            stop: tokio_util::sync::CancellationToken::new(),
        });
        let interval = self.factory.config().audio_level_interval_ms;
        if level_reports && interval > 0 {
            // Where audio goes to a path (the mcu's mixer) the path reports levels; here they
            // come from what publishers send.
            spawn_level_reports(&shared, Duration::from_millis(interval));
        }
        SfuRoom { shared }
    }
}

/// Every `interval`, tells each member of an sfu room the room's audio levels and active
/// speaker (as the mcu's mixer does), from the RFC 6464 levels publishers put on their audio;
/// a silent interval once, then nothing until someone speaks again. Ends when the room closes.
fn spawn_level_reports(shared: &Arc<Shared>, interval: Duration) {
    let weak = Arc::downgrade(shared);
    let stop = shared.stop.clone();
    let count = crate::forwarder::TaskCount::start(&shared.tasks);
    let mut window = LevelWindow::<MemberId>::new(1, SILENCE_DBOV);
    tokio::spawn(async move {
        let _count = count;
        let mut tick = tokio::time::interval(interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            tokio::select! {
                _ = stop.cancelled() => break,
                _ = tick.tick() => {}
            }
            let Some(shared) = weak.upgrade() else { break };
            let (meters, members): (Vec<(MemberId, Arc<LevelMeter>)>, Vec<MemberId>) = {
                let st = shared.state.lock().expect("state lock");
                (
                    st.streams
                        .values()
                        .filter_map(|s| Some((s.owner.clone(), s.level.clone()?)))
                        .collect(),
                    st.members.keys().cloned().collect(),
                )
            };
            for (owner, meter) in meters {
                let (loudest, speaking) = meter.take();
                window.record(owner, loudest, speaking);
            }
            let Some(report) = window.report() else {
                continue;
            };
            let levels = Arc::new(report.levels);
            for to in members {
                shared.events.emit(MediaEvent::AudioLevels {
                    to,
                    levels: levels.clone(),
                    speaker: report.speaker.clone(),
                });
            }
        }
    });
}

/// Louder than this (RFC 6464 dBov, smaller is louder) is speaking, as in the mcu's mixer.
const SILENCE_DBOV: u8 = taoyao_media::levels::DEFAULT_SILENCE_DBOV;

/// A published stream.
struct Stream {
    id: StreamId,
    owner: MemberId,
    kind: MediaKind,
    forwarder: Forwarder,
    /// sfu audio whose publisher sends RFC 6464 levels.
    level: Option<Arc<LevelMeter>>,
}

impl Stream {
    fn info(&self) -> StreamInfo {
        StreamInfo {
            stream_id: self.id.clone(),
            client_id: self.owner.clone(),
            kind: self.kind,
            paused: self.forwarder.is_paused(),
            bytes_received: self.forwarder.bytes_in(),
        }
    }
}

struct Subscription {
    stream: Arc<Stream>,
    track: Arc<TrackLocalStaticRTP>,
    sender: Arc<dyn RtpSender>,
    /// Set once the member's answer made the sender's SSRC and payload type known.
    sink: Option<Arc<Sink>>,
    /// Paused before the sink existed.
    paused: bool,
    /// The sink is in the stream's forwarder.
    attached: bool,
}

#[derive(Default)]
struct SubscribeSide {
    peer: Option<Arc<Peer>>,
    /// True once the subscribe connection is connected: packets written before would be lost
    /// (no SRTP keys yet), so sinks are attached to their forwarders only then.
    connected: Option<tokio::sync::watch::Receiver<bool>>,
    subs: HashMap<StreamId, Subscription>,
    /// With an audio path: the member's audio from it (track, sender), and whether the path
    /// has it yet.
    path_track: Option<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>, bool)>,
    awaiting_answer: bool,
    dirty: bool,
    /// Offers made so far: an answer timer gives up only on the offer it was started for.
    offers: u64,
    /// An offer went unanswered for `webrtc.subscribe_answer_timeout_ms`: the connection was
    /// closed; subscriptions are kept (their changes collected) until `media::restart`.
    timed_out: bool,
}

struct Member {
    id: MemberId,
    policy: SubscribePolicy,
    publish: tokio::sync::Mutex<Option<Arc<Peer>>>,
    subscribe: tokio::sync::Mutex<SubscribeSide>,
    next_stream: AtomicU32,
    left: AtomicBool,
    /// Closed by the room's rules ([`MediaGates::set_gate`]): video, audio.
    gated: [AtomicBool; 2],
    /// With an audio path, the member's audio goes there; recordings tap it here.
    audio_taps: Taps,
    audio_published: AtomicBool,
}

fn gate_index(kind: MediaKind) -> usize {
    match kind {
        MediaKind::Video => 0,
        MediaKind::Audio => 1,
    }
}

#[derive(Default)]
struct State {
    members: BTreeMap<MemberId, Arc<Member>>,
    streams: BTreeMap<StreamId, Arc<Stream>>,
    /// Recordings in progress, by member.
    recordings: BTreeMap<MemberId, Arc<Recorded>>,
}

/// A member's recording and the packet sources it taps.
struct Recorded {
    recording: Recording,
    streams: Vec<Arc<Stream>>,
    member: Arc<Member>,
    /// Why it ended early, told with `record::stop` (see [`Shared::recording_outgrown`]).
    note: std::sync::OnceLock<String>,
}

impl Recorded {
    fn detach(&self) {
        for s in &self.streams {
            s.forwarder.remove_tap(&self.recording.tap);
        }
        self.member.audio_taps.remove(&self.recording.tap);
    }
}

struct Shared {
    /// Itself, for the answer timers it starts.
    me: std::sync::Weak<Shared>,
    room: String,
    factory: Arc<PeerFactory>,
    events: MediaEvents,
    tasks: Arc<AtomicUsize>,
    keyframe_interval: Duration,
    state: Mutex<State>,
    negotiations: AtomicU64,
    kind: ArchitectureKind,
    /// Where the room's audio goes instead of being forwarded (the mcu's mixer).
    audio: Option<Arc<dyn AudioPath>>,
    /// Cancelled when the room closes (ends the level reports).
    stop: tokio_util::sync::CancellationToken,
}

/// One room of an [`Sfu`] ([`Sfu::open_room_as`]); a [`MediaRoom`].
pub struct SfuRoom {
    shared: Arc<Shared>,
}

impl Shared {
    /// A member being recorded published a new track. A WebM's tracks are fixed once its
    /// header is written, and a second source of the same kind cannot share a track (two
    /// timelines, two sequence spaces), so the recording ends here, finalized, and the room is
    /// told why in `record::stop`'s `error`; a new recording takes every track.
    fn recording_outgrown(&self, member: &str, kind: MediaKind) {
        let rec = {
            let mut st = self.state.lock().expect("state lock");
            st.recordings.remove(member)
        };
        let Some(rec) = rec else { return };
        let kind = if kind == MediaKind::Video {
            "video"
        } else {
            "audio"
        };
        let _ = rec.note.set(format!(
            "{member} published a new {kind} track after the recording started; a recording keeps \
             the tracks it started with, so it ended here (start a new one to record every track)"
        ));
        tracing::info!(
            room = self.room,
            member,
            "recording ended: a new {kind} track"
        );
        rec.recording.request_stop();
    }

    fn member(&self, id: &str) -> Result<Arc<Member>, MediaError> {
        self.state
            .lock()
            .expect("state lock")
            .members
            .get(id)
            .cloned()
            .ok_or_else(|| MediaError::NotJoined(id.into()))
    }

    fn member_ids(&self) -> Vec<MemberId> {
        self.state
            .lock()
            .expect("state lock")
            .members
            .keys()
            .cloned()
            .collect()
    }

    fn others(&self, id: &str) -> Vec<Arc<Member>> {
        self.state
            .lock()
            .expect("state lock")
            .members
            .values()
            .filter(|m| m.id != id)
            .cloned()
            .collect()
    }

    fn announce(&self, stream: &Stream, action: StreamAction) {
        for m in self.others(&stream.owner) {
            self.events.emit(MediaEvent::Stream {
                to: m.id.clone(),
                member: stream.owner.clone(),
                stream: Some(stream.id.clone()),
                kind: Some(stream.kind),
                action,
            });
        }
    }

    /// A track arrived on a member's publish connection: it becomes a stream, is announced, and
    /// members whose policy wants it are subscribed.
    async fn track_published(self: Arc<Self>, owner: Arc<Member>, track: Arc<dyn TrackRemote>) {
        let kind = match track.kind().await {
            RtpCodecKind::Video => MediaKind::Video,
            RtpCodecKind::Audio => MediaKind::Audio,
            other => {
                tracing::warn!(
                    room = self.room,
                    ?other,
                    "ignoring a track that is neither audio nor video"
                );
                return;
            }
        };
        if kind == MediaKind::Audio
            && let Some(audio) = self.audio.clone()
        {
            // The room's audio goes to its path, not to forwarders.
            let count = crate::forwarder::TaskCount::start(&self.tasks);
            let id = owner.id.clone();
            // Each audio track is its own input to the path: a new one (published again, from
            // a new connection) has its own sequence space.
            let track_no = owner.next_stream.fetch_add(1, Ordering::Relaxed);
            if !owner.audio_published.swap(true, Ordering::AcqRel) {
                // A recording started without audio has no audio track to put it in.
                self.recording_outgrown(&owner.id, kind);
            }
            tokio::spawn(async move {
                let _count = count;
                while let Some(ev) = track.poll().await {
                    if let webrtc::media_stream::track_remote::TrackRemoteEvent::OnRtpPacket(p) =
                        &ev
                    {
                        owner.audio_taps.offer(MediaKind::Audio, p);
                    }
                    match ev {
                        webrtc::media_stream::track_remote::TrackRemoteEvent::OnRtpPacket(p)
                            if !audio.packet(
                                &id,
                                track_no,
                                p.header.sequence_number,
                                p.payload.clone(),
                            ) =>
                        {
                            break;
                        }
                        webrtc::media_stream::track_remote::TrackRemoteEvent::OnEnded => break,
                        _ => {}
                    }
                }
                audio.end_track(&id, track_no).await;
            });
            return;
        }
        let n = owner.next_stream.fetch_add(1, Ordering::Relaxed);
        let id = StreamId::from(format!(
            "{}:{}{n}",
            owner.id,
            if kind == MediaKind::Video {
                "video"
            } else {
                "audio"
            }
        ));
        // sfu audio: the levels its publisher offered to send feed the room's active speaker.
        let ext_id = match kind {
            MediaKind::Audio => owner
                .publish
                .lock()
                .await
                .as_ref()
                .and_then(|p| p.audio_level_id()),
            MediaKind::Video => None,
        };
        let level = ext_id.map(|ext_id| AudioLevel {
            ext_id,
            meter: Arc::new(LevelMeter::new(SILENCE_DBOV)),
        });
        let meter = level.as_ref().map(|l| l.meter.clone());
        let forwarder = Forwarder::spawn(
            id.clone(),
            kind,
            track,
            self.keyframe_interval,
            self.tasks.clone(),
            level,
            self.factory.counters().clone(),
        );
        let stream = Arc::new(Stream {
            id: id.clone(),
            owner: owner.id.clone(),
            kind,
            forwarder,
            level: meter,
        });
        {
            let mut st = self.state.lock().expect("state lock");
            // Under the state lock, so a concurrent set_gate sees either the flag or the stream.
            if owner.gated[gate_index(kind)].load(Ordering::Acquire) {
                stream.forwarder.set_gated(true);
            }
            if owner.left.load(Ordering::Acquire) || !st.members.contains_key(&owner.id) {
                stream.forwarder.stop();
                return;
            }
            st.streams.insert(id.clone(), stream.clone());
        }
        self.recording_outgrown(&owner.id, kind);
        tracing::info!(room = self.room, stream = %id, "stream published");
        // For the room itself, once, whoever else is here to be told.
        self.events.emit(MediaEvent::StreamStarted {
            member: owner.id.clone(),
            stream: id.clone(),
            kind,
        });
        self.announce(&stream, StreamAction::Publish);
        for m in self.others(&owner.id) {
            if m.policy.wants(kind)
                && let Err(e) = self.subscribe(&m, &stream).await
            {
                tracing::warn!(
                    room = self.room,
                    member = %m.id,
                    stream = %id,
                    "auto-subscribe failed: {e}"
                );
            }
        }
    }

    /// With an audio path: adds the member's track from it to its subscribe connection (once).
    async fn ensure_path_track(&self, m: &Arc<Member>) -> Result<(), MediaError> {
        let mut side = m.subscribe.lock().await;
        if side.path_track.is_some() || m.left.load(Ordering::Acquire) {
            return Ok(());
        }
        let peer = self.subscribe_peer(&mut side).await?;
        side.path_track = Some(add_path_track(&peer, &m.id).await?);
        self.renegotiate(m, &mut side).await
    }

    async fn subscribe_peer(&self, side: &mut SubscribeSide) -> Result<Arc<Peer>, MediaError> {
        if let Some(p) = &side.peer {
            return Ok(p.clone());
        }
        let (tx, rx) = tokio::sync::watch::channel(false);
        let on_state: OnState = Arc::new(move |s| {
            let _ = tx.send(s == RTCPeerConnectionState::Connected);
        });
        let p = self
            .factory
            .create(PeerEvents {
                on_track: None,
                on_state: Some(on_state),
            })
            .await?;
        side.peer = Some(p.clone());
        side.connected = Some(rx);
        Ok(p)
    }

    async fn subscribe(&self, m: &Arc<Member>, stream: &Arc<Stream>) -> Result<(), MediaError> {
        if stream.owner == m.id {
            return Err(MediaError::SubscribeToOwn);
        }
        let mut side = m.subscribe.lock().await;
        if m.left.load(Ordering::Acquire) || side.subs.contains_key(&stream.id) {
            return Ok(());
        }
        let peer = self.subscribe_peer(&mut side).await?;
        let (track, sender) = add_send_track(&peer, &stream.owner, &stream.id, stream.kind).await?;
        side.subs.insert(
            stream.id.clone(),
            Subscription {
                stream: stream.clone(),
                track,
                sender,
                sink: None,
                paused: false,
                attached: false,
            },
        );
        self.renegotiate(m, &mut side).await
    }

    async fn unsubscribe(&self, m: &Arc<Member>, stream_id: &str) -> Result<bool, MediaError> {
        let mut side = m.subscribe.lock().await;
        let Some(sub) = side.subs.remove(stream_id) else {
            return Ok(false);
        };
        if let Some(sink) = &sub.sink {
            sub.stream.forwarder.remove_sink(sink);
        }
        if let Some(peer) = side.peer.clone() {
            let _ = peer.pc.remove_track(&sub.sender).await;
            if !m.left.load(Ordering::Acquire) {
                self.renegotiate(m, &mut side).await?;
            }
        }
        Ok(true)
    }

    /// Offers the member's current subscriptions, or marks that another offer is due once the
    /// outstanding one is answered.
    async fn renegotiate(
        &self,
        m: &Arc<Member>,
        side: &mut SubscribeSide,
    ) -> Result<(), MediaError> {
        if side.awaiting_answer || side.timed_out {
            side.dirty = true;
            return Ok(());
        }
        let Some(peer) = side.peer.clone() else {
            return Ok(());
        };
        let sdp = peer.offer().await?;
        side.awaiting_answer = true;
        side.dirty = false;
        side.offers += 1;
        self.answer_deadline(m, side.offers);
        self.negotiations.fetch_add(1, Ordering::Relaxed);
        self.events.emit(MediaEvent::Negotiation {
            to: m.id.clone(),
            from: None,
            transport: Some(Transport::Subscribe),
            negotiation: Negotiation::Offer { sdp },
        });
        Ok(())
    }

    /// Gives up on subscribe offer number `offer` to `m` if it is still unanswered after
    /// `webrtc.subscribe_answer_timeout_ms` (the timer ends with the room).
    fn answer_deadline(&self, m: &Arc<Member>, offer: u64) {
        let after = Duration::from_millis(self.factory.config().subscribe_answer_timeout_ms);
        let (me, member, stop) = (self.me.clone(), m.clone(), self.stop.clone());
        tokio::spawn(async move {
            tokio::select! {
                _ = stop.cancelled() => return,
                _ = tokio::time::sleep(after) => {}
            }
            if let Some(shared) = me.upgrade() {
                shared.answer_timed_out(&member, offer, after).await;
            }
        });
    }

    /// The member did not answer offer number `offer`: while it waits, no other offer can
    /// reach it, so the server closes the subscribe connection (forwarding to it stops), keeps
    /// the subscriptions, and tells the member, who asks for a new connection with
    /// `media::restart` (see [`Shared::restart_subscribe`]).
    async fn answer_timed_out(&self, m: &Arc<Member>, offer: u64, after: Duration) {
        let mut side = m.subscribe.lock().await;
        if m.left.load(Ordering::Acquire) || !side.awaiting_answer || side.offers != offer {
            return;
        }
        let Some(peer) = side.peer.take() else { return };
        close_subscribe_side(&mut side);
        side.timed_out = true;
        side.dirty = true;
        drop(side);
        peer.close().await;
        let after_ms = u64::try_from(after.as_millis()).unwrap_or(u64::MAX);
        tracing::info!(
            room = self.room,
            member = %m.id,
            after_ms,
            "subscribe offer unanswered: subscribe connection closed"
        );
        self.events.emit(MediaEvent::SubscribeTimedOut {
            to: m.id.clone(),
            after_ms,
        });
    }

    async fn subscribe_answer(&self, m: &Arc<Member>, sdp: String) -> Result<(), MediaError> {
        let mut side = m.subscribe.lock().await;
        if side.timed_out {
            return Err(MediaError::AnswerTimedOut {
                after_ms: self.factory.config().subscribe_answer_timeout_ms,
            });
        }
        let peer = side.peer.clone().ok_or(MediaError::NoOfferWaiting)?;
        if !side.awaiting_answer {
            return Err(MediaError::NoOfferWaiting);
        }
        if peer.is_replaced_by(&sdp) {
            return Err(MediaError::AnswerFromOtherConnection);
        }
        peer.accept_answer(sdp).await?;
        side.awaiting_answer = false;
        self.negotiations.fetch_add(1, Ordering::Relaxed);
        for sub in side.subs.values_mut().filter(|s| s.sink.is_none()) {
            let params = sub.sender.get_parameters().await.map_err(internal)?;
            let mime = codec_for(sub.stream.kind).mime_type;
            let pt = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(&mime))
                .map(|c| c.payload_type)
                .ok_or_else(|| MediaError::CodecRefused(mime.to_string()))?;
            let ssrc = params
                .encodings
                .first()
                .and_then(|e| e.rtp_coding_parameters.ssrc)
                .ok_or_else(|| MediaError::Internal("sender without an SSRC".into()))?;
            let sink = Sink::new(m.id.clone(), sub.track.clone(), ssrc, pt);
            if sub.paused {
                sub.stream.forwarder.set_sink_paused(&sink, true);
            }
            sub.sink = Some(sink);
        }
        let connected = side.connected.clone();
        if side.dirty {
            self.renegotiate(m, &mut side).await?;
        }
        drop(side);
        // Attach the new sinks once the connection can carry them.
        let member = m.clone();
        let audio = self.audio.clone();
        let attach_delay = Duration::from_millis(self.factory.config().attach_delay_ms);
        tokio::spawn(async move {
            if let Some(mut c) = connected {
                let _ = tokio::time::timeout(Duration::from_secs(30), c.wait_for(|up| *up)).await;
            }
            tokio::time::sleep(attach_delay).await;
            let mut side = member.subscribe.lock().await;
            if let (Some(audio), Some((track, sender, attached))) =
                (&audio, side.path_track.as_mut())
                && !*attached
                && let Ok(params) = sender.get_parameters().await
            {
                let pt = params
                    .rtp_parameters
                    .codecs
                    .iter()
                    .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case("audio/opus"))
                    .map(|c| c.payload_type);
                let ssrc = params
                    .encodings
                    .first()
                    .and_then(|e| e.rtp_coding_parameters.ssrc);
                if let (Some(pt), Some(ssrc)) = (pt, ssrc) {
                    let out = AudioOutput {
                        track: track.clone(),
                        ssrc,
                        payload_type: pt,
                    };
                    audio.output(&member.id, out);
                    *attached = true;
                }
            }
            for sub in side.subs.values_mut() {
                if let Some(sink) = &sub.sink
                    && !sub.attached
                {
                    sub.stream.forwarder.add_sink(sink.clone());
                    if sub.paused {
                        sub.stream.forwarder.set_sink_paused(sink, true);
                    }
                    sub.attached = true;
                }
            }
        });
        Ok(())
    }

    /// Closes a member's publish connection and ends every stream it carried (announced as
    /// unpublished; subscribers' copies removed). mcu audio leaves the mix as its track ends.
    async fn end_publish_connection(&self, m: &Arc<Member>, peer: Arc<Peer>) {
        peer.close().await;
        let own = self
            .select_streams(&StreamRequest::default(), None, Some(&m.id))
            .unwrap_or_default();
        for s in own {
            self.remove_stream(s).await;
        }
    }

    /// Replaces a member's subscribe connection with a new one carrying the same
    /// subscriptions (and mix), and offers it: the member answers from a new connection.
    async fn restart_subscribe(&self, m: &Arc<Member>) -> Result<(), MediaError> {
        let mut side = m.subscribe.lock().await;
        let old = side.peer.take();
        if old.is_none() && !side.timed_out {
            return Err(MediaError::NothingToRestart(Transport::Subscribe));
        }
        close_subscribe_side(&mut side);
        side.timed_out = false;
        side.dirty = false;
        if let Some(old) = old {
            old.close().await;
        }
        tracing::info!(
            room = self.room,
            member = %m.id,
            "subscribe connection restarted"
        );
        let peer = self.subscribe_peer(&mut side).await?;
        let ids: Vec<StreamId> = side.subs.keys().cloned().collect();
        for id in ids {
            let Some(stream) = side.subs.get(&id).map(|s| s.stream.clone()) else {
                continue;
            };
            let (track, sender) =
                add_send_track(&peer, &stream.owner, &stream.id, stream.kind).await?;
            if let Some(sub) = side.subs.get_mut(&id) {
                sub.track = track;
                sub.sender = sender;
            }
        }
        if side.path_track.is_some() {
            side.path_track = Some(add_path_track(&peer, &m.id).await?);
        }
        self.renegotiate(m, &mut side).await
    }

    /// Ends a stream: forwarding stops, every subscriber's copy is removed, the room is told.
    async fn remove_stream(&self, stream: Arc<Stream>) {
        let held = self
            .state
            .lock()
            .expect("state lock")
            .streams
            .remove(&stream.id)
            .is_some();
        if held {
            // Once per stream, like its start (two ends racing tell it once).
            self.events.emit(MediaEvent::StreamEnded {
                member: stream.owner.clone(),
                stream: stream.id.clone(),
                kind: stream.kind,
            });
        }
        stream.forwarder.stop();
        for m in self.others(&stream.owner) {
            if let Err(e) = self.unsubscribe(&m, &stream.id).await {
                tracing::debug!(
                    room = self.room,
                    member = %m.id,
                    "unsubscribe on unpublish: {e}"
                );
            }
        }
        self.announce(&stream, StreamAction::Unpublish);
        tracing::info!(room = self.room, stream = %stream.id, "stream ended");
    }

    fn select_streams(
        &self,
        req: &StreamRequest,
        exclude_owner: Option<&str>,
        only_owner: Option<&str>,
    ) -> Result<Vec<Arc<Stream>>, MediaError> {
        let st = self.state.lock().expect("state lock");
        if let Some(id) = &req.stream {
            let s = st
                .streams
                .get(id)
                .cloned()
                .ok_or_else(|| MediaError::NoStream(id.clone()))?;
            return Ok(vec![s]);
        }
        Ok(st
            .streams
            .values()
            .filter(|s| req.client.as_ref().is_none_or(|c| &s.owner == c))
            .filter(|s| req.kind.is_none_or(|k| s.kind == k))
            .filter(|s| exclude_owner.is_none_or(|o| s.owner != o))
            .filter(|s| only_owner.is_none_or(|o| s.owner == o))
            .cloned()
            .collect())
    }
}

#[async_trait]
impl MediaRoom for SfuRoom {
    fn capabilities(&self) -> Capabilities {
        // Mixing is not this crate's: a backend that mixes (mcu) wraps this room and says so.
        Capabilities::forwarding(false)
    }

    async fn join(&self, member: &MemberId, opts: JoinOptions) -> Result<(), MediaError> {
        let mut st = self.shared.state.lock().expect("state lock");
        if st.members.contains_key(member) {
            return Err(MediaError::AlreadyJoined(member.clone()));
        }
        st.members.insert(
            member.clone(),
            Arc::new(Member {
                id: member.clone(),
                policy: opts.subscribe,
                publish: tokio::sync::Mutex::new(None),
                subscribe: tokio::sync::Mutex::new(SubscribeSide::default()),
                next_stream: AtomicU32::new(0),
                left: AtomicBool::new(false),
                gated: [AtomicBool::new(false), AtomicBool::new(false)],
                audio_taps: Taps::default(),
                audio_published: AtomicBool::new(false),
            }),
        );
        if let Some(audio) = &self.shared.audio {
            audio.joined(member);
        }
        Ok(())
    }

    async fn leave(&self, member: &MemberId) {
        let (m, own): (Option<Arc<Member>>, Vec<Arc<Stream>>) = {
            let mut st = self.shared.state.lock().expect("state lock");
            let m = st.members.remove(member.as_str());
            let own = st
                .streams
                .values()
                .filter(|s| s.owner == *member)
                .cloned()
                .collect();
            (m, own)
        };
        let Some(m) = m else { return };
        // The file gets everything up to now and is finalized before the media goes.
        let _ = self.record_stop(member).await;
        m.left.store(true, Ordering::Release);
        if let Some(audio) = &self.shared.audio {
            audio.left(member);
        }
        if let Some(p) = m.publish.lock().await.take() {
            p.close().await;
        }
        for s in own {
            self.shared.remove_stream(s).await;
        }
        let mut side = m.subscribe.lock().await;
        for (_, sub) in side.subs.drain() {
            if let Some(sink) = &sub.sink {
                sub.stream.forwarder.remove_sink(sink);
            }
        }
        if let Some(p) = side.peer.take() {
            p.close().await;
        }
    }

    async fn exchange(
        &self,
        from: &MemberId,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Option<Negotiation>, MediaError> {
        let m = self.shared.member(from)?;
        let Counterpart::Server(transport) = with else {
            return Err(MediaError::Unsupported {
                arch: self.shared.kind,
                what: "negotiating with another member: media goes through the server (name the transport: publish or subscribe)".into(),
            });
        };
        match (transport, negotiation) {
            (Transport::Publish, Negotiation::Offer { sdp }) => {
                let mut publish = m.publish.lock().await;
                if let Some(old) = publish.take_if(|p| p.is_replaced_by(&sdp)) {
                    // Not a renegotiation of the current connection: the member publishes
                    // from a new one (or its old one failed). The old one goes, with its
                    // streams, as an unpublish would end them.
                    tracing::info!(
                        room = self.shared.room,
                        member = from.as_str(),
                        "publish connection replaced by a new one"
                    );
                    self.shared.end_publish_connection(&m, old).await;
                }
                let peer = match &*publish {
                    Some(p) => p.clone(),
                    None => {
                        let shared = self.shared.clone();
                        let owner = m.clone();
                        let on_track: OnTrack = Arc::new(move |track| {
                            let shared = shared.clone();
                            let owner = owner.clone();
                            tokio::spawn(shared.track_published(owner, track));
                        });
                        let p = self
                            .shared
                            .factory
                            .create(PeerEvents {
                                on_track: Some(on_track),
                                on_state: None,
                            })
                            .await?;
                        *publish = Some(p.clone());
                        p
                    }
                };
                let answer = peer.answer(sdp).await?;
                self.shared.negotiations.fetch_add(1, Ordering::Relaxed);
                Ok(Some(Negotiation::Answer { sdp: answer }))
            }
            (Transport::Publish, Negotiation::Candidate { candidate }) => {
                let peer = m
                    .publish
                    .lock()
                    .await
                    .clone()
                    .ok_or_else(|| MediaError::NoConnectionYet(Transport::Publish))?;
                peer.add_candidate(candidate).await?;
                Ok(None)
            }
            (Transport::Publish, Negotiation::Answer { .. }) => {
                Err(MediaError::WrongOfferer(Transport::Publish))
            }
            (Transport::Subscribe, Negotiation::Answer { sdp }) => {
                self.shared.subscribe_answer(&m, sdp).await?;
                Ok(None)
            }
            (Transport::Subscribe, Negotiation::Candidate { candidate }) => {
                let peer = m
                    .subscribe
                    .lock()
                    .await
                    .peer
                    .clone()
                    .ok_or_else(|| MediaError::NoConnectionYet(Transport::Subscribe))?;
                peer.add_candidate(candidate).await?;
                Ok(None)
            }
            (Transport::Subscribe, Negotiation::Offer { .. }) => {
                Err(MediaError::WrongOfferer(Transport::Subscribe))
            }
        }
    }

    async fn stream(
        &self,
        member: &MemberId,
        action: StreamAction,
        req: StreamRequest,
    ) -> Result<(), MediaError> {
        let m = self.shared.member(member)?;
        match action {
            StreamAction::Publish => Err(MediaError::PublishWithoutOffer(self.shared.kind)),
            StreamAction::Unpublish => {
                if let Some(id) = &req.stream {
                    self.own(member, id)?;
                }
                for s in self.shared.select_streams(&req, None, Some(member))? {
                    self.shared.remove_stream(s).await;
                }
                Ok(())
            }
            StreamAction::Subscribe => {
                if self.shared.audio.is_some() && req.kind != Some(MediaKind::Video) {
                    // The room's audio is the path's one track.
                    self.shared.ensure_path_track(&m).await?;
                }
                let streams = self.shared.select_streams(&req, Some(member), None)?;
                if let Some(s) = streams.iter().find(|s| s.owner == *member) {
                    return Err(MediaError::OwnStream(s.id.clone()));
                }
                for s in streams {
                    self.shared.subscribe(&m, &s).await?;
                }
                Ok(())
            }
            StreamAction::Unsubscribe => {
                let streams = self.shared.select_streams(&req, None, None)?;
                let mut any = false;
                for s in streams {
                    any |= self.shared.unsubscribe(&m, &s.id).await?;
                }
                if !any && req.stream.is_some() {
                    return Err(MediaError::NotSubscribed(None));
                }
                Ok(())
            }
            StreamAction::Pause | StreamAction::Resume => {
                let paused = action == StreamAction::Pause;
                if let Some(audio) = &self.shared.audio
                    && req.stream.is_none()
                    && req.kind != Some(MediaKind::Video)
                {
                    // The member's own audio leaves (or rejoins) the path.
                    audio.paused(member, paused);
                    if req.kind == Some(MediaKind::Audio) {
                        return Ok(());
                    }
                }
                let streams = self.shared.select_streams(
                    &req,
                    None,
                    req.stream.is_none().then_some(member),
                )?;
                for s in streams {
                    if s.owner == *member {
                        // The publisher pauses its stream for everyone.
                        s.forwarder.set_paused(paused);
                        self.shared.announce(&s, action);
                    } else {
                        // A subscriber pauses its own copy.
                        let mut side = m.subscribe.lock().await;
                        let sub = side
                            .subs
                            .get_mut(&s.id)
                            .ok_or_else(|| MediaError::NotSubscribed(Some(s.id.clone())))?;
                        sub.paused = paused;
                        if let Some(sink) = &sub.sink {
                            s.forwarder.set_sink_paused(sink, paused);
                        }
                    }
                }
                Ok(())
            }
        }
    }

    async fn restart(&self, member: &MemberId, transport: Transport) -> Result<(), MediaError> {
        let m = self.shared.member(member)?;
        match transport {
            Transport::Subscribe => self.shared.restart_subscribe(&m).await,
            Transport::Publish => {
                let old = m
                    .publish
                    .lock()
                    .await
                    .take()
                    .ok_or_else(|| MediaError::NothingToRestart(Transport::Publish))?;
                tracing::info!(
                    room = self.shared.room,
                    member = member.as_str(),
                    "publish connection closed on request"
                );
                self.shared.end_publish_connection(&m, old).await;
                Ok(())
            }
        }
    }

    async fn stats(&self) -> MediaRoomStats {
        let (members, streams) = {
            let st = self.shared.state.lock().expect("state lock");
            (
                st.members.values().cloned().collect::<Vec<_>>(),
                st.streams.values().cloned().collect::<Vec<_>>(),
            )
        };
        let mut s = MediaRoomStats::default();
        s.members = members.len();
        s.streams = streams.len();
        for stream in &streams {
            s.packets_received += stream.forwarder.packets_in();
            s.packets_forwarded += stream
                .forwarder
                .sinks()
                .iter()
                .map(|k| k.sent())
                .sum::<u64>();
        }
        s.negotiations = self.shared.negotiations.load(Ordering::Relaxed);
        for m in members {
            s.peer_connections += usize::from(m.publish.lock().await.is_some());
            let side = m.subscribe.lock().await;
            s.peer_connections += usize::from(side.peer.is_some());
            s.subscriptions += side.subs.values().filter(|x| x.attached).count();
        }
        s
    }

    async fn streams(&self) -> Vec<StreamInfo> {
        self.shared
            .state
            .lock()
            .expect("state lock")
            .streams
            .values()
            .map(|s| s.info())
            .collect()
    }

    fn gates(&self) -> Option<&dyn MediaGates> {
        Some(self)
    }

    fn recorder(&self) -> Option<&dyn MediaRecorder> {
        Some(self)
    }

    async fn close(&self) {
        self.shared.stop.cancel();
        for m in self.shared.member_ids() {
            self.leave(&m).await;
        }
    }
}

#[async_trait]
impl MediaGates for SfuRoom {
    async fn set_gate(
        &self,
        member: &MemberId,
        kind: Option<MediaKind>,
        open: bool,
    ) -> Result<(), MediaError> {
        let m = self.shared.member(member)?;
        let kinds = match kind {
            Some(k) => vec![k],
            None => vec![MediaKind::Video, MediaKind::Audio],
        };
        let st = self.shared.state.lock().expect("state lock");
        for k in kinds {
            m.gated[gate_index(k)].store(!open, Ordering::Release);
            if k == MediaKind::Audio
                && let Some(audio) = &self.shared.audio
            {
                audio.gated(member, !open);
            }
            for s in st.streams.values() {
                if s.owner == *member && s.kind == k {
                    s.forwarder.set_gated(!open);
                }
            }
        }
        Ok(())
    }
}

#[async_trait]
impl MediaRecorder for SfuRoom {
    async fn record_start(
        &self,
        member: &MemberId,
        request: RecordRequest,
    ) -> Result<(), MediaError> {
        let m = self.shared.member(member)?;
        let streams: Vec<Arc<Stream>> = {
            let st = self.shared.state.lock().expect("state lock");
            if st.recordings.contains_key(member) {
                return Err(MediaError::AlreadyRecording(member.to_string()));
            }
            st.streams
                .values()
                .filter(|s| s.owner == *member)
                .cloned()
                .collect()
        };
        let tracks = Tracks {
            video: streams.iter().any(|s| s.kind == MediaKind::Video),
            audio: streams.iter().any(|s| s.kind == MediaKind::Audio)
                || m.audio_published.load(Ordering::Acquire),
        };
        if !tracks.video && !tracks.audio {
            return Err(MediaError::NothingToRecord(member.to_string()));
        }
        let videos: Vec<Forwarder> = streams
            .iter()
            .filter(|s| s.kind == MediaKind::Video)
            .map(|s| s.forwarder.clone())
            .collect();
        let keyframes = videos.clone();
        let recording = Recording::start(request, tracks, move || {
            for f in &keyframes {
                f.request_keyframe();
            }
        })
        .map_err(|e| MediaError::RecordingFailed {
            what: member.to_string(),
            source: taoyao_webrtc::source(e),
        })?;
        let rec = Arc::new(Recorded {
            recording,
            streams,
            member: m.clone(),
            note: std::sync::OnceLock::new(),
        });
        {
            let mut st = self.shared.state.lock().expect("state lock");
            if !st.members.contains_key(member) {
                rec.recording.request_stop();
                return Err(MediaError::NotJoined(member.clone()));
            }
            st.recordings.insert(member.clone(), rec.clone());
        }
        for s in &rec.streams {
            s.forwarder.add_tap(rec.recording.tap.clone());
        }
        if self.shared.audio.is_some() {
            m.audio_taps.add(rec.recording.tap.clone());
        }
        tracing::info!(
            room = self.shared.room,
            member = member.as_str(),
            file = rec.recording.request.file,
            "recording started"
        );
        // Whatever ends it (stop, leave, close, a limit, a write error), the room is told.
        let shared = self.shared.clone();
        let finished = rec.recording.finished();
        let count = crate::forwarder::TaskCount::start(&self.shared.tasks);
        tokio::spawn(async move {
            let _count = count;
            let result = finished.await;
            rec.detach();
            {
                let mut st = shared.state.lock().expect("state lock");
                if st
                    .recordings
                    .get(&rec.member.id)
                    .is_some_and(|r| Arc::ptr_eq(r, &rec))
                {
                    st.recordings.remove(&rec.member.id);
                }
            }
            recorder::tell_end(
                &shared.events,
                &shared.room,
                shared.member_ids(),
                Some(&rec.member.id),
                &rec.recording,
                &result,
                rec.note.get().cloned(),
            );
        });
        Ok(())
    }

    async fn record_stop(&self, member: &MemberId) -> Result<(), MediaError> {
        let rec = self
            .shared
            .state
            .lock()
            .expect("state lock")
            .recordings
            .remove(member.as_str())
            .ok_or_else(|| MediaError::NotRecording(member.to_string()))?;
        rec.recording.request_stop();
        // The outcome (and any error) reaches the room as RecordingStopped, on the room's lane
        // before this returns.
        rec.recording.finished_and_reported().await;
        Ok(())
    }

    async fn recordings(&self) -> Vec<RecordingInfo> {
        let st = self.shared.state.lock().expect("state lock");
        st.recordings
            .iter()
            .map(|(id, r)| r.recording.info(Some(id)))
            .collect()
    }
}

/// Adds a send-only track of `kind` to a subscribe connection: its own SSRC (and an RTX SSRC
/// for video, so retransmissions go out as RTX when the subscriber negotiates it), labelled
/// with `stream_id` (the publisher's client id, or `mix`) so the receiver knows whose it is.
/// What closing a subscribe connection (already taken out of `side.peer`) undoes: no answer
/// is awaited, and forwarding to it stops (sinks are made again from the next answer).
fn close_subscribe_side(side: &mut SubscribeSide) {
    side.connected = None;
    side.awaiting_answer = false;
    for sub in side.subs.values_mut() {
        if let Some(sink) = sub.sink.take() {
            sub.stream.forwarder.remove_sink(&sink);
        }
        sub.attached = false;
    }
}

async fn add_send_track(
    peer: &Peer,
    stream_id: &str,
    track_id: &str,
    kind: MediaKind,
) -> Result<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>), MediaError> {
    let track = Arc::new(TrackLocalStaticRTP::new(MediaStreamTrack::new(
        stream_id.to_owned(),
        track_id.to_owned(),
        track_id.to_owned(),
        match kind {
            MediaKind::Video => RtpCodecKind::Video,
            MediaKind::Audio => RtpCodecKind::Audio,
        },
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(rand::random::<u32>()),
                rtx: (kind == MediaKind::Video).then(|| RTCRtpRtxParameters {
                    ssrc: rand::random::<u32>(),
                }),
                ..Default::default()
            },
            codec: codec_for(kind),
            ..Default::default()
        }],
    )));
    let init = RTCRtpTransceiverInit {
        direction: RTCRtpTransceiverDirection::Sendonly,
        streams: vec![stream_id.to_owned()],
        send_encodings: vec![],
    };
    let transceiver = peer
        .pc
        .add_transceiver_from_track(track.clone(), Some(init))
        .await
        .map_err(internal)?;
    let sender = transceiver
        .sender()
        .await
        .map_err(internal)?
        .ok_or_else(|| MediaError::Internal("transceiver without a sender".into()))?;
    Ok((track, sender))
}

/// The stream id of the audio a member receives from the room's audio path (docs/protocol.md:
/// the mcu's mix arrives as stream `mix`).
pub const PATH_STREAM_ID: &str = "mix";

/// The member's track from the room's audio path on its subscribe connection, not yet given
/// to the path.
async fn add_path_track(
    peer: &Peer,
    member: &str,
) -> Result<(Arc<TrackLocalStaticRTP>, Arc<dyn RtpSender>, bool), MediaError> {
    let (track, sender) = add_send_track(
        peer,
        PATH_STREAM_ID,
        &format!("{PATH_STREAM_ID}:{member}"),
        MediaKind::Audio,
    )
    .await?;
    Ok((track, sender, false))
}

impl SfuRoom {
    /// The room's members now.
    pub fn member_ids(&self) -> Vec<MemberId> {
        self.shared.member_ids()
    }

    /// The room's id, as opened.
    pub fn room(&self) -> &str {
        &self.shared.room
    }

    fn own(&self, member: &MemberId, stream: &StreamId) -> Result<(), MediaError> {
        let st = self.shared.state.lock().expect("state lock");
        match st.streams.get(stream) {
            None => Err(MediaError::NoStream(stream.clone())),
            Some(s) if s.owner != *member => Err(MediaError::NotYourStream(stream.clone())),
            Some(_) => Ok(()),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_sfu_room_forwards_and_mixes_nothing() {
        let arch = Sfu::new(WebrtcConfig::default());
        let room = arch
            .open_room(&"r".into(), MediaEvents::new(|_| {}))
            .await
            .unwrap();
        let caps = room.capabilities();
        assert!(caps.carries_media && room.gates().is_some());
        assert!(room.recorder().is_some());
        assert!(!caps.mixing && room.mix().is_none());
        taoyao_webrtc::facets_match_capabilities(&*room).unwrap();
        room.close().await;
    }
}
