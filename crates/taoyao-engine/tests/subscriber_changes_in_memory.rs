//! The control plane's calls an sfu room makes on the shard, in memory on a virtual clock:
//! send tracks added while an offer is pending wait for the next offer's answer, a removed one
//! stops at once, labels reach the client's SDP, a publisher's new offer on its connection
//! opens a second track there, the room's gate and the publisher's pause hold a track apart,
//! counters add up, and an output (a mix) written from outside reaches the subscriber only
//! once its answer is applied.

mod common;

use std::time::Duration;

use bytes::Bytes;
use common::{Net, publish, subscribe};
use rtc::rtp_transceiver::rtp_sender::RtpCodecKind;
use taoyao_engine::{OutputPacket, SendLabels};

fn key() -> Bytes {
    Bytes::from_static(&[0x90, 0x80, 0, 0x9c, 1, 42])
}

/// Each publisher sends one keyframe per step, `n` steps.
fn send(net: &mut Net, publishers: &[usize], n: usize) {
    for _ in 0..n {
        let now = net.now;
        for p in publishers {
            assert!(net.clients[*p].send_rtp(now, key()));
        }
        net.step(Duration::from_millis(10));
    }
    net.run_until(Duration::from_millis(30), |_| false);
}

#[test]
fn sends_added_during_a_pending_offer_wait_for_the_next_answer_and_removal_is_immediate() {
    let mut net = Net::new(|_| {});
    let (a, b) = (
        net.add_client(Duration::from_millis(50)),
        net.add_client(Duration::from_millis(50)),
    );
    let (_, ta) = publish(&mut net, a);
    let (_, tb) = publish(&mut net, b);
    let sub = net.add_client(Duration::from_millis(50));
    let sink = subscribe(&mut net, sub, &ta);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    send(&mut net, &[a, b], 10);
    assert_eq!(net.clients[sub].rtp_received, 10, "only a's track");

    // Offer one change; add b's track while that offer waits: its answer does not cover b.
    let now = net.now;
    let labels = SendLabels {
        stream: "bob".into(),
        track: "bob:video0".into(),
    };
    let offer = net.shard.offer(now, sink).unwrap();
    net.shard
        .add_sends(now, sink, &[(tb.clone(), labels.clone())])
        .unwrap();
    assert!(
        net.shard
            .add_sends(now, sink, &[(tb.clone(), labels.clone())])
            .is_err(),
        "a track is sent to a connection once"
    );
    let answer = net.clients[sub].answer(now, offer);
    net.shard.accept_answer(now, sink, answer).unwrap();
    send(&mut net, &[a, b], 10);
    assert_eq!(net.clients[sub].rtp_received, 20, "b is not live yet");
    assert_eq!(net.shard.stats().forward_errors, 0);

    // The next offer carries b, labelled as asked; after its answer both flow.
    let now = net.now;
    let offer = net.shard.offer(now, sink).unwrap();
    assert!(
        offer.contains("a=msid:bob bob:video0"),
        "labels in the offer:\n{offer}"
    );
    let answer = net.clients[sub].answer(now, offer);
    net.shard.accept_answer(now, sink, answer).unwrap();
    send(&mut net, &[a, b], 10);
    assert_eq!(net.clients[sub].rtp_received, 40, "both after the answer");

    // Removing a's copy stops it at once, before any offer.
    let now = net.now;
    net.shard.remove_send(now, sink, &ta).unwrap();
    assert!(net.shard.remove_send(now, sink, &ta).is_err(), "once");
    send(&mut net, &[a, b], 10);
    assert_eq!(net.clients[sub].rtp_received, 50, "only b now");
    let counters = net.shard.track_counters(&[ta.clone(), tb.clone()]);
    assert_eq!(counters.len(), 2);
    // a: 30 copies before its removal; b: 10 after its answer, 10 after a's removal.
    assert_eq!(counters[0].forwarded, 30, "{counters:?}");
    assert_eq!(counters[1].forwarded, 20, "{counters:?}");
    assert_eq!(counters[0].live_sinks, 0);
    assert_eq!(counters[1].live_sinks, 1);
    assert!(counters[0].packets >= 40 && counters[0].bytes >= 40 * 6);

    // The removal renegotiates cleanly and b keeps flowing.
    let now = net.now;
    let offer = net.shard.offer(now, sink).unwrap();
    let answer = net.clients[sub].answer(now, offer);
    net.shard.accept_answer(now, sink, answer).unwrap();
    send(&mut net, &[a, b], 5);
    assert_eq!(net.clients[sub].rtp_received, 55);
    assert_eq!(net.shard.stats().forward_errors, 0);
}

