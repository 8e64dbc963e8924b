//! The sans-IO shard: many `rtc` peer connections behind one local address.
//!
//! No socket and no clock in here: every call takes `now`, datagrams come in through
//! [`Shard::handle_datagram`] and go out through [`Shard::poll_transmit`], and the driver asks
//! [`Shard::next_timeout`] when to call [`Shard::handle_timeout`]. That keeps the whole media
//! path deterministic, so tests run it on a virtual clock with no network at all.

use std::cmp::Reverse;
use std::collections::{BinaryHeap, VecDeque};
use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::BytesMut;
use rtc::ice::tcp_type::TcpType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::{RTCPeerConnectionEvent, RTCTrackEvent};
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{
    CandidateConfig, CandidateHostConfig, RTCDtlsRole, RTCIceCandidate, RTCIceCandidateInit,
};
use rtc::peer_connection::{RTCPeerConnection, RTCPeerConnectionBuilder};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpTransceiverDirection;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RTCRtpReceiveParameters, RtpCodecKind,
};
use rtc::rtp_transceiver::{RTCRtpReceiverId, RTCRtpSenderId};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use rtc::stun::attributes::ATTR_USERNAME;
use rtc::stun::message::Message as StunMessage;
use rtc::stun::textattrs::TextAttribute;
use rustc_hash::FxHashMap;
use taoyao_media::forward::{KeyframeRequests, SeqRewriter};
use taoyao_media::keyframe::{VideoCodec, is_keyframe};
use taoyao_media::levels::LevelMeter;
use taoyao_media::tap::{Offered, Tap, TapKind};

use crate::error::EngineError;

mod outputs;
pub use outputs::{OutputId, OutputPacket, OutputWrites};

/// A connection on one shard. Unique within the shard, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct ConnId(pub u64);

impl std::fmt::Display for ConnId {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "conn{}", self.0)
    }
}

/// A received track: the connection it arrives on and rtc's track id there.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct TrackRef {
    pub conn: ConnId,
    pub track: String,
}

/// A tap on a track (see [`Shard::add_tap`]). Unique within the shard, never reused.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TapId(pub u64);

/// A track's RFC 6464 audio levels since they were last read ([`Shard::take_audio_levels`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackLevel {
    pub track: TrackRef,
    /// The loudest level (dBov: 0 loudest .. 127 silent; 127 when nothing was heard).
    pub loudest: u8,
    /// Packets (20 ms frames) louder than [`ShardConfig::silence_dbov`]: speaking if > 0.
    pub speaking: u32,
}

/// How a send track on a subscriber connection is labelled: its `a=msid` (RFC 8830), which a
/// browser shows as the `MediaStream` id and the track id (`ontrack`'s `streams[0].id` and
/// `track.id` for a webrtc-rs client): how a client tells whose track it is.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SendLabels {
    pub stream: String,
    pub track: String,
}

impl SendLabels {
    /// The engine's own labels for a forwarded track: its connection and its rtc track id.
    pub fn of(src: &TrackRef) -> SendLabels {
        SendLabels {
            stream: src.conn.to_string(),
            track: format!("{}-{}", src.conn, src.track),
        }
    }
}

/// What a received track delivered and forwarded ([`Shard::track_counters`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TrackCounters {
    pub track: TrackRef,
    /// RTP packets and payload bytes received on it.
    pub packets: u64,
    pub bytes: u64,
    /// Copies written to its subscribers, all together (removed ones' included).
    pub forwarded: u64,
    /// Subscribers whose answer covered their copy.
    pub live_sinks: usize,
}

/// The RFC 6464 client-to-mixer audio level header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// How a shard is set up.
#[derive(Debug, Clone)]
pub struct ShardConfig {
    /// The address every connection's one host candidate announces, and the `local_addr` the
    /// engine hands rtc with each datagram: rtc's ICE agent rejects non-STUN traffic whose
    /// local address is not one of its local candidates, so the two must be the same.
    pub announced: SocketAddr,
    /// STUN checks kept per connection while its remote description is not set yet (rtc drops
    /// them: it has no remote password to check them with). 0 disables keeping them.
    pub early_checks: usize,
    /// Also report every received RTP packet as [`Event::Rtp`] (tests and taps; forwarding does
    /// not need it, and at full rate it is one event per packet).
    pub rtp_events: bool,
    /// Keyframe requests to one publisher's video track: at most one per this interval (a
    /// subscriber that just started waiting is served after 100 ms; see
    /// `taoyao_media::forward::KeyframeRequests`).
    pub keyframe_interval: Duration,
    /// The shard's index in its engine, written at the head of every ufrag it makes: the
    /// ICE-TCP acceptor reads it back from a new stream's first check (`ufrag_shard`) and
    /// needs no shared ufrag map.
    pub index: usize,
    /// The passive ICE-TCP candidate every connection announces beside its UDP one, and the
    /// `local_addr` the engine hands rtc with each TCP frame (as `announced` is for UDP: rtc
    /// matches it against the local candidates). `None`: no TCP candidate.
    pub tcp: Option<SocketAddr>,
    /// Audio levels quieter than this (RFC 6464 dBov, numerically larger) are not speaking.
    pub silence_dbov: u8,
}

impl ShardConfig {
    pub fn new(announced: SocketAddr) -> Self {
        ShardConfig {
            announced,
            index: 0,
            tcp: None,
            early_checks: 8,
            rtp_events: false,
            keyframe_interval: Duration::from_millis(500),
            silence_dbov: taoyao_media::levels::DEFAULT_SILENCE_DBOV,
        }
    }
}

/// One datagram to send.
#[derive(Debug)]
pub struct Transmit {
    pub local: SocketAddr,
    pub remote: SocketAddr,
    /// UDP: a datagram from the shard's socket. TCP: one RFC 4571 frame on the ICE-TCP stream
    /// whose peer is `remote` (rtc stamps the selected pair's protocol on every write).
    pub protocol: TransportProtocol,
    pub payload: BytesMut,
}

/// What happened on the shard, for the control plane.
#[derive(Debug, Clone)]
pub enum Event {
    /// The connection's state changed (rtc's peer connection state).
    State {
        conn: ConnId,
        state: RTCPeerConnectionState,
    },
    /// A client's track is open on the server: it can be forwarded.
    TrackOpened { track: TrackRef, kind: RtpCodecKind },
    /// A track ended.
    TrackClosed { track: TrackRef },
    /// A received RTP packet (only with [`ShardConfig::rtp_events`]).
    Rtp {
        track: TrackRef,
        sequence_number: u16,
        payload_len: usize,
    },
}

/// Counters of what the shard did (cheap, always on).
#[derive(Debug, Clone, Copy, Default)]
pub struct ShardStats {
    /// What the shard thread's socket sent (filled by [`crate::driver`]; zero for a bare
    /// [`Shard`], which does no I/O).
    pub egress: crate::egress::EgressStats,
    pub datagrams_in: u64,
    pub datagrams_out: u64,
    /// Datagrams from an unknown address that were not a STUN check for a known ufrag.
    pub unroutable: u64,
    /// Of `datagrams_in`, the RFC 4571 frames that came over ICE-TCP streams.
    pub tcp_frames_in: u64,
    /// What the shard thread's ICE-TCP streams did (filled by [`crate::driver`]).
    pub tcp: crate::tcp::TcpStreamStats,
    /// STUN checks kept because they came before the remote description, and replayed later.
    pub early_checks_kept: u64,
    pub early_checks_replayed: u64,
    /// RTP packets received from clients and copies written to subscribers.
    pub rtp_in: u64,
    pub rtp_forwarded: u64,
    /// Copies that rtc refused (negotiation not done yet, codec missing on the sink).
    pub forward_errors: u64,
    /// Copies not sent because the sink waits for a keyframe (it joined, or resumed).
    pub keyframe_waits: u64,
    /// Copies not sent because the track or the sink is paused.
    pub paused_skips: u64,
    /// Keyframe requests (PLI) written to publishers, and asks the rate limit held back.
    pub keyframe_requests: u64,
    pub keyframe_asks_deferred: u64,
    /// Keyframe requests (PLI, FIR) received from subscribers and relayed as an ask.
    pub subscriber_keyframe_requests: u64,
    /// `handle_timeout` calls on connections (only due ones are touched).
    pub conn_timeouts: u64,
    /// Packets offered to recorder taps (one per tap per packet while its writer is there),
    /// and of those the ones a full queue dropped.
    pub tap_offered: u64,
    pub tap_dropped: u64,
    /// Packets written to outputs ([`Shard::write_outputs`]), dropped because the output was
    /// not live yet, and failed (gone, or refused by rtc).
    pub outputs_written: u64,
    pub outputs_waiting: u64,
    pub outputs_failed: u64,
}

