//! A simulated network for the shard: rtc client peers (full ICE, DTLS client) and one
//! [`Shard`], datagrams passed between them in memory, time a virtual clock that jumps to the
//! next deadline. Shared by the in-memory tests and `examples/fanout.rs`.
#![allow(dead_code)]

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use rtc::ice::tcp_type::TcpType;
use rtc::media_stream::MediaStreamTrack;
use rtc::peer_connection::RTCPeerConnection;
use rtc::peer_connection::RTCPeerConnectionBuilder;
use rtc::peer_connection::configuration::RTCConfigurationBuilder;
use rtc::peer_connection::configuration::interceptor_registry::register_default_interceptors;
use rtc::peer_connection::configuration::media_engine::MediaEngine;
use rtc::peer_connection::configuration::setting_engine::SettingEngineBuilder;
use rtc::peer_connection::event::RTCPeerConnectionEvent;
use rtc::peer_connection::message::{RTCMessage, TaggedRTCMessage};
use rtc::peer_connection::sdp::RTCSessionDescription;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::peer_connection::transport::{CandidateConfig, CandidateHostConfig, RTCIceCandidate};
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use rtc::rtp_transceiver::RTCRtpSenderId;
use rtc::rtp_transceiver::rtp_sender::{
    RTCRtpCodec, RTCRtpCodingParameters, RTCRtpEncodingParameters, RTCRtpHeaderExtensionCapability,
    RtpCodecKind,
};
use rtc::sansio::Protocol;
use rtc::shared::{TaggedBytesMut, TransportContext, TransportProtocol};
use taoyao_engine::{Shard, ShardConfig};

pub const SHARD_ADDR: &str = "10.0.0.1:4000";

/// A client peer at a fake address.
pub struct Client {
    pub pc: RTCPeerConnection,
    pub addr: SocketAddr,
    /// The published track's sender, its SSRC and its codec's mime type.
    sender: Option<(RTCRtpSenderId, u32, &'static str)>,
    seq: u16,
    /// RTP packets received (any track) and their payload bytes.
    pub rtp_received: u64,
    pub bytes_received: u64,
    /// Every RTP packet received: (sequence number, payload).
    pub received: Vec<(u16, Bytes)>,
    /// Keyframe requests (PLI) received about the published track.
    pub plis_received: u64,
    /// The receiver of the first track received (a subscriber's, to send a PLI on).
    receiver: Option<rtc::rtp_transceiver::RTCRtpReceiverId>,
    pub state: RTCPeerConnectionState,
    pub connected_at: Option<Instant>,
    /// Outgoing datagrams not delivered yet (the net decides when).
    pub outbox: Vec<(SocketAddr, BytesMut)>,
    /// Outgoing packets rtc stamped TCP (an ICE-TCP client's): to frame onto a stream.
    pub tcp_outbox: Vec<(SocketAddr, BytesMut)>,
}

impl Client {
    pub fn new(now: Instant, addr: SocketAddr, check_interval: Duration) -> Client {
        Client::with_candidate(
            now,
            addr,
            check_interval,
            "udp",
            TcpType::Unspecified,
            false,
        )
    }

    /// A client that also offers RFC 6464 audio levels on its audio (as browsers do).
    pub fn with_audio_levels(now: Instant, addr: SocketAddr, check_interval: Duration) -> Client {
        Client::with_candidate(now, addr, check_interval, "udp", TcpType::Unspecified, true)
    }

    /// A client whose one candidate is an active ICE-TCP host candidate at `ip` (port 9, the
    /// RFC 6544 placeholder: it connects from an ephemeral port): it can only reach a
    /// passive TCP candidate, so it has no UDP path at all.
    pub fn new_tcp_active(now: Instant, ip: std::net::IpAddr, check_interval: Duration) -> Client {
        let addr = SocketAddr::new(ip, 9);
        Client::with_candidate(now, addr, check_interval, "tcp", TcpType::Active, false)
    }

