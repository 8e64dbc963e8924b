//! The `MediaArchitecture` seam.

use std::sync::Arc;

use async_trait::async_trait;
use serde::{Deserialize, Serialize};
use taoyao_boot::{Code, ErrorCode};

use crate::ids::{MemberId, RoomId, StreamId};

/// Which media architecture a room runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ArchitectureKind {
    /// Peer to peer: every member connects to every other; the server relays negotiation.
    Mesh,
    /// The server receives each member's media once and forwards it.
    Sfu,
    /// Like sfu for video; audio is mixed per receiver.
    Mcu,
}

impl ArchitectureKind {
    pub const ALL: [ArchitectureKind; 3] = [
        ArchitectureKind::Mesh,
        ArchitectureKind::Sfu,
        ArchitectureKind::Mcu,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            ArchitectureKind::Mesh => "mesh",
            ArchitectureKind::Sfu => "sfu",
            ArchitectureKind::Mcu => "mcu",
        }
    }

    pub fn parse(s: &str) -> Option<ArchitectureKind> {
        Self::ALL.into_iter().find(|k| k.as_str() == s)
    }
}

impl std::fmt::Display for ArchitectureKind {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MediaKind {
    Audio,
    Video,
}

impl MediaKind {
    pub fn parse(s: &str) -> Option<MediaKind> {
        match s {
            "audio" => Some(MediaKind::Audio),
            "video" => Some(MediaKind::Video),
            _ => None,
        }
    }
}

/// One ICE candidate, as a browser's `RTCIceCandidateInit`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct Candidate {
    pub candidate: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_mid: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub sdp_m_line_index: Option<u16>,
}

/// An SDP offer or answer, or a trickled ICE candidate. On the wire (`media::exchange`,
/// `session::exchange`): `{"type":"offer","sdp":...}`, `{"type":"answer","sdp":...}`,
/// `{"type":"candidate","candidate":{"candidate":...,"sdpMid":...,"sdpMLineIndex":...}}`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "lowercase")]
pub enum Negotiation {
    Offer { sdp: String },
    Answer { sdp: String },
    Candidate { candidate: Candidate },
}

impl Negotiation {
    pub fn type_name(&self) -> &'static str {
        match self {
            Negotiation::Offer { .. } => "offer",
            Negotiation::Answer { .. } => "answer",
            Negotiation::Candidate { .. } => "candidate",
        }
    }

    /// Reads the negotiation fields of a signal body (other fields are ignored).
    pub fn from_body(body: &serde_json::Value) -> Result<Negotiation, MediaError> {
        let n =
            Negotiation::deserialize(body).map_err(|e| MediaError::BadNegotiation(source(e)))?;
        match &n {
            Negotiation::Offer { sdp } | Negotiation::Answer { sdp } if sdp.trim().is_empty() => {
                Err(MediaError::EmptySdp)
            }
            _ => Ok(n),
        }
    }

    /// The wire form, to merge into an outgoing signal body.
    pub fn to_body(&self) -> serde_json::Map<String, serde_json::Value> {
        match serde_json::to_value(self) {
            Ok(serde_json::Value::Object(m)) => m,
            // An internally tagged enum of strings always serializes to an object.
            _ => unreachable!("negotiation serializes to an object"),
        }
    }
}

/// What a member does with media.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum StreamAction {
    Publish,
    Unpublish,
    /// Forwarding stops without closing the channel.
    Pause,
    /// Forwarding restarts (with a keyframe where the server forwards video).
    Resume,
    Subscribe,
    Unsubscribe,
}

impl StreamAction {
    pub fn as_str(self) -> &'static str {
        match self {
            StreamAction::Publish => "publish",
            StreamAction::Unpublish => "unpublish",
            StreamAction::Pause => "pause",
            StreamAction::Resume => "resume",
            StreamAction::Subscribe => "subscribe",
            StreamAction::Unsubscribe => "unsubscribe",
        }
    }
}

