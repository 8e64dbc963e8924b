//! Server-side recording off the RTP path: a [`Tap`] on a forwarder (or the mcu audio path)
//! `try_send`s each packet to a bounded queue (a full queue drops and counts, never waits), and
//! one writer thread per recording feeds taoyao-media's `WebmRecorder`, which is the only code
//! that touches the disk. A write error or a limit ends the recording; the file is finalized
//! with what it had.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::RecvTimeoutError;
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rtc::rtp::packet::Packet;
use taoyao_media::record::{RecordError, RecordSummary, Tracks, WebmRecorder};
use taoyao_media::tap::TapKind;
use tokio::sync::watch;

use taoyao_webrtc::{MediaEvent, MediaEvents, MediaKind, MemberId, RecordRequest, RecordingInfo};

/// The packet path's end of a recording: taoyao-media's [`taoyao_media::tap::Tap`] (the same
/// queue the engine's shard taps feed), stamped here with the seam's media kind and the
/// arrival time, which the async forwarder reads from the clock.
pub struct Tap(taoyao_media::tap::Tap);

impl Tap {
    /// Hands a copy of `packet` to the writer thread, or drops it if its queue is full.
    pub fn offer(&self, kind: MediaKind, packet: &Packet) {
        let kind = match kind {
            MediaKind::Audio => TapKind::Audio,
            MediaKind::Video => TapKind::Video,
        };
        self.0.offer(kind, packet, Instant::now());
    }

    /// Packets dropped because the writer fell behind.
    pub fn dropped(&self) -> u64 {
        self.0.dropped()
    }

    /// The queue itself, to clone into another packet path (an engine shard's
    /// `add_tap`): one writer, fed by both, counted together.
    pub fn queue(&self) -> &taoyao_media::tap::Tap {
        &self.0
    }
}

/// The taps of one packet source, swapped lock-free (like the forwarder's sinks).
#[derive(Default)]
pub struct Taps(ArcSwap<Vec<Arc<Tap>>>);

impl Taps {
    pub fn offer(&self, kind: MediaKind, packet: &Packet) {
        for t in self.0.load().iter() {
            t.offer(kind, packet);
        }
    }

    pub fn add(&self, tap: Arc<Tap>) {
        self.0.rcu(|l| {
            let mut next = Vec::clone(l);
            next.push(tap.clone());
            next
        });
    }

    pub fn remove(&self, tap: &Arc<Tap>) {
        self.0.rcu(|l| {
            l.iter()
                .filter(|t| !Arc::ptr_eq(t, tap))
                .cloned()
                .collect::<Vec<_>>()
        });
    }
}

/// How a recording ended.
#[derive(Debug, Clone)]
pub struct RecordEnd {
    /// The finalized file (a recording cut short by a limit or a write error is finalized with
    /// what it had), or why there is none.
    pub file: Result<RecordSummary, RecordError>,
    /// What ended it before it was asked to stop (a limit, a write error), if anything.
    pub cut: Option<RecordError>,
}

impl RecordEnd {
    /// The finalized file's duration (zero when there is no file).
    pub fn duration(&self) -> Duration {
        self.file.as_ref().map_or(Duration::ZERO, |s| s.duration)
    }

    /// Why it ended early or has no file, if so.
    pub fn error(&self) -> Option<&RecordError> {
        self.cut.as_ref().or(self.file.as_ref().err())
    }
}

/// A running recording: stop it with [`Recording::stop`], which waits for the file to be
/// finalized.
pub struct Recording {
    pub tap: Arc<Tap>,
    pub request: RecordRequest,
    pub started_at: std::time::SystemTime,
    stop: Arc<AtomicBool>,
    done: watch::Receiver<Option<RecordEnd>>,
    /// Set once the room has been told how it ended (see [`Recording::reported`]).
    reported: watch::Sender<bool>,
}

impl Recording {
    /// The recording as room status lists it: of `member`, or of the room's mix (`None`).
    pub fn info(&self, member: Option<&MemberId>) -> RecordingInfo {
        RecordingInfo {
            client_id: member.map_or_else(String::new, MemberId::to_string),
            mix: member.is_none(),
            file: self.request.file.clone(),
            started_by: self.request.requester.to_string(),
            started_at: self
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        }
    }

