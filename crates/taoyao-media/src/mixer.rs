//! The MCU's audio path for one room, with no sockets and no clock of its own: Opus packets in
//! per member and track (each track through its own jitter buffer and decoder: a member who
//! publishes again sends a new track in a new sequence space), one Opus packet out per member
//! per 20 ms tick, holding everyone but that member. The caller drives [`AudioMixer::tick`] from a [`crate::clock::MixClock`].
//!
//! Per tick: each member's next frame is decoded (or concealed by the decoder when it was lost,
//! or silence when none is due), its level measured, the loudest speakers mixed once
//! ([`crate::mix::mix_tick`]); every speaker gets its own N-1 mix encoded by its own encoder,
//! and every other member gets the one shared mix, encoded once. Audio is mixed mono at
//! 48 kHz (decoders downmix stereo senders).

use std::collections::BTreeMap;

use bytes::Bytes;
use opus::{Application, Bitrate, Channels, Decoder, Encoder};

use crate::jitter::{JitterBuffer, JitterStats, Next};
use crate::mix::{Input, Limiter, level_dbov, mix_tick};

/// Samples per 20 ms frame at 48 kHz, mono.
pub const FRAME: usize = 960;
const MAX_PACKET: usize = 1500;

#[derive(Debug, Clone)]
pub struct MixerConfig {
    /// Speakers mixed at most (the loudest); others are not heard until they are louder.
    pub max_speakers: usize,
    /// Frames quieter than this (RFC 6464 dBov, larger is quieter) are not mixed.
    pub silence_dbov: u8,
    pub jitter_target: usize,
    pub jitter_max: usize,
    /// Bitrate of each mixed stream, bits per second.
    pub bitrate: i32,
}

impl Default for MixerConfig {
    fn default() -> Self {
        MixerConfig {
            max_speakers: 4,
            silence_dbov: 80,
            jitter_target: 2,
            jitter_max: 25,
            bitrate: 32_000,
        }
    }
}