/// Which stream(s) a stream request is about.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct StreamRequest {
    /// One stream by id.
    pub stream: Option<StreamId>,
    /// Every stream of this member (for subscribe / unsubscribe).
    pub client: Option<MemberId>,
    /// Only this kind.
    pub kind: Option<MediaKind>,
}

/// Which of a member's two server connections a negotiation is for (sfu, mcu): the member
/// offers on `publish`, the server offers on `subscribe`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Transport {
    Publish,
    Subscribe,
}

impl Transport {
    pub fn parse(s: &str) -> Option<Transport> {
        match s {
            "publish" => Some(Transport::Publish),
            "subscribe" => Some(Transport::Subscribe),
            _ => None,
        }
    }
}

/// The other end of a negotiation message: another member (peer to peer, the server relays)
/// or one of the member's own connections with the server.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Counterpart<'a> {
    Peer(&'a MemberId),
    Server(Transport),
}

/// What a member receives without asking (taoyao's subscribeType).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SubscribePolicy {
    /// Every stream in the room, as it appears.
    #[default]
    All,
    AudioOnly,
    VideoOnly,
    /// Nothing until `media::subscribe`.
    None,
}

impl SubscribePolicy {
    pub fn parse(s: &str) -> Option<SubscribePolicy> {
        match s {
            "all" => Some(SubscribePolicy::All),
            "audio" => Some(SubscribePolicy::AudioOnly),
            "video" => Some(SubscribePolicy::VideoOnly),
            "none" => Some(SubscribePolicy::None),
            _ => None,
        }
    }

    pub fn wants(self, kind: MediaKind) -> bool {
        matches!(
            (self, kind),
            (SubscribePolicy::All, _)
                | (SubscribePolicy::AudioOnly, MediaKind::Audio)
                | (SubscribePolicy::VideoOnly, MediaKind::Video)
        )
    }
}

/// What a member asks for when it joins a room's media.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
#[non_exhaustive]
pub struct JoinOptions {
    pub display_name: String,
    pub subscribe: SubscribePolicy,
}

impl JoinOptions {
    pub fn new(display_name: impl Into<String>) -> Self {
        JoinOptions {
            display_name: display_name.into(),
            subscribe: SubscribePolicy::All,
        }
    }

    pub fn with_subscribe(mut self, policy: SubscribePolicy) -> Self {
        self.subscribe = policy;
        self
    }
}

/// What a backend tells the scenario layer; it turns each into a signal.
#[derive(Debug, Clone, PartialEq, Eq)]
#[non_exhaustive]
pub enum MediaEvent {
    /// Deliver a negotiation message to `to`; `from` is the member it comes from (mesh relay)
    /// or `None` when the server itself is the other end (sfu, mcu) on `transport`.
    Negotiation {
        to: MemberId,
        from: Option<MemberId>,
        transport: Option<Transport>,
        negotiation: Negotiation,
    },
    /// Tell `to` that `member` changed its media (`stream` names it where the server holds it).
    Stream {
        to: MemberId,
        member: MemberId,
        stream: Option<StreamId>,
        kind: Option<MediaKind>,
        action: StreamAction,
    },
    /// A stream the server holds started (sfu, mcu): emitted once per stream for the room
    /// itself (webhooks, metrics), addressed to no member, whoever else is in the room (a member
    /// publishing alone still produces it). Mesh emits none: its media goes client to client
    /// and the server never sees a stream.
    StreamStarted {
        member: MemberId,
        stream: StreamId,
        kind: MediaKind,
    },
    /// The stream ended (unpublished, its publisher left, its connection closed, the room
    /// closed): once per stream, like [`MediaEvent::StreamStarted`].
    StreamEnded {
        member: MemberId,
        stream: StreamId,
        kind: MediaKind,
    },
    /// mcu rooms: the room's audio levels over the last `webrtc.audio_level_interval_ms`, for
    /// `to`: each member's loudest level (RFC 6464 dBov, 0 loudest .. 127 silent) and the
    /// active speaker, if anyone spoke.
    AudioLevels {
        to: MemberId,
        levels: Arc<Vec<(MemberId, u8)>>,
        speaker: Option<MemberId>,
    },
    /// sfu and mcu rooms: `to` left a subscribe offer unanswered for `after_ms`
    /// (`webrtc.subscribe_answer_timeout_ms`); its subscribe connection is closed, its
    /// subscriptions wait for a `media::restart` of the subscribe transport.
    SubscribeTimedOut { to: MemberId, after_ms: u64 },
    /// A recording of `member` ended (stopped, the member left, the room closed, a limit or a
    /// write error): told to every member and the one who started it.
    RecordingStopped {
        to: MemberId,
        /// The member recorded; `None` for the room's mixed audio (mcu).
        member: Option<MemberId>,
        file: String,
        duration_ms: u64,
        error: Option<String>,
    },
}

