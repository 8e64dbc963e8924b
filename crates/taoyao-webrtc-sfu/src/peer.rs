//! Making the server's peer connections: one media engine (VP8 + Opus with NACK, PLI, FIR and
//! transport-cc feedback), the default interceptors (NACK responder/generator, RTCP reports,
//! TWCC feedback so browsers adapt their bitrate) plus one that hands subscribers' keyframe
//! requests to the application, mDNS off, a UDP port from the configured range, and the
//! announced IP written into the candidates.

use std::net::{IpAddr, SocketAddr, UdpSocket};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, AtomicU32, AtomicUsize, Ordering};
use std::time::Duration;

use rtc::ice::mdns::MulticastDnsMode;
use rtc::rtp_transceiver::rtp_sender::{
    RTCPFeedback, RTCRtpCodec, RTCRtpCodecParameters, RTCRtpHeaderExtensionCapability, RtpCodecKind,
};
use tokio::sync::watch;
use webrtc::media_stream::track_remote::TrackRemote;
use webrtc::peer_connection::{
    MediaEngine, PeerConnection, PeerConnectionBuilder, PeerConnectionEventHandler,
    RTCConfigurationBuilder, RTCIceCandidateInit, RTCIceGatheringState, RTCIceServer,
    RTCPeerConnectionState, RTCSessionDescription, Registry, SettingEngineBuilder,
    register_default_interceptors,
};

use crate::forwarder::MediaCounters;
use crate::rtcp::KeyframeRequestInterceptor;
use taoyao_webrtc::sdp_check::{self, SdpIdentity};
use taoyao_webrtc::{Candidate, MediaError, MediaKind, WebrtcConfig};

/// The codecs the server speaks, with their payload types.
pub const VP8_PT: u8 = 96;
/// RTX (RFC 4588) for VP8: NACKed packets are resent on their own SSRC and sequence space, so
/// a receiver's SRTP replay window never mistakes them for replays.
pub const VP8_RTX_PT: u8 = 97;
pub const OPUS_PT: u8 = 111;
pub const MIME_VP8: &str = "video/VP8";
pub const MIME_OPUS: &str = "audio/opus";

fn internal(e: impl std::error::Error + Send + Sync + 'static) -> MediaError {
    MediaError::Backend(taoyao_webrtc::source(e))
}

/// The codec a server-side track carries.
pub fn codec_for(kind: MediaKind) -> RTCRtpCodec {
    match kind {
        MediaKind::Video => RTCRtpCodec {
            mime_type: MIME_VP8.into(),
            clock_rate: 90000,
            channels: 0,
            sdp_fmtp_line: String::new(),
            rtcp_feedback: vec![],
        },
        MediaKind::Audio => RTCRtpCodec {
            mime_type: MIME_OPUS.into(),
            clock_rate: 48000,
            channels: 2,
            sdp_fmtp_line: "minptime=10;useinbandfec=1".into(),
            rtcp_feedback: vec![],
        },
    }
}

fn media_engine() -> Result<MediaEngine, MediaError> {
    let fb = |t: &str, p: &str| RTCPFeedback {
        typ: t.into(),
        parameter: p.into(),
    };
    let mut me = MediaEngine::default();
    let mut vp8 = codec_for(MediaKind::Video);
    vp8.rtcp_feedback = vec![
        fb("goog-remb", ""),
        fb("ccm", "fir"),
        fb("nack", ""),
        fb("nack", "pli"),
    ];
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: vp8,
            payload_type: VP8_PT,
        },
        RtpCodecKind::Video,
    )
    .map_err(internal)?;
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: RTCRtpCodec {
                mime_type: "video/rtx".into(),
                clock_rate: 90000,
                channels: 0,
                sdp_fmtp_line: format!("apt={VP8_PT}"),
                rtcp_feedback: vec![],
            },
            payload_type: VP8_RTX_PT,
        },
        RtpCodecKind::Video,
    )
    .map_err(internal)?;
    me.register_codec(
        RTCRtpCodecParameters {
            rtp_codec: codec_for(MediaKind::Audio),
            payload_type: OPUS_PT,
        },
        RtpCodecKind::Audio,
    )
    .map_err(internal)?;
    // Publishers' audio levels (RFC 6464): the sfu's active speaker comes from them.
    me.register_header_extension(
        RTCRtpHeaderExtensionCapability {
            uri: sdp_check::AUDIO_LEVEL_URI.into(),
        },
        RtpCodecKind::Audio,
        None,
    )
    .map_err(internal)?;
    Ok(me)
}

