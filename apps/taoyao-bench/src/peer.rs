//! A WebRTC client peer (webrtc-rs) for tests and load: sends VP8 + Opus from [`TestMedia`] at
//! real time, jumps to the next keyframe when the far end asks for one (as an encoder would),
//! and records every packet it receives per track. It can drop a share of incoming RTP before
//! the NACK generator sees it, to exercise loss repair.

use std::collections::{HashMap, HashSet, VecDeque};
use std::net::IpAddr;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use anyhow::{Context, anyhow};
use bytes::Bytes;
use rtc::interceptor::{Interceptor, Packet, Registry, Slot, StreamInfo, TaggedPacket};
use rtc::media::Sample;
use rtc::media_stream::MediaStreamTrack;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RtpCodecKind,
};
use rtc::sansio::Protocol;
use taoyao_webrtc_sfu::rtcp::KeyframeRequestInterceptor;
use tokio::sync::{Notify, watch};
use webrtc::media_stream::track_local::static_sample::TrackLocalStaticSample;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCIceGatheringState, RTCPeerConnectionState, RTCSessionDescription, SettingEngineBuilder,
    register_default_interceptors,
};
use webrtc::rtp_transceiver::RtpSender;

use crate::media::TestMedia;

/// How a client peer is made.
#[derive(Debug, Clone)]
pub struct PeerOptions {
    pub bind_ip: IpAddr,
    /// Percent of incoming RTP dropped before loss detection (0 = none).
    pub drop_incoming_pct: u64,
    /// Where sent packets are stamped and received ones matched, for forwarding latency (the
    /// bench is both ends, so one clock). `None`: no latency measurement.
    pub send_log: Option<Arc<SendLog>>,
    /// Time between ICE connectivity checks while connecting. Browsers pace them at about
    /// 50 ms (Chrome's weak-connection ping interval is 48 ms); webrtc-rs defaults to 200 ms.
    /// A joiner's first checks usually reach the server before its answer does and are
    /// dropped there, so this pacing decides how soon a new connection is up.
    pub ice_check_interval: Duration,
    /// The first RTP sequence number of the audio this peer sends (random when `None`, as a
    /// browser's): tests of a new track's sequence space choose it.
    pub audio_first_seq: Option<u16>,
    /// Put this RFC 6464 audio level (dBov, 0 loudest .. 127 silent) on every audio packet,
    /// as browsers do (offered as the `ssrc-audio-level` extension); `None`: no levels.
    pub audio_level: Option<u8>,
    /// Leave out every Nth audio packet (its sequence number is skipped, as a lossy network
    /// would): what the server sees as a publisher's loss.
    pub audio_gap_every: Option<u32>,
}

impl Default for PeerOptions {
    fn default() -> Self {
        PeerOptions {
            bind_ip: IpAddr::from([127, 0, 0, 1]),
            drop_incoming_pct: 0,
            send_log: None,
            ice_check_interval: Duration::from_millis(50),
            audio_first_seq: None,
            audio_level: None,
            audio_gap_every: None,
        }
    }
}

/// One packet as received.
#[derive(Debug, Clone, Copy)]
pub struct PacketLog {
    pub at: Instant,
    pub seq: u16,
    /// Starts a VP8 keyframe.
    pub keyframe: bool,
}

/// Everything received on one remote track.
pub struct TrackRecord {
    /// The remote's stream id (the SFU uses the publishing client's id).
    pub stream_id: String,
    /// The remote's track id (the SFU uses its stream id).
    pub track_id: String,
    pub video: bool,
    pub packets: AtomicU64,
    pub bytes: AtomicU64,
    pub keyframes: AtomicU64,
    pub ended: AtomicBool,
    log: Mutex<VecDeque<PacketLog>>,
    seqs: Mutex<SeqSet>,
    /// Audio payloads (Opus) in arrival order, the last 3,000 (one minute).
    audio: Mutex<VecDeque<Bytes>>,
    /// Send -> receive times of packets matched in the [`SendLog`], in microseconds, since the
    /// last [`TrackRecord::take_latencies`] (at most 200,000 kept).
    latencies: Mutex<Vec<u32>>,
}