#[derive(Debug, thiserror::Error)]
#[error("opus: {0}")]
pub struct MixerError(#[from] opus::Error);

/// One of a member's audio tracks: its own sequence space, so its own buffer and decoder.
struct Track {
    jitter: JitterBuffer<Bytes>,
    decoder: Decoder,
}

struct Member {
    /// By track id (the caller's: one per published track, never reused while it runs).
    tracks: BTreeMap<u32, Track>,
    encoder: Encoder,
    muted: bool,
    /// This tick's audio: the sum of the member's tracks.
    pcm: Vec<i16>,
    /// One track's decoded frame.
    frame: Vec<i16>,
    level: u8,
}

/// What one tick produced.
#[derive(Debug, Clone, Default)]
pub struct TickOutput<Id> {
    /// One Opus packet per member.
    pub packets: Vec<(Id, Bytes)>,
    /// Each member's level this tick (0 loudest .. 127 silent).
    pub levels: Vec<(Id, u8)>,
    /// How many encodes this tick took (speakers + one shared).
    pub encodes: usize,
    /// The shared mix (every speaker; what a member who is not speaking hears) as one Opus
    /// packet, from one continuous encoder: a room's mix recording is these packets in a row.
    pub shared: Bytes,
}

pub struct AudioMixer<Id> {
    cfg: MixerConfig,
    members: BTreeMap<Id, Member>,
    shared: Encoder,
    limiter: Limiter,
    out: Vec<u8>,
}

fn encoder(bitrate: i32) -> Result<Encoder, MixerError> {
    let mut e = Encoder::new(48_000, Channels::Mono, Application::Voip)?;
    e.set_bitrate(Bitrate::Bits(bitrate))?;
    Ok(e)
}

impl<Id: Ord + Clone> AudioMixer<Id> {
    pub fn new(cfg: MixerConfig) -> Result<Self, MixerError> {
        Ok(AudioMixer {
            shared: encoder(cfg.bitrate)?,
            cfg,
            members: BTreeMap::new(),
            limiter: Limiter::default(),
            out: vec![0; MAX_PACKET],
        })
    }

    pub fn add(&mut self, id: Id) -> Result<(), MixerError> {
        let m = Member {
            tracks: BTreeMap::new(),
            encoder: encoder(self.cfg.bitrate)?,
            muted: false,
            pcm: vec![0; FRAME],
            frame: vec![0; FRAME],
            level: 127,
        };
        self.members.insert(id, m);
        Ok(())
    }

    pub fn remove(&mut self, id: &Id) {
        self.members.remove(id);
    }

    /// A muted (or paused) member is not mixed; it still hears the others.
    pub fn set_muted(&mut self, id: &Id, muted: bool) {
        if let Some(m) = self.members.get_mut(id) {
            m.muted = muted;
        }
    }

    /// An Opus packet of one of a member's tracks (`track`: the caller's id for that RTP
    /// stream). A track's first packet gives it its buffer and decoder.
    pub fn push(
        &mut self,
        id: &Id,
        track: u32,
        seq: u16,
        payload: Bytes,
    ) -> Result<(), MixerError> {
        let Some(m) = self.members.get_mut(id) else {
            return Ok(());
        };
        let t = match m.tracks.entry(track) {
            std::collections::btree_map::Entry::Occupied(t) => t.into_mut(),
            std::collections::btree_map::Entry::Vacant(v) => v.insert(Track {
                jitter: JitterBuffer::new(self.cfg.jitter_target, self.cfg.jitter_max),
                decoder: Decoder::new(48_000, Channels::Mono)?,
            }),
        };
        t.jitter.push(seq, payload);
        Ok(())
    }

    /// The track ended (unpublished, its connection closed): its buffer goes.
    pub fn end_track(&mut self, id: &Id, track: u32) {
        if let Some(m) = self.members.get_mut(id) {
            m.tracks.remove(&track);
        }
    }

    /// The tracks a member has in the mix.
    pub fn tracks(&self, id: &Id) -> usize {
        self.members.get(id).map_or(0, |m| m.tracks.len())
    }

    pub fn jitter_stats(&self, id: &Id, track: u32) -> Option<JitterStats> {
        self.members
            .get(id)
            .and_then(|m| m.tracks.get(&track))
            .map(|t| t.jitter.stats())
    }

    pub fn len(&self) -> usize {
        self.members.len()
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// Mixes one 20 ms tick.
    pub fn tick(&mut self) -> Result<TickOutput<Id>, MixerError> {
        for m in self.members.values_mut() {
            m.pcm.iter_mut().for_each(|s| *s = 0);
            for t in m.tracks.values_mut() {
                let decoded = match t.jitter.pop() {
                    Next::Packet(p) => t.decoder.decode(&p, &mut m.frame, false).ok(),
                    // Concealment: the decoder extrapolates the lost frame.
                    Next::Lost => t.decoder.decode(&[], &mut m.frame, false).ok(),
                    Next::Empty => None,
                };
                if decoded.is_some() && !m.muted {
                    for (sum, s) in m.pcm.iter_mut().zip(&m.frame) {
                        *sum = sum.saturating_add(*s);
                    }
                }
            }
            m.level = level_dbov(&m.pcm);
        }
        let inputs: Vec<Input<'_, Id>> = self
            .members
            .iter()
            .map(|(id, m)| Input {
                id: id.clone(),
                samples: &m.pcm,
                level: m.level,
            })
            .collect();
        let mixes = mix_tick(
            &inputs,
            FRAME,
            self.cfg.max_speakers,
            self.cfg.silence_dbov,
            &self.limiter,
        );
        drop(inputs);
        let n = self.shared.encode(&mixes.shared, &mut self.out)?;
        let shared = Bytes::copy_from_slice(&self.out[..n]);
        let mut out = TickOutput {
            packets: Vec::with_capacity(self.members.len()),
            levels: self
                .members
                .iter()
                .map(|(id, m)| (id.clone(), m.level))
                .collect(),
            encodes: 1 + mixes.minus.len(),
            shared: shared.clone(),
        };
        let own: BTreeMap<Id, Vec<i16>> = mixes.minus.into_iter().collect();
        for (id, m) in self.members.iter_mut() {
            match own.get(id) {
                Some(pcm) => {
                    let n = m.encoder.encode(pcm, &mut self.out)?;
                    out.packets
                        .push((id.clone(), Bytes::copy_from_slice(&self.out[..n])));
                }
                None => out.packets.push((id.clone(), shared.clone())),
            }
        }
        Ok(out)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::mix::tone_energy;

    fn tone(hz: f64, frame: usize) -> Vec<i16> {
        (0..FRAME)
            .map(|i| {
                let t = (frame * FRAME + i) as f64 / 48_000.0;
                (8000.0 * (2.0 * std::f64::consts::PI * hz * t).sin()) as i16
            })
            .collect()
    }

    struct Client {
        hz: f64,
        enc: Encoder,
        dec: Decoder,
        seq: u16,
        heard: Vec<i16>,
    }

    impl Client {
        fn new(hz: f64) -> Client {
            Client {
                hz,
                enc: encoder(32_000).unwrap(),
                dec: Decoder::new(48_000, Channels::Mono).unwrap(),
                seq: 1000,
                heard: Vec::new(),
            }
        }
        fn send(&mut self, frame: usize) -> (u16, Bytes) {
            self.seq = self.seq.wrapping_add(1);
            (
                self.seq,
                Bytes::from(
                    self.enc
                        .encode_vec(&tone(self.hz, frame), MAX_PACKET)
                        .unwrap(),
                ),
            )
        }
        fn hear(&mut self, p: &[u8]) {
            let mut pcm = vec![0i16; FRAME];
            let n = self.dec.decode(p, &mut pcm, false).unwrap();
            self.heard.extend_from_slice(&pcm[..n]);
        }
    }

    fn run(
        mixer: &mut AudioMixer<&'static str>,
        clients: &mut BTreeMap<&'static str, Client>,
        from: usize,
        to: usize,
    ) {
        for frame in from..to {
            for (id, c) in clients.iter_mut() {
                let (seq, p) = c.send(frame);
                mixer.push(id, 0, seq, p).unwrap();
            }
            let out = mixer.tick().unwrap();
            for (id, p) in out.packets {
                clients.get_mut(id).unwrap().hear(&p);
            }
        }
    }

    /// A mixer with members a, b and c sending 440, 660 and 880 Hz.
    fn three_tones() -> (AudioMixer<&'static str>, BTreeMap<&'static str, Client>) {
        let mut mixer = AudioMixer::new(MixerConfig::default()).unwrap();
        let clients: BTreeMap<&'static str, Client> = [("a", 440.0), ("b", 660.0), ("c", 880.0)]
            .into_iter()
            .map(|(id, hz)| (id, Client::new(hz)))
            .collect();
        for id in clients.keys() {
            mixer.add(*id).unwrap();
        }
        (mixer, clients)
    }

    #[test]
    fn each_member_hears_the_others_and_not_itself() {
        let (mut mixer, mut clients) = three_tones();
        run(&mut mixer, &mut clients, 0, 100);
        for (id, c) in &clients {
            let last = &c.heard[c.heard.len() - 48_000..];
            let own = tone_energy(last, c.hz);
            for (other, o) in clients.iter().filter(|(o, _)| *o != id) {
                let e = tone_energy(last, o.hz);
                // Thresholds: the others' tones at least 100x the energy of one's own.
                assert!(
                    e > own * 100.0,
                    "{id} hears {other} at {e:.0} vs own {own:.0}"
                );
                assert!(e > 1e5, "{id} hears {other} clearly: {e:.0}");
            }
        }
    }

    #[test]
    fn a_member_joining_mid_mix_is_heard_within_a_second() {
        let (mut mixer, mut clients) = three_tones();
        run(&mut mixer, &mut clients, 0, 50);
        let before = clients["a"].heard.len();
        mixer.add("d").unwrap();
        clients.insert("d", Client::new(1100.0));
        run(&mut mixer, &mut clients, 50, 100);
        // The second after the join, in 100 ms windows: 1100 Hz is there within the first second.
        let after = &clients["a"].heard[before..];
        let first = after
            .chunks(4800)
            .position(|w| tone_energy(w, 1100.0) > 1e5)
            .expect("d is heard");
        assert!(first < 10, "d heard after {} ms", first * 100);
        // And the newcomer hears the others.
        let d = &clients["d"].heard;
        assert!(tone_energy(&d[d.len() - 24_000..], 440.0) > 1e5);
    }

    #[test]
    fn loss_is_concealed_and_muting_removes_a_member() {
        let mut mixer = AudioMixer::new(MixerConfig::default()).unwrap();
        let mut clients: BTreeMap<&'static str, Client> = [("a", 440.0), ("b", 660.0)]
            .into_iter()
            .map(|(id, hz)| (id, Client::new(hz)))
            .collect();
        for id in clients.keys() {
            mixer.add(*id).unwrap();
        }
        // b loses every 10th packet.
        for frame in 0..100 {
            for (id, c) in clients.iter_mut() {
                let (seq, p) = c.send(frame);
                if !(*id == "b" && frame % 10 == 5) {
                    mixer.push(id, 0, seq, p).unwrap();
                }
            }
            for (id, p) in mixer.tick().unwrap().packets {
                clients.get_mut(id).unwrap().hear(&p);
            }
        }
        let stats = mixer.jitter_stats(&"b", 0).unwrap();
        assert!(stats.lost >= 8, "{stats:?}");
        let a = &clients["a"].heard;
        assert!(
            tone_energy(&a[a.len() - 48_000..], 660.0) > 1e5,
            "b still heard through the losses"
        );
        mixer.set_muted(&"b", true);
        run(&mut mixer, &mut clients, 100, 150);
        let a = &clients["a"].heard;
        assert!(
            tone_energy(&a[a.len() - 24_000..], 660.0) < 1e4,
            "muted b is not heard"
        );
    }

    #[test]
    fn non_speakers_share_one_encode() {
        let mut mixer = AudioMixer::new(MixerConfig::default()).unwrap();
        for id in ["a", "b", "c", "d", "e"] {
            mixer.add(id).unwrap();
        }
        let mut talker = Client::new(440.0);
        for frame in 0..20 {
            let (seq, p) = talker.send(frame);
            mixer.push(&"a", 0, seq, p).unwrap();
            let out = mixer.tick().unwrap();
            if frame > 5 {
                assert_eq!(
                    out.encodes, 2,
                    "one for the speaker's N-1, one shared by the four listeners"
                );
                let shared: Vec<_> = out
                    .packets
                    .iter()
                    .filter(|(id, _)| *id != "a")
                    .map(|(_, p)| p.clone())
                    .collect();
                assert!(shared.windows(2).all(|w| w[0] == w[1]));
            }
        }
    }

    /// A member publishing again sends a new track in a new sequence space: heard whether its
    /// numbers start below or above the old track's (one buffer per member dropped the new
    /// packets as late when they started below). The old track's end removes its buffer.
    #[test]
    fn a_new_track_is_heard_whatever_its_sequence_numbers() {
        for (old_start, new_start) in [(40_000u16, 100u16), (100, 40_000), (65_500, 65_000)] {
            let mut mixer = AudioMixer::new(MixerConfig::default()).unwrap();
            mixer.add("a").unwrap();
            mixer.add("b").unwrap();
            let mut first = Client::new(440.0);
            first.seq = old_start;
            let mut b = Client::new(0.0);
            for frame in 0..50 {
                let (seq, p) = first.send(frame);
                mixer.push(&"a", 1, seq, p).unwrap();
                for (id, p) in mixer.tick().unwrap().packets {
                    if id == "b" {
                        b.hear(&p);
                    }
                }
            }
            mixer.end_track(&"a", 1);
            assert_eq!(mixer.tracks(&"a"), 0, "the ended track's buffer is gone");
            let mut second = Client::new(660.0);
            second.seq = new_start;
            let before = b.heard.len();
            for frame in 50..100 {
                let (seq, p) = second.send(frame);
                mixer.push(&"a", 2, seq, p).unwrap();
                for (id, p) in mixer.tick().unwrap().packets {
                    if id == "b" {
                        b.hear(&p);
                    }
                }
            }
            let after = &b.heard[before..];
            let last = &after[after.len() - 24_000..];
            assert!(
                tone_energy(last, 660.0) > 1e5,
                "{old_start} -> {new_start}: the new track is heard ({:.0})",
                tone_energy(last, 660.0)
            );
            // Only leakage of the new tone is left at 440 Hz (the heard test above uses the
            // same 100x margin between a tone and what is not there).
            assert!(
                tone_energy(last, 440.0) * 100.0 < tone_energy(last, 660.0),
                "the old track is gone ({:.0} vs {:.0})",
                tone_energy(last, 440.0),
                tone_energy(last, 660.0)
            );
        }
    }
}
