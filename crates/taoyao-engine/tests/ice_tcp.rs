//! Real sockets on 127.0.0.1: an engine with ICE-TCP, two shards (the room goes to shard 1, so
//! the acceptor must route by the ufrag's shard index, not to a default). The publisher is an
//! rtc sans-IO client whose only candidate is an active TCP one: this test connects its
//! `TcpStream` to the engine's passive candidate and frames every packet (RFC 4571) by hand,
//! independently of the engine's decoder. A subscriber, an rtc client on a real UDP socket,
//! receives the publisher's video through the shard. Beside them, one stranger sends junk and
//! one sends nothing: both are dropped by the acceptor while the real stream works.

mod common;

use std::io::{ErrorKind, Read, Write};
use std::net::{SocketAddr, TcpStream, UdpSocket};
use std::sync::mpsc::Receiver;
use std::time::{Duration, Instant};

use bytes::{Bytes, BytesMut};
use common::Client;
use rtc::peer_connection::state::RTCPeerConnectionState;
use rtc::shared::{TransportContext, TransportProtocol};
use taoyao_engine::{ConnId, Engine, EngineConfig, Event, TrackRef};

/// A VP8 keyframe (payload descriptor, then a frame tag with P = 0 and the start code): a
/// subscriber's leg starts on one.
const KEYFRAME: [u8; 12] = [
    0x90, 0x80, 0x00, 0x50, 0x02, 0x00, 0x9d, 0x01, 0x2a, 0x10, 0x00, 0x10,
];

/// The publisher's side of its one TCP stream.
struct TcpPeer {
    stream: Option<TcpStream>,
    inbuf: Vec<u8>,
    frames_sent: u64,
    frames_received: u64,
}

impl TcpPeer {
    fn pump(&mut self, now: Instant, client: &mut Client, server: SocketAddr) {
        for (to, bytes) in std::mem::take(&mut client.tcp_outbox) {
            assert_eq!(
                to, server,
                "the TCP client writes only to the passive candidate"
            );
            let stream = self.stream.get_or_insert_with(|| {
                let s = TcpStream::connect(server).expect("connect to the passive candidate");
                s.set_nodelay(true).unwrap();
                s.set_read_timeout(Some(Duration::from_millis(1))).unwrap();
                s
            });
            let mut frame = (bytes.len() as u16).to_be_bytes().to_vec();
            frame.extend_from_slice(&bytes);
            stream.write_all(&frame).expect("write a frame");
            self.frames_sent += 1;
        }
        let Some(stream) = &mut self.stream else {
            return;
        };
        let mut buf = [0u8; 16384];
        loop {
            match stream.read(&mut buf) {
                Ok(0) => panic!("the engine closed the publisher's stream"),
                Ok(n) => self.inbuf.extend_from_slice(&buf[..n]),
                Err(e) if matches!(e.kind(), ErrorKind::WouldBlock | ErrorKind::TimedOut) => break,
                Err(e) => panic!("publisher stream: {e}"),
            }
        }
        let transport = TransportContext {
            local_addr: stream.local_addr().unwrap(),
            peer_addr: stream.peer_addr().unwrap(),
            ecn: None,
            transport_protocol: TransportProtocol::TCP,
        };
        while self.inbuf.len() >= 2 {
            let len = usize::from(u16::from_be_bytes([self.inbuf[0], self.inbuf[1]]));
            if self.inbuf.len() < 2 + len {
                break;
            }
            let frame = BytesMut::from(&self.inbuf[2..2 + len]);
            self.inbuf.drain(..2 + len);
            self.frames_received += 1;
            client.handle_transport(now, transport, frame);
        }
    }
}

/// The subscriber's UDP socket.
struct UdpPeer {
    socket: UdpSocket,
    sent: u64,
    received: u64,
}

impl UdpPeer {
    fn pump(&mut self, now: Instant, client: &mut Client) {
        for (to, bytes) in std::mem::take(&mut client.outbox) {
            self.socket.send_to(&bytes, to).expect("send");
            self.sent += 1;
        }
        let mut buf = [0u8; 2048];
        loop {
            match self.socket.recv_from(&mut buf) {
                Ok((n, from)) => {
                    self.received += 1;
                    client.handle(now, from, BytesMut::from(&buf[..n]));
                }
                Err(e) if e.kind() == ErrorKind::WouldBlock => break,
                Err(e) => panic!("subscriber socket: {e}"),
            }
        }
    }
}

/// `(protocol, priority, ip:port, tcptype)` of every candidate line in an SDP.
fn candidates(sdp: &str) -> Vec<(String, u32, SocketAddr, Option<String>)> {
    sdp.lines()
        .filter_map(|l| l.strip_prefix("a=candidate:"))
        .map(|c| {
            let f: Vec<&str> = c.split_whitespace().collect();
            let tcptype = f
                .iter()
                .position(|&w| w == "tcptype")
                .map(|i| f[i + 1].to_owned());
            (
                f[2].to_lowercase(),
                f[3].parse().unwrap(),
                format!("{}:{}", f[4], f[5]).parse().unwrap(),
                tcptype,
            )
        })
        .collect()
}