/// One subscriber leg of a forwarded track.
#[derive(Debug)]
struct Sink {
    conn: ConnId,
    sender: RTCRtpSenderId,
    ssrc: u32,
    /// The payload type negotiated on this sink for the track's codec, looked up on the first
    /// packet after the sink's answer (before it, rtc has no negotiated codecs to write with).
    pt: Option<u8>,
    /// Where the negotiation that carries this leg to the client is: written to only once the
    /// answer to an offer that had it was applied (a renegotiation on a connected sink would
    /// otherwise write on a sender the client does not know yet).
    leg: Leg,
    /// Video: nothing is sent until a keyframe (the sink could not decode it).
    need_keyframe: bool,
    /// This subscriber's copy is paused (its own choice, or the room's rules for it).
    paused: bool,
    seq: SeqRewriter,
}

/// A send track's place in the subscriber's negotiation (the server is the offerer there).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Leg {
    /// Added to the connection; no offer has carried it yet.
    Added,
    /// In the offer the client has not answered yet.
    Offered,
    /// The client's answer covered it: it may be written to.
    Live,
}

/// One of a subscriber connection's send tracks: the source it forwards and rtc's sender.
#[derive(Debug, Clone)]
struct Sending {
    source: TrackRef,
    sender: RTCRtpSenderId,
}

/// A client track received on a connection.
#[derive(Debug)]
struct Inbound {
    receiver: RTCRtpReceiverId,
    kind: RtpCodecKind,
    sinks: Vec<Sink>,
    /// Forwarded to no one: the publisher paused it ...
    paused: bool,
    /// ... or the room's rules closed it (apart, so that neither undoes the other).
    gated: bool,
    /// RTP packets and payload bytes the track delivered.
    packets: u64,
    bytes: u64,
    /// Copies rtc accepted for its subscribers (removed ones included).
    forwarded: u64,
    /// Sinks with `need_keyframe` (the payload is inspected only while some wait).
    waiting: usize,
    keyframes: KeyframeRequests,
    /// Recordings of this track: each gets every packet as it arrived. Dropped with the track,
    /// which is how a writer whose only sender is here sees the end.
    taps: Vec<(TapId, Tap)>,
    /// Audio whose publisher negotiated RFC 6464 levels: the extension id rtc negotiated and
    /// the levels heard since the last read.
    level: Option<(u8, LevelMeter)>,
}

impl Inbound {
    /// Held back from every subscriber: paused by its publisher or gated by the room.
    fn held(&self) -> bool {
        self.paused || self.gated
    }
}

struct Conn {
    pc: RTCPeerConnection,
    ufrag: String,
    remote_set: bool,
    /// Checks that came before the remote description: (from, bytes).
    early: Vec<(Remote, BytesMut)>,
    /// The instant this connection has in the timer heap, if any.
    scheduled: Option<Instant>,
    tracks: FxHashMap<String, Inbound>,
    /// Remote addresses routed to this connection (to clean the address map on close).
    addrs: Vec<Remote>,
    state: RTCPeerConnectionState,
    /// In `Shard::dirty` already (a flag, not a search: a packet to N sinks queues N).
    queued: bool,
    /// Tracks this connection subscribes to (it is a sink of each): asked for a keyframe when
    /// it connects.
    sources: Vec<TrackRef>,
    /// This connection's send tracks (rtc's track id) -> the source each forwards (a keyframe
    /// request from the subscriber about one goes to that source) and its sender. Kept when
    /// the source goes: removing a send track is a renegotiation, the control plane's call.
    sending: FxHashMap<String, Sending>,
    /// Send tracks the control plane writes to itself (a mix), see [`Shard::add_output`].
    outputs: FxHashMap<OutputId, outputs::Output>,
}

/// Many peer connections sharing one local address; see the module docs.
pub struct Shard {
    cfg: ShardConfig,
    next_id: u64,
    next_tap: u64,
    next_output: u64,
    conns: FxHashMap<ConnId, Conn>,
    by_addr: FxHashMap<Remote, ConnId>,
    by_ufrag: FxHashMap<String, ConnId>,
    /// Min-heap of (deadline, conn). Entries go stale when a connection's deadline moves; a
    /// popped entry counts only if it still equals the connection's `scheduled`.
    timers: BinaryHeap<Reverse<(Instant, ConnId)>>,
    transmits: VecDeque<Transmit>,
    events: VecDeque<Event>,
    /// Connections with output to drain (a forwarded write makes a sink dirty).
    dirty: Vec<ConnId>,
    stats: ShardStats,
    /// ICE-TCP peers of connections that closed: the driver closes their streams.
    tcp_gone: Vec<SocketAddr>,
}

/// A remote transport address: UDP and TCP ports are separate spaces, so a TCP peer at the
/// same ip:port as a UDP one is another route.
type Remote = (TransportProtocol, SocketAddr);

/// The server ufrag in a STUN binding request's USERNAME (`<server ufrag>:<client ufrag>`), if
/// `payload` is one. Both routes use it: a shard's datagrams from unknown addresses and the
/// ICE-TCP acceptor's first frame of a new stream.
pub(crate) fn stun_server_ufrag(payload: &[u8]) -> Option<String> {
    // RFC 7983: STUN starts with 0..=3 and carries the magic cookie at bytes 4..8.
    if payload.len() < 20 || payload[0] > 3 || payload[4..8] != [0x21, 0x12, 0xa4, 0x42] {
        return None;
    }
    let mut msg = StunMessage::new();
    msg.unmarshal_binary(payload).ok()?;
    let user = TextAttribute::get_from_as(&msg, ATTR_USERNAME).ok()?;
    let server = user.text.split(':').next()?;
    Some(server.to_owned())
}

/// The shard index a ufrag of ours starts with (hex digits before the first `t`, see
/// `Shard::new_conn`); `None` for a ufrag we did not make.
pub(crate) fn ufrag_shard(ufrag: &str) -> Option<usize> {
    let (index, rest) = ufrag.split_once('t')?;
    if index.is_empty() || index.len() > 4 || rest.is_empty() {
        return None;
    }
    usize::from_str_radix(index, 16).ok()
}

/// Applies our offer or answer and returns the SDP as the connection now describes itself.
fn set_local(
    pc: &mut RTCPeerConnection,
    now: Instant,
    desc: RTCSessionDescription,
) -> Result<String, EngineError> {
    pc.set_local_description(now, desc)
        .map_err(EngineError::rtc)?;
    Ok(pc
        .local_description()
        .ok_or(EngineError::Rtc("no local description".into()))?
        .sdp)
}