#[derive(Default)]
struct SeqSet {
    last: Option<u64>,
    first: Option<u64>,
    highest: u64,
    seen: HashSet<u64>,
}

impl SeqSet {
    /// Extends a 16-bit sequence number near the last one seen.
    fn add(&mut self, seq: u16) {
        let ext = match self.last {
            None => u64::from(seq) + (1 << 16),
            Some(last) => {
                let base = last & !0xffff;
                let cands = [
                    base.wrapping_sub(1 << 16) | u64::from(seq),
                    base | u64::from(seq),
                    (base + (1 << 16)) | u64::from(seq),
                ];
                *cands
                    .iter()
                    .min_by_key(|c| c.abs_diff(last))
                    .expect("three candidates")
            }
        };
        self.last = Some(ext);
        self.first = Some(self.first.map_or(ext, |f| f.min(ext)));
        self.highest = self.highest.max(ext);
        self.seen.insert(ext);
    }
}

const LOG_CAP: usize = 50_000;

impl TrackRecord {
    pub fn packets(&self) -> u64 {
        self.packets.load(Ordering::Relaxed)
    }

    pub fn keyframes(&self) -> u64 {
        self.keyframes.load(Ordering::Relaxed)
    }

    /// The packets received so far (the last 50,000).
    pub fn log(&self) -> Vec<PacketLog> {
        self.log.lock().expect("log lock").iter().copied().collect()
    }

    /// The audio payloads received (the last 3,000), to decode and listen to.
    pub fn audio_payloads(&self) -> Vec<Bytes> {
        self.audio
            .lock()
            .expect("audio lock")
            .iter()
            .cloned()
            .collect()
    }

    /// The forwarding latencies (us) recorded since the last call, emptying the record.
    pub fn take_latencies(&self) -> Vec<u32> {
        std::mem::take(&mut *self.latencies.lock().expect("latency lock"))
    }

    pub fn bytes(&self) -> u64 {
        self.bytes.load(Ordering::Relaxed)
    }

    /// (distinct sequence numbers received, sequence numbers missing between first and highest).
    pub fn sequence_stats(&self) -> (u64, u64) {
        let s = self.seqs.lock().expect("seq lock");
        let Some(first) = s.first else { return (0, 0) };
        let span = s.highest - first + 1;
        (
            s.seen.len() as u64,
            span.saturating_sub(s.seen.len() as u64),
        )
    }
}

/// The tracks a peer receives.
#[derive(Default)]
pub struct Received {
    tracks: Mutex<Vec<Arc<TrackRecord>>>,
    pub changed: Notify,
}

impl Received {
    pub fn tracks(&self) -> Vec<Arc<TrackRecord>> {
        self.tracks.lock().expect("tracks lock").clone()
    }