/// Called with each remote track as it starts.
pub type OnTrack = Arc<dyn Fn(Arc<dyn TrackRemote>) + Send + Sync>;
/// Called on each connection state change.
pub type OnState = Arc<dyn Fn(RTCPeerConnectionState) + Send + Sync>;

/// Callbacks of one peer connection. They run on the connection's driver task: keep them short.
#[derive(Clone, Default)]
pub struct PeerEvents {
    pub on_track: Option<OnTrack>,
    pub on_state: Option<OnState>,
}

struct Handler {
    gathered: watch::Sender<bool>,
    state: watch::Sender<RTCPeerConnectionState>,
    events: PeerEvents,
}

#[async_trait::async_trait]
impl PeerConnectionEventHandler for Handler {
    async fn on_ice_gathering_state_change(&self, state: RTCIceGatheringState) {
        if state == RTCIceGatheringState::Complete {
            let _ = self.gathered.send(true);
        }
    }

    async fn on_connection_state_change(&self, state: RTCPeerConnectionState) {
        let _ = self.state.send(state);
        if let Some(f) = &self.events.on_state {
            f(state);
        }
    }

    async fn on_track(&self, track: Arc<dyn TrackRemote>) {
        if let Some(f) = &self.events.on_track {
            f(track);
        }
    }
}

/// Hands out UDP ports from the configured range, round robin, skipping ports in use.
struct Ports {
    ip: IpAddr,
    min: u16,
    max: u16,
    next: AtomicU32,
}

impl Ports {
    fn next_free(&self) -> Result<u16, MediaError> {
        if self.min == 0 {
            return Ok(0);
        }
        let span = u32::from(self.max - self.min) + 1;
        for _ in 0..span {
            let port = self.min + (self.next.fetch_add(1, Ordering::Relaxed) % span) as u16;
            if UdpSocket::bind(SocketAddr::new(self.ip, port)).is_ok() {
                return Ok(port);
            }
        }
        Err(MediaError::NoFreePort {
            min: self.min,
            max: self.max,
            ip: self.ip,
        })
    }
}

/// Builds the server's peer connections and counts the open ones.
pub struct PeerFactory {
    cfg: WebrtcConfig,
    ports: Ports,
    open: Arc<AtomicUsize>,
    counters: Arc<MediaCounters>,
}

impl PeerFactory {
    pub fn new(cfg: WebrtcConfig) -> Self {
        PeerFactory {
            ports: Ports {
                ip: cfg.bind_ip,
                min: cfg.udp_port_min,
                max: cfg.udp_port_max,
                next: AtomicU32::new(0),
            },
            cfg,
            open: Arc::new(AtomicUsize::new(0)),
            counters: Arc::default(),
        }
    }

    /// The running totals of every connection, forwarder and mixer built on this factory.
    pub fn counters(&self) -> &Arc<MediaCounters> {
        &self.counters
    }

    pub fn config(&self) -> &WebrtcConfig {
        &self.cfg
    }

    /// Peer connections built and not yet closed.
    pub fn open_count(&self) -> usize {
        self.open.load(Ordering::Relaxed)
    }

