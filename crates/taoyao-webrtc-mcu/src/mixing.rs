//! The MCU's audio path in a room: publishers' Opus packets go to one mixer task per room, which
//! every 20 ms (a drift-free `MixClock`) sends each member one Opus packet holding everyone but
//! itself, on a local track of the member's subscribe connection. Video stays on the forwarder.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use async_trait::async_trait;
use bytes::Bytes;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use taoyao_media::clock::MixClock;
use taoyao_media::levels::LevelWindow;
use taoyao_media::mixer::{AudioMixer, MixerConfig};
use taoyao_webrtc::MediaKind;
use taoyao_webrtc::{MediaEvent, MediaEvents, MemberId};
use taoyao_webrtc_sfu::audio_path::{AudioOutput, AudioPath};
use taoyao_webrtc_sfu::forwarder::{MediaCounters, TaskCount};
use taoyao_webrtc_sfu::recorder::Tap;
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;

/// What reaches the mixer beside packets: membership, mute, gate, outputs and taps (a few per
/// member action). Never dropped, so on a channel of its own with no bound; the packets that
/// arrive fifty times a second per publisher go on the bounded [`MixPacket`] lane.
pub(crate) enum MixCmd {
    Add(MemberId),
    Remove(MemberId),
    /// The member paused (or resumed) its own audio.
    Mute(MemberId, bool),
    /// The room's rules close (or open) the member's audio; independent of its own pause.
    Gate(MemberId, bool),
    Output(MemberId, AudioOutput),
    /// Record the shared mix into this tap (the room's mix recording), or stop.
    Tap(Arc<Tap>),
    Untap(Arc<Tap>),
}

/// A publisher's audio on its way to the mixer, keyed by the member's shared id (a reference
/// count per packet, no allocation).
pub(crate) enum MixPacket {
    /// An Opus packet: member, track (its id among the member's tracks), sequence number.
    Opus(MemberId, u32, u16, Bytes),
    /// One of the member's audio tracks ended: its buffer leaves the mix (after its packets:
    /// the same lane keeps the order).
    EndTrack(MemberId, u32),
}

/// The room's end of its mixer task.
#[derive(Clone)]
pub(crate) struct Mixer {
    control: mpsc::UnboundedSender<MixCmd>,
    packets: mpsc::Sender<MixPacket>,
    counters: Arc<MediaCounters>,
}

impl Mixer {
    /// Hands a command to the mixer; false once the mixer has ended.
    pub(crate) fn send(&self, cmd: MixCmd) -> bool {
        self.control.send(cmd).is_ok()
    }
}

/// The sfu room's audio goes to the mixer.
#[async_trait]
impl AudioPath for Mixer {
    fn joined(&self, member: &MemberId) {
        self.send(MixCmd::Add(member.clone()));
    }

    fn left(&self, member: &MemberId) {
        self.send(MixCmd::Remove(member.clone()));
    }

    fn paused(&self, member: &MemberId, paused: bool) {
        self.send(MixCmd::Mute(member.clone(), paused));
    }

    fn gated(&self, member: &MemberId, closed: bool) {
        self.send(MixCmd::Gate(member.clone(), closed));
    }