impl Shard {
    pub fn new(cfg: ShardConfig) -> Self {
        Shard {
            cfg,
            next_id: 1,
            next_tap: 1,
            next_output: 1,
            conns: FxHashMap::default(),
            by_addr: FxHashMap::default(),
            by_ufrag: FxHashMap::default(),
            timers: BinaryHeap::new(),
            transmits: VecDeque::new(),
            events: VecDeque::new(),
            dirty: Vec::new(),
            stats: ShardStats::default(),
            tcp_gone: Vec::new(),
        }
    }

    pub fn config(&self) -> &ShardConfig {
        &self.cfg
    }

    pub fn stats(&self) -> ShardStats {
        self.stats
    }

    pub fn connection_count(&self) -> usize {
        self.conns.len()
    }

    /// A new server-side peer connection: ICE-lite with credentials the engine chose (so a
    /// check's USERNAME names the connection), DTLS server when answering, and one host
    /// candidate, the shard's announced address.
    fn new_conn(&mut self, now: Instant) -> Result<ConnId, EngineError> {
        let id = ConnId(self.next_id);
        self.next_id += 1;
        // The ufrag is a routing key, not a secret: the shard index makes it unique in the
        // engine (and tells the ICE-TCP acceptor where a stream goes), the id on this shard,
        // the random part keeps a stale client from landing on a later connection. The
        // password is the secret. Hex digits and `t` are all ice-chars (RFC 8839).
        let ufrag = format!(
            "{:x}t{:x}{:08x}",
            self.cfg.index,
            id.0,
            rand::random::<u32>()
        );
        let pwd = format!(
            "{:016x}{:016x}",
            rand::random::<u64>(),
            rand::random::<u64>()
        );
        let mut me = MediaEngine::default();
        me.register_default_codecs().map_err(EngineError::rtc)?;
        // Publishers' audio levels (RFC 6464), so an offer that maps them is answered with
        // them and the receiver's parameters carry the negotiated id. Receive only: the
        // server's send tracks never carry levels (forwarding drops extensions).
        me.register_header_extension(
            RTCRtpHeaderExtensionCapability {
                uri: AUDIO_LEVEL_URI.to_owned(),
            },
            RtpCodecKind::Audio,
            Some(RTCRtpTransceiverDirection::Recvonly),
        )
        .map_err(EngineError::rtc)?;
        let registry = crate::feedback::KeyframeFeedback::register(
            register_default_interceptors(Default::default(), &mut me).map_err(EngineError::rtc)?,
        );
        let settings = SettingEngineBuilder::new()
            .with_lite(true)
            .with_ice_credentials(ufrag.clone(), pwd)
            .with_answering_dtls_role(RTCDtlsRole::Server)
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .map_err(EngineError::rtc)?;
        // The UDP host candidate, and with ICE-TCP a passive TCP one (RFC 6544: the client
        // connects to it). rtc prioritises a TCP host candidate below a UDP one by itself
        // (`Candidate::local_preference`: direction-pref 4 for passive, RFC 6544 4.2), so a
        // client that reaches both picks UDP.
        let tcp = self.cfg.tcp.map(|a| ("tcp", a, TcpType::Passive));
        for (network, addr, tcp_type) in
            std::iter::once(("udp", self.cfg.announced, TcpType::Unspecified)).chain(tcp)
        {
            let host = CandidateHostConfig {
                base_config: CandidateConfig {
                    network: network.to_owned(),
                    address: addr.ip().to_string(),
                    port: addr.port(),
                    component: 1,
                    ..Default::default()
                },
                tcp_type,
            }
            .new_candidate_host()
            .map_err(EngineError::rtc)?;
            let init = RTCIceCandidate::from(&host)
                .to_json()
                .map_err(EngineError::rtc)?;
            pc.add_local_candidate(init).map_err(EngineError::rtc)?;
        }
        self.by_ufrag.insert(ufrag.clone(), id);
        self.conns.insert(
            id,
            Conn {
                pc,
                ufrag,
                remote_set: false,
                early: Vec::new(),
                scheduled: None,
                tracks: FxHashMap::default(),
                addrs: Vec::new(),
                state: RTCPeerConnectionState::New,
                queued: false,
                sources: Vec::new(),
                sending: FxHashMap::default(),
                outputs: FxHashMap::default(),
            },
        );
        Ok(id)
    }

