//! Recorder taps and audio levels on the shard's per-packet path, in memory on a virtual clock:
//! a tap gets every packet its track delivers from the moment it is added, as it arrived and
//! with the payload shared; a full tap drops and counts while the subscriber still gets
//! everything; removing a tap or ending the track ends the writer's queue. Audio whose
//! publisher negotiated RFC 6464 levels reads back as the loudest level and the speaking
//! packets since the last read; audio without the extension reports nothing.

mod common;

use std::sync::mpsc::TryRecvError;
use std::time::Duration;

use bytes::Bytes;
use common::{Client, Net, publish, publish_of, subscribe};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use taoyao_engine::{EngineError, TrackLevel};
use taoyao_media::tap::{self, TapKind};

/// A VP8 keyframe (so a subscriber gets every one) whose last byte tells packets apart.
fn keyframe(n: u8) -> Bytes {
    Bytes::from(vec![0x90, 0x80, 0, 0x9c, 1, 42, n])
}

/// Sends `payloads` one per 10 ms of virtual time and lets the network settle.
fn send(net: &mut Net, publisher: usize, payloads: &[Bytes]) {
    for p in payloads {
        let now = net.now;
        assert!(net.clients[publisher].send_rtp(now, p.clone()));
        net.step(Duration::from_millis(10));
    }
    net.run_until(Duration::from_millis(30), |_| false);
}

#[test]
fn a_tap_gets_every_packet_from_when_it_is_added_and_never_holds_up_forwarding() {
    let mut net = Net::new(|_| {});
    let publisher = net.add_client(Duration::from_millis(50));
    let (pub_conn, track) = publish(&mut net, publisher);
    let sub = net.add_client(Duration::from_millis(50));
    subscribe(&mut net, sub, &track);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    net.run_until(Duration::from_millis(50), |_| false);

    let sent: Vec<Bytes> = (0..15).map(keyframe).collect();
    send(&mut net, publisher, &sent[..5]);
    // Two recordings from the 6th packet on: one with room, one that holds 3.
    let (roomy, roomy_rx) = tap::channel(100);
    let (small, small_rx) = tap::channel(3);
    let small_counts = small.counts();
    let roomy_id = net.shard.add_tap(&track, roomy).unwrap();
    net.shard.add_tap(&track, small).unwrap();
    send(&mut net, publisher, &sent[5..]);

    // Exactly the packets from then on, in order, as they arrived (the publisher's SSRC and
    // numbering, not a subscriber's).
    let tapped: Vec<tap::Tapped> = roomy_rx.try_iter().collect();
    let payloads: Vec<Bytes> = tapped.iter().map(|t| t.packet.payload.clone()).collect();
    assert_eq!(payloads, sent[5..], "the tap gets what came after it");
    assert!(tapped.iter().all(|t| t.kind == TapKind::Video));
    let seqs: Vec<u16> = tapped
        .iter()
        .map(|t| t.packet.header.sequence_number)
        .collect();
    for w in seqs.windows(2) {
        assert_eq!(w[1], w[0].wrapping_add(1), "in order: {seqs:?}");
    }
    let ssrc = 0x1234_0000 | u32::from(net.clients[publisher].addr.port());
    assert!(tapped.iter().all(|t| t.packet.header.ssrc == ssrc));

    // The small queue kept the first 3 and dropped the rest, counted per tap and per shard;
    // its packets share the payload buffers of the roomy tap's: one per packet, not per tap.
    let kept: Vec<tap::Tapped> = small_rx.try_iter().collect();
    assert_eq!(kept.len(), 3);
    for (k, r) in kept.iter().zip(&tapped) {
        assert_eq!(
            k.packet.payload.as_ptr(),
            r.packet.payload.as_ptr(),
            "shared"
        );
    }
    assert_eq!((small_counts.offered(), small_counts.dropped()), (10, 7));
    let stats = net.shard.stats();
    assert_eq!((stats.tap_offered, stats.tap_dropped), (20, 7), "{stats:?}");
    // The subscriber got every packet all the same.
    let got: Vec<Bytes> = net.clients[sub]
        .received
        .iter()
        .map(|(_, p)| p.clone())
        .collect();
    assert_eq!(got, sent, "forwarding is not held up by a full tap");

    // Removed: no more packets, and the shard held the only sender, so the writer sees the end.
    net.shard.remove_tap(&track, roomy_id).unwrap();
    send(&mut net, publisher, &[keyframe(20), keyframe(21)]);
    assert!(matches!(
        roomy_rx.try_recv(),
        Err(TryRecvError::Disconnected)
    ));
    assert!(matches!(
        net.shard.remove_tap(&track, roomy_id),
        Err(EngineError::NoTap(_))
    ));
    // The small tap is still on and has room again.
    assert_eq!(small_rx.try_iter().count(), 2);
    assert!(matches!(small_rx.try_recv(), Err(TryRecvError::Empty)));

    // The track ends with its connection: its taps are dropped with it.
    let now = net.now;
    net.shard.close(now, pub_conn).unwrap();
    assert!(matches!(
        small_rx.try_recv(),
        Err(TryRecvError::Disconnected)
    ));
    assert!(matches!(
        net.shard.add_tap(&track, tap::channel(1).0),
        Err(EngineError::NoConnection(_))
    ));
}