    /// Hands over a packet without waiting: when the mixer is `mcu.queue_packets`
    /// behind, the packet is dropped and counted (`mix_packets_dropped`), as a late packet
    /// would be by its jitter buffer. False once the mixer has ended.
    fn packet(&self, member: &MemberId, track: u32, seq: u16, payload: Bytes) -> bool {
        match self
            .packets
            .try_send(MixPacket::Opus(member.clone(), track, seq, payload))
        {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                MediaCounters::add(&self.counters.mix_packets_dropped, 1);
                true
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    /// A track's end waits for room on the lane (it must not be lost, and comes after the
    /// track's packets).
    async fn end_track(&self, member: &MemberId, track: u32) {
        let _ = self
            .packets
            .send(MixPacket::EndTrack(member.clone(), track))
            .await;
    }

    fn output(&self, member: &MemberId, out: AudioOutput) {
        self.send(MixCmd::Output(member.clone(), out));
    }
}

struct Sending {
    out: AudioOutput,
    seq: u16,
    timestamp: u32,
}

pub(crate) struct MixSettings {
    pub max_speakers: usize,
    /// Packets queued for the mixer before newer ones are dropped.
    pub queue_packets: usize,
    /// 0: no level reports.
    pub level_interval: Duration,
}

/// Starts a room's mixer task; it ends when every sender is dropped (the room closed). Every
/// `level_interval` while anyone speaks, each member is told the room's levels (`events`).
pub(crate) fn spawn(
    room: String,
    tasks: Arc<AtomicUsize>,
    counters: Arc<MediaCounters>,
    settings: MixSettings,
    events: MediaEvents,
) -> Mixer {
    let (tx, mut rx) = mpsc::unbounded_channel::<MixCmd>();
    let (packets_tx, mut packets) = mpsc::channel::<MixPacket>(settings.queue_packets.max(1));
    let handle = Mixer {
        control: tx,
        packets: packets_tx,
        counters: counters.clone(),
    };
    let count = TaskCount::start(&tasks);
    tokio::spawn(async move {
        let _count = count;
        let cfg = MixerConfig {
            max_speakers: settings.max_speakers,
            ..MixerConfig::default()
        };
        let tick = Duration::from_millis(20);
        let mut levels = (!settings.level_interval.is_zero()).then(|| {
            let ticks = (settings.level_interval.as_millis() / tick.as_millis()).max(1);
            LevelWindow::<MemberId>::new(ticks as u32, cfg.silence_dbov)
        });
        let mut mixer = match AudioMixer::<MemberId>::new(cfg) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(room, "cannot start the audio mixer: {e}");
                return;
            }
        };
        let mut outputs: HashMap<MemberId, Sending> = HashMap::new();
        // Members who paused their audio, and members the room's rules closed.
        let (mut paused, mut gated) = (HashSet::<MemberId>::new(), HashSet::<MemberId>::new());
        // Mix recordings: the shared mix as RTP, its timestamp from the clock's tick count, so
        // ticks skipped after a stall show as a gap in time, not as lost packets.
        let mut taps: Vec<Arc<Tap>> = Vec::new();
        let mut tap_seq: u16 = 0;
        let mut clock = MixClock::new(Instant::now(), tick);
        loop {
            let next = tokio::time::Instant::from_std(clock.next_at());
            tokio::select! {
                // Commands first: a member is added before its packets are read.
                biased;
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(MixCmd::Add(id)) => {
                        if let Err(e) = mixer.add(id) {
                            tracing::warn!(room, "mixer: {e}");
                        }
                    }
                    Some(MixCmd::Remove(id)) => {
                        mixer.remove(&id);
                        paused.remove(&id);
                        gated.remove(&id);
                        outputs.remove(&id);
                    }
                    Some(MixCmd::Mute(id, muted)) => {
                        set(&mut paused, &id, muted);
                        mixer.set_muted(&id, muted || gated.contains(&id));
                    }
                    Some(MixCmd::Gate(id, closed)) => {
                        set(&mut gated, &id, closed);
                        mixer.set_muted(&id, closed || paused.contains(&id));
                    }
                    Some(MixCmd::Output(id, out)) => {
                        outputs.insert(id, Sending { out, seq: rand::random(), timestamp: rand::random() });
                    }
                    Some(MixCmd::Tap(t)) => taps.push(t),
                    Some(MixCmd::Untap(t)) => taps.retain(|x| !Arc::ptr_eq(x, &t)),
                },
                Some(p) = packets.recv() => match p {
                    MixPacket::Opus(id, track, seq, payload) => {
                        if let Err(e) = mixer.push(&id, track, seq, payload) {
                            tracing::debug!(room, member = id.as_str(), "mixer: {e}");
                        }
                    }
                    MixPacket::EndTrack(id, track) => mixer.end_track(&id, track),
                },
                _ = tokio::time::sleep_until(next) => {
                    // A tick or a few late (a busy machine): mix each, so no 20 ms of audio
                    // goes missing (ticks were lost here before); after a longer stall mix
                    // once and skip the rest rather than send a burst.
                    let before = clock.ticks();
                    let mix = clock.to_mix(Instant::now(), MAX_CATCH_UP);
                    // More than one tick due: this wakeup was late; the ticks before the range
                    // were skipped (after a stall), the range's extra ones are mixed late.
                    let late = (mix.end - mix.start).saturating_sub(1);
                    let skipped = mix.start - before;
                    MediaCounters::add(&counters.mix_ticks_late, late);
                    MediaCounters::add(&counters.mix_ticks_skipped, skipped);
                    for index in mix {
                        let tick = match mixer.tick() {
                            Ok(t) => t,
                            Err(e) => {
                                tracing::warn!(room, "mix tick: {e}");
                                continue;
                            }
                        };
                        if let Some(report) = levels.as_mut().and_then(|w| w.tick(&tick.levels)) {
                            let all = Arc::new(report.levels);
                            for (to, _) in all.iter() {
                                events.emit(MediaEvent::AudioLevels {
                                    to: to.clone(),
                                    levels: all.clone(),
                                    speaker: report.speaker.clone(),
                                });
                            }
                        }
                        if !taps.is_empty() {
                            tap_seq = tap_seq.wrapping_add(1);
                            let packet = Packet {
                                header: Header {
                                    version: 2,
                                    payload_type: 111,
                                    sequence_number: tap_seq,
                                    timestamp: (index as u32).wrapping_mul(960),
                                    ..Default::default()
                                },
                                payload: tick.shared.clone(),
                            };
                            for t in &taps {
                                t.offer(MediaKind::Audio, &packet);
                            }
                        }
                        for (id, payload) in tick.packets {
                            let Some(s) = outputs.get_mut(&id) else { continue };
                            s.seq = s.seq.wrapping_add(1);
                            s.timestamp = s.timestamp.wrapping_add(960);
                            let packet = Packet {
                                header: Header {
                                    version: 2,
                                    payload_type: s.out.payload_type,
                                    sequence_number: s.seq,
                                    timestamp: s.timestamp,
                                    ssrc: s.out.ssrc,
                                    ..Default::default()
                                },
                                payload,
                            };
                            let _ = s.out.track.write_rtp(packet).await;
                        }
                    }
                }
            }
        }
    });
    handle
}