    fn with_candidate(
        now: Instant,
        addr: SocketAddr,
        check_interval: Duration,
        network: &str,
        tcp_type: TcpType,
        audio_levels: bool,
    ) -> Client {
        let mut me = MediaEngine::default();
        me.register_default_codecs().expect("default codecs");
        if audio_levels {
            me.register_header_extension(
                RTCRtpHeaderExtensionCapability {
                    uri: taoyao_engine::AUDIO_LEVEL_URI.to_owned(),
                },
                RtpCodecKind::Audio,
                None,
            )
            .expect("audio level extension");
        }
        let registry =
            register_default_interceptors(Default::default(), &mut me).expect("interceptors");
        // A client's encoder hears keyframe requests: rtc delivers inbound RTCP only if marked.
        let registry = taoyao_engine::feedback::KeyframeFeedback::register(registry);
        let settings = SettingEngineBuilder::new()
            .with_ice_connection_attempts(Some(check_interval), Some(20))
            .build();
        let mut pc = RTCPeerConnectionBuilder::new()
            .with_configuration(RTCConfigurationBuilder::new().build())
            .with_media_engine(me)
            .with_setting_engine(settings)
            .with_interceptor_registry(registry)
            .build(now)
            .expect("client peer");
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
        .expect("host candidate");
        pc.add_local_candidate(RTCIceCandidate::from(&host).to_json().expect("candidate"))
            .expect("add candidate");
        Client {
            pc,
            addr,
            sender: None,
            seq: 1000,
            rtp_received: 0,
            bytes_received: 0,
            received: Vec::new(),
            plis_received: 0,
            receiver: None,
            state: RTCPeerConnectionState::New,
            connected_at: None,
            outbox: Vec::new(),
            tcp_outbox: Vec::new(),
        }
    }

    /// Adds one VP8 track and returns the offer.
    pub fn publish_offer(&mut self, now: Instant) -> String {
        self.publish_offer_of(now, RtpCodecKind::Video)
    }

    /// Adds one track, VP8 or Opus, and returns the offer.
    pub fn publish_offer_of(&mut self, now: Instant, kind: RtpCodecKind) -> String {
        // One SSRC per kind: a second track on the connection is told apart by it.
        let base = if kind == RtpCodecKind::Video {
            0x1234_0000
        } else {
            0x5678_0000
        };
        let ssrc = base | u32::from(self.addr.port());
        let (name, codec) = match kind {
            RtpCodecKind::Video => (
                "video",
                RTCRtpCodec {
                    mime_type: "video/VP8".into(),
                    clock_rate: 90000,
                    ..Default::default()
                },
            ),
            _ => (
                "audio",
                RTCRtpCodec {
                    mime_type: "audio/opus".into(),
                    clock_rate: 48000,
                    channels: 2,
                    ..Default::default()
                },
            ),
        };
        let mime = if kind == RtpCodecKind::Video {
            "video/VP8"
        } else {
            "audio/opus"
        };
        let track = MediaStreamTrack::new(
            "pub".into(),
            name.into(),
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
        let sender = self.pc.add_track(track).expect("add track");
        self.sender = Some((sender, ssrc, mime));
        let offer = self.pc.create_offer(None).expect("offer");
        self.pc.set_local_description(now, offer).expect("local");
        self.drain(now);
        self.pc.local_description().expect("local").sdp
    }

    pub fn accept_answer(&mut self, now: Instant, sdp: String) {
        let answer = RTCSessionDescription::answer(sdp).expect("answer sdp");
        self.pc.set_remote_description(now, answer).expect("remote");
        self.drain(now);
    }

    /// Answers a server offer (subscriber).
    pub fn answer(&mut self, now: Instant, sdp: String) -> String {
        let offer = RTCSessionDescription::offer(sdp).expect("offer sdp");
        self.pc.set_remote_description(now, offer).expect("remote");
        let answer = self.pc.create_answer(None).expect("answer");
        self.pc.set_local_description(now, answer).expect("local");
        self.drain(now);
        self.pc.local_description().expect("local").sdp
    }

    /// Sends one RTP packet on the published track (its codec's payload type as negotiated).
    pub fn send_rtp(&mut self, now: Instant, payload: Bytes) -> bool {
        self.send_rtp_with_level(now, payload, None)
    }

    /// Sends one RTP packet carrying `level` (the RFC 6464 byte: V bit and dBov) in the audio
    /// level extension, which must have been negotiated; `None`: no extension.
    pub fn send_rtp_with_level(&mut self, now: Instant, payload: Bytes, level: Option<u8>) -> bool {
        let Some((id, ssrc, mime)) = self.sender else {
            return false;
        };
        let Some(mut sender) = self.pc.rtp_sender(id) else {
            return false;
        };
        let params = sender.get_parameters();
        let Some(pt) = params
            .rtp_parameters
            .codecs
            .iter()
            .find(|c| c.rtp_codec.mime_type.eq_ignore_ascii_case(mime))
            .map(|c| c.payload_type)
        else {
            return false;
        };
        let level_id = params
            .rtp_parameters
            .header_extensions
            .iter()
            .find(|h| h.uri == taoyao_engine::AUDIO_LEVEL_URI)
            .map(|h| h.id as u8);
        self.seq = self.seq.wrapping_add(1);
        let mut pkt = rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                payload_type: pt,
                sequence_number: self.seq,
                timestamp: u32::from(self.seq) * 3000,
                ssrc,
                marker: true,
                ..Default::default()
            },
            payload,
        };
        if let Some(level) = level {
            let Some(ext) = level_id else {
                return false;
            };
            pkt.header
                .set_extension(ext, Bytes::copy_from_slice(&[level]))
                .expect("one-byte extension");
        }
        let ok = sender.write_rtp(now, pkt).is_ok();
        self.drain(now);
        ok
    }