    /// Answers a client's offer (publish style: the client offers its tracks).
    pub fn accept_offer(
        &mut self,
        now: Instant,
        offer_sdp: String,
    ) -> Result<(ConnId, String), EngineError> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(EngineError::sdp)?;
        let id = self.new_conn(now)?;
        match self.answer_on(now, id, offer) {
            Ok(answer) => Ok((id, answer)),
            Err(e) => {
                self.remove(id);
                Err(e)
            }
        }
    }

    fn answer_on(
        &mut self,
        now: Instant,
        id: ConnId,
        offer: RTCSessionDescription,
    ) -> Result<String, EngineError> {
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(EngineError::NoConnection(id))?;
        conn.pc
            .set_remote_description(now, offer)
            .map_err(EngineError::sdp)?;
        let answer = conn.pc.create_answer(None).map_err(EngineError::rtc)?;
        let sdp = set_local(&mut conn.pc, now, answer)?;
        self.on_remote_set(now, id);
        Ok(sdp)
    }

    /// A server connection with nothing on it yet, for subscribing: the server will offer.
    pub fn open_connection(&mut self, now: Instant) -> Result<ConnId, EngineError> {
        let id = self.new_conn(now)?;
        self.touch(now, id);
        Ok(id)
    }

    /// Adds a send track on `sink` for each source track, forwards the sources' RTP to them from
    /// now on, and returns the server's offer (apply the client's answer with
    /// [`Shard::accept_answer`]): [`Shard::add_sends`] then [`Shard::offer`], with each send
    /// track labelled by [`SendLabels::of`].
    pub fn add_subscriber(
        &mut self,
        now: Instant,
        sink: ConnId,
        sources: &[TrackRef],
    ) -> Result<String, EngineError> {
        let sends: Vec<(TrackRef, SendLabels)> = sources
            .iter()
            .map(|s| (s.clone(), SendLabels::of(s)))
            .collect();
        self.add_sends(now, sink, &sends)?;
        self.offer(now, sink)
    }

    /// Adds a send track on `sink` for each source track, labelled as given (the receiver's
    /// `MediaStream` id and track id: a client tells whose track it is by them). Nothing is
    /// offered yet: the control plane collects changes while an answer is pending and offers
    /// them together ([`Shard::offer`]); a leg is written to only once an answer to an offer
    /// that carried it is applied. All sources are checked before anything is added.
    pub fn add_sends(
        &mut self,
        now: Instant,
        sink: ConnId,
        sends: &[(TrackRef, SendLabels)],
    ) -> Result<(), EngineError> {
        let mut legs = Vec::with_capacity(sends.len());
        for (src, labels) in sends {
            let conn = self
                .conns
                .get(&src.conn)
                .ok_or(EngineError::NoConnection(src.conn))?;
            let inbound = conn
                .tracks
                .get(&src.track)
                .ok_or_else(|| EngineError::NoTrack(src.clone()))?;
            legs.push((src.clone(), labels, inbound.kind));
        }
        let conn = self
            .conns
            .get_mut(&sink)
            .ok_or(EngineError::NoConnection(sink))?;
        // Once per source, and once per label (rtc's track id keys the send track).
        if let Some((src, _, _)) = legs.iter().find(|(src, labels, _)| {
            conn.sending.contains_key(&labels.track)
                || conn.sending.values().any(|s| &s.source == src)
        }) {
            return Err(EngineError::AlreadySending(src.clone()));
        }
        let mut added = Vec::with_capacity(legs.len());
        for (src, labels, kind) in legs {
            let ssrc = rand::random::<u32>();
            let sender = add_send_track(&mut conn.pc, kind, ssrc, labels)?;
            conn.sending.insert(
                labels.track.clone(),
                Sending {
                    source: src.clone(),
                    sender,
                },
            );
            added.push((src, sender, ssrc));
        }
        conn.sources
            .extend(added.iter().map(|(src, _, _)| src.clone()));
        for (src, sender, ssrc) in added {
            if let Some(inbound) = self
                .conns
                .get_mut(&src.conn)
                .and_then(|c| c.tracks.get_mut(&src.track))
            {
                let video = inbound.kind == RtpCodecKind::Video;
                inbound.waiting += usize::from(video);
                inbound.sinks.push(Sink {
                    conn: sink,
                    sender,
                    ssrc,
                    pt: None,
                    leg: Leg::Added,
                    need_keyframe: video,
                    paused: false,
                    seq: SeqRewriter::new(),
                });
            }
        }
        // The keyframe a subscriber joining mid-stream needs is asked for when it connects
        // (before that, SRTP on the sink is not up and the keyframe would be lost), or when
        // the answer arms the leg on a sink that is connected already.
        self.touch(now, sink);
        Ok(())
    }

    /// Stops forwarding `src` to `sink` and removes the send track from the connection (rtc
    /// stops sending on it at once; the client learns of it from the next offer). The source
    /// may be gone already (its publisher left): its send track stays on the sink until this.
    pub fn remove_send(
        &mut self,
        now: Instant,
        sink: ConnId,
        src: &TrackRef,
    ) -> Result<(), EngineError> {
        let conn = self
            .conns
            .get_mut(&sink)
            .ok_or(EngineError::NoConnection(sink))?;
        let Some(key) = conn
            .sending
            .iter()
            .find(|(_, s)| &s.source == src)
            .map(|(k, _)| k.clone())
        else {
            return Err(EngineError::NotSending(src.clone()));
        };
        let send = conn.sending.remove(&key).expect("found above");
        conn.sources.retain(|s| s != src);
        conn.pc
            .remove_track(send.sender)
            .map_err(EngineError::rtc)?;
        if let Some(inbound) = self
            .conns
            .get_mut(&src.conn)
            .and_then(|c| c.tracks.get_mut(&src.track))
        {
            // No leg here is fine: the track may have closed and opened again under its id.
            let mut waiting_gone = 0;
            inbound.sinks.retain(|l| {
                let gone = l.conn == sink;
                waiting_gone += usize::from(gone && l.need_keyframe);
                !gone
            });
            inbound.waiting -= waiting_gone;
        }
        self.touch(now, sink);
        Ok(())
    }

    /// Offers `sink`'s send tracks as they are now (every addition and removal since the last
    /// offer) and returns the SDP. Apply the client's answer with [`Shard::accept_answer`];
    /// until then the tracks this offer adds are not written to. One offer at a time: a second
    /// one before the answer is rtc's to refuse or supersede, so the control plane waits.
    pub fn offer(&mut self, now: Instant, sink: ConnId) -> Result<String, EngineError> {
        let conn = self
            .conns
            .get_mut(&sink)
            .ok_or(EngineError::NoConnection(sink))?;
        let offer = conn.pc.create_offer(None).map_err(EngineError::rtc)?;
        let sdp = set_local(&mut conn.pc, now, offer)?;
        for o in conn.outputs.values_mut() {
            o.offered();
        }
        let sources = conn.sources.clone();
        for src in &sources {
            if let Some(inbound) = self
                .conns
                .get_mut(&src.conn)
                .and_then(|c| c.tracks.get_mut(&src.track))
            {
                for leg in inbound
                    .sinks
                    .iter_mut()
                    .filter(|l| l.conn == sink && l.leg == Leg::Added)
                {
                    leg.leg = Leg::Offered;
                }
            }
        }
        self.touch(now, sink);
        Ok(sdp)
    }

    /// Applies a client's answer to the server's offer.
    pub fn accept_answer(
        &mut self,
        now: Instant,
        id: ConnId,
        answer_sdp: String,
    ) -> Result<(), EngineError> {
        let answer = RTCSessionDescription::answer(answer_sdp).map_err(EngineError::sdp)?;
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(EngineError::NoConnection(id))?;
        conn.pc
            .set_remote_description(now, answer)
            .map_err(EngineError::sdp)?;
        let connected = conn.state == RTCPeerConnectionState::Connected;
        for o in conn.outputs.values_mut() {
            o.answered();
        }
        let sources = conn.sources.clone();
        // Arm the legs this answer covers (those of the offer it answers, not the ones added
        // since). On a sink that is already connected (a renegotiation) they also need their
        // keyframe now; otherwise it comes on connect.
        for src in &sources {
            let Some(inbound) = self
                .conns
                .get_mut(&src.conn)
                .and_then(|c| c.tracks.get_mut(&src.track))
            else {
                continue;
            };
            let mut armed = false;
            for leg in inbound
                .sinks
                .iter_mut()
                .filter(|l| l.conn == id && l.leg == Leg::Offered)
            {
                leg.leg = Leg::Live;
                armed = true;
            }
            if armed && connected {
                self.ask_keyframe(now, src, true);
            }
        }
        self.on_remote_set(now, id);
        Ok(())
    }

    /// A publisher's new offer on its connection (it added or removed a track, or restarted
    /// ICE): answered on the same connection, whose tracks and legs stay. A track the offer
    /// adds opens on its first packet ([`Event::TrackOpened`]), one it removes closes.
    pub fn accept_reoffer(
        &mut self,
        now: Instant,
        id: ConnId,
        offer_sdp: String,
    ) -> Result<String, EngineError> {
        let offer = RTCSessionDescription::offer(offer_sdp).map_err(EngineError::sdp)?;
        let sdp = self.answer_on(now, id, offer)?;
        self.touch(now, id);
        Ok(sdp)
    }

    /// A candidate the client trickled. The server is ICE-lite and learns a client's address
    /// from its checks anyway (peer-reflexive), so this only helps rtc pair sooner; an empty
    /// candidate (end of candidates) is accepted and does nothing.
    pub fn add_remote_candidate(
        &mut self,
        now: Instant,
        id: ConnId,
        candidate: RTCIceCandidateInit,
    ) -> Result<(), EngineError> {
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(EngineError::NoConnection(id))?;
        if candidate.candidate.trim().is_empty() {
            return Ok(());
        }
        conn.pc
            .add_remote_candidate(candidate)
            .map_err(EngineError::sdp)?;
        self.touch(now, id);
        Ok(())
    }

    /// What `tracks` delivered and forwarded so far (an unknown track is left out).
    pub fn track_counters(&self, tracks: &[TrackRef]) -> Vec<TrackCounters> {
        tracks
            .iter()
            .filter_map(|t| {
                let inbound = self.conns.get(&t.conn)?.tracks.get(&t.track)?;
                Some(TrackCounters {
                    track: t.clone(),
                    packets: inbound.packets,
                    bytes: inbound.bytes,
                    forwarded: inbound.forwarded,
                    live_sinks: inbound.sinks.iter().filter(|s| s.leg == Leg::Live).count(),
                })
            })
            .collect()
    }

    /// Asks the publisher of `src` for a keyframe (PLI), within the rate limit.
    pub fn request_keyframe(&mut self, now: Instant, src: &TrackRef) {
        self.ask_keyframe(now, src, false);
        self.touch(now, src.conn);
    }

    /// Taps `src` for a recording: from now on every RTP packet the track delivers (after
    /// SRTP, before forwarding rewrites it) is offered to `tap` without waiting; a full queue
    /// drops and counts ([`ShardStats::tap_dropped`], and the tap's own counts). The tap is
    /// dropped when the track or its connection ends, or by [`Shard::remove_tap`].
    pub fn add_tap(&mut self, src: &TrackRef, tap: Tap) -> Result<TapId, EngineError> {
        let id = TapId(self.next_tap);
        self.inbound_mut(src)?.taps.push((id, tap));
        self.next_tap += 1;
        Ok(id)
    }

    /// Stops `id`'s delivery and drops the shard's end of it.
    pub fn remove_tap(&mut self, src: &TrackRef, id: TapId) -> Result<(), EngineError> {
        let inbound = self.inbound_mut(src)?;
        let before = inbound.taps.len();
        inbound.taps.retain(|(t, _)| *t != id);
        if inbound.taps.len() == before {
            return Err(EngineError::NoTap(id));
        }
        Ok(())
    }

    /// The audio levels each of `tracks` was heard at since the last read, and starts anew.
    /// Only tracks whose publisher negotiated RFC 6464 levels are reported (an unknown track,
    /// video, or audio without the extension is left out). The caller reads on its own
    /// interval, as the room's level reports do.
    pub fn take_audio_levels(&self, tracks: &[TrackRef]) -> Vec<TrackLevel> {
        tracks
            .iter()
            .filter_map(|t| {
                let (_, meter) = self
                    .conns
                    .get(&t.conn)?
                    .tracks
                    .get(&t.track)?
                    .level
                    .as_ref()?;
                let (loudest, speaking) = meter.take();
                Some(TrackLevel {
                    track: t.clone(),
                    loudest,
                    speaking,
                })
            })
            .collect()
    }

    /// Pauses or resumes `src` for every subscriber (the publisher paused it). Resumed video
    /// restarts on a keyframe. Independent of [`Shard::set_track_gated`]: the track is
    /// forwarded only while neither holds it.
    pub fn set_track_paused(
        &mut self,
        now: Instant,
        src: &TrackRef,
        paused: bool,
    ) -> Result<(), EngineError> {
        self.hold_track(now, src, paused, |i| &mut i.paused)
    }

    /// Closes or opens `src` by the room's rules (a mode, a presenter): like a pause, but
    /// apart from it, so that a member's own resume does not open what the room closed.
    pub fn set_track_gated(
        &mut self,
        now: Instant,
        src: &TrackRef,
        closed: bool,
    ) -> Result<(), EngineError> {
        self.hold_track(now, src, closed, |i| &mut i.gated)
    }

    fn hold_track(
        &mut self,
        now: Instant,
        src: &TrackRef,
        hold: bool,
        flag: impl Fn(&mut Inbound) -> &mut bool,
    ) -> Result<(), EngineError> {
        let inbound = self.inbound_mut(src)?;
        let was_held = inbound.held();
        *flag(inbound) = hold;
        let resumed = was_held && !inbound.held();
        if resumed && Self::wait_for_keyframe(inbound, |_| true) {
            self.ask_keyframe(now, src, true);
            self.touch(now, src.conn);
        }
        Ok(())
    }

    /// Pauses or resumes the copy of `src` that `sink` receives. Resumed video restarts on a
    /// keyframe.
    pub fn set_sink_paused(
        &mut self,
        now: Instant,
        src: &TrackRef,
        sink: ConnId,
        paused: bool,
    ) -> Result<(), EngineError> {
        let inbound = self.inbound_mut(src)?;
        let mut resumed = false;
        let mut found = false;
        for leg in inbound.sinks.iter_mut().filter(|l| l.conn == sink) {
            found = true;
            resumed |= std::mem::replace(&mut leg.paused, paused) && !paused;
        }
        if !found {
            return Err(EngineError::NoConnection(sink));
        }
        if resumed && Self::wait_for_keyframe(inbound, |l| l.conn == sink) {
            self.ask_keyframe(now, src, true);
            self.touch(now, src.conn);
        }
        Ok(())
    }

    fn inbound_mut(&mut self, src: &TrackRef) -> Result<&mut Inbound, EngineError> {
        self.conns
            .get_mut(&src.conn)
            .ok_or(EngineError::NoConnection(src.conn))?
            .tracks
            .get_mut(&src.track)
            .ok_or_else(|| EngineError::NoTrack(src.clone()))
    }

    /// Video legs chosen by `which` wait for a keyframe again; true if any started waiting.
    fn wait_for_keyframe(inbound: &mut Inbound, which: impl Fn(&Sink) -> bool) -> bool {
        if inbound.kind != RtpCodecKind::Video {
            return false;
        }
        let mut started = false;
        for leg in inbound.sinks.iter_mut().filter(|l| which(l)) {
            if !std::mem::replace(&mut leg.need_keyframe, true) {
                inbound.waiting += 1;
                started = true;
            }
        }
        if started {
            inbound.keyframes.fresh_waiter();
        }
        started
    }

    /// Someone wants a keyframe of `src` (`fresh`: a subscriber just started waiting): a PLI
    /// goes now if the rate limit allows, else at the limit's deadline (the publisher's
    /// connection is scheduled for it).
    fn ask_keyframe(&mut self, now: Instant, src: &TrackRef, fresh: bool) {
        let Some(inbound) = self
            .conns
            .get_mut(&src.conn)
            .and_then(|c| c.tracks.get_mut(&src.track))
        else {
            return;
        };
        if inbound.kind != RtpCodecKind::Video {
            return;
        }
        if fresh {
            inbound.keyframes.fresh_waiter();
        }
        if inbound.keyframes.ask(now) {
            self.pli(now, src);
        } else {
            self.stats.keyframe_asks_deferred += 1;
            self.reschedule(src.conn);
        }
    }

    /// Writes a PLI for `src` and marks its connection for draining.
    fn pli(&mut self, now: Instant, src: &TrackRef) {
        let Some(conn) = self.conns.get_mut(&src.conn) else {
            return;
        };
        let Some(inbound) = conn.tracks.get(&src.track) else {
            return;
        };
        if inbound.kind != RtpCodecKind::Video {
            return;
        }
        self.stats.keyframe_requests += 1;
        if let Some(mut rx) = conn.pc.rtp_receiver(inbound.receiver) {
            let ssrc = rx.track().ssrcs().next();
            if let Some(media_ssrc) = ssrc {
                let pli = PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                };
                if let Err(e) = rx.write_rtcp(now, vec![Box::new(pli)]) {
                    tracing::debug!(conn = %src.conn, "PLI not sent: {e}");
                }
            }
        }
        if !conn.queued {
            conn.queued = true;
            self.dirty.push(src.conn);
        }
    }

    /// Closes a connection: tells the peer, drops its routes and every forwarding leg to or
    /// from it. Subscribers of its tracks keep their (now silent) send tracks: removing them
    /// is a renegotiation, the control plane's call.
    pub fn close(&mut self, now: Instant, id: ConnId) -> Result<(), EngineError> {
        let conn = self
            .conns
            .get_mut(&id)
            .ok_or(EngineError::NoConnection(id))?;
        let _ = conn.pc.close();
        self.drain_conn(now, id);
        self.remove(id);
        Ok(())
    }

    fn remove(&mut self, id: ConnId) {
        if let Some(conn) = self.conns.remove(&id) {
            self.by_ufrag.remove(&conn.ufrag);
            // Its TCP peers' streams serve nobody now (kept checks' too: a stream is adopted on
            // its first check, before the remote description may be set).
            let early = conn.early.iter().map(|(r, _)| *r);
            for (proto, peer) in conn.addrs.iter().copied().chain(early) {
                if proto == TransportProtocol::TCP && !self.tcp_gone.contains(&peer) {
                    self.tcp_gone.push(peer);
                }
            }
            for a in conn.addrs {
                self.by_addr.remove(&a);
            }
            for track in conn.tracks.into_keys() {
                self.events.push_back(Event::TrackClosed {
                    track: TrackRef { conn: id, track },
                });
            }
        }
        for conn in self.conns.values_mut() {
            for t in conn.tracks.values_mut() {
                let mut waiting_gone = 0;
                t.sinks.retain(|s| {
                    let gone = s.conn == id;
                    waiting_gone += usize::from(gone && s.need_keyframe);
                    !gone
                });
                t.waiting -= waiting_gone;
            }
            conn.sources.retain(|s| s.conn != id);
        }
    }

    /// The remote description is set: checks kept until now can be answered.
    fn on_remote_set(&mut self, now: Instant, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        conn.remote_set = true;
        let early = std::mem::take(&mut conn.early);
        for (from, _) in &early {
            // The kept checks' source is this connection's too: route its next datagrams (the
            // responses to our checks carry no USERNAME) by address.
            if !conn.addrs.contains(from) {
                conn.addrs.push(*from);
                self.by_addr.insert(*from, id);
            }
        }
        for (from, bytes) in early {
            self.stats.early_checks_replayed += 1;
            self.read_into(now, id, from, bytes);
        }
        self.touch(now, id);
    }

    /// One datagram from the socket. Routed by remote address, else by the server ufrag in a
    /// STUN check's USERNAME; anything else is dropped (counted in `unroutable`).
    pub fn handle_datagram(
        &mut self,
        now: Instant,
        local: SocketAddr,
        remote: SocketAddr,
        payload: BytesMut,
    ) {
        let _ = local; // one local address per shard today; kept for multi-homing.
        let _ = self.receive(now, (TransportProtocol::UDP, remote), payload);
    }

    /// One RFC 4571 frame (its header removed) from the ICE-TCP stream whose peer is `remote`.
    /// Routed as a datagram is, in TCP's own address space; without a TCP candidate
    /// ([`ShardConfig::tcp`]) it is unroutable. Returns whether it reached a connection (or is
    /// a check for one that came before its remote description): a new stream whose first
    /// frame did not is closed by the driver.
    pub fn handle_tcp_frame(
        &mut self,
        now: Instant,
        remote: SocketAddr,
        payload: BytesMut,
    ) -> bool {
        self.stats.tcp_frames_in += 1;
        if self.cfg.tcp.is_none() {
            self.stats.datagrams_in += 1;
            self.stats.unroutable += 1;
            return false;
        }
        self.receive(now, (TransportProtocol::TCP, remote), payload)
    }

    #[cfg(test)]
    pub(crate) fn ufrag_of(&self, id: ConnId) -> Option<&str> {
        self.conns.get(&id).map(|c| c.ufrag.as_str())
    }

    /// The next ICE-TCP peer whose connection closed (its stream should be closed too).
    pub fn poll_tcp_gone(&mut self) -> Option<SocketAddr> {
        self.tcp_gone.pop()
    }

    /// Routes and reads one packet; false if it was unroutable.
    fn receive(&mut self, now: Instant, remote: Remote, payload: BytesMut) -> bool {
        self.stats.datagrams_in += 1;
        let id = match self.by_addr.get(&remote) {
            Some(id) => *id,
            None => {
                let Some(id) = self.route_stun(&payload) else {
                    self.stats.unroutable += 1;
                    return false;
                };
                let Some(conn) = self.conns.get_mut(&id) else {
                    self.stats.unroutable += 1;
                    return false;
                };
                if !conn.remote_set {
                    if conn.early.len() < self.cfg.early_checks {
                        conn.early.push((remote, payload));
                        self.stats.early_checks_kept += 1;
                    }
                    return true;
                }
                // A check with the right ufrag: the address belongs to this connection now.
                // (Integrity is checked by rtc; a forged check could only misroute packets
                // from the forger's own address.)
                conn.addrs.push(remote);
                self.by_addr.insert(remote, id);
                id
            }
        };
        self.read_into(now, id, remote, payload);
        self.touch(now, id);
        true
    }

    fn read_into(&mut self, now: Instant, id: ConnId, remote: Remote, payload: BytesMut) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let (transport_protocol, peer_addr) = remote;
        // rtc accepts media only if `local_addr` is one of its local candidates of that
        // protocol: the UDP one, or the passive TCP one (only TCP frames reach here with it).
        let local_addr = match transport_protocol {
            TransportProtocol::TCP => self.cfg.tcp.unwrap_or(self.cfg.announced),
            _ => self.cfg.announced,
        };
        let msg = TaggedBytesMut {
            now,
            transport: TransportContext {
                local_addr,
                peer_addr,
                ecn: None,
                transport_protocol,
            },
            message: payload,
        };
        if let Err(e) = conn.pc.handle_read(msg) {
            tracing::debug!(conn = %id, "handle_read: {e}");
        }
    }

    /// The connection named by the server ufrag of a STUN binding request.
    fn route_stun(&self, payload: &[u8]) -> Option<ConnId> {
        self.by_ufrag.get(&stun_server_ufrag(payload)?).copied()
    }

    /// The next datagram to send.
    pub fn poll_transmit(&mut self) -> Option<Transmit> {
        self.transmits.pop_front()
    }

    /// The next event for the control plane.
    pub fn poll_event(&mut self) -> Option<Event> {
        self.events.pop_front()
    }

    /// When [`Shard::handle_timeout`] should next be called.
    pub fn next_timeout(&mut self) -> Option<Instant> {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if self.conns.get(&id).and_then(|c| c.scheduled) == Some(at) {
                return Some(at);
            }
            self.timers.pop(); // stale
        }
        None
    }

    /// Runs the timers of the connections that are due, and only those.
    pub fn handle_timeout(&mut self, now: Instant) {
        while let Some(Reverse((at, id))) = self.timers.peek().copied() {
            if at > now {
                break;
            }
            self.timers.pop();
            let Some(conn) = self.conns.get_mut(&id) else {
                continue;
            };
            if conn.scheduled != Some(at) {
                continue; // stale entry
            }
            conn.scheduled = None;
            self.stats.conn_timeouts += 1;
            if let Err(e) = conn.pc.handle_timeout(now) {
                tracing::debug!(conn = %id, "handle_timeout: {e}");
            }
            // Keyframe asks the rate limit held back until now.
            let due: Vec<String> = conn
                .tracks
                .iter_mut()
                .filter_map(|(t, i)| i.keyframes.poll(now).then(|| t.clone()))
                .collect();
            for track in due {
                self.pli(now, &TrackRef { conn: id, track });
            }
            self.touch(now, id);
        }
    }

    /// After any call into a connection: drain its output (and that of every sink a forwarded
    /// packet was written to), then reschedule their timers.
    fn touch(&mut self, now: Instant, id: ConnId) {
        if let Some(c) = self.conns.get_mut(&id)
            && !c.queued
        {
            c.queued = true;
            self.dirty.push(id);
        }
        self.drain_dirty(now);
    }

    /// Drains every connection marked dirty and reschedules its timer.
    fn drain_dirty(&mut self, now: Instant) {
        while let Some(id) = self.dirty.pop() {
            if let Some(c) = self.conns.get_mut(&id) {
                c.queued = false;
            }
            self.drain_conn(now, id);
            self.reschedule(id);
        }
    }

    fn reschedule(&mut self, id: ConnId) {
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        let keyframe = conn
            .tracks
            .values()
            .filter_map(|t| t.keyframes.deadline())
            .min();
        let Some(next) = [conn.pc.poll_timeout(), keyframe]
            .into_iter()
            .flatten()
            .min()
        else {
            return;
        };
        // Push only when the deadline moves earlier: a later one is found when the earlier
        // entry fires (rtc's handle_timeout ignores timers that are not due), which keeps the
        // heap near one entry per connection instead of one per packet.
        match conn.scheduled {
            Some(s) if s <= next => {}
            _ => {
                conn.scheduled = Some(next);
                self.timers.push(Reverse((next, id)));
            }
        }
    }

    fn drain_conn(&mut self, now: Instant, id: ConnId) {
        let rtp_events = self.cfg.rtp_events;
        let Some(conn) = self.conns.get_mut(&id) else {
            return;
        };
        while let Some(w) = conn.pc.poll_write() {
            self.stats.datagrams_out += 1;
            self.transmits.push_back(Transmit {
                local: w.transport.local_addr,
                remote: w.transport.peer_addr,
                protocol: w.transport.transport_protocol,
                payload: w.message,
            });
        }
        let mut connected = false;
        while let Some(ev) = conn.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(state) => {
                    connected |= state == RTCPeerConnectionState::Connected
                        && conn.state != RTCPeerConnectionState::Connected;
                    conn.state = state;
                    self.events.push_back(Event::State { conn: id, state });
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnOpen(init)) => {
                    let (kind, level_id) = match conn.pc.rtp_receiver(init.receiver_id) {
                        Some(mut r) => {
                            let kind = r.track().kind();
                            (kind, audio_level_id(kind, r.get_parameters()))
                        }
                        None => (RtpCodecKind::Unspecified, None),
                    };
                    let silence = self.cfg.silence_dbov;
                    conn.tracks.insert(
                        init.track_id.clone(),
                        Inbound {
                            receiver: init.receiver_id,
                            kind,
                            sinks: Vec::new(),
                            paused: false,
                            gated: false,
                            packets: 0,
                            bytes: 0,
                            forwarded: 0,
                            waiting: 0,
                            keyframes: KeyframeRequests::new(self.cfg.keyframe_interval),
                            taps: Vec::new(),
                            level: level_id.map(|id| (id, LevelMeter::new(silence))),
                        },
                    );
                    self.events.push_back(Event::TrackOpened {
                        track: TrackRef {
                            conn: id,
                            track: init.track_id,
                        },
                        kind,
                    });
                }
                RTCPeerConnectionEvent::OnTrack(RTCTrackEvent::OnClose(track))
                    if conn.tracks.remove(&track).is_some() =>
                {
                    self.events.push_back(Event::TrackClosed {
                        track: TrackRef { conn: id, track },
                    });
                }
                _ => {}
            }
        }
        // Forwarding needs two connections mutably at once; take the packets out first.
        let mut packets = Vec::new();
        let mut keyframe_asks = Vec::new();
        while let Some(TaggedRTCMessage { message, .. }) = conn.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(track, pkt) => packets.push((track, pkt)),
                // A subscriber that lost a keyframe (PLI, FIR) about one of our send tracks:
                // ask its source. NACKs are answered by rtc's interceptors from the sender's
                // own history.
                RTCMessage::RtcpPacket(track, rtcp) => {
                    if crate::feedback::asks_for_keyframe(&rtcp)
                        && let Some(send) = conn.sending.get(&track)
                    {
                        keyframe_asks.push(send.source.clone());
                    }
                }
                _ => {}
            }
        }
        if connected {
            // A sink is up: its publishers' next keyframe lets it start decoding.
            for src in conn.sources.clone() {
                self.ask_keyframe(now, &src, true);
            }
        }
        for src in keyframe_asks {
            self.stats.subscriber_keyframe_requests += 1;
            self.ask_keyframe(now, &src, false);
        }
        for (track, pkt) in packets {
            self.stats.rtp_in += 1;
            if rtp_events {
                self.events.push_back(Event::Rtp {
                    track: TrackRef {
                        conn: id,
                        track: track.clone(),
                    },
                    sequence_number: pkt.header.sequence_number,
                    payload_len: pkt.payload.len(),
                });
            }
            self.forward(now, id, &track, pkt);
        }
    }

    /// One packet in, one write per sink: SSRC and payload type rewritten to the sink's, header
    /// extensions dropped (the sink negotiated its own ids; rtc refuses unknown ones), the
    /// sequence number renumbered so packets the sink was not sent leave no gap. Nothing goes
    /// to a paused track or sink, and a video sink starts (and restarts after a pause) on a
    /// keyframe. The payload is a refcounted `Bytes`, shared by every copy.
    fn forward(&mut self, now: Instant, src: ConnId, track: &str, pkt: rtc::rtp::packet::Packet) {
        let Some(inbound) = self
            .conns
            .get_mut(&src)
            .and_then(|c| c.tracks.get_mut(track))
        else {
            return;
        };
        // Taps first and whatever the rules: a recording gets the packet as it arrived (the
        // control plane removes a tap when a paused member must not be recorded).
        let tap_kind = match inbound.kind {
            RtpCodecKind::Video => TapKind::Video,
            _ => TapKind::Audio,
        };
        for (_, tap) in &inbound.taps {
            match tap.offer(tap_kind, &pkt, now) {
                Offered::Queued => self.stats.tap_offered += 1,
                Offered::Dropped => {
                    self.stats.tap_offered += 1;
                    self.stats.tap_dropped += 1;
                }
                Offered::Closed => {}
            }
        }
        // Heard only while forwarded (as in the sfu): a paused track is silent to the others.
        // The level byte is read in place: no clone, no allocation.
        if let Some((id, meter)) = &inbound.level
            && !inbound.held()
            && pkt.header.extension
            && let Some(byte) = pkt
                .header
                .extensions
                .iter()
                .find(|e| e.id == *id)
                .and_then(|e| e.payload.first())
        {
            meter.observe(*byte);
        }
        let mut sinks = std::mem::take(&mut inbound.sinks);
        let track_paused = inbound.held();
        inbound.packets += 1;
        inbound.bytes += pkt.payload.len() as u64;
        let key = inbound.waiting > 0
            && inbound.kind == RtpCodecKind::Video
            && is_keyframe(VideoCodec::Vp8, &pkt.payload);
        let mut started = 0;
        let mut written = 0;
        for sink in &mut sinks {
            let Some(conn) = self.conns.get_mut(&sink.conn) else {
                continue;
            };
            // Until the sink is connected SRTP is not keyed and its negotiated payload types may
            // not be final: skip it (today's sfu attaches sinks on connect for the same reason).
            if sink.leg != Leg::Live || conn.state != RTCPeerConnectionState::Connected {
                sink.seq.skip();
                continue;
            }
            if track_paused || sink.paused {
                self.stats.paused_skips += 1;
                sink.seq.skip();
                continue;
            }
            if sink.need_keyframe {
                if !key {
                    self.stats.keyframe_waits += 1;
                    sink.seq.skip();
                    continue;
                }
                sink.need_keyframe = false;
                started += 1;
            }
            let pt = match sink.pt {
                Some(pt) => pt,
                None => {
                    let Some(pt) = sink_payload_type(&mut conn.pc, sink.sender) else {
                        self.stats.forward_errors += 1;
                        continue;
                    };
                    sink.pt = Some(pt);
                    pt
                }
            };
            let mut copy = pkt.clone();
            copy.header.ssrc = sink.ssrc;
            copy.header.payload_type = pt;
            copy.header.extension = false;
            copy.header.extensions.clear();
            copy.header.sequence_number = sink.seq.map(pkt.header.sequence_number);
            let Some(mut sender) = conn.pc.rtp_sender(sink.sender) else {
                continue;
            };
            match sender.write_rtp(now, copy) {
                Ok(()) => {
                    self.stats.rtp_forwarded += 1;
                    written += 1;
                    if !conn.queued {
                        conn.queued = true;
                        self.dirty.push(sink.conn);
                    }
                }
                Err(_) => self.stats.forward_errors += 1,
            }
        }
        if let Some(t) = self
            .conns
            .get_mut(&src)
            .and_then(|c| c.tracks.get_mut(track))
        {
            t.sinks = sinks;
            t.waiting -= started;
            t.forwarded += written;
        }
    }
}