/// Where a recording stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest file; 0: no limit.
    pub max_bytes: u64,
    /// Longest recording; zero: no limit.
    pub max_duration: std::time::Duration,
}

/// What to record and where (sfu, mcu).
#[derive(Debug)]
pub struct RecordRequest {
    /// Who asked; told when the recording ends.
    pub requester: MemberId,
    pub path: std::path::PathBuf,
    /// The file name as members see it (`record::list`, the download path).
    pub file: String,
    pub limits: RecordLimits,
    /// Packets queued for the writer before the tap drops.
    pub queue: usize,
    /// Held while the recording runs (the server's concurrent-recordings limit).
    pub permit: Option<tokio::sync::OwnedSemaphorePermit>,
}

/// A recording in progress, as room status shows it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RecordingInfo {
    /// Empty for the room's mix.
    #[serde(skip_serializing_if = "String::is_empty")]
    pub client_id: String,
    /// The room's mixed audio (mcu).
    #[serde(skip_serializing_if = "std::ops::Not::not")]
    pub mix: bool,
    pub file: String,
    pub started_by: String,
    /// Unix ms.
    pub started_at: u64,
}

/// The way back out of a backend. Called synchronously from the backend: it must not block
/// (the scenario layer puts each event on its room task's lane without waiting; the room task
/// is the one writer to its members, so what the backend emits while handling a request
/// reaches the members after that request's answer).
#[derive(Clone)]
pub struct MediaEvents(Arc<dyn Fn(MediaEvent) + Send + Sync>);

impl MediaEvents {
    pub fn new(f: impl Fn(MediaEvent) + Send + Sync + 'static) -> Self {
        MediaEvents(Arc::new(f))
    }

    pub fn emit(&self, event: MediaEvent) {
        (self.0)(event)
    }
}

impl std::fmt::Debug for MediaEvents {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("MediaEvents")
    }
}

/// Counters a backend exposes about one room (tests assert cleanup with them).
#[derive(Debug, Clone, Default, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct MediaRoomStats {
    /// Members joined to the room's media.
    pub members: usize,
    /// Negotiation messages relayed or answered.
    pub negotiations: u64,
    /// Server-side peer connections (0 in mesh).
    pub peer_connections: usize,
    /// Published streams the server receives.
    pub streams: usize,
    /// Stream -> subscriber forwardings.
    pub subscriptions: usize,
    /// RTP packets received on the streams published now, since each started (a stream that
    /// ends takes its count with it: a level, not a running total).
    pub packets_received: u64,
    /// RTP packets sent to subscribers of the streams published now, likewise.
    pub packets_forwarded: u64,
}

/// A stream the server holds (sfu, mcu), as the room lists it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct StreamInfo {
    pub stream_id: StreamId,
    pub client_id: MemberId,
    pub kind: MediaKind,
    pub paused: bool,
    /// RTP payload bytes received from the publisher so far (a bitrate is its change over
    /// time).
    pub bytes_received: u64,
}