    /// The track from `stream_id` (the publisher's client id) of that kind.
    pub fn find(&self, stream_id: &str, video: bool) -> Option<Arc<TrackRecord>> {
        self.tracks()
            .into_iter()
            .rev()
            .find(|t| t.stream_id == stream_id && t.video == video)
    }
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    received: Arc<Received>,
    send_log: Option<Arc<SendLog>>,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, s: RTCIceGatheringState) {
        if s == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, s: RTCPeerConnectionState) {
        let _ = self.state.send(s);
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        let received = self.received.clone();
        let send_log = self.send_log.clone();
        tokio::spawn(async move {
            let record = Arc::new(TrackRecord {
                stream_id: track.stream_id().await,
                track_id: track.track_id().await,
                video: track.kind().await == RtpCodecKind::Video,
                packets: AtomicU64::new(0),
                bytes: AtomicU64::new(0),
                keyframes: AtomicU64::new(0),
                ended: AtomicBool::new(false),
                log: Mutex::new(VecDeque::new()),
                seqs: Mutex::new(SeqSet::default()),
                audio: Mutex::new(VecDeque::new()),
                latencies: Mutex::new(Vec::new()),
            });
            received
                .tracks
                .lock()
                .expect("tracks lock")
                .push(record.clone());
            received.changed.notify_waiters();
            while let Some(ev) = track.poll().await {
                match ev {
                    TrackRemoteEvent::OnRtpPacket(p) => {
                        if let Some(sent) = send_log.as_ref().and_then(|l| l.sent_at(&p.payload)) {
                            let us = sent.elapsed().as_micros().min(u128::from(u32::MAX)) as u32;
                            let mut l = record.latencies.lock().expect("latency lock");
                            if l.len() < 200_000 {
                                l.push(us);
                            }
                        }
                        let keyframe = record.video && starts_keyframe(&p.payload);
                        record.packets.fetch_add(1, Ordering::Relaxed);
                        record
                            .bytes
                            .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
                        if keyframe {
                            record.keyframes.fetch_add(1, Ordering::Relaxed);
                        }
                        record
                            .seqs
                            .lock()
                            .expect("seq lock")
                            .add(p.header.sequence_number);
                        if !record.video {
                            let mut a = record.audio.lock().expect("audio lock");
                            if a.len() == 3000 {
                                a.pop_front();
                            }
                            a.push_back(p.payload.clone());
                        }
                        let mut log = record.log.lock().expect("log lock");
                        if log.len() == LOG_CAP {
                            log.pop_front();
                        }
                        log.push_back(PacketLog {
                            at: Instant::now(),
                            seq: p.header.sequence_number,
                            keyframe,
                        });
                    }
                    TrackRemoteEvent::OnEnded => break,
                    _ => {}
                }
            }
            record.ended.store(true, Ordering::Relaxed);
            received.changed.notify_waiters();
        });
    }
}

fn starts_keyframe(payload: &Bytes) -> bool {
    let mut d = Vp8Packet::default();
    matches!(d.depacketize(payload), Ok(frame) if d.s == 1 && d.pid == 0 && frame.first().is_some_and(|b| b & 1 == 0))
}

/// Drops a share of incoming RTP (placed before the NACK generator, so losses get NACKed).
struct Dropper {
    pct: u64,
    rng: u64,
    dropped: Arc<AtomicU64>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Dropper {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if matches!(msg.message.packet, Packet::Rtp(_)) {
            // xorshift: deterministic per peer, no extra dependency on the packet path.
            let mut x = self.rng;
            x ^= x << 13;
            x ^= x >> 7;
            x ^= x << 17;
            self.rng = x;
            if x % 100 < self.pct {
                self.dropped.fetch_add(1, Ordering::Relaxed);
                return Ok(());
            }
        }
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for Dropper {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

/// When each RTP payload was sent, for every sending peer of a bench run: a receiver looks the
/// payload it got up here. Payloads are matched by content (the servers under test rewrite SSRC,
/// sequence numbers and timestamps but forward payloads as they are); a payload sent twice
/// (the media loops every few seconds) matches its latest sending. Entries expire after 5 s.
#[derive(Default)]
pub struct SendLog {
    inner: Mutex<SendLogInner>,
}

#[derive(Default)]
struct SendLogInner {
    at: HashMap<u64, Instant>,
    order: VecDeque<(Instant, u64)>,
}

const SEND_LOG_KEEP: Duration = Duration::from_secs(5);

fn payload_key(payload: &[u8]) -> u64 {
    use std::hash::{Hash, Hasher};
    let mut h = std::collections::hash_map::DefaultHasher::new();
    payload.hash(&mut h);
    h.finish()
}

impl std::fmt::Debug for SendLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("SendLog")
    }
}

impl SendLog {
    pub fn record(&self, payload: &[u8], at: Instant) {
        let key = payload_key(payload);
        let mut g = self.inner.lock().expect("send log lock");
        while let Some(&(t, k)) = g.order.front() {
            if at.duration_since(t) < SEND_LOG_KEEP {
                break;
            }
            g.order.pop_front();
            if g.at.get(&k) == Some(&t) {
                g.at.remove(&k);
            }
        }
        g.at.insert(key, at);
        g.order.push_back((at, key));
    }

