//! A jitter buffer for one audio stream: packets in by RTP sequence number, frames out one per
//! mixing tick, in order. Time is passed in; it holds no clock and does no I/O.
//!
//! - Reordering: packets are held by extended sequence number, so a packet that arrives before
//!   its predecessor waits for it.
//! - Loss: when the next expected packet is missing and the buffer holds at least `target`
//!   later packets, the frame is declared lost (the caller runs the decoder's loss concealment,
//!   or FEC from the next packet) and playout moves on.
//! - Late packets (behind the playout point) and duplicates are dropped and counted.
//! - Start and underrun: playout starts once `target` packets are buffered; when the buffer
//!   runs dry the caller gets `Next::Empty` (silence) without skipping ahead.
//! - Overflow: a buffer deeper than `max` drops its oldest packets (the sender ran ahead).

use std::collections::BTreeMap;

/// What the mixer gets for one tick.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Next<T> {
    /// The next packet in order.
    Packet(T),
    /// The next packet is missing and later ones have arrived: conceal one frame.
    Lost,
    /// Nothing to play (not started yet, or ran dry).
    Empty,
}

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct JitterStats {
    pub received: u64,
    pub played: u64,
    pub lost: u64,
    pub late: u64,
    pub duplicates: u64,
    pub overflow_dropped: u64,
}

#[derive(Debug)]
pub struct JitterBuffer<T> {
    target: usize,
    max: usize,
    packets: BTreeMap<u64, T>,
    /// Extended sequence number of the next frame to play, once playout started.
    next: Option<u64>,
    /// Highest extended sequence number seen, for extending the next one.
    highest: Option<u64>,
    stats: JitterStats,
}

impl<T> JitterBuffer<T> {
    /// `target`: packets buffered before playout starts and before a gap counts as loss (2 =
    /// 40 ms of 20 ms frames). `max`: deepest buffer kept.
    pub fn new(target: usize, max: usize) -> Self {
        assert!(
            target >= 1 && max > target,
            "jitter buffer needs 1 <= target < max"
        );
        JitterBuffer {
            target,
            max,
            packets: BTreeMap::new(),
            next: None,
            highest: None,
            stats: JitterStats::default(),
        }
    }

    pub fn stats(&self) -> JitterStats {
        self.stats
    }

    pub fn depth(&self) -> usize {
        self.packets.len()
    }

    /// Extends a 16-bit sequence number to the one nearest the highest seen.
    fn extend(&self, seq: u16) -> u64 {
        let Some(h) = self.highest else {
            return (1 << 32) + u64::from(seq);
        };
        let base = h & !0xffff;
        [base.wrapping_sub(1 << 16), base, base + (1 << 16)]
            .into_iter()
            .map(|b| b | u64::from(seq))
            .min_by_key(|c| c.abs_diff(h))
            .expect("three candidates")
    }

    /// Adds a packet.
    pub fn push(&mut self, seq: u16, packet: T) {
        let ext = self.extend(seq);
        self.stats.received += 1;
        if self.next.is_some_and(|n| ext < n) {
            self.stats.late += 1;
            return;
        }
        if self.packets.contains_key(&ext) {
            self.stats.duplicates += 1;
            return;
        }
        self.highest = Some(self.highest.map_or(ext, |h| h.max(ext)));
        self.packets.insert(ext, packet);
        while self.packets.len() > self.max {
            let (&oldest, _) = self.packets.iter().next().expect("non-empty");
            self.packets.remove(&oldest);
            self.stats.overflow_dropped += 1;
            self.next = Some(oldest + 1).max(self.next);
        }
    }

    /// The frame for this tick.
    pub fn pop(&mut self) -> Next<T> {
        let next = match self.next {
            Some(n) => n,
            None => {
                if self.packets.len() < self.target {
                    return Next::Empty;
                }
                *self.packets.keys().next().expect("non-empty")
            }
        };
        if let Some(p) = self.packets.remove(&next) {
            self.next = Some(next + 1);
            self.stats.played += 1;
            return Next::Packet(p);
        }
        if self.packets.len() >= self.target {
            self.next = Some(next + 1);
            self.stats.lost += 1;
            return Next::Lost;
        }
        self.next = Some(next);
        Next::Empty
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn drain(jb: &mut JitterBuffer<u16>, n: usize) -> Vec<Next<u16>> {
        (0..n).map(|_| jb.pop()).collect()
    }

    #[test]
    fn waits_for_the_target_then_plays_in_order() {
        let mut jb = JitterBuffer::new(2, 10);
        jb.push(10, 10);
        assert_eq!(jb.pop(), Next::Empty, "one packet is below the target");
        jb.push(11, 11);
        assert_eq!(
            drain(&mut jb, 3),
            vec![Next::Packet(10), Next::Packet(11), Next::Empty]
        );
    }

    #[test]
    fn reorders() {
        let mut jb = JitterBuffer::new(2, 10);
        for s in [1, 3, 2, 5, 4] {
            jb.push(s, s);
        }
        assert_eq!(
            drain(&mut jb, 5),
            (1..=5).map(Next::Packet).collect::<Vec<_>>()
        );
        assert_eq!(jb.stats().lost, 0);
    }

    #[test]
    fn a_gap_with_later_packets_is_loss_and_a_late_packet_is_dropped() {
        let mut jb = JitterBuffer::new(2, 10);
        for s in [1, 2, 4, 5] {
            jb.push(s, s);
        }
        assert_eq!(drain(&mut jb, 2), vec![Next::Packet(1), Next::Packet(2)]);
        assert_eq!(jb.pop(), Next::Lost, "3 is missing and 4, 5 are here");
        jb.push(3, 3);
        assert_eq!(jb.stats().late, 1);
        assert_eq!(drain(&mut jb, 2), vec![Next::Packet(4), Next::Packet(5)]);
    }

    #[test]
    fn a_gap_without_later_packets_waits() {
        let mut jb = JitterBuffer::new(2, 10);
        for s in [1, 2, 4] {
            jb.push(s, s);
        }
        assert_eq!(drain(&mut jb, 2), vec![Next::Packet(1), Next::Packet(2)]);
        assert_eq!(
            jb.pop(),
            Next::Empty,
            "only one later packet: 3 may still come"
        );
        jb.push(3, 3);
        assert_eq!(drain(&mut jb, 2), vec![Next::Packet(3), Next::Packet(4)]);
    }

    #[test]
    fn wraps_around_and_drops_duplicates() {
        let mut jb = JitterBuffer::new(1, 10);
        for s in [65534u16, 65535, 0, 0, 1] {
            jb.push(s, s);
        }
        assert_eq!(jb.stats().duplicates, 1);
        assert_eq!(
            drain(&mut jb, 4),
            vec![
                Next::Packet(65534),
                Next::Packet(65535),
                Next::Packet(0),
                Next::Packet(1)
            ]
        );
    }

    #[test]
    fn overflow_drops_the_oldest() {
        let mut jb = JitterBuffer::new(2, 4);
        for s in 1..=6 {
            jb.push(s, s);
        }
        assert_eq!(jb.stats().overflow_dropped, 2);
        assert_eq!(jb.pop(), Next::Packet(3));
    }
}
