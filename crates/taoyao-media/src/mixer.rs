//! The MCU's audio path for one room, with no sockets and no clock of its own: Opus packets in
//! per member (through a jitter buffer), one Opus packet out per member per 20 ms tick, holding
//! everyone but that member. The caller drives [`AudioMixer::tick`] from a [`crate::clock::MixClock`].
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

struct Member {
    jitter: JitterBuffer<Bytes>,
    decoder: Decoder,
    encoder: Encoder,
    muted: bool,
    pcm: Vec<i16>,
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
            jitter: JitterBuffer::new(self.cfg.jitter_target, self.cfg.jitter_max),
            decoder: Decoder::new(48_000, Channels::Mono)?,
            encoder: encoder(self.cfg.bitrate)?,
            muted: false,
            pcm: vec![0; FRAME],
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

    /// An Opus packet from a member's RTP stream.
    pub fn push(&mut self, id: &Id, seq: u16, payload: Bytes) {
        if let Some(m) = self.members.get_mut(id) {
            m.jitter.push(seq, payload);
        }
    }

    pub fn jitter_stats(&self, id: &Id) -> Option<JitterStats> {
        self.members.get(id).map(|m| m.jitter.stats())
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
            let decoded = match m.jitter.pop() {
                Next::Packet(p) => m.decoder.decode(&p, &mut m.pcm, false).ok(),
                // Concealment: the decoder extrapolates the lost frame.
                Next::Lost => m.decoder.decode(&[], &mut m.pcm, false).ok(),
                Next::Empty => None,
            };
            if decoded.is_none() || m.muted {
                m.pcm.iter_mut().for_each(|s| *s = 0);
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
                mixer.push(id, seq, p);
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
                    mixer.push(id, seq, p);
                }
            }
            for (id, p) in mixer.tick().unwrap().packets {
                clients.get_mut(id).unwrap().hear(&p);
            }
        }
        let stats = mixer.jitter_stats(&"b").unwrap();
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
            mixer.push(&"a", seq, p);
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
}
