//! Forwarding rules shared by every forwarder (the sfu's async one and the engine's shard):
//! pure, single-threaded, time passed in.
//!
//! - [`SeqRewriter`]: one subscriber's outgoing sequence numbers, contiguous across the
//!   packets it was not sent (paused, gated, waiting for a keyframe), so the skips do not look
//!   lost to it (no NACK storm, no loss in its reports).
//! - [`KeyframeRequests`]: when a publisher may be asked for a keyframe (PLI). Repeated asks
//!   (subscribers' PLIs, re-asking while someone waits) are at most one per interval; a
//!   subscriber that has just started waiting (joined, resumed) is served after a short gap
//!   instead, so a joiner does not wait out a request made for someone else; an ask held back
//!   is not lost but deferred to the moment the gap allows.

use std::time::{Duration, Instant};

/// The shortest time between two keyframe requests when a subscriber has just started
/// waiting: one request per step of a join storm, not one per joiner.
pub const FRESH_KEYFRAME_GAP: Duration = Duration::from_millis(100);

/// One subscriber's outgoing sequence numbers for one forwarded track.
#[derive(Debug, Clone, Default)]
pub struct SeqRewriter {
    /// The last number sent, once one was.
    last_out: Option<u16>,
    offset: u16,
    /// Packets were skipped since the last one sent: the next one sent closes the gap.
    gap: bool,
}

impl SeqRewriter {
    pub fn new() -> Self {
        Self::default()
    }

    /// A packet of the track was not sent to this subscriber.
    pub fn skip(&mut self) {
        self.gap = true;
    }

    /// The outgoing number for incoming `seq`, for a packet that is sent.
    pub fn map(&mut self, seq: u16) -> u16 {
        if std::mem::take(&mut self.gap)
            && let Some(last) = self.last_out
        {
            self.offset = seq.wrapping_sub(last.wrapping_add(1));
        }
        let out = seq.wrapping_sub(self.offset);
        self.last_out = Some(out);
        out
    }
}

/// The keyframe-request rate limit of one published video track.
#[derive(Debug, Clone)]
pub struct KeyframeRequests {
    interval: Duration,
    last: Option<Instant>,
    /// An ask held back by the limit, to be made at this moment.
    deferred: Option<Instant>,
    /// Someone started waiting since the last request sent.
    fresh: bool,
}

impl KeyframeRequests {
    /// At most one request per `interval`, but [`FRESH_KEYFRAME_GAP`] (or `interval` if
    /// shorter) for a subscriber that just started waiting.
    pub fn new(interval: Duration) -> Self {
        KeyframeRequests {
            interval,
            last: None,
            deferred: None,
            fresh: false,
        }
    }

    pub fn interval(&self) -> Duration {
        self.interval
    }

    /// A subscriber has just started waiting for a keyframe (joined, resumed).
    pub fn fresh_waiter(&mut self) {
        self.fresh = true;
    }

    /// Someone asks for a keyframe at `now`: true if a request goes now (then call it sent),
    /// false if the limit holds it back ([`KeyframeRequests::deadline`] says until when).
    pub fn ask(&mut self, now: Instant) -> bool {
        let gap = if self.fresh {
            FRESH_KEYFRAME_GAP.min(self.interval)
        } else {
            self.interval
        };
        if let Some(t) = self.last {
            let at = t + gap;
            if now < at {
                self.deferred = Some(self.deferred.map_or(at, |d| d.min(at)));
                return false;
            }
        }
        self.fresh = false;
        self.deferred = None;
        self.last = Some(now);
        true
    }

    /// When a held-back ask is due.
    pub fn deadline(&self) -> Option<Instant> {
        self.deferred
    }

    /// Time passed: true if a held-back ask is due and goes now.
    pub fn poll(&mut self, now: Instant) -> bool {
        match self.deferred {
            Some(d) if now >= d => {
                self.deferred = None;
                self.ask(now)
            }
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sequence_numbers_stay_contiguous_across_skips() {
        let mut s = SeqRewriter::new();
        assert_eq!(s.map(100), 100);
        assert_eq!(s.map(101), 101);
        // 102..=109 skipped (paused), then 110 arrives.
        s.skip();
        assert_eq!(s.map(110), 102);
        assert_eq!(s.map(111), 103);
        // Wrap-around.
        s.skip();
        assert_eq!(s.map(3), 104);
        assert_eq!(
            s.map(65535u16.wrapping_add(10)),
            104u16.wrapping_add(65535u16.wrapping_add(10).wrapping_sub(3))
        );
    }

    #[test]
    fn a_first_packet_after_a_gap_with_nothing_sent_keeps_its_number() {
        let mut s = SeqRewriter::new();
        s.skip();
        assert_eq!(s.map(5000), 5000);
    }

    #[test]
    fn repeated_asks_wait_the_interval_and_are_deferred_not_lost() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut k = KeyframeRequests::new(Duration::from_millis(1000));
        assert!(k.ask(t0), "the first ask goes at once");
        assert!(!k.ask(ms(200)));
        assert!(!k.ask(ms(600)));
        assert_eq!(
            k.deadline(),
            Some(ms(1000)),
            "one deferred ask at the interval"
        );
        assert!(!k.poll(ms(999)));
        assert!(
            k.poll(ms(1000)),
            "the deferred ask goes when the gap allows"
        );
        assert_eq!(k.deadline(), None);
        assert!(!k.poll(ms(5000)), "and only once");
    }

    #[test]
    fn a_fresh_waiter_is_served_after_the_short_gap() {
        let t0 = Instant::now();
        let ms = |n| t0 + Duration::from_millis(n);
        let mut k = KeyframeRequests::new(Duration::from_millis(1000));
        assert!(k.ask(t0));
        k.fresh_waiter();
        assert!(!k.ask(ms(50)));
        assert_eq!(k.deadline(), Some(ms(100)));
        assert!(k.poll(ms(100)));
        // Served: the next plain ask waits the full interval again.
        assert!(!k.ask(ms(300)));
        assert_eq!(k.deadline(), Some(ms(1100)));
        // An interval shorter than the fresh gap wins.
        let mut k = KeyframeRequests::new(Duration::from_millis(40));
        assert!(k.ask(t0));
        k.fresh_waiter();
        assert!(!k.ask(ms(10)));
        assert_eq!(k.deadline(), Some(ms(40)));
    }
}
