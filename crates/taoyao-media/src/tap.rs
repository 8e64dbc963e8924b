//! The packet path's end of a recording: a bounded queue the media path `try_send`s received
//! RTP packets to, one writer thread at the other end. The media path never waits: a full
//! queue drops the packet and counts it. Shared by the sfu's recorder and the engine's shard
//! taps, so a recording's writer is fed the same way by either.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::mpsc::{Receiver, SyncSender, TrySendError, sync_channel};
use std::time::Instant;

use rtc::rtp::packet::Packet;

/// What a tapped packet carries (the writer muxes audio and video apart).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TapKind {
    Audio,
    Video,
}

/// One packet on its way to the writer.
#[derive(Debug, Clone)]
pub struct Tapped {
    pub kind: TapKind,
    /// As it arrived (the publisher's SSRC, sequence numbers and header extensions); its
    /// payload is the same refcounted buffer the media path forwards.
    pub packet: Packet,
    /// When it arrived (passed in: the engine's shard never reads the clock).
    pub at: Instant,
}

/// What happened to one offered packet.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Offered {
    Queued,
    /// The queue was full (the writer fell behind): dropped and counted.
    Dropped,
    /// The writer is gone: nothing to do.
    Closed,
}

/// A tap's counters, shared by its clones and readable without holding a sender (holding one
/// would keep the writer from seeing the end).
#[derive(Debug, Default)]
pub struct TapCounts {
    offered: AtomicU64,
    dropped: AtomicU64,
}

impl TapCounts {
    /// Packets offered (queued or dropped) while the writer was there.
    pub fn offered(&self) -> u64 {
        self.offered.load(Ordering::Relaxed)
    }

    /// Packets dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

/// The sending end. Clones share the queue and the counts; the writer sees the end (its
/// receiver disconnects) once every clone is dropped.
#[derive(Debug, Clone)]
pub struct Tap {
    tx: SyncSender<Tapped>,
    counts: Arc<TapCounts>,
}

/// A tap with room for `capacity` packets (at least 1) and the writer's end of its queue.
pub fn channel(capacity: usize) -> (Tap, Receiver<Tapped>) {
    let (tx, rx) = sync_channel(capacity.max(1));
    let tap = Tap {
        tx,
        counts: Arc::default(),
    };
    (tap, rx)
}

impl Tap {
    /// Hands the writer a copy of `packet` (its header cloned, its payload shared, never
    /// copied), or drops it if the queue is full. Never blocks.
    pub fn offer(&self, kind: TapKind, packet: &Packet, at: Instant) -> Offered {
        let tapped = Tapped {
            kind,
            packet: packet.clone(),
            at,
        };
        match self.tx.try_send(tapped) {
            Ok(()) => {
                self.counts.offered.fetch_add(1, Ordering::Relaxed);
                Offered::Queued
            }
            Err(TrySendError::Full(_)) => {
                self.counts.offered.fetch_add(1, Ordering::Relaxed);
                self.counts.dropped.fetch_add(1, Ordering::Relaxed);
                Offered::Dropped
            }
            Err(TrySendError::Disconnected(_)) => Offered::Closed,
        }
    }

    /// Packets dropped because the writer fell behind (all clones).
    pub fn dropped(&self) -> u64 {
        self.counts.dropped()
    }

    /// The counters, to keep after handing the tap away.
    pub fn counts(&self) -> Arc<TapCounts> {
        self.counts.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use bytes::Bytes;

    fn packet(seq: u16) -> Packet {
        Packet {
            header: rtc::rtp::header::Header {
                sequence_number: seq,
                ..Default::default()
            },
            payload: Bytes::from(vec![seq as u8; 100]),
        }
    }

    #[test]
    fn a_full_queue_drops_and_counts_and_the_payload_is_shared() {
        let (tap, rx) = channel(2);
        let now = Instant::now();
        let p = packet(1);
        assert_eq!(tap.offer(TapKind::Audio, &p, now), Offered::Queued);
        assert_eq!(tap.offer(TapKind::Video, &packet(2), now), Offered::Queued);
        assert_eq!(tap.offer(TapKind::Audio, &packet(3), now), Offered::Dropped);
        let counts = tap.counts();
        assert_eq!((counts.offered(), counts.dropped()), (3, 1));
        let first = rx.recv().unwrap();
        assert_eq!(first.kind, TapKind::Audio);
        assert_eq!(
            first.packet.payload.as_ptr(),
            p.payload.as_ptr(),
            "not copied"
        );
        assert_eq!(rx.recv().unwrap().packet.header.sequence_number, 2);
        // The writer sees the end once every clone is gone; the counts outlive them.
        let clone = tap.clone();
        drop(tap);
        assert!(rx.try_recv().is_err());
        drop(clone);
        assert!(matches!(rx.recv(), Err(std::sync::mpsc::RecvError)));
        assert_eq!(counts.dropped(), 1);
    }

    #[test]
    fn offering_to_a_gone_writer_is_closed_and_not_counted() {
        let (tap, rx) = channel(1);
        drop(rx);
        assert_eq!(
            tap.offer(TapKind::Audio, &packet(1), Instant::now()),
            Offered::Closed
        );
        assert_eq!((tap.counts().offered(), tap.dropped()), (0, 0));
    }
}
