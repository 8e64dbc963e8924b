//! Audio levels and the active speaker over a reporting window, from per-tick levels.
//!
//! The mixer measures every member's level each 20 ms tick (RFC 6464 dBov: 0 loudest, 127
//! silent). Sending that 50 times a second would flood clients, and the loudest member of a
//! single tick flickers; so a [`LevelWindow`] collects ticks and, once per window, reports each
//! member's loudest level in it and the active speaker: the member who spoke (was louder than
//! the silence threshold) in the most ticks of the window, ties going to the louder one. A
//! silent window is reported once, so clients can clear their indicators, and then not again
//! until someone speaks.

use std::collections::BTreeMap;
use std::sync::atomic::{AtomicU8, AtomicU32, Ordering};

/// What one window saw.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LevelReport<Id> {
    /// Each member's loudest level in the window (dBov, 0 loudest .. 127 silent).
    pub levels: Vec<(Id, u8)>,
    /// Who spoke most in the window; `None` when nobody did.
    pub speaker: Option<Id>,
}

#[derive(Default)]
struct Seen {
    loudest: u8,
    speaking_ticks: u32,
}

pub struct LevelWindow<Id> {
    ticks_per_report: u32,
    silence_dbov: u8,
    ticks: u32,
    seen: BTreeMap<Id, Seen>,
    last_was_silent: bool,
}

impl<Id: Ord + Clone> LevelWindow<Id> {
    /// Reports every `ticks_per_report` ticks (at least 1); levels quieter than `silence_dbov`
    /// (numerically larger) are not speaking.
    pub fn new(ticks_per_report: u32, silence_dbov: u8) -> Self {
        LevelWindow {
            ticks_per_report: ticks_per_report.max(1),
            silence_dbov,
            ticks: 0,
            seen: BTreeMap::new(),
            last_was_silent: false,
        }
    }

    /// Takes one tick's levels; returns a report when this tick closes a window that is worth
    /// telling (anyone spoke, or it is the first silent window after speech).
    pub fn tick(&mut self, levels: &[(Id, u8)]) -> Option<LevelReport<Id>> {
        for (id, level) in levels {
            let speaking = u32::from(*level < self.silence_dbov);
            self.record(id.clone(), *level, speaking);
        }
        self.ticks += 1;
        if self.ticks < self.ticks_per_report {
            return None;
        }
        self.ticks = 0;
        self.report()
    }

    /// Adds what a member did over part of the window: its loudest level and how many 20 ms
    /// frames it spoke in (the sfu counts the RFC 6464 levels its publishers send).
    pub fn record(&mut self, id: Id, loudest: u8, speaking_ticks: u32) {
        let s = self.seen.entry(id).or_insert(Seen {
            loudest: 127,
            speaking_ticks: 0,
        });
        s.loudest = s.loudest.min(loudest);
        s.speaking_ticks += speaking_ticks;
    }

    /// Closes the window now: its report, when worth telling (as [`LevelWindow::tick`]).
    pub fn report(&mut self) -> Option<LevelReport<Id>> {
        let seen = std::mem::take(&mut self.seen);
        let speaker = seen
            .iter()
            .filter(|(_, s)| s.speaking_ticks > 0)
            // Most speaking ticks, then loudest (smaller dBov), then the first id.
            .max_by(|(a_id, a), (b_id, b)| {
                a.speaking_ticks
                    .cmp(&b.speaking_ticks)
                    .then(b.loudest.cmp(&a.loudest))
                    .then(b_id.cmp(a_id))
            })
            .map(|(id, _)| id.clone());
        let silent = speaker.is_none();
        if silent && self.last_was_silent {
            return None;
        }
        self.last_was_silent = silent;
        Some(LevelReport {
            levels: seen.into_iter().map(|(id, s)| (id, s.loudest)).collect(),
            speaker,
        })
    }

    /// Levels quieter than this (numerically larger) are not speaking.
    pub fn silence_dbov(&self) -> u8 {
        self.silence_dbov
    }
}

/// Levels quieter than this (RFC 6464 dBov) are not speaking, unless configured otherwise: the
/// sfu's level reports and the mcu's mixer use the same threshold.
pub const DEFAULT_SILENCE_DBOV: u8 = 80;