/// The error a backend's own failure carries (webrtc-rs, the SDP parser, serde, the recorder).
pub type Source = Arc<dyn std::error::Error + Send + Sync>;

/// Wraps an error as a [`Source`].
pub fn source(e: impl std::error::Error + Send + Sync + 'static) -> Source {
    Arc::new(e)
}

/// One variant per way a media request fails; [`ErrorCode`] maps each to the protocol's code
/// and `Display` is the message the client reads.
#[derive(Debug, Clone, thiserror::Error)]
#[non_exhaustive]
pub enum MediaError {
    #[error("{0} is not in this room's media")]
    NotJoined(MemberId),
    #[error("stream {0} not found")]
    NoStream(StreamId),
    #[error("{0} is not being recorded")]
    NotRecording(String),
    #[error("{0} is already in this room's media")]
    AlreadyJoined(MemberId),
    #[error("not supported by the {arch} architecture: {what}")]
    Unsupported {
        arch: ArchitectureKind,
        what: String,
    },
    /// The body's negotiation fields do not decode.
    #[error("bad negotiation (type offer|answer with sdp, or candidate with candidate): {0}")]
    BadNegotiation(#[source] Source),
    #[error("sdp is empty")]
    EmptySdp,
    #[error("SDP does not parse: {0}")]
    SdpSyntax(#[source] Source),
    /// webrtc-rs could not read an offer or answer (`what`) as one.
    #[error("bad {what}: {source}")]
    SdpUnreadable { what: &'static str, source: Source },
    /// webrtc-rs refused to apply an offer, answer or candidate (`what`).
    #[error("{what} not accepted: {source}")]
    SdpRefused { what: &'static str, source: Source },
    /// The answer left out the codec a forwarded track carries.
    #[error("the answer did not accept {0}")]
    CodecRefused(String),
    /// mesh: a member named itself as its counterpart.
    #[error("cannot negotiate with yourself")]
    SelfNegotiation,
    /// The server never offers on this transport (publish: nothing to answer; subscribe: the
    /// member may not offer).
    #[error("{}", wrong_offerer(.0))]
    WrongOfferer(Transport),
    /// A candidate before the connection it is for exists.
    #[error("{}", no_connection_yet(.0))]
    NoConnectionYet(Transport),
    #[error("there is no {} connection to restart", transport_name(.0))]
    NothingToRestart(Transport),
    /// The room's media keeps no server connections (mesh).
    #[error("this room's media has no server connections to restart")]
    NoServerConnections,
    #[error("no subscribe offer is waiting for an answer")]
    NoOfferWaiting,
    /// The subscribe offer went unanswered for `webrtc.subscribe_answer_timeout_ms`.
    #[error(
        "the subscribe offer went unanswered for {after_ms} ms, so the server closed the \
         subscribe connection: ask for a new one with media::restart {{transport: \
         \"subscribe\"}} and answer its offer"
    )]
    AnswerTimedOut { after_ms: u64 },
    #[error(
        "this answer comes from another connection than the one that answered before (or the \
         subscribe connection failed): ask for a new subscribe connection with media::restart \
         {{transport: \"subscribe\"}} and answer its offer"
    )]
    AnswerFromOtherConnection,
    /// sfu/mcu take publications as SDP offers, not as `media::publish` without one.
    #[error("in an {0} room, publish by sending the SDP offer (media::publish with sdp)")]
    PublishWithoutOffer(ArchitectureKind),
    #[error("you cannot subscribe to your own stream")]
    SubscribeToOwn,
    #[error("{0} is your own stream")]
    OwnStream(StreamId),
    #[error("{0} is not your stream")]
    NotYourStream(StreamId),
    #[error("you are not subscribed to {}", .0.as_ref().map_or("that stream", StreamId::as_str))]
    NotSubscribed(Option<StreamId>),
    #[error("this room's media does not record on the server")]
    NoServerRecording,
    #[error("only mcu rooms mix audio to record")]
    NoMixing,
    /// Who (a member, or "the room's mix") is already being recorded.
    #[error("{0} is already being recorded")]
    AlreadyRecording(String),
    #[error("{0} publishes no media to record")]
    NothingToRecord(String),
    /// A recording could not start (`what`: the member, or "the mix").
    #[error("media failure: recording {what}: {source}")]
    RecordingFailed { what: String, source: Source },
    #[error("media failure: no free UDP port in {min}-{max} on {ip}")]
    NoFreePort {
        min: u16,
        max: u16,
        ip: std::net::IpAddr,
    },
    /// The media stack failed where the client could not help it.
    #[error("media failure: {0}")]
    Backend(#[source] Source),
    #[error("media failure: {0}")]
    Internal(String),
}

fn transport_name(t: &Transport) -> &'static str {
    match t {
        Transport::Publish => "publish",
        Transport::Subscribe => "subscribe",
    }
}