/// Sends one audio packet per level (the RFC 6464 byte: V bit set, then dBov).
fn speak(net: &mut Net, publisher: usize, levels: &[u8]) {
    for &level in levels {
        let now = net.now;
        let payload = Bytes::from_static(&[0xfc, 0xff, 0xfe]);
        assert!(
            net.clients[publisher].send_rtp_with_level(now, payload, Some(0x80 | level)),
            "the client negotiated audio levels"
        );
        net.step(Duration::from_millis(20));
    }
    net.run_until(Duration::from_millis(30), |_| false);
}

fn level(track: &taoyao_engine::TrackRef, loudest: u8, speaking: u32) -> Vec<TrackLevel> {
    vec![TrackLevel {
        track: track.clone(),
        loudest,
        speaking,
    }]
}

#[test]
fn audio_levels_read_back_loudest_and_speaking_since_the_last_read() {
    let mut net = Net::new(|c| c.silence_dbov = 80);
    let talker = net.add_client_with(Duration::from_millis(50), Client::with_audio_levels);
    let (_, track) = publish_of(&mut net, talker, RtpCodecKind::Audio);
    let plain = net.add_client(Duration::from_millis(50));
    let (_, plain_track) = publish_of(&mut net, plain, RtpCodecKind::Audio);
    let both = [track.clone(), plain_track.clone()];
    // The packets that opened the tracks carried no level: nothing heard yet.
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 127, 0));

    // Speaking at 30 dBov, with a quieter word or two: the loudest, and 5 speaking packets.
    speak(&mut net, talker, &[50, 30, 40, 30, 60]);
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 30, 5));
    // Silent (127), then quiet but under the threshold (90): heard, not speaking.
    speak(&mut net, talker, &[127, 127, 127]);
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 127, 0));
    speak(&mut net, talker, &[90, 100]);
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 90, 0));
    // A read starts anew: nothing since.
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 127, 0));

    // Paused, the track is silent to the room (as in the sfu), and heard again once resumed.
    net.shard.set_track_paused(net.now, &track, true).unwrap();
    speak(&mut net, talker, &[20, 20]);
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 127, 0));
    net.shard.set_track_paused(net.now, &track, false).unwrap();
    speak(&mut net, talker, &[20]);
    assert_eq!(net.shard.take_audio_levels(&both), level(&track, 20, 1));

    // The other publisher never negotiated levels: its audio arrives, it reports nothing.
    let before = net.shard.stats().rtp_in;
    send(&mut net, plain, &[Bytes::from_static(&[0xfc, 0xff, 0xfe])]);
    assert_eq!(net.shard.stats().rtp_in, before + 1);
    assert!(
        !net.clients[plain].send_rtp_with_level(net.now, Bytes::from_static(&[0xfc]), Some(30)),
        "it cannot send levels it did not negotiate"
    );
    assert_eq!(
        net.shard
            .take_audio_levels(std::slice::from_ref(&plain_track)),
        []
    );
}