    /// When `payload` was last sent, if it was within the last 5 s.
    pub fn sent_at(&self, payload: &[u8]) -> Option<Instant> {
        let key = payload_key(payload);
        self.inner
            .lock()
            .expect("send log lock")
            .at
            .get(&key)
            .copied()
    }
}

/// Counts the RTP a peer sends and stamps it in the [`SendLog`], on the way to the wire.
struct Stamper {
    log: Option<Arc<SendLog>>,
    packets: Arc<AtomicU64>,
    bytes: Arc<AtomicU64>,
    read: VecDeque<TaggedPacket>,
    write: VecDeque<TaggedPacket>,
}

impl Protocol<TaggedPacket, TaggedPacket, ()> for Stamper {
    type Rout = TaggedPacket;
    type Wout = TaggedPacket;
    type Eout = ();
    type Error = rtc::shared::error::Error;
    type Time = Instant;

    fn handle_read(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        self.read.push_back(msg);
        Ok(())
    }
    fn poll_read(&mut self) -> Option<TaggedPacket> {
        self.read.pop_front()
    }
    fn handle_write(&mut self, msg: TaggedPacket) -> Result<(), Self::Error> {
        if let Packet::Rtp(p) = &msg.message.packet {
            self.packets.fetch_add(1, Ordering::Relaxed);
            self.bytes
                .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
            if let Some(log) = &self.log {
                log.record(&p.payload, Instant::now());
            }
        }
        self.write.push_back(msg);
        Ok(())
    }
    fn poll_write(&mut self) -> Option<TaggedPacket> {
        self.write.pop_front()
    }
}

impl Interceptor for Stamper {
    fn bind_local_stream(&mut self, _: &StreamInfo) {}
    fn unbind_local_stream(&mut self, _: &StreamInfo) {}
    fn bind_remote_stream(&mut self, _: &StreamInfo) {}
    fn unbind_remote_stream(&mut self, _: &StreamInfo) {}
}

struct Outgoing {
    track: Arc<TrackLocalStaticSample>,
    sender: Arc<dyn RtpSender>,
    ssrc: u32,
    video: bool,
}

/// A client peer connection.
pub struct ClientPeer {
    pub pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    pub received: Arc<Received>,
    /// Incoming RTP packets the dropper discarded.
    pub dropped: Arc<AtomicU64>,
    outgoing: Mutex<Vec<Outgoing>>,
    stop: Arc<AtomicBool>,
    /// Frames and packets sent.
    pub sent_video: Arc<AtomicU64>,
    pub sent_audio: Arc<AtomicU64>,
    /// Keyframe requests (PLI / FIR) the far end sent for our video.
    pub keyframe_requests: Arc<AtomicU64>,
    /// RTP packets and payload bytes sent (retransmissions included).
    pub sent_packets: Arc<AtomicU64>,
    pub sent_bytes: Arc<AtomicU64>,
    audio_first_seq: Option<u16>,
    audio_level: Option<u8>,
    audio_gap_every: Option<u32>,
}

fn sample_track(kind: RtpCodecKind, ssrc: u32) -> anyhow::Result<Arc<TrackLocalStaticSample>> {
    let codec = match kind {
        RtpCodecKind::Video => RTCRtpCodec {
            mime_type: "video/VP8".into(),
            clock_rate: 90000,
            ..Default::default()
        },
        _ => RTCRtpCodec {
            mime_type: "audio/opus".into(),
            clock_rate: 48000,
            channels: 2,
            ..Default::default()
        },
    };
    let name = if kind == RtpCodecKind::Video {
        "video"
    } else {
        "audio"
    };
    let track = MediaStreamTrack::new(
        "bench".into(),
        format!("{name}-{ssrc}"),
        name.into(),
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
    Ok(Arc::new(
        TrackLocalStaticSample::new(Instant::now(), track).map_err(|e| anyhow!("{e}"))?,
    ))
}

impl ClientPeer {
    pub async fn new(opts: &PeerOptions) -> anyhow::Result<ClientPeer> {
        let mut me = MediaEngine::default();
        me.register_default_codecs().map_err(|e| anyhow!("{e}"))?;
        if opts.audio_level.is_some() {
            me.register_header_extension(
                rtc::rtp_transceiver::rtp_sender::RTCRtpHeaderExtensionCapability {
                    uri: taoyao_webrtc::sdp_check::AUDIO_LEVEL_URI.into(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .map_err(|e| anyhow!("{e}"))?;
        }
        let dropped = Arc::new(AtomicU64::new(0));
        let sent_packets = Arc::new(AtomicU64::new(0));
        let sent_bytes = Arc::new(AtomicU64::new(0));
        let mut registry = register_default_interceptors(Registry::new(), &mut me)
            .map_err(|e| anyhow!("{e}"))?
            .with(
                Slot::from(14_000usize),
                KeyframeRequestInterceptor::default(),
            )
            .with(
                Slot::from(400usize),
                Stamper {
                    log: opts.send_log.clone(),
                    packets: sent_packets.clone(),
                    bytes: sent_bytes.clone(),
                    read: VecDeque::new(),
                    write: VecDeque::new(),
                },
            );
        if opts.drop_incoming_pct > 0 {
            registry = registry.with(
                Slot::from(500usize),
                Dropper {
                    pct: opts.drop_incoming_pct,
                    rng: rand::random::<u64>() | 1,
                    dropped: dropped.clone(),
                    read: VecDeque::new(),
                    write: VecDeque::new(),
                },
            );
        }
        // The same ~1.4 s per candidate pair before giving up as webrtc-rs's default (7 x 200 ms).
        let interval = opts.ice_check_interval.max(Duration::from_millis(10));
        let attempts = (1400 / interval.as_millis()).clamp(7, 140) as u16;
        let settings = SettingEngineBuilder::new()
            .with_multicast_dns_mode(rtc::ice::mdns::MulticastDnsMode::Disabled)
            .with_ice_connection_attempts(Some(interval), Some(attempts))
            .build();
        let (gtx, gathered) = watch::channel(false);
        let (stx, state) = watch::channel(RTCPeerConnectionState::New);
        let received = Arc::new(Received::default());
        let pc = PeerConnectionBuilder::new()
            .with_media_engine(me)
            .with_interceptor_registry(registry)
            .with_setting_engine(settings)
            .with_handler(Arc::new(Handler {
                gathered: gtx,
                state: stx,
                received: received.clone(),
                send_log: opts.send_log.clone(),
            }))
            .with_udp_addrs(vec![std::net::SocketAddr::new(opts.bind_ip, 0)])
            .build()
            .await
            .map_err(|e| anyhow!("peer connection: {e}"))?;
        Ok(ClientPeer {
            pc: Arc::new(pc),
            gathered,
            state,
            received,
            dropped,
            outgoing: Mutex::new(Vec::new()),
            stop: Arc::new(AtomicBool::new(false)),
            sent_video: Arc::new(AtomicU64::new(0)),
            sent_audio: Arc::new(AtomicU64::new(0)),
            keyframe_requests: Arc::new(AtomicU64::new(0)),
            sent_packets,
            sent_bytes,
            audio_first_seq: opts.audio_first_seq,
            audio_level: opts.audio_level,
            audio_gap_every: opts.audio_gap_every,
        })
    }

    /// Adds a VP8 and an Opus track (send them with [`ClientPeer::start_sending`] once negotiated).
    pub async fn add_media(&self, video: bool, audio: bool) -> anyhow::Result<()> {
        for (on, kind) in [(video, RtpCodecKind::Video), (audio, RtpCodecKind::Audio)] {
            if !on {
                continue;
            }
            let ssrc = rand::random::<u32>();
            let track = sample_track(kind, ssrc)?;
            let sender = self
                .pc
                .add_track(track.clone() as Arc<dyn TrackLocal>)
                .await
                .map_err(|e| anyhow!("{e}"))?;
            self.outgoing.lock().expect("outgoing lock").push(Outgoing {
                track,
                sender,
                ssrc,
                video: kind == RtpCodecKind::Video,
            });
        }
        Ok(())
    }

    async fn local_sdp(&self) -> anyhow::Result<String> {
        let mut g = self.gathered.clone();
        let _ = tokio::time::timeout(Duration::from_secs(3), g.wait_for(|x| *x)).await;
        Ok(self
            .pc
            .local_description()
            .await
            .context("no local description")?
            .sdp)
    }

    pub async fn offer(&self) -> anyhow::Result<String> {
        let o = self
            .pc
            .create_offer(None)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        self.pc
            .set_local_description(o)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        self.local_sdp().await
    }

    pub async fn answer(&self, offer: String) -> anyhow::Result<String> {
        self.pc
            .set_remote_description(
                RTCSessionDescription::offer(offer).map_err(|e| anyhow!("{e}"))?,
            )
            .await
            .map_err(|e| anyhow!("{e}"))?;
        let a = self
            .pc
            .create_answer(None)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        self.pc
            .set_local_description(a)
            .await
            .map_err(|e| anyhow!("{e}"))?;
        self.local_sdp().await
    }

    pub async fn accept_answer(&self, answer: String) -> anyhow::Result<()> {
        self.pc
            .set_remote_description(
                RTCSessionDescription::answer(answer).map_err(|e| anyhow!("{e}"))?,
            )
            .await
            .map_err(|e| anyhow!("{e}"))
    }

    /// Waits until the connection is connected.
    pub async fn connected(&self, within: Duration) -> anyhow::Result<()> {
        let mut s = self.state.clone();
        tokio::time::timeout(
            within,
            s.wait_for(|s| *s == RTCPeerConnectionState::Connected),
        )
        .await
        .map_err(|_| {
            anyhow!(
                "not connected within {within:?} (state {:?})",
                *self.state.borrow()
            )
        })?
        .map_err(|_| anyhow!("peer dropped"))?;
        Ok(())
    }

    pub fn state(&self) -> RTCPeerConnectionState {
        *self.state.borrow()
    }

    /// Sends the media in a loop at real time until [`ClientPeer::close`].
    pub async fn start_sending(&self, media: Arc<TestMedia>) -> anyhow::Result<()> {
        let outgoing: Vec<Outgoing> = self
            .outgoing
            .lock()
            .expect("outgoing lock")
            .iter()
            .map(|o| Outgoing {
                track: o.track.clone(),
                sender: o.sender.clone(),
                ssrc: o.ssrc,
                video: o.video,
            })
            .collect();
        for Outgoing {
            track,
            sender,
            ssrc,
            video,
        } in outgoing
        {
            let params = sender.get_parameters().await.map_err(|e| anyhow!("{e}"))?;
            let mime = if video { "video/VP8" } else { "audio/opus" };
            let pt = params
                .rtp_parameters
                .codecs
                .iter()
                .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
                .map(|c| c.payload_type)
                .with_context(|| format!("{mime} was not negotiated"))?;
            let stop = self.stop.clone();
            let media = media.clone();
            let keyframe_wanted = Arc::new(AtomicBool::new(false));
            if video {
                // Keyframe requests from the far end arrive as RTCP on our sending track.
                let (t, k, s) = (track.clone(), keyframe_wanted.clone(), stop.clone());
                let asked = self.keyframe_requests.clone();
                tokio::spawn(async move {
                    while let Some(ev) = t.poll().await {
                        if let TrackLocalEvent::OnRtcpPacket(_) = ev {
                            asked.fetch_add(1, Ordering::Relaxed);
                            k.store(true, Ordering::Relaxed);
                        }
                        if s.load(Ordering::Relaxed) {
                            break;
                        }
                    }
                });
            }
            let sent = if video {
                self.sent_video.clone()
            } else {
                self.sent_audio.clone()
            };
            let (every, count) = if video {
                (media.frame_duration, media.video.len())
            } else {
                (Duration::from_millis(20), media.audio.len())
            };
            // Opus is one frame per packet: audio goes out as RTP written here, so its
            // sequence numbers can start where a test wants them.
            let mut audio_seq = self.audio_first_seq.unwrap_or_else(rand::random);
            // The level extension as negotiated on this sender (V bit: voice when not silent).
            let level_ext = self.audio_level.and_then(|level| {
                let id = params
                    .rtp_parameters
                    .header_extensions
                    .iter()
                    .find(|e| e.uri == taoyao_webrtc::sdp_check::AUDIO_LEVEL_URI)?
                    .id;
                let byte = if level < 127 { 0x80 | level } else { 127 };
                Some((u8::try_from(id).ok()?, Bytes::from(vec![byte])))
            });
            let mut audio_ts = rand::random::<u32>();
            let gap_every = self.audio_gap_every.filter(|n| *n > 1);
            let mut audio_sent = 0u32;
            tokio::spawn(async move {
                let mut tick = tokio::time::interval(every);
                let mut i = 0usize;
                while !stop.load(Ordering::Relaxed) {
                    tick.tick().await;
                    if !video {
                        audio_sent = audio_sent.wrapping_add(1);
                        if gap_every.is_some_and(|n| audio_sent.is_multiple_of(n)) {
                            // Lost on the way: the number is used, nothing arrives.
                            audio_seq = audio_seq.wrapping_add(1);
                            audio_ts = audio_ts.wrapping_add(960);
                        }
                        let mut packet = rtc::rtp::packet::Packet {
                            header: rtc::rtp::header::Header {
                                version: 2,
                                payload_type: pt,
                                sequence_number: audio_seq,
                                timestamp: audio_ts,
                                ssrc,
                                ..Default::default()
                            },
                            payload: media.audio[i].clone(),
                        };
                        if let Some((id, byte)) = &level_ext {
                            let _ = packet.header.set_extension(*id, byte.clone());
                        }
                        if track.write_rtp(packet).await.is_err() {
                            break;
                        }
                        audio_seq = audio_seq.wrapping_add(1);
                        audio_ts = audio_ts.wrapping_add(960);
                        sent.fetch_add(1, Ordering::Relaxed);
                        i = (i + 1) % count;
                        continue;
                    }
                    if keyframe_wanted.swap(false, Ordering::Relaxed) && !media.video[i].keyframe {
                        // As an encoder would: the next frame sent is a keyframe.
                        i = (i..count)
                            .chain(0..i)
                            .find(|&j| media.video[j].keyframe)
                            .unwrap_or(0);
                    }
                    let sample = Sample {
                        data: media.video[i].data.clone(),
                        duration: every,
                        ..Sample::new(Instant::now())
                    };
                    if track
                        .sample_writer(ssrc, pt)
                        .write_sample(&sample)
                        .await
                        .is_err()
                    {
                        break;
                    }
                    sent.fetch_add(1, Ordering::Relaxed);
                    i = (i + 1) % count;
                }
            });
        }
        Ok(())
    }

    pub async fn close(&self) {
        self.stop.store(true, Ordering::Relaxed);
        let _ = self.pc.close().await;
    }
}