fn wrong_offerer(t: &Transport) -> &'static str {
    match t {
        Transport::Publish => {
            "the server does not offer on the publish transport: there is nothing to answer"
        }
        Transport::Subscribe => "only the server offers on the subscribe transport",
    }
}

fn no_connection_yet(t: &Transport) -> &'static str {
    match t {
        Transport::Publish => "publish (send the offer) before sending candidates",
        Transport::Subscribe => "no subscribe connection yet",
    }
}

impl ErrorCode for MediaError {
    fn code(&self) -> Code {
        use MediaError::*;
        match self {
            NotJoined(_) | NoStream(_) | NotRecording(_) => Code::NotFound,
            AlreadyJoined(_)
            | Unsupported { .. }
            | BadNegotiation(_)
            | EmptySdp
            | SdpSyntax(_)
            | SdpUnreadable { .. }
            | SdpRefused { .. }
            | CodecRefused(_)
            | SelfNegotiation
            | WrongOfferer(_)
            | NoConnectionYet(_)
            | NothingToRestart(_)
            | NoServerConnections
            | NoOfferWaiting
            | AnswerTimedOut { .. }
            | AnswerFromOtherConnection
            | PublishWithoutOffer(_)
            | SubscribeToOwn
            | OwnStream(_)
            | NotYourStream(_)
            | NotSubscribed(_)
            | NoServerRecording
            | NoMixing
            | AlreadyRecording(_)
            | NothingToRecord(_) => Code::BadRequest,
            RecordingFailed { .. } | NoFreePort { .. } | Backend(_) | Internal(_) => {
                Code::SystemError
            }
        }
    }
}

/// Where a member's recording is made.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum RecordingPlace {
    /// The server writes the file ([`MediaRoom::recorder`]).
    Server,
    /// The member's client records locally, asked by the scenario layer (mesh: the server
    /// never sees the media).
    Client,
}

/// What a room's media can do: the scenario layer asks this (and the facets, [`MediaRoom::gates`],
/// [`MediaRoom::recorder`], [`MediaRoom::mix`], which agree with it: see
/// [`facets_match_capabilities`]), never which architecture it is.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize)]
#[serde(rename_all = "camelCase")]
#[non_exhaustive]
pub struct Capabilities {
    /// Media passes through the server: gates ([`MediaRoom::gates`]) close it there, a
    /// manager can mute a member, a live can run, and streams are the server's to end.
    pub carries_media: bool,
    /// The server offers each member a subscribe connection: a newcomer is subscribed on
    /// entering, `media::subscribe` names streams the server holds.
    pub server_subscriptions: bool,
    /// Where recordings are made.
    pub recording: RecordingPlace,
    /// Audio is mixed on the server: the room's mix can be recorded
    /// ([`MediaRoom::mix`]).
    pub mixing: bool,
}

