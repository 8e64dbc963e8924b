//! The MCU's audio path in a room: publishers' Opus packets go to one mixer task per room, which
//! every 20 ms (a drift-free `MixClock`) sends each member one Opus packet holding everyone but
//! itself, on a local track of the member's subscribe connection. Video stays on the forwarder.

use std::collections::{HashMap, HashSet};
use std::sync::Arc;
use std::sync::atomic::AtomicUsize;
use std::time::{Duration, Instant};

use crate::forwarder::TaskCount;
use crate::recorder::Tap;
use bytes::Bytes;
use rtc::rtp::header::Header;
use rtc::rtp::packet::Packet;
use taoyao_media::clock::MixClock;
use taoyao_media::levels::LevelWindow;
use taoyao_media::mixer::{AudioMixer, MixerConfig};
use taoyao_webrtc::MediaKind;
use taoyao_webrtc::{MediaEvent, MediaEvents};
use tokio::sync::mpsc;
use webrtc::media_stream::track_local::TrackLocal;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// Where one member's mix goes, once its subscribe connection negotiated it.
pub(crate) struct MixOutput {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub payload_type: u8,
}

pub(crate) enum MixCmd {
    Add(String),
    Remove(String),
    /// The member paused (or resumed) its own audio.
    Mute(String, bool),
    /// The room's rules close (or open) the member's audio; independent of its own pause.
    Gate(String, bool),
    /// An Opus packet: member, track (its id among the member's tracks), sequence number.
    Packet(String, u32, u16, Bytes),
    /// One of the member's audio tracks ended: its buffer leaves the mix.
    EndTrack(String, u32),
    Output(String, MixOutput),
    /// Record the shared mix into this tap (the room's mix recording), or stop.
    Tap(Arc<Tap>),
    Untap(Arc<Tap>),
}

struct Sending {
    out: MixOutput,
    seq: u16,
    timestamp: u32,
}

pub(crate) struct MixSettings {
    pub max_speakers: usize,
    /// 0: no level reports.
    pub level_interval: Duration,
}

/// Starts a room's mixer task; it ends when every sender is dropped (the room closed). Every
/// `level_interval` while anyone speaks, each member is told the room's levels (`events`).
pub(crate) fn spawn(
    room: String,
    tasks: Arc<AtomicUsize>,
    counters: Arc<crate::forwarder::MediaCounters>,
    settings: MixSettings,
    events: MediaEvents,
) -> mpsc::UnboundedSender<MixCmd> {
    let (tx, mut rx) = mpsc::unbounded_channel::<MixCmd>();
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
            LevelWindow::<String>::new(ticks as u32, cfg.silence_dbov)
        });
        let mut mixer = match AudioMixer::<String>::new(cfg) {
            Ok(m) => m,
            Err(e) => {
                tracing::error!(room, "cannot start the audio mixer: {e}");
                return;
            }
        };
        let mut outputs: HashMap<String, Sending> = HashMap::new();
        // Members who paused their audio, and members the room's rules closed.
        let (mut paused, mut gated) = (HashSet::<String>::new(), HashSet::<String>::new());
        // Mix recordings: the shared mix as RTP, its timestamp from the clock's tick count, so
        // ticks skipped after a stall show as a gap in time, not as lost packets.
        let mut taps: Vec<Arc<Tap>> = Vec::new();
        let mut tap_seq: u16 = 0;
        let mut clock = MixClock::new(Instant::now(), tick);
        loop {
            let next = tokio::time::Instant::from_std(clock.next_at());
            tokio::select! {
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
                    Some(MixCmd::Packet(id, track, seq, payload)) => {
                        if let Err(e) = mixer.push(&id, track, seq, payload) {
                            tracing::warn!(room, member = id, "mixer: {e}");
                        }
                    }
                    Some(MixCmd::EndTrack(id, track)) => mixer.end_track(&id, track),
                    Some(MixCmd::Output(id, out)) => {
                        outputs.insert(id, Sending { out, seq: rand::random(), timestamp: rand::random() });
                    }
                    Some(MixCmd::Tap(t)) => taps.push(t),
                    Some(MixCmd::Untap(t)) => taps.retain(|x| !Arc::ptr_eq(x, &t)),
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
                    crate::forwarder::MediaCounters::add(&counters.mix_ticks_late, late);
                    crate::forwarder::MediaCounters::add(&counters.mix_ticks_skipped, skipped);
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
    tx
}

/// Late ticks mixed one by one; beyond this many (100 ms) the rest are skipped.
const MAX_CATCH_UP: u64 = 5;

fn set(set: &mut HashSet<String>, id: &str, on: bool) {
    if on {
        set.insert(id.to_owned());
    } else {
        set.remove(id);
    }
}