#[test]
fn gate_and_pause_hold_a_track_apart() {
    let mut net = Net::new(|_| {});
    let p = net.add_client(Duration::from_millis(50));
    let (_, track) = publish(&mut net, p);
    let sub = net.add_client(Duration::from_millis(50));
    subscribe(&mut net, sub, &track);
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    send(&mut net, &[p], 3);
    assert_eq!(net.clients[sub].rtp_received, 3);
    let now = net.now;
    net.shard.set_track_gated(now, &track, true).unwrap();
    net.shard.set_track_paused(now, &track, true).unwrap();
    // The publisher resumes; the room's gate still holds it.
    net.shard.set_track_paused(now, &track, false).unwrap();
    send(&mut net, &[p], 3);
    assert_eq!(net.clients[sub].rtp_received, 3, "gated");
    let now = net.now;
    net.shard.set_track_gated(now, &track, false).unwrap();
    send(&mut net, &[p], 3);
    assert_eq!(net.clients[sub].rtp_received, 6, "open again (keyframes)");
}

#[test]
fn a_publishers_new_offer_opens_a_second_track_on_its_connection() {
    let mut net = Net::new(|_| {});
    let p = net.add_client(Duration::from_millis(50));
    let (conn, first) = publish(&mut net, p);
    let now = net.now;
    let offer = net.clients[p].publish_offer_of(now, RtpCodecKind::Audio);
    let answer = net.shard.accept_reoffer(now, conn, offer).unwrap();
    net.clients[p].accept_answer(now, answer);
    let mut opened = None;
    for _ in 0..50 {
        let now = net.now;
        net.clients[p].send_rtp(now, Bytes::from_static(&[1, 2, 3]));
        net.step(Duration::from_millis(20));
        while let Some(ev) = net.shard.poll_event() {
            if let taoyao_engine::Event::TrackOpened { track, kind } = ev {
                opened = Some((track, kind));
            }
        }
        if opened.is_some() {
            break;
        }
    }
    let (second, kind) =
        opened.unwrap_or_else(|| panic!("the second track opened: {:?}", net.shard.stats()));
    assert_eq!(kind, RtpCodecKind::Audio);
    assert_eq!(second.conn, conn, "on the same connection");
    assert_ne!(second.track, first.track);
    assert_eq!(net.shard.connection_count(), 1);
    assert!(
        net.shard
            .accept_reoffer(net.now, conn, "not sdp".into())
            .is_err()
    );
}

#[test]
fn an_output_written_from_outside_reaches_the_subscriber_after_its_answer() {
    let mut net = Net::new(|_| {});
    let sub = net.add_client(Duration::from_millis(50));
    let now = net.now;
    let conn = net.shard.open_connection(now).unwrap();
    let labels = SendLabels {
        stream: "mix".into(),
        track: "mix:alice".into(),
    };
    let out = net
        .shard
        .add_output(now, conn, RtpCodecKind::Audio, &labels)
        .unwrap();
    let packet = |seq: u16| OutputPacket {
        conn,
        output: out,
        packet: rtc::rtp::packet::Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                sequence_number: seq,
                timestamp: u32::from(seq) * 960,
                ssrc: 1,
                payload_type: 0,
                ..Default::default()
            },
            payload: Bytes::from_static(&[0xf8, 0xff, 0xfe]),
        },
    };
    let early = net.shard.write_outputs(now, [packet(1)]);
    assert_eq!(early.waiting, 1, "not offered yet: {early:?}");
    let offer = net.shard.offer(now, conn).unwrap();
    assert!(offer.contains("a=msid:mix mix:alice"), "{offer}");
    let answer = net.clients[sub].answer(now, offer);
    net.shard.accept_answer(now, conn, answer).unwrap();
    assert!(net.run_until(Duration::from_secs(5), |n| n.connected(sub)));
    for seq in 100..120 {
        let now = net.now;
        let w = net.shard.write_outputs(now, [packet(seq)]);
        assert_eq!(w.written, 1, "{w:?}");
        net.step(Duration::from_millis(20));
    }
    net.run_until(Duration::from_millis(50), |_| false);
    let got: Vec<u16> = net.clients[sub].received.iter().map(|(s, _)| *s).collect();
    assert_eq!(got, (100..120).collect::<Vec<_>>(), "the writer's numbers");
    let stats = net.shard.stats();
    assert_eq!((stats.outputs_written, stats.outputs_waiting), (20, 1));
    // Gone: a write to it fails, counted.
    let now = net.now;
    net.shard.remove_output(now, conn, out).unwrap();
    assert_eq!(net.shard.write_outputs(now, [packet(200)]).failed, 1);
    assert!(net.shard.remove_output(now, conn, out).is_err());
}