/// The server's candidates (the same in every m-section): one UDP host at the shard, one
/// passive TCP host at the listener, ranked below the UDP one.
fn assert_udp_and_passive_tcp(sdp: &str, udp: SocketAddr, tcp: SocketAddr) {
    let mut c = candidates(sdp);
    c.sort();
    c.dedup();
    assert_eq!(c.len(), 2, "{c:?}");
    let u = c.iter().find(|c| c.0 == "udp").expect("a UDP candidate");
    let t = c.iter().find(|c| c.0 == "tcp").expect("a TCP candidate");
    assert_eq!((u.2, &u.3), (udp, &None), "{c:?}");
    assert_eq!((t.2, t.3.as_deref()), (tcp, Some("passive")), "{c:?}");
    assert!(t.1 < u.1, "TCP ranks below UDP: {c:?}");
}

/// Reads the shard's events: `conn`'s opened track, if one opened, and whether the shard saw
/// `conn` reach connected.
fn watch(events: &Receiver<Event>, conn: ConnId, connected: &mut bool) -> Option<TrackRef> {
    let mut found = None;
    while let Ok(ev) = events.try_recv() {
        match ev {
            Event::TrackOpened { track, .. } if track.conn == conn => found = Some(track),
            Event::State { conn: c, state } if c == conn => {
                *connected |= state == RTCPeerConnectionState::Connected;
            }
            _ => {}
        }
    }
    found
}