/// The id rtc negotiated for RFC 6464 audio levels on an audio receiver, if any.
fn audio_level_id(kind: RtpCodecKind, params: &RTCRtpReceiveParameters) -> Option<u8> {
    if kind != RtpCodecKind::Audio {
        return None;
    }
    params
        .rtp_parameters
        .header_extensions
        .iter()
        .find(|h| h.uri == AUDIO_LEVEL_URI)
        .and_then(|h| u8::try_from(h.id).ok())
}

/// The sink sender's payload type for the one codec of its kind this demo forwards (VP8 or
/// Opus; publishers offering other codecs are the forwarder's job, still to come).
fn sink_payload_type(pc: &mut RTCPeerConnection, sender: RTCRtpSenderId) -> Option<u8> {
    let mut sender = pc.rtp_sender(sender)?;
    let mime = match sender.track().kind() {
        RtpCodecKind::Video => "video/VP8",
        _ => "audio/opus",
    };
    sender
        .get_parameters()
        .rtp_parameters
        .codecs
        .iter()
        .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
        .map(|c| c.payload_type)
}

/// Adds a send track of `kind` (VP8 or Opus) with its own SSRC to a connection, labelled
/// `labels`.
fn add_send_track(
    pc: &mut RTCPeerConnection,
    kind: RtpCodecKind,
    ssrc: u32,
    labels: &SendLabels,
) -> Result<RTCRtpSenderId, EngineError> {
    let codec = match kind {
        RtpCodecKind::Video => vp8(),
        _ => opus(),
    };
    let track = MediaStreamTrack::new(
        labels.stream.clone(),
        labels.track.clone(),
        labels.track.clone(),
        kind,
        vec![RTCRtpEncodingParameters {
            rtp_coding_parameters: RTCRtpCodingParameters {
                ssrc: Some(ssrc),
                ..Default::default()
            },
            codec,
            ..Default::default()
        }],
    );
    pc.add_track(track).map_err(EngineError::rtc)
}

