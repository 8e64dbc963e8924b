//! The lane from a room's media backend into its room task. The backend calls
//! [`LaneSender::push`] synchronously from wherever it runs (a negotiation, a peer connection's
//! callback, the mixer thread) and never waits: the lane is unbounded for everything a member's
//! request or a stream's life causes (negotiation, stream and recording events: each is bounded
//! by the requests that caused it, themselves bounded by the room's command queue and the
//! connection's rate limit), so nothing that changes a client's state is ever lost. The one
//! periodic event, an mcu room's audio levels, is capped (`rooms.max_queued_audio_levels`):
//! past the cap newer reports are dropped and counted, which loses nothing a client needs (the
//! next report, a few hundred milliseconds later, supersedes it).

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};

use taoyao_webrtc::MediaEvent;
use tokio::sync::mpsc;

/// The backend's end, wrapped in a `MediaEvents` callback.
pub(crate) struct LaneSender {
    tx: mpsc::UnboundedSender<MediaEvent>,
    levels: Arc<AtomicUsize>,
    max_levels: usize,
    dropped: Arc<AtomicU64>,
}

/// The room task's end.
pub(crate) struct Lane {
    rx: mpsc::UnboundedReceiver<MediaEvent>,
    levels: Arc<AtomicUsize>,
    dropped: Arc<AtomicU64>,
}

/// A lane holding at most `max_levels` audio-level reports at a time.
pub(crate) fn lane(max_levels: usize) -> (LaneSender, Lane) {
    let (tx, rx) = mpsc::unbounded_channel();
    let levels = Arc::new(AtomicUsize::new(0));
    let dropped = Arc::new(AtomicU64::new(0));
    (
        LaneSender {
            tx,
            levels: levels.clone(),
            max_levels,
            dropped: dropped.clone(),
        },
        Lane {
            rx,
            levels,
            dropped,
        },
    )
}

impl LaneSender {
    /// Queues `e` for the room task without waiting. After the room task ended, events have
    /// nobody to go to and are dropped.
    pub(crate) fn push(&self, e: MediaEvent) {
        if matches!(e, MediaEvent::AudioLevels { .. })
            && self.levels.fetch_add(1, Ordering::AcqRel) >= self.max_levels
        {
            self.levels.fetch_sub(1, Ordering::AcqRel);
            let n = self.dropped.fetch_add(1, Ordering::Relaxed) + 1;
            if n == 1 || n.is_multiple_of(1000) {
                tracing::warn!(
                    dropped = n,
                    "a room task is behind: audio level reports dropped (rooms.max_queued_audio_levels)"
                );
            }
            return;
        }
        let _ = self.tx.send(e);
    }
}

impl Lane {
    fn taken(&self, e: &MediaEvent) {
        if matches!(e, MediaEvent::AudioLevels { .. }) {
            self.levels.fetch_sub(1, Ordering::AcqRel);
        }
    }

    /// The next event, waiting for one.
    pub(crate) async fn recv(&mut self) -> Option<MediaEvent> {
        let e = self.rx.recv().await?;
        self.taken(&e);
        Some(e)
    }

    /// The next event already queued, if any.
    pub(crate) fn try_recv(&mut self) -> Option<MediaEvent> {
        let e = self.rx.try_recv().ok()?;
        self.taken(&e);
        Some(e)
    }

    /// Audio level reports dropped so far.
    pub(crate) fn dropped(&self) -> u64 {
        self.dropped.load(Ordering::Relaxed)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taoyao_webrtc::{Negotiation, StreamAction};

    fn levels() -> MediaEvent {
        MediaEvent::AudioLevels {
            to: "a".into(),
            levels: Arc::new(vec![("a".into(), 10)]),
            speaker: None,
        }
    }

    #[test]
    fn only_audio_levels_are_capped_and_what_is_dropped_is_counted() {
        let (tx, mut rx) = lane(2);
        for _ in 0..5 {
            tx.push(levels());
        }
        for i in 0..100 {
            tx.push(MediaEvent::Negotiation {
                to: "a".into(),
                from: None,
                transport: None,
                negotiation: Negotiation::Offer {
                    sdp: format!("v={i}"),
                },
            });
        }
        assert_eq!(rx.dropped(), 3);
        let mut got = Vec::new();
        while let Some(e) = rx.try_recv() {
            got.push(e);
        }
        assert_eq!(got.len(), 102, "two reports and every negotiation");
        // Taken reports free their room.
        tx.push(levels());
        tx.push(MediaEvent::Stream {
            to: "a".into(),
            member: "b".into(),
            stream: None,
            kind: None,
            action: StreamAction::Publish,
        });
        assert_eq!(rx.dropped(), 3);
        assert!(matches!(
            rx.try_recv(),
            Some(MediaEvent::AudioLevels { .. })
        ));
        assert!(matches!(rx.try_recv(), Some(MediaEvent::Stream { .. })));
    }
}