#[test]
fn a_tcp_only_publisher_reaches_a_udp_subscriber_and_strangers_are_dropped() {
    let engine = Engine::start(&EngineConfig {
        shards: 2,
        tcp_port: Some(0),
        tcp_first_frame_timeout: Duration::from_millis(300),
        ..EngineConfig::default()
    })
    .unwrap();
    let tcp_addr = engine.tcp_addr().expect("ICE-TCP on");
    let _first = engine.place_room();
    let room = engine.place_room();
    assert_eq!(room.index(), 1, "the room is on the second shard");
    let shard = room.shard().clone();
    let events = engine.take_events(1).unwrap();

    // Strangers first: a web client, and one that connects and says nothing.
    let mut junk = TcpStream::connect(tcp_addr).unwrap();
    junk.write_all(b"GET / HTTP/1.1\r\nHost: x\r\n\r\n")
        .unwrap();
    let _silent = TcpStream::connect(tcp_addr).unwrap();

    let start = Instant::now();
    let mut publisher = Client::new_tcp_active(start, tcp_addr.ip(), Duration::from_millis(50));
    let offer = publisher.publish_offer(start);
    let (pub_conn, answer) = shard.accept_offer(offer).unwrap();
    assert_udp_and_passive_tcp(&answer, shard.local_addr(), tcp_addr);
    publisher.accept_answer(Instant::now(), answer);
    let mut pub_tcp = TcpPeer {
        stream: None,
        inbuf: Vec::new(),
        frames_sent: 0,
        frames_received: 0,
    };

    let sub_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    sub_socket.set_nonblocking(true).unwrap();
    let mut subscriber = Client::new(
        Instant::now(),
        sub_socket.local_addr().unwrap(),
        Duration::from_millis(50),
    );
    let mut sub_udp = UdpPeer {
        socket: sub_socket,
        sent: 0,
        received: 0,
    };

    // Connect the publisher and send video until its track opens on the shard.
    let mut track = None;
    let mut server_connected = false;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while track.is_none() {
        assert!(
            Instant::now() < deadline,
            "publisher state {:?}, frames sent {} received {}, acceptor {:?}",
            publisher.state,
            pub_tcp.frames_sent,
            pub_tcp.frames_received,
            engine.tcp_stats()
        );
        let now = Instant::now();
        publisher.timeout(now);
        if publisher.state == RTCPeerConnectionState::Connected
            && now - last_rtp > Duration::from_millis(10)
        {
            publisher.send_rtp(now, Bytes::from_static(&KEYFRAME));
            last_rtp = now;
        }
        pub_tcp.pump(now, &mut publisher, tcp_addr);
        assert!(
            publisher.outbox.is_empty(),
            "the TCP-only publisher wrote UDP"
        );
        track = watch(&events, pub_conn, &mut server_connected);
    }
    let track = track.unwrap();
    assert!(
        server_connected,
        "the shard's side of the TCP connection is connected"
    );

    // Subscribe over UDP through a server offer, which carries the TCP candidate too.
    let sub_conn = shard.open_connection().unwrap();
    let offer = shard.add_subscriber(sub_conn, vec![track.clone()]).unwrap();
    assert_udp_and_passive_tcp(&offer, shard.local_addr(), tcp_addr);
    let answer = subscriber.answer(Instant::now(), offer);
    shard.accept_answer(sub_conn, answer).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while subscriber.rtp_received < 30 {
        assert!(
            Instant::now() < deadline,
            "subscriber state {:?}, RTP received {}, shard {:?}",
            subscriber.state,
            subscriber.rtp_received,
            shard.stats().unwrap()
        );
        let now = Instant::now();
        publisher.timeout(now);
        subscriber.timeout(now);
        if now - last_rtp > Duration::from_millis(10) {
            assert!(publisher.send_rtp(now, Bytes::from_static(&KEYFRAME)));
            last_rtp = now;
        }
        pub_tcp.pump(now, &mut publisher, tcp_addr);
        sub_udp.pump(now, &mut subscriber);
        assert!(
            publisher.outbox.is_empty(),
            "the TCP-only publisher wrote UDP"
        );
    }
    assert_eq!(publisher.state, RTCPeerConnectionState::Connected);
    assert_eq!(subscriber.state, RTCPeerConnectionState::Connected);
    // The payload that arrived is the one the TCP publisher sent.
    assert!(subscriber.received.iter().all(|(_, p)| p[..] == KEYFRAME));

    // Quiet: nothing more goes in from the clients (they are driven only here), what is in
    // flight lands, and the strangers' fate is decided (the silent one's timeout is 300 ms).
    std::thread::sleep(Duration::from_millis(500));
    let stats = shard.stats().unwrap();
    eprintln!("{stats:?}\n{:?}", engine.tcp_stats());
    // The publisher's every frame came in over TCP, and every datagram the shard's UDP socket
    // received is one the subscriber sent: none was the TCP client's.
    assert_eq!(stats.tcp_frames_in, pub_tcp.frames_sent, "{stats:?}");
    assert_eq!(
        stats.datagrams_in - stats.tcp_frames_in,
        sub_udp.sent,
        "{stats:?}"
    );
    assert_eq!(stats.unroutable, 0, "{stats:?}");
    // Every transmit went to its own transport: TCP frames onto the stream (all of them read
    // by the publisher), the rest through the UDP egress.
    let deadline = Instant::now() + Duration::from_secs(2);
    while pub_tcp.frames_received < stats.tcp.frames_out && Instant::now() < deadline {
        pub_tcp.pump(Instant::now(), &mut publisher, tcp_addr);
    }
    assert!(
        pub_tcp.frames_received >= stats.tcp.frames_out && stats.tcp.frames_out > 0,
        "{} frames read of {stats:?}",
        pub_tcp.frames_received
    );
    assert_eq!(
        stats.egress.sent + stats.egress.dropped + stats.tcp.frames_out,
        stats.datagrams_out,
        "{stats:?}"
    );
    assert!(stats.rtp_forwarded >= 30, "{stats:?}");
    assert_eq!((stats.tcp.adopted, stats.tcp.open), (1, 1), "{stats:?}");
    assert_eq!(stats.tcp.no_stream, 0, "{stats:?}");

    let acc = engine.tcp_stats();
    assert_eq!(acc.accepted, 3, "{acc:?}");
    assert_eq!(acc.routed, 1, "{acc:?}");
    assert_eq!(acc.dropped_junk, 1, "{acc:?}");
    assert_eq!(acc.dropped_timeout, 1, "{acc:?}");
    // The junk stream was closed by the engine, not left hanging.
    junk.set_read_timeout(Some(Duration::from_secs(2))).unwrap();
    let mut buf = [0u8; 16];
    match junk.read(&mut buf) {
        Ok(0) => {}
        Err(e) if e.kind() == ErrorKind::ConnectionReset => {}
        other => panic!("junk stream still open: {other:?}"),
    }
    assert_eq!(
        engine.shard(0).unwrap().stats().unwrap().tcp.adopted,
        0,
        "nothing was routed to the other shard"
    );

    // Closing the publisher's connection closes its stream: the client reads to its EOF.
    shard.close(pub_conn).unwrap();
    let mut stream = pub_tcp.stream.take().unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(2)))
        .unwrap();
    let mut buf = [0u8; 4096];
    loop {
        match stream.read(&mut buf) {
            Ok(0) => break,
            Ok(_) => {} // its last frames (DTLS close_notify)
            Err(e) => panic!("no EOF after the connection closed: {e}"),
        }
    }
    let tcp = shard.stats().unwrap().tcp;
    assert_eq!((tcp.open, tcp.closed_conn), (0, 1), "{tcp:?}");
    engine.stop();
}