impl Capabilities {
    /// Peer to peer: the server relays negotiation only.
    pub const RELAY: Capabilities = Capabilities {
        carries_media: false,
        server_subscriptions: false,
        recording: RecordingPlace::Client,
        mixing: false,
    };

    /// The server receives and forwards media; `mixing` when it also mixes audio.
    pub const fn forwarding(mixing: bool) -> Capabilities {
        Capabilities {
            carries_media: true,
            server_subscriptions: true,
            recording: RecordingPlace::Server,
            mixing,
        }
    }
}

/// A media architecture: opens one media room per signaling room.
#[async_trait]
pub trait MediaArchitecture: Send + Sync + 'static {
    fn kind(&self) -> ArchitectureKind;

    async fn open_room(
        &self,
        room: &RoomId,
        events: MediaEvents,
    ) -> Result<Arc<dyn MediaRoom>, MediaError>;
}

/// One room's media. Every call comes from the room's own task, one at a time.
#[async_trait]
pub trait MediaRoom: Send + Sync {
    /// What this room's media can do (fixed for the room's life).
    fn capabilities(&self) -> Capabilities;

    async fn join(&self, member: &MemberId, opts: JoinOptions) -> Result<(), MediaError>;

    /// Releases everything the member held. Leaving twice is harmless.
    async fn leave(&self, member: &MemberId);

    /// A negotiation message from `from` to `with`: a peer member where the server relays
    /// ([`Capabilities::carries_media`] false), one of the member's server connections where it
    /// carries media. Returns the server's answer when it answers an offer. The other kind of
    /// counterpart is [`MediaError::Unsupported`].
    async fn exchange(
        &self,
        from: &MemberId,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Option<Negotiation>, MediaError>;

    /// Publish, unpublish, pause, resume, subscribe or unsubscribe.
    async fn stream(
        &self,
        member: &MemberId,
        action: StreamAction,
        request: StreamRequest,
    ) -> Result<(), MediaError>;

    async fn stats(&self) -> MediaRoomStats;

    /// Replaces `member`'s server connection on `transport` (sfu, mcu): `subscribe` closes the
    /// server's side and offers a new connection with the same subscriptions; `publish` closes
    /// it and ends its streams (the member publishes again with a new offer).
    async fn restart(&self, member: &MemberId, transport: Transport) -> Result<(), MediaError> {
        let _ = (member, transport);
        Err(MediaError::NoServerConnections)
    }

    /// The streams the server holds for this room (none in mesh).
    async fn streams(&self) -> Vec<StreamInfo> {
        Vec::new()
    }

    /// The room's gates, where the server carries media (sfu, mcu); `None` where it does not
    /// (mesh): the room's rules are then kept at signaling only.
    fn gates(&self) -> Option<&dyn MediaGates> {
        None
    }

    /// Server-side recording of members (sfu, mcu); `None` where recordings are made by the
    /// clients (mesh).
    fn recorder(&self) -> Option<&dyn MediaRecorder> {
        None
    }

    /// Recording of the room's mixed audio (mcu); `None` where the server mixes no audio.
    fn mix(&self) -> Option<&dyn MixRecorder> {
        None
    }

    /// Releases everything (finalizing recordings); the room is not used after this.
    async fn close(&self);
}

/// A room's gates ([`MediaRoom::gates`]): the server closes a member's media by the room's rules.
#[async_trait]
pub trait MediaGates: Send + Sync {
    /// Opens or closes `member`'s media of `kind` (both kinds when `None`) for everyone, by the
    /// room's rules (meeting modes, live): a closed stream is not forwarded (nor mixed) however
    /// its publisher pauses or resumes it, and streams the member publishes later start closed.
    async fn set_gate(
        &self,
        member: &MemberId,
        kind: Option<MediaKind>,
        open: bool,
    ) -> Result<(), MediaError>;
}

/// Recording members on the server ([`MediaRoom::recorder`]).
#[async_trait]
pub trait MediaRecorder: Send + Sync {
    /// Starts recording `member`'s published media to a file on the server. The end is
    /// reported as [`MediaEvent::RecordingStopped`].
    async fn record_start(
        &self,
        member: &MemberId,
        request: RecordRequest,
    ) -> Result<(), MediaError>;