    /// Creates the file and starts the writer thread. `want_keyframe` is called (from that
    /// thread) whenever the recorder waits for a video keyframe.
    pub fn start(
        request: RecordRequest,
        tracks: Tracks,
        want_keyframe: impl Fn() + Send + 'static,
    ) -> Result<Recording, RecordError> {
        let limits = taoyao_media::record::RecordLimits {
            max_bytes: request.limits.max_bytes,
            max_duration: request.limits.max_duration,
        };
        let mut rec = WebmRecorder::create(&request.path, tracks, limits)?;
        let (tap, rx) = taoyao_media::tap::channel(request.queue);
        let (done_tx, done) = watch::channel(None);
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let name = format!("rec {}", request.file);
        std::thread::Builder::new()
            .name(name)
            .spawn(move || {
                let mut failed = None;
                loop {
                    if stopping.load(Ordering::Acquire) {
                        break;
                    }
                    let q = match rx.recv_timeout(Duration::from_millis(100)) {
                        Ok(q) => q,
                        Err(RecvTimeoutError::Timeout) => continue,
                        Err(RecvTimeoutError::Disconnected) => break,
                    };
                    let pushed = match q.kind {
                        TapKind::Video => rec.push_video(q.packet, q.at).map(|o| {
                            if o.want_keyframe {
                                want_keyframe();
                            }
                        }),
                        TapKind::Audio => rec.push_audio(q.packet, q.at),
                    };
                    if let Err(e) = pushed {
                        failed = Some(e);
                        break;
                    }
                }
                // Whatever is still queued arrived before the stop.
                if failed.is_none() {
                    while let Ok(q) = rx.try_recv() {
                        let r = match q.kind {
                            TapKind::Video => rec.push_video(q.packet, q.at).map(|_| ()),
                            TapKind::Audio => rec.push_audio(q.packet, q.at),
                        };
                        if let Err(e) = r {
                            failed = Some(e);
                            break;
                        }
                    }
                }
                let _ = done_tx.send(Some(RecordEnd {
                    file: rec.finish(),
                    cut: failed,
                }));
            })
            .map_err(|e| RecordError::Mux(format!("cannot start the writer thread: {e}")))?;
        Ok(Recording {
            tap: Arc::new(Tap(tap)),
            request,
            started_at: std::time::SystemTime::now(),
            stop,
            done,
            reported: watch::Sender::new(false),
        })
    }

    /// Marks the end as told to the room (`MediaEvent::RecordingStopped` emitted).
    pub fn mark_reported(&self) {
        self.reported.send_replace(true);
    }

    /// Waits for the writer to end and for the end to be told to the room: a stop that returns
    /// after this has its `RecordingStopped` on the room's lane, ahead of anything emitted
    /// later. The task that tells it does so right after the writer ends; the bound only
    /// guards against that task having died (a bug), never a normal stop.
    pub async fn finished_and_reported(&self) {
        let _ = self.finished().await;
        let mut rx = self.reported.subscribe();
        let told = tokio::time::timeout(Duration::from_secs(5), rx.wait_for(|told| *told)).await;
        if told.is_err() {
            tracing::warn!(
                file = self.request.file,
                "a recording's end was never reported"
            );
        }
    }

    /// Asks the writer to finish (it writes what is queued, then finalizes).
    pub fn request_stop(&self) {
        self.stop.store(true, Ordering::Release);
    }

    /// Waits for the writer to end, on its own (an error, a limit) or after a stop.
    pub fn finished(&self) -> impl std::future::Future<Output = RecordEnd> + Send + 'static {
        let mut done = self.done.clone();
        async move {
            let end = match done.wait_for(Option::is_some).await {
                Ok(r) => r.clone(),
                Err(_) => None,
            };
            end.unwrap_or_else(|| {
                let gone = RecordError::Mux("the writer thread ended".into());
                RecordEnd {
                    file: Err(gone.clone()),
                    cut: Some(gone),
                }
            })
        }
    }
}

/// Logs how a recording ended and tells `to` (the room's members) and its requester
/// (`member` `None`: the room's mix); `note` says why a finalized recording ended early.
pub fn tell_end(
    events: &MediaEvents,
    room: &str,
    mut to: Vec<MemberId>,
    member: Option<&MemberId>,
    rec: &Recording,
    result: &RecordEnd,
    note: Option<String>,
) {
    let req = &rec.request;
    // The file's real duration whatever ended it; the error beside it when one did.
    let duration_ms = result.duration().as_millis() as u64;
    let error = result.error().map(|e| e.to_string()).or(note);
    match &result.file {
        Ok(s) => tracing::info!(
            room,
            member = member.map(MemberId::as_str),
            file = req.file,
            duration_ms,
            bytes = s.bytes,
            dropped = rec.tap.dropped(),
            cut = error.as_deref(),
            "recording finalized"
        ),
        Err(e) => tracing::warn!(
            room,
            member = member.map(MemberId::as_str),
            file = req.file,
            "recording ended: {e}"
        ),
    }
    if !to.contains(&req.requester) {
        to.push(req.requester.clone());
    }
    for to in to {
        events.emit(MediaEvent::RecordingStopped {
            to,
            member: member.cloned(),
            file: req.file.clone(),
            duration_ms,
            error: error.clone(),
        });
    }
    rec.mark_reported();
}