/// Late ticks mixed one by one; beyond this many (100 ms) the rest are skipped.
const MAX_CATCH_UP: u64 = 5;

fn set(set: &mut HashSet<MemberId>, id: &MemberId, on: bool) {
    if on {
        set.insert(id.clone());
    } else {
        set.remove(id);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn packets_beyond_the_bound_are_dropped_and_counted_commands_never() {
        let (control, commands) = mpsc::unbounded_channel();
        let (packets, mut queued) = mpsc::channel(2);
        let counters = Arc::new(MediaCounters::default());
        let mixer = Mixer {
            control,
            packets,
            counters: counters.clone(),
        };
        let a = MemberId::from("a");
        for seq in 0..5 {
            assert!(mixer.packet(&a, 0, seq, Bytes::from_static(b"opus")));
        }
        assert_eq!(counters.snapshot().mix_packets_dropped, 3);
        // The two queued are the oldest; the lane keeps their order.
        for want in 0..2 {
            match queued.recv().await {
                Some(MixPacket::Opus(id, 0, seq, _)) => assert_eq!((id, seq), (a.clone(), want)),
                _ => panic!("expected packet {want}"),
            }
        }
        // A track's end waits for room instead of being dropped.
        mixer.packet(&a, 0, 5, Bytes::from_static(b"opus"));
        mixer.packet(&a, 0, 6, Bytes::from_static(b"opus"));
        let ender = mixer.clone();
        let end = tokio::spawn(async move { ender.end_track(&MemberId::from("a"), 0).await });
        tokio::task::yield_now().await;
        assert!(!end.is_finished(), "the full lane holds the end back");
        queued.recv().await;
        end.await.unwrap();
        queued.recv().await;
        assert!(matches!(
            queued.recv().await,
            Some(MixPacket::EndTrack(_, 0))
        ));
        // Commands are not bounded.
        for _ in 0..100 {
            assert!(mixer.send(MixCmd::Mute(a.clone(), true)));
        }
        assert_eq!(commands.len(), 100);
        // Once the mixer is gone, the sender hears it.
        drop(queued);
        assert!(!mixer.packet(&a, 0, 7, Bytes::from_static(b"opus")));
        drop(commands);
        assert!(!mixer.send(MixCmd::Remove(a)));
    }
}