    /// Stops `member`'s recording and returns once the file is finalized.
    async fn record_stop(&self, member: &MemberId) -> Result<(), MediaError>;

    /// The recordings in progress, the room's mix included.
    async fn recordings(&self) -> Vec<RecordingInfo>;
}

/// Recording the room's mixed audio ([`MediaRoom::mix`]).
#[async_trait]
pub trait MixRecorder: Send + Sync {
    /// Starts recording the room's mixed audio (mcu: the shared mix everyone hears) to an
    /// Opus-only file; its end is a [`MediaEvent::RecordingStopped`] with `mix`.
    async fn record_mix_start(&self, request: RecordRequest) -> Result<(), MediaError>;

    /// Stops the mix recording and returns once the file is finalized.
    async fn record_mix_stop(&self) -> Result<(), MediaError>;
}

/// Checks that a room's [`Capabilities`] say what its facets are: `carries_media` iff it has
/// [`MediaRoom::gates`], `recording: Server` iff [`MediaRoom::recorder`], `mixing` iff
/// [`MediaRoom::mix`]. Each backend's tests call it; the scenario layer relies on it.
pub fn facets_match_capabilities(room: &dyn MediaRoom) -> Result<(), String> {
    let caps = room.capabilities();
    let some = |present: bool| if present { "Some" } else { "None" };
    let pairs = [
        (
            "carries_media",
            caps.carries_media,
            "gates()",
            room.gates().is_some(),
        ),
        (
            "recording == Server",
            caps.recording == RecordingPlace::Server,
            "recorder()",
            room.recorder().is_some(),
        ),
        ("mixing", caps.mixing, "mix()", room.mix().is_some()),
    ];
    let wrong: Vec<String> = pairs
        .iter()
        .filter(|(_, says, _, present)| says != present)
        .map(|(cap, says, facet, present)| {
            format!("{cap} is {says} but {facet} is {}", some(*present))
        })
        .collect();
    if wrong.is_empty() {
        Ok(())
    } else {
        Err(wrong.join("; "))
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[test]
    fn negotiation_wire_form() {
        let n =
            Negotiation::from_body(&json!({"roomId": "r", "type": "offer", "sdp": "v=0"})).unwrap();
        assert_eq!(n, Negotiation::Offer { sdp: "v=0".into() });
        let c = Negotiation::from_body(&json!({"type": "candidate",
            "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}}))
            .unwrap();
        assert_eq!(
            serde_json::Value::Object(c.to_body()),
            json!({"type": "candidate",
                   "candidate": {"candidate": "candidate:1 1 udp 1 127.0.0.1 5000 typ host", "sdpMid": "0", "sdpMLineIndex": 0}})
        );
        for bad in [
            json!({}),
            json!({"type": "offer"}),
            json!({"type": "x", "sdp": "v=0"}),
            json!({"type": "offer", "sdp": 5}),
            json!({"type": "offer", "sdp": " "}),
            json!({"type": "candidate", "candidate": "str"}),
        ] {
            assert!(Negotiation::from_body(&bad).is_err(), "{bad}");
        }
    }

    /// A room whose capabilities say `claims` and which offers the gates facet only when
    /// `gates`: enough to see `facets_match_capabilities` tell a disagreement.
    struct Claims {
        claims: Capabilities,
        gates: bool,
    }

    #[async_trait]
    impl MediaRoom for Claims {
        fn capabilities(&self) -> Capabilities {
            self.claims
        }
        async fn join(&self, _: &MemberId, _: JoinOptions) -> Result<(), MediaError> {
            Ok(())
        }
        async fn leave(&self, _: &MemberId) {}
        async fn exchange(
            &self,
            _: &MemberId,
            _: Counterpart<'_>,
            _: Negotiation,
        ) -> Result<Option<Negotiation>, MediaError> {
            Ok(None)
        }
        async fn stream(
            &self,
            _: &MemberId,
            _: StreamAction,
            _: StreamRequest,
        ) -> Result<(), MediaError> {
            Ok(())
        }
        async fn stats(&self) -> MediaRoomStats {
            MediaRoomStats::default()
        }
        fn gates(&self) -> Option<&dyn MediaGates> {
            self.gates.then_some(self as &dyn MediaGates)
        }
        async fn close(&self) {}
    }

    #[async_trait]
    impl MediaGates for Claims {
        async fn set_gate(
            &self,
            _: &MemberId,
            _: Option<MediaKind>,
            _: bool,
        ) -> Result<(), MediaError> {
            Ok(())
        }
    }

    #[test]
    fn facets_that_disagree_with_capabilities_are_named() {
        let agrees = Claims {
            claims: Capabilities::RELAY,
            gates: false,
        };
        assert_eq!(facets_match_capabilities(&agrees), Ok(()));
        // Says it forwards and mixes (gates, a server recorder, a mix) but offers gates only.
        let forwarding = Claims {
            claims: Capabilities::forwarding(true),
            gates: true,
        };
        assert_eq!(
            facets_match_capabilities(&forwarding),
            Err(
                "recording == Server is true but recorder() is None; mixing is true but mix() \
                 is None"
                    .into()
            )
        );
        // Offers gates while saying media does not pass through the server.
        let relay_with_gates = Claims {
            claims: Capabilities::RELAY,
            gates: true,
        };
        assert_eq!(
            facets_match_capabilities(&relay_with_gates),
            Err("carries_media is false but gates() is Some".into())
        );
    }

    #[test]
    fn each_failure_names_itself_with_its_code_and_keeps_its_source() {
        let parse = serde_json::from_str::<u8>("x").unwrap_err();
        let e = MediaError::SdpRefused {
            what: "answer",
            source: source(parse),
        };
        assert_eq!(e.code(), Code::BadRequest);
        assert!(e.to_string().starts_with("answer not accepted: "), "{e}");
        let inner = std::error::Error::source(&e).expect("the source is kept");
        assert!(inner.to_string().contains("expected value"), "{inner}");
        let cases = [
            (
                MediaError::NotJoined("a".into()),
                Code::NotFound,
                "a is not in this room's media",
            ),
            (
                MediaError::WrongOfferer(Transport::Subscribe),
                Code::BadRequest,
                "only the server offers on the subscribe transport",
            ),
            (
                MediaError::NothingToRestart(Transport::Publish),
                Code::BadRequest,
                "there is no publish connection to restart",
            ),
            (
                MediaError::NoConnectionYet(Transport::Publish),
                Code::BadRequest,
                "publish (send the offer) before sending candidates",
            ),
            (
                MediaError::NotSubscribed(None),
                Code::BadRequest,
                "you are not subscribed to that stream",
            ),
            (
                MediaError::NotSubscribed(Some("b:video0".into())),
                Code::BadRequest,
                "you are not subscribed to b:video0",
            ),
            (
                MediaError::AnswerTimedOut { after_ms: 1500 },
                Code::BadRequest,
                "the subscribe offer went unanswered for 1500 ms",
            ),
            (
                MediaError::NoFreePort {
                    min: 1,
                    max: 2,
                    ip: std::net::Ipv4Addr::LOCALHOST.into(),
                },
                Code::SystemError,
                "media failure: no free UDP port in 1-2 on 127.0.0.1",
            ),
        ];
        for (e, code, text) in cases {
            assert_eq!(e.code(), code, "{e}");
            assert!(e.to_string().starts_with(text), "{e}");
        }
    }
}