    pub async fn create(&self, events: PeerEvents) -> Result<Arc<Peer>, MediaError> {
        let (gathered_tx, gathered) = watch::channel(false);
        let (state_tx, state) = watch::channel(RTCPeerConnectionState::New);
        let handler = Arc::new(Handler {
            gathered: gathered_tx,
            state: state_tx,
            events,
        });
        let ice_servers: Vec<RTCIceServer> = self
            .cfg
            .ice_servers
            .iter()
            .map(|s| RTCIceServer {
                urls: s.urls.clone(),
                username: s.username.clone().unwrap_or_default(),
                credential: s.credential.clone().unwrap_or_default(),
            })
            .collect();
        let mut last_err = None;
        // A port found free can be taken before the connection binds it: try a few.
        for _ in 0..5 {
            let port = self.ports.next_free()?;
            let mut me = media_engine()?;
            let registry = register_default_interceptors(Registry::new(), &mut me)
                .map_err(internal)?
                .with(
                    rtc::interceptor::Slot::from(14_000usize),
                    KeyframeRequestInterceptor::counting(self.counters.clone()),
                );
            let settings = SettingEngineBuilder::new()
                .with_multicast_dns_mode(MulticastDnsMode::Disabled)
                .build();
            let config = RTCConfigurationBuilder::new()
                .with_ice_servers(ice_servers.clone())
                .build();
            let built = PeerConnectionBuilder::new()
                .with_configuration(config)
                .with_media_engine(me)
                .with_interceptor_registry(registry)
                .with_setting_engine(settings)
                .with_handler(handler.clone())
                .with_udp_addrs(vec![SocketAddr::new(self.cfg.bind_ip, port)])
                .build()
                .await;
            match built {
                Ok(pc) => {
                    self.open.fetch_add(1, Ordering::Relaxed);
                    return Ok(Arc::new(Peer {
                        pc: Arc::new(pc),
                        gathered,
                        state: state.clone(),
                        remote: std::sync::Mutex::new(None),
                        audio_level_id: std::sync::atomic::AtomicU8::new(0),
                        bind_ip: self.cfg.bind_ip,
                        announced_ip: self.cfg.announced_ip,
                        gather_timeout: Duration::from_millis(self.cfg.gather_timeout_ms),
                        closed: AtomicBool::new(false),
                        open: self.open.clone(),
                    }));
                }
                Err(e) => last_err = Some(e),
            }
        }
        Err(MediaError::Internal(format!(
            "cannot create a peer connection: {}",
            last_err.map(|e| e.to_string()).unwrap_or_default()
        )))
    }
}

/// One server-side peer connection.
pub struct Peer {
    pub pc: Arc<dyn PeerConnection>,
    gathered: watch::Receiver<bool>,
    state: watch::Receiver<RTCPeerConnectionState>,
    /// Which client connection the applied remote description came from.
    remote: std::sync::Mutex<Option<SdpIdentity>>,
    /// The id the client's offer gave the RFC 6464 audio level extension (0: none).
    audio_level_id: std::sync::atomic::AtomicU8,
    bind_ip: IpAddr,
    announced_ip: Option<IpAddr>,
    gather_timeout: Duration,
    closed: AtomicBool,
    open: Arc<AtomicUsize>,
}

impl Peer {
    /// Applies a remote offer and returns the answer SDP (with the server's candidates).
    pub async fn answer(&self, offer_sdp: String) -> Result<String, MediaError> {
        let offer_sdp_identity = sdp_check::identity(&offer_sdp).ok();
        let level_id = sdp_check::extmap_id(&offer_sdp, "audio", sdp_check::AUDIO_LEVEL_URI);
        let offer =
            RTCSessionDescription::offer(offer_sdp).map_err(|e| MediaError::SdpUnreadable {
                what: "offer",
                source: taoyao_webrtc::source(e),
            })?;
        self.pc
            .set_remote_description(offer)
            .await
            .map_err(|e| MediaError::SdpRefused {
                what: "offer",
                source: taoyao_webrtc::source(e),
            })?;
        self.remember_remote(&offer_sdp_identity);
        self.audio_level_id
            .store(level_id.unwrap_or(0), Ordering::Relaxed);
        let answer = self.pc.create_answer(None).await.map_err(internal)?;
        self.pc
            .set_local_description(answer)
            .await
            .map_err(internal)?;
        self.local_sdp().await
    }

    /// Makes an offer and returns its SDP (with the server's candidates).
    pub async fn offer(&self) -> Result<String, MediaError> {
        let offer = self.pc.create_offer(None).await.map_err(internal)?;
        self.pc
            .set_local_description(offer)
            .await
            .map_err(internal)?;
        self.local_sdp().await
    }

    /// Applies the remote answer to our offer.
    pub async fn accept_answer(&self, sdp: String) -> Result<(), MediaError> {
        let identity = sdp_check::identity(&sdp).ok();
        let answer = RTCSessionDescription::answer(sdp).map_err(|e| MediaError::SdpUnreadable {
            what: "answer",
            source: taoyao_webrtc::source(e),
        })?;
        self.pc
            .set_remote_description(answer)
            .await
            .map_err(|e| MediaError::SdpRefused {
                what: "answer",
                source: taoyao_webrtc::source(e),
            })?;
        self.remember_remote(&identity);
        Ok(())
    }

    /// The header extension id of the audio levels the client sends, if it offered them.
    pub fn audio_level_id(&self) -> Option<u8> {
        Some(self.audio_level_id.load(Ordering::Relaxed)).filter(|id| *id != 0)
    }