    /// A subscriber asks for a keyframe of the first track it receives (PLI on its receiver).
    pub fn send_pli(&mut self, now: Instant) -> bool {
        let Some(id) = self.receiver else {
            return false;
        };
        let Some(mut rx) = self.pc.rtp_receiver(id) else {
            return false;
        };
        let Some(media_ssrc) = rx.track().ssrcs().last() else {
            return false;
        };
        let ok = rx
            .write_rtcp(
                now,
                vec![Box::new(PictureLossIndication {
                    sender_ssrc: 0,
                    media_ssrc,
                })],
            )
            .is_ok();
        self.drain(now);
        ok
    }

    pub fn handle(&mut self, now: Instant, from: SocketAddr, bytes: BytesMut) {
        let transport = TransportContext {
            local_addr: self.addr,
            peer_addr: from,
            ecn: None,
            transport_protocol: TransportProtocol::UDP,
        };
        self.handle_transport(now, transport, bytes);
    }

    /// One packet that came in on `transport` (a TCP frame, its header removed, says TCP).
    pub fn handle_transport(&mut self, now: Instant, transport: TransportContext, bytes: BytesMut) {
        let msg = TaggedBytesMut {
            now,
            transport,
            message: bytes,
        };
        let _ = self.pc.handle_read(msg);
        self.drain(now);
    }

    pub fn timeout(&mut self, now: Instant) {
        if self.pc.poll_timeout().is_some_and(|t| t <= now) {
            let _ = self.pc.handle_timeout(now);
            self.drain(now);
        }
    }

    fn take_writes(&mut self) {
        while let Some(w) = self.pc.poll_write() {
            match w.transport.transport_protocol {
                TransportProtocol::TCP => self.tcp_outbox.push((w.transport.peer_addr, w.message)),
                _ => self.outbox.push((w.transport.peer_addr, w.message)),
            }
        }
    }