fn vp8() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: "video/VP8".into(),
        clock_rate: 90000,
        ..Default::default()
    }
}

fn opus() -> rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
    rtc::rtp_transceiver::rtp_sender::RTCRtpCodec {
        mime_type: "audio/opus".into(),
        clock_rate: 48000,
        channels: 2,
        ..Default::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use rtc::stun::message::{BINDING_REQUEST, TransactionId};
    use rtc::stun::textattrs::Username;

    fn shard() -> Shard {
        Shard::new(ShardConfig::new("10.0.0.1:4000".parse().unwrap()))
    }

    fn check(username: &str) -> BytesMut {
        let mut m = StunMessage::new();
        m.build(&[
            Box::new(BINDING_REQUEST),
            Box::new(TransactionId::new()),
            Box::new(Username::new(ATTR_USERNAME, username.to_owned())),
        ])
        .unwrap();
        BytesMut::from(&m.raw[..])
    }

    #[test]
    fn datagrams_from_unknown_addresses_need_a_known_ufrag() {
        let mut s = shard();
        let now = Instant::now();
        let id = s.open_connection(now).unwrap();
        let (local, from) = (s.cfg.announced, "10.0.9.9:999".parse().unwrap());
        // Not STUN (DTLS / RTP from an address nobody checked from): dropped.
        s.handle_datagram(now, local, from, BytesMut::from(&[22u8, 254, 253, 0][..]));
        // STUN for a ufrag no connection has: dropped.
        s.handle_datagram(now, local, from, check("nobody:client"));
        assert_eq!(s.stats().unroutable, 2);
        // STUN for this connection's ufrag, before its remote description: kept, not routed.
        let ufrag = s.conns[&id].ufrag.clone();
        s.handle_datagram(now, local, from, check(&format!("{ufrag}:client")));
        assert_eq!(s.stats().unroutable, 2);
        assert_eq!(s.stats().early_checks_kept, 1);
        assert!(s.by_addr.is_empty());
    }

    #[test]
    fn early_checks_are_bounded_per_connection() {
        let mut s = shard();
        s.cfg.early_checks = 3;
        let now = Instant::now();
        let id = s.open_connection(now).unwrap();
        let ufrag = s.conns[&id].ufrag.clone();
        for i in 0..10u16 {
            let from = SocketAddr::from(([10, 0, 9, 9], 1000 + i));
            s.handle_datagram(now, s.cfg.announced, from, check(&format!("{ufrag}:c")));
        }
        assert_eq!(s.conns[&id].early.len(), 3);
        assert_eq!(s.stats().early_checks_kept, 3);
    }

    #[test]
    fn ufrags_name_their_shard_and_tcp_frames_route_apart_from_udp() {
        let mut cfg = ShardConfig::new("10.0.0.1:4000".parse().unwrap());
        cfg.index = 0x1b;
        let now = Instant::now();
        let from: SocketAddr = "10.0.9.9:999".parse().unwrap();
        let mut s = Shard::new(cfg.clone());
        let id = s.open_connection(now).unwrap();
        let ufrag = s.conns[&id].ufrag.clone();
        assert_eq!(ufrag_shard(&ufrag), Some(0x1b), "{ufrag}");
        let payload = check(&format!("{ufrag}:c"));
        assert_eq!(stun_server_ufrag(&payload), Some(ufrag.clone()));
        // Without a TCP candidate a TCP frame is unroutable, even a check for a known ufrag.
        s.handle_tcp_frame(now, from, payload.clone());
        assert_eq!(s.stats().unroutable, 1);
        assert!(s.conns[&id].early.is_empty());
        // With one, the check is kept under its TCP route; the same ip:port on UDP is another
        // route.
        cfg.tcp = Some("10.0.0.1:4443".parse().unwrap());
        let mut s = Shard::new(cfg);
        let id = s.open_connection(now).unwrap();
        let ufrag = s.conns[&id].ufrag.clone();
        s.handle_tcp_frame(now, from, check(&format!("{ufrag}:c")));
        s.handle_datagram(now, s.cfg.announced, from, check(&format!("{ufrag}:c")));
        let routes: Vec<Remote> = s.conns[&id].early.iter().map(|(r, _)| *r).collect();
        assert_eq!(
            routes,
            [
                (TransportProtocol::TCP, from),
                (TransportProtocol::UDP, from)
            ]
        );
        assert_eq!(s.stats().tcp_frames_in, 1);
        assert_eq!(s.stats().datagrams_in, 2);
        assert_eq!(ufrag_shard("t1abc"), None, "no shard index");
        assert_eq!(ufrag_shard("someone"), None);
    }

    #[test]
    fn closing_drops_routes() {
        let mut s = shard();
        let now = Instant::now();
        let id = s.open_connection(now).unwrap();
        let ufrag = s.conns[&id].ufrag.clone();
        s.close(now, id).unwrap();
        assert_eq!(s.connection_count(), 0);
        assert!(!s.by_ufrag.contains_key(&ufrag));
        assert!(matches!(
            s.close(now, id),
            Err(EngineError::NoConnection(_))
        ));
        assert_eq!(
            s.next_timeout(),
            None,
            "a closed connection's timer entries are stale"
        );
    }
}