    fn remember_remote(&self, identity: &Option<SdpIdentity>) {
        *self.remote.lock().expect("remote lock") = identity.clone();
    }

    /// True when `sdp` does not continue this connection's session: the connection failed or
    /// closed, or `sdp` carries other ICE credentials or another DTLS fingerprint than the
    /// remote description applied before (a new client connection, or an ICE restart, which
    /// the server answers with a new connection too).
    pub fn is_replaced_by(&self, sdp: &str) -> bool {
        if self.is_down() {
            return true;
        }
        let Some(before) = self.remote.lock().expect("remote lock").clone() else {
            return false;
        };
        sdp_check::identity(sdp).is_ok_and(|now| now != before)
    }

    /// The connection failed or was closed (by either side).
    pub fn is_down(&self) -> bool {
        self.closed.load(Ordering::Acquire)
            || matches!(
                *self.state.borrow(),
                RTCPeerConnectionState::Failed | RTCPeerConnectionState::Closed
            )
    }

    pub async fn add_candidate(&self, c: Candidate) -> Result<(), MediaError> {
        let init = RTCIceCandidateInit {
            candidate: c.candidate,
            sdp_mid: c.sdp_mid,
            sdp_mline_index: c.sdp_m_line_index,
            ..Default::default()
        };
        self.pc
            .add_ice_candidate(init)
            .await
            .map_err(|e| MediaError::SdpRefused {
                what: "candidate",
                source: taoyao_webrtc::source(e),
            })
    }

    /// The local description once our candidates are gathered (or the gather timeout passed),
    /// with the announced IP in place of the bound one.
    async fn local_sdp(&self) -> Result<String, MediaError> {
        let mut gathered = self.gathered.clone();
        let _ = tokio::time::timeout(self.gather_timeout, gathered.wait_for(|g| *g)).await;
        let desc = self
            .pc
            .local_description()
            .await
            .ok_or_else(|| MediaError::Internal("no local description".into()))?;
        Ok(match self.announced_ip {
            Some(ip) => announce(&desc.sdp, self.bind_ip, ip),
            None => desc.sdp,
        })
    }

    /// Closes the connection (idempotent): its sockets, tasks and tracks end.
    pub async fn close(&self) {
        if !self.closed.swap(true, Ordering::AcqRel) {
            let _ = self.pc.close().await;
            self.open.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

/// Replaces `bound` with `announced` as the address of every candidate line of an SDP.
pub fn announce(sdp: &str, bound: IpAddr, announced: IpAddr) -> String {
    let bound = bound.to_string();
    let announced = announced.to_string();
    let mut out = String::with_capacity(sdp.len());
    for line in sdp.split_inclusive('\n') {
        if line.starts_with("a=candidate:") {
            let mut fields: Vec<&str> = line.split(' ').collect();
            // a=candidate:<foundation> <component> <transport> <priority> <address> <port> typ ...
            if fields.len() > 4 && fields[4] == bound {
                fields[4] = &announced;
                out.push_str(&fields.join(" "));
                continue;
            }
        }
        out.push_str(line);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn announce_rewrites_only_bound_candidates() {
        let sdp = "v=0\r\na=candidate:1 1 udp 2130706431 10.0.0.5 40000 typ host\r\na=candidate:2 1 udp 1 10.0.0.6 40001 typ host\r\nc=IN IP4 10.0.0.5\r\n";
        let out = announce(
            sdp,
            "10.0.0.5".parse().unwrap(),
            "203.0.113.7".parse().unwrap(),
        );
        assert!(out.contains("a=candidate:1 1 udp 2130706431 203.0.113.7 40000 typ host\r\n"));
        assert!(out.contains("10.0.0.6 40001"));
        assert!(out.contains("c=IN IP4 10.0.0.5"));
    }

    #[test]
    fn ports_come_from_the_range_and_skip_busy_ones() {
        let busy = UdpSocket::bind("127.0.0.1:0").unwrap();
        let p = busy.local_addr().unwrap().port();
        let ports = Ports {
            ip: "127.0.0.1".parse().unwrap(),
            min: p,
            max: p,
            next: AtomicU32::new(0),
        };
        assert!(ports.next_free().is_err(), "the only port is taken");
        drop(busy);
        assert_eq!(ports.next_free().unwrap(), p);
    }
}