    pub fn drain(&mut self, now: Instant) {
        self.take_writes();
        while let Some(ev) = self.pc.poll_event() {
            match ev {
                RTCPeerConnectionEvent::OnConnectionStateChangeEvent(s) => {
                    self.state = s;
                    if s == RTCPeerConnectionState::Connected && self.connected_at.is_none() {
                        self.connected_at = Some(now);
                    }
                }
                RTCPeerConnectionEvent::OnTrack(
                    rtc::peer_connection::event::RTCTrackEvent::OnOpen(init),
                ) => {
                    self.receiver.get_or_insert(init.receiver_id);
                }
                _ => {}
            }
        }
        while let Some(TaggedRTCMessage { message, .. }) = self.pc.poll_read() {
            match message {
                RTCMessage::RtpPacket(_, pkt) => {
                    self.rtp_received += 1;
                    self.bytes_received += pkt.payload.len() as u64;
                    self.received
                        .push((pkt.header.sequence_number, pkt.payload.clone()));
                }
                RTCMessage::RtcpPacket(_, rtcp) => {
                    self.plis_received += rtcp
                        .iter()
                        .filter(|p| p.as_any().is::<PictureLossIndication>())
                        .count() as u64;
                }
                _ => {}
            }
        }
        // Drain again: reading may have queued writes (RTCP) after the first loop.
        self.take_writes();
    }
}

/// The shard, its clients and a virtual clock. Delivery is instant and lossless; time moves
/// only when nothing is in flight, straight to the earliest deadline.
pub struct Net {
    pub now: Instant,
    pub shard: Shard,
    pub clients: Vec<Client>,
    shard_addr: SocketAddr,
    /// Wall time spent inside the shard's calls (the fanout example's measure; reading the
    /// clock here is the harness's business, the shard never does).
    pub shard_time: Duration,
}

impl Net {
    pub fn new(cfg: impl FnOnce(&mut ShardConfig)) -> Net {
        let shard_addr: SocketAddr = SHARD_ADDR.parse().expect("addr");
        let mut c = ShardConfig::new(shard_addr);
        cfg(&mut c);
        Net {
            now: Instant::now(),
            shard: Shard::new(c),
            clients: Vec::new(),
            shard_addr,
            shard_time: Duration::ZERO,
        }
    }

    pub fn add_client(&mut self, check_interval: Duration) -> usize {
        self.add_client_with(check_interval, Client::new)
    }

    /// A client built by `make` (e.g. [`Client::with_audio_levels`]) at the next address.
    pub fn add_client_with(
        &mut self,
        check_interval: Duration,
        make: impl FnOnce(Instant, SocketAddr, Duration) -> Client,
    ) -> usize {
        let i = self.clients.len();
        let addr: SocketAddr = format!("10.0.1.{}:{}", 1 + i / 200, 5000 + i)
            .parse()
            .expect("addr");
        self.clients.push(make(self.now, addr, check_interval));
        i
    }

    /// Delivers everything in flight until nothing is.
    pub fn deliver(&mut self) {
        loop {
            let mut moved = false;
            for i in 0..self.clients.len() {
                let out = std::mem::take(&mut self.clients[i].outbox);
                for (to, bytes) in out {
                    moved = true;
                    if to != self.shard_addr {
                        continue; // the fake network has nothing else
                    }
                    let from = self.clients[i].addr;
                    let t0 = Instant::now();
                    self.shard
                        .handle_datagram(self.now, self.shard_addr, from, bytes);
                    let out: Vec<_> = std::iter::from_fn(|| self.shard.poll_transmit()).collect();
                    self.shard_time += t0.elapsed();
                    for t in out {
                        self.deliver_to_client(t);
                    }
                }
            }
            while let Some(t) = self.shard.poll_transmit() {
                moved = true;
                self.deliver_to_client(t);
            }
            if !moved {
                return;
            }
        }
    }

    fn deliver_to_client(&mut self, t: taoyao_engine::Transmit) {
        let i = self.client_index(t.remote);
        if let Some(i) = i {
            self.clients[i].handle(self.now, t.local, t.payload);
        }
    }

