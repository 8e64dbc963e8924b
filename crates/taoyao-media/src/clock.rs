//! The mixing clock: tick n is due at `start + n * period`, computed from the start rather than
//! accumulated, so scheduling delays never add up to drift.

use std::time::{Duration, Instant};

#[derive(Debug, Clone)]
pub struct MixClock {
    start: Instant,
    period: Duration,
    /// Ticks already handed out.
    done: u64,
}

impl MixClock {
    pub fn new(start: Instant, period: Duration) -> Self {
        assert!(!period.is_zero(), "a mixing clock needs a period");
        MixClock {
            start,
            period,
            done: 0,
        }
    }

    /// When tick `n` is due.
    pub fn tick_at(&self, n: u64) -> Instant {
        self.start + self.period * u32::try_from(n).unwrap_or(u32::MAX)
    }

    /// When the next tick is due.
    pub fn next_at(&self) -> Instant {
        self.tick_at(self.done)
    }

    /// How many ticks are due at `now` (more than one after a stall: the caller catches up,
    /// or skips with [`MixClock::skip_to`]); marks them done.
    pub fn due(&mut self, now: Instant) -> u64 {
        if now < self.start {
            return 0;
        }
        let elapsed = now.duration_since(self.start).as_nanos() / self.period.as_nanos().max(1);
        let due_total = elapsed as u64 + 1;
        let n = due_total.saturating_sub(self.done);
        self.done = self.done.max(due_total);
        n
    }

    /// Forgets ticks missed before `now` (after a long stall, mixing them all is pointless).
    pub fn skip_to(&mut self, now: Instant) {
        let _ = self.due(now);
    }

    /// The ticks to mix at `now`, by index: every due tick when at most `max_catch_up` are
    /// (a late wakeup loses no audio), else only the latest (after a stall, a burst of old
    /// audio is worse than a gap). Marks them all done.
    pub fn to_mix(&mut self, now: Instant, max_catch_up: u64) -> std::ops::Range<u64> {
        let due = self.due(now);
        let mix = if due > max_catch_up { 1 } else { due };
        self.done - mix..self.done
    }

    pub fn ticks(&self) -> u64 {
        self.done
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn no_drift_whatever_the_wakeup_jitter() {
        let t0 = Instant::now();
        let mut c = MixClock::new(t0, Duration::from_millis(20));
        assert_eq!(c.due(t0), 1);
        let mut total = 1;
        // Wake up late by a varying amount every time, for 10,000 ticks (200 s).
        for i in 1..10_000u64 {
            let late = Duration::from_micros((i * 7919) % 3000);
            total += c.due(c.tick_at(i) + late);
        }
        assert_eq!(total, 10_000);
        assert_eq!(c.next_at(), t0 + Duration::from_millis(20) * 10_000);
    }

    #[test]
    fn late_ticks_are_all_mixed_a_long_stall_only_its_latest() {
        let t0 = Instant::now();
        let ms = Duration::from_millis;
        let mut c = MixClock::new(t0, ms(20));
        assert_eq!(c.to_mix(t0 + ms(1), 5), 0..1);
        // 45 ms late: ticks 1 and 2 are both due and both mixed.
        assert_eq!(c.to_mix(t0 + ms(45), 5), 1..3);
        assert_eq!(c.to_mix(t0 + ms(50), 5), 3..3);
        // A 1 s stall: only the latest of the 50 due ticks.
        assert_eq!(c.to_mix(t0 + ms(1045), 5), 52..53);
        assert_eq!(c.next_at(), t0 + ms(1060));
    }

    #[test]
    fn a_stall_makes_several_ticks_due_at_once() {
        let t0 = Instant::now();
        let mut c = MixClock::new(t0, Duration::from_millis(20));
        assert_eq!(c.due(t0 + Duration::from_millis(5)), 1);
        assert_eq!(c.due(t0 + Duration::from_millis(105)), 5);
        assert_eq!(c.due(t0 + Duration::from_millis(110)), 0);
    }
}