/// The subscribe direction over TCP: the server offers, the TCP-only client answers and starts
/// checking at once, and its checks reach the shard (on a stream the acceptor routed by ufrag)
/// before the answer is applied. The shard keeps them under their TCP route and replays them
/// when the answer is set; then the publisher's video flows down the stream, framed.
#[test]
fn a_tcp_only_subscriber_connects_through_early_checks_and_receives_video() {
    let engine = Engine::start(&EngineConfig {
        shards: 1,
        tcp_port: Some(0),
        ..EngineConfig::default()
    })
    .unwrap();
    let tcp_addr = engine.tcp_addr().expect("ICE-TCP on");
    let room = engine.place_room();
    let shard = room.shard().clone();
    let events = engine.take_events(0).unwrap();

    // A UDP publisher.
    let pub_socket = UdpSocket::bind("127.0.0.1:0").unwrap();
    pub_socket.set_nonblocking(true).unwrap();
    let mut publisher = Client::new(
        Instant::now(),
        pub_socket.local_addr().unwrap(),
        Duration::from_millis(50),
    );
    let mut pub_udp = UdpPeer {
        socket: pub_socket,
        sent: 0,
        received: 0,
    };
    let offer = publisher.publish_offer(Instant::now());
    let (pub_conn, answer) = shard.accept_offer(offer).unwrap();
    publisher.accept_answer(Instant::now(), answer);
    let mut track = None;
    let mut connected = false;
    let mut last_rtp = Instant::now();
    let deadline = Instant::now() + Duration::from_secs(10);
    while track.is_none() {
        assert!(Instant::now() < deadline, "publisher {:?}", publisher.state);
        let now = Instant::now();
        publisher.timeout(now);
        if publisher.state == RTCPeerConnectionState::Connected
            && now - last_rtp > Duration::from_millis(10)
        {
            publisher.send_rtp(now, Bytes::from_static(&KEYFRAME));
            last_rtp = now;
        }
        pub_udp.pump(now, &mut publisher);
        track = watch(&events, pub_conn, &mut connected);
    }

    // The TCP-only subscriber answers; its answer "travels" for 150 ms while it checks.
    let mut subscriber =
        Client::new_tcp_active(Instant::now(), tcp_addr.ip(), Duration::from_millis(50));
    let sub_conn = shard.open_connection().unwrap();
    let offer = shard
        .add_subscriber(sub_conn, vec![track.unwrap()])
        .unwrap();
    let answer = subscriber.answer(Instant::now(), offer);
    let mut sub_tcp = TcpPeer {
        stream: None,
        inbuf: Vec::new(),
        frames_sent: 0,
        frames_received: 0,
    };
    let signaling = Instant::now() + Duration::from_millis(150);
    while Instant::now() < signaling {
        let now = Instant::now();
        subscriber.timeout(now);
        sub_tcp.pump(now, &mut subscriber, tcp_addr);
        pub_udp.pump(now, &mut publisher);
        publisher.timeout(now);
    }
    let before = shard.stats().unwrap();
    assert!(
        sub_tcp.frames_sent > 0,
        "the subscriber checked before the answer"
    );
    assert!(
        before.early_checks_kept > 0 && before.tcp.adopted == 1 && before.tcp.open == 1,
        "its checks were kept on an open stream: {before:?}"
    );
    assert_eq!(before.early_checks_replayed, 0);
    shard.accept_answer(sub_conn, answer).unwrap();

    let deadline = Instant::now() + Duration::from_secs(10);
    while subscriber.rtp_received < 30 {
        assert!(
            Instant::now() < deadline,
            "subscriber {:?}, RTP {}, shard {:?}",
            subscriber.state,
            subscriber.rtp_received,
            shard.stats().unwrap()
        );
        let now = Instant::now();
        publisher.timeout(now);
        subscriber.timeout(now);
        if now - last_rtp > Duration::from_millis(10) {
            assert!(publisher.send_rtp(now, Bytes::from_static(&KEYFRAME)));
            last_rtp = now;
        }
        pub_udp.pump(now, &mut publisher);
        sub_tcp.pump(now, &mut subscriber, tcp_addr);
        assert!(
            subscriber.outbox.is_empty(),
            "the TCP-only subscriber wrote UDP"
        );
    }
    assert_eq!(subscriber.state, RTCPeerConnectionState::Connected);
    assert!(subscriber.received.iter().all(|(_, p)| p[..] == KEYFRAME));
    let stats = shard.stats().unwrap();
    eprintln!("{stats:?}");
    assert_eq!(stats.early_checks_replayed, stats.early_checks_kept);
    // The video went down the stream: at least one frame per RTP packet received.
    assert!(
        stats.tcp.frames_out >= 30 && sub_tcp.frames_received >= 30,
        "{stats:?}"
    );
    assert_eq!(
        stats.tcp.closed_backlog + stats.tcp.closed_peer,
        0,
        "{stats:?}"
    );
    engine.stop();
}