/// A stream's RFC 6464 audio levels since they were last read: the loudest (dBov, 0 loudest ..
/// 127 silent) and how many packets (20 ms frames) were louder than the silence threshold.
/// Written per packet by the media path (the sfu's forwarder task, the engine's shard),
/// read by the room's level reports on their own interval; atomics, so neither side locks.
#[derive(Debug)]
pub struct LevelMeter {
    loudest: AtomicU8,
    speaking: AtomicU32,
    silence_dbov: u8,
}

impl LevelMeter {
    pub fn new(silence_dbov: u8) -> Self {
        LevelMeter {
            loudest: AtomicU8::new(127),
            speaking: AtomicU32::new(0),
            silence_dbov,
        }
    }

    /// One packet's level (its extension byte: V bit and level).
    pub fn observe(&self, byte: u8) {
        let level = byte & 0x7f;
        self.loudest.fetch_min(level, Ordering::Relaxed);
        if level < self.silence_dbov {
            self.speaking.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The loudest level and the speaking packets since the last call, and starts anew.
    pub fn take(&self) -> (u8, u32) {
        (
            self.loudest.swap(127, Ordering::Relaxed),
            self.speaking.swap(0, Ordering::Relaxed),
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reports_once_per_window_with_the_loudest_level_of_each_member() {
        let mut w = LevelWindow::new(3, 80);
        assert_eq!(w.tick(&[("a", 40), ("b", 127)]), None);
        assert_eq!(w.tick(&[("a", 30), ("b", 90)]), None);
        let r = w
            .tick(&[("a", 50), ("b", 127)])
            .expect("third tick reports");
        assert_eq!(r.levels, vec![("a", 30), ("b", 90)]);
        assert_eq!(r.speaker, Some("a"));
        // The next window starts afresh.
        assert_eq!(w.tick(&[("a", 60), ("b", 20)]), None);
    }

    #[test]
    fn the_speaker_is_who_spoke_longest_not_the_loudest_blip() {
        let mut w = LevelWindow::new(4, 80);
        w.tick(&[("a", 10), ("b", 50)]);
        w.tick(&[("a", 127), ("b", 50)]);
        w.tick(&[("a", 127), ("b", 50)]);
        let r = w.tick(&[("a", 127), ("b", 50)]).unwrap();
        assert_eq!(r.speaker, Some("b"));
        assert_eq!(r.levels, vec![("a", 10), ("b", 50)]);
    }

    #[test]
    fn a_tie_goes_to_the_louder_member() {
        let mut w = LevelWindow::new(2, 80);
        w.tick(&[("a", 60), ("b", 40)]);
        let r = w.tick(&[("a", 60), ("b", 40)]).unwrap();
        assert_eq!(r.speaker, Some("b"));
    }

    #[test]
    fn silence_is_reported_once_then_not_until_someone_speaks() {
        let mut w = LevelWindow::new(1, 80);
        // Silent from the start: nothing to clear yet, but the first window is told.
        let first = w
            .tick(&[("a", 127)])
            .expect("the first silent window is told");
        assert_eq!(first.speaker, None);
        assert_eq!(w.tick(&[("a", 127)]), None);
        assert_eq!(w.tick(&[("a", 90)]), None, "below the threshold is silence");
        assert_eq!(w.tick(&[("a", 30)]).unwrap().speaker, Some("a"));
        let cleared = w.tick(&[("a", 127)]).expect("the end of speech is told");
        assert_eq!(cleared.speaker, None);
        assert_eq!(cleared.levels, vec![("a", 127)]);
        assert_eq!(w.tick(&[("a", 127)]), None);
    }

    #[test]
    fn members_who_left_mid_window_are_reported_for_that_window_only() {
        let mut w = LevelWindow::new(2, 80);
        w.tick(&[("a", 30), ("b", 30)]);
        let r = w.tick(&[("a", 30)]).unwrap();
        assert_eq!(r.levels, vec![("a", 30), ("b", 30)]);
        w.tick(&[("a", 30)]);
        let r = w.tick(&[("a", 30)]).unwrap();
        assert_eq!(r.levels, vec![("a", 30)]);
    }
}