    /// Clients sit at 10.0.1.x:5000+i, so the index is the port's offset (no search).
    fn client_index(&self, addr: SocketAddr) -> Option<usize> {
        let i = usize::from(addr.port()).checked_sub(5000)?;
        (self.clients.get(i)?.addr == addr).then_some(i)
    }

    /// Delivers what is in flight, then moves the clock to the next deadline (at most `max`
    /// ahead) and fires it.
    pub fn step(&mut self, max: Duration) {
        self.deliver();
        let mut next = self.now + max;
        if let Some(t) = self.shard.next_timeout() {
            next = next.min(t);
        }
        for c in &mut self.clients {
            if let Some(t) = c.pc.poll_timeout() {
                next = next.min(t);
            }
        }
        self.now = next.max(self.now);
        let t0 = Instant::now();
        self.shard.handle_timeout(self.now);
        self.shard_time += t0.elapsed();
        for c in &mut self.clients {
            c.timeout(self.now);
        }
        self.deliver();
    }

    /// Steps until `done` or `limit` of virtual time; returns whether `done` held.
    pub fn run_until(&mut self, limit: Duration, mut done: impl FnMut(&Net) -> bool) -> bool {
        let end = self.now + limit;
        // A deadline that never moves would spin here without advancing the clock.
        for _ in 0..1_000_000 {
            if done(self) {
                return true;
            }
            if self.now >= end {
                return false;
            }
            self.step(end - self.now);
        }
        panic!("virtual clock stuck at {:?}", self.now);
    }

    pub fn connected(&self, i: usize) -> bool {
        self.clients[i].state == RTCPeerConnectionState::Connected
    }
}

/// Connects client `publisher` as a publisher of one VP8 track and returns the track as the
/// shard knows it (it opens on the first RTP packet, so this sends a few).
pub fn publish(
    net: &mut Net,
    publisher: usize,
) -> (taoyao_engine::ConnId, taoyao_engine::TrackRef) {
    publish_of(net, publisher, RtpCodecKind::Video)
}

/// As [`publish`], one track of `kind` (Opus for audio; the opening packets carry no level).
pub fn publish_of(
    net: &mut Net,
    publisher: usize,
    kind: RtpCodecKind,
) -> (taoyao_engine::ConnId, taoyao_engine::TrackRef) {
    let now = net.now;
    let offer = net.clients[publisher].publish_offer_of(now, kind);
    let (conn, answer) = net.shard.accept_offer(now, offer).expect("accept_offer");
    net.clients[publisher].accept_answer(now, answer);
    assert!(
        net.run_until(Duration::from_secs(5), |n| n.connected(publisher)),
        "publisher not connected"
    );
    let mut opened = None;
    for _ in 0..50 {
        let now = net.now;
        net.clients[publisher].send_rtp(now, Bytes::from_static(&[0x90, 0x80, 0, 0x9d, 1, 42]));
        net.step(Duration::from_millis(20));
        while let Some(ev) = net.shard.poll_event() {
            if let taoyao_engine::Event::TrackOpened { track, .. } = ev {
                opened = Some(track);
            }
        }
        if opened.is_some() {
            break;
        }
    }
    (conn, opened.expect("publisher's track opened on the shard"))
}

/// Opens a subscriber connection for client `sub` to `track` and completes negotiation
/// (server offers, client answers). Returns the shard's connection id.
pub fn subscribe(
    net: &mut Net,
    sub: usize,
    track: &taoyao_engine::TrackRef,
) -> taoyao_engine::ConnId {
    let now = net.now;
    let conn = net.shard.open_connection(now).expect("open");
    let offer = net
        .shard
        .add_subscriber(now, conn, std::slice::from_ref(track))
        .expect("add_subscriber");
    let answer = net.clients[sub].answer(now, offer);
    net.shard
        .accept_answer(now, conn, answer)
        .expect("accept_answer");
    conn
}
