//! The forwarder: one published track to many subscriber tracks. Shared by the sfu backend (all
//! media) and the mcu backend (video).
//!
//! The packet path takes no lock: the sink list is an `ArcSwap` snapshot replaced on subscribe /
//! unsubscribe, and every per-sink flag is an atomic. Each sink rewrites what a sender must own
//! (SSRC, payload type, header extensions, which a subscriber's connection did not negotiate)
//! and renumbers sequence numbers so the packets it skipped (paused, waiting for a keyframe)
//! do not look lost to the subscriber. A video sink starts, and restarts after a pause, on a
//! keyframe; the forwarder asks the publisher for one (PLI), at most once per configured interval.

use std::sync::atomic::{AtomicBool, AtomicU32, AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use arc_swap::ArcSwap;
use rtc::rtcp::payload_feedbacks::picture_loss_indication::PictureLossIndication;
use taoyao_media::forward::{KeyframeRequests, SeqRewriter};
use taoyao_media::keyframe::{VideoCodec, is_keyframe};
use tokio::sync::Notify;
use tokio_util::sync::CancellationToken;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;
use webrtc::media_stream::track_local::{TrackLocal, TrackLocalEvent};
use webrtc::media_stream::track_remote::{TrackRemote, TrackRemoteEvent};

use crate::recorder::{Tap, Taps};
use taoyao_webrtc::MediaKind;

/// Counts a task for as long as it runs (the backends expose these counts).
pub struct TaskCount(Arc<AtomicUsize>);

impl TaskCount {
    pub fn start(counter: &Arc<AtomicUsize>) -> TaskCount {
        counter.fetch_add(1, Ordering::Relaxed);
        TaskCount(counter.clone())
    }
}

impl Drop for TaskCount {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::Relaxed);
    }
}

const VALID: u32 = 1 << 16;

async fn sleep_until_opt(at: Option<tokio::time::Instant>) {
    match at {
        Some(at) => tokio::time::sleep_until(at).await,
        None => std::future::pending().await,
    }
}

/// One subscriber's copy of a stream.
pub struct Sink {
    pub subscriber: String,
    track: Arc<TrackLocalStaticRTP>,
    ssrc: u32,
    payload_type: u8,
    paused: AtomicBool,
    need_keyframe: AtomicBool,
    /// Outgoing sequence numbers; only the forwarder task locks it (never contended).
    seq: Mutex<SeqRewriter>,
    sent: AtomicU64,
}

impl Sink {
    /// `ssrc` and `payload_type` are what the subscriber's connection negotiated for `track`.
    pub fn new(
        subscriber: impl Into<String>,
        track: Arc<TrackLocalStaticRTP>,
        ssrc: u32,
        payload_type: u8,
    ) -> Arc<Sink> {
        Arc::new(Sink {
            subscriber: subscriber.into(),
            track,
            ssrc,
            payload_type,
            paused: AtomicBool::new(false),
            need_keyframe: AtomicBool::new(false),
            seq: Mutex::new(SeqRewriter::new()),
            sent: AtomicU64::new(0),
        })
    }

    /// Packets sent to this subscriber.
    pub fn sent(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
    }

    pub fn is_paused(&self) -> bool {
        self.paused.load(Ordering::Relaxed)
    }

    /// The outgoing sequence number for `seq`; only the forwarder task calls this.
    fn map_seq(&self, seq: u16) -> u16 {
        self.seq.lock().expect("sequence rewriter").map(seq)
    }

    /// A packet was not sent to this subscriber.
    fn skip(&self) {
        self.seq.lock().expect("sequence rewriter").skip();
    }
}

/// Running totals of the server's media work since it started, shared by every forwarder,
/// connection and mixer built on one [`crate::peer::PeerFactory`] (what `/metrics` reads).
#[derive(Debug, Default)]
pub struct MediaCounters {
    /// RTP packets written to subscribers, and their payload bytes.
    pub forwarded_packets: AtomicU64,
    pub forwarded_bytes: AtomicU64,
    /// RTP packets missing from publishers' streams (sequence gaps seen on arrival).
    pub publisher_packets_lost: AtomicU64,
    /// Keyframe requests (PLI) sent to publishers.
    pub keyframe_requests: AtomicU64,
    /// NACK packets (retransmission requests) received from subscribers.
    pub nacks_received: AtomicU64,
    /// mcu mixer: ticks mixed late (after a late wakeup) and ticks skipped after a stall.
    pub mix_ticks_late: AtomicU64,
    pub mix_ticks_skipped: AtomicU64,
    /// mcu mixer: publishers' packets dropped because the mixer was
    /// `mcu.queue_packets` behind.
    pub mix_packets_dropped: AtomicU64,
}

/// A copy of [`MediaCounters`].
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct MediaCountersSnapshot {
    pub forwarded_packets: u64,
    pub forwarded_bytes: u64,
    pub publisher_packets_lost: u64,
    pub keyframe_requests: u64,
    pub nacks_received: u64,
    pub mix_ticks_late: u64,
    pub mix_ticks_skipped: u64,
    pub mix_packets_dropped: u64,
}

impl MediaCounters {
    pub fn snapshot(&self) -> MediaCountersSnapshot {
        let r = |c: &AtomicU64| c.load(Ordering::Relaxed);
        MediaCountersSnapshot {
            forwarded_packets: r(&self.forwarded_packets),
            forwarded_bytes: r(&self.forwarded_bytes),
            publisher_packets_lost: r(&self.publisher_packets_lost),
            keyframe_requests: r(&self.keyframe_requests),
            nacks_received: r(&self.nacks_received),
            mix_ticks_late: r(&self.mix_ticks_late),
            mix_ticks_skipped: r(&self.mix_ticks_skipped),
            mix_packets_dropped: r(&self.mix_packets_dropped),
        }
    }

    pub fn add(c: &AtomicU64, n: u64) {
        c.fetch_add(n, Ordering::Relaxed);
    }
}

// The meter is taoyao-media's, shared with the engine's shard.
pub use taoyao_media::levels::LevelMeter;

/// Where an audio stream's levels go: the extension id its publisher's offer mapped RFC 6464
/// to, and the meter.
pub struct AudioLevel {
    pub ext_id: u8,
    pub meter: Arc<LevelMeter>,
}

struct Inner {
    stream: String,
    kind: MediaKind,
    codec: Option<VideoCodec>,
    sinks: ArcSwap<Vec<Arc<Sink>>>,
    paused: AtomicBool,
    /// Closed by the room's rules (a listener in broadcast mode, intercom without the floor),
    /// apart from the publisher's own pause so neither undoes the other.
    gated: AtomicBool,
    waiting: AtomicUsize,
    /// A subscriber started waiting for a keyframe since the last request: the next request
    /// may go after [`FRESH_KEYFRAME_GAP`] rather than the full keyframe interval.
    fresh: AtomicBool,
    keyframe_wanted: Notify,
    keyframe_interval: Duration,
    packets_in: AtomicU64,
    bytes_in: AtomicU64,
    stop: CancellationToken,
    /// Recordings of this stream.
    taps: Taps,
    /// Audio: the levels the publisher sends (RFC 6464), when it offered them.
    level: Option<AudioLevel>,
    counters: Arc<MediaCounters>,
    /// The last incoming sequence number (with [`VALID`] once one arrived): gaps are loss.
    last_in: AtomicU32,
}

/// Handle to a running forwarder; clones share it. It stops when its publisher's track ends
/// or [`Forwarder::stop`] is called.
#[derive(Clone)]
pub struct Forwarder {
    inner: Arc<Inner>,
    tasks: Arc<AtomicUsize>,
}

impl Forwarder {
    /// Starts forwarding `track` (the publisher's) and returns the handle. `tasks` counts the
    /// forwarder's task and its sinks' feedback tasks while they run.
    pub fn spawn(
        stream: impl Into<String>,
        kind: MediaKind,
        track: Arc<dyn TrackRemote>,
        keyframe_interval: Duration,
        tasks: Arc<AtomicUsize>,
        level: Option<AudioLevel>,
        counters: Arc<MediaCounters>,
    ) -> Forwarder {
        let inner = Arc::new(Inner {
            stream: stream.into(),
            kind,
            codec: (kind == MediaKind::Video).then_some(VideoCodec::Vp8),
            sinks: ArcSwap::from_pointee(Vec::new()),
            paused: AtomicBool::new(false),
            gated: AtomicBool::new(false),
            waiting: AtomicUsize::new(0),
            fresh: AtomicBool::new(false),
            keyframe_wanted: Notify::new(),
            keyframe_interval,
            packets_in: AtomicU64::new(0),
            bytes_in: AtomicU64::new(0),
            stop: CancellationToken::new(),
            taps: Taps::default(),
            level,
            counters,
            last_in: AtomicU32::new(0),
        });
        let f = Forwarder { inner, tasks };
        let run = f.clone();
        let count = TaskCount::start(&f.tasks);
        tokio::spawn(async move {
            let _count = count;
            run.run(track).await;
        });
        f
    }

    pub fn stream(&self) -> &str {
        &self.inner.stream
    }

    pub fn kind(&self) -> MediaKind {
        self.inner.kind
    }

    pub fn bytes_in(&self) -> u64 {
        self.inner.bytes_in.load(Ordering::Relaxed)
    }

    pub fn packets_in(&self) -> u64 {
        self.inner.packets_in.load(Ordering::Relaxed)
    }

    pub fn sinks(&self) -> Arc<Vec<Arc<Sink>>> {
        self.inner.sinks.load_full()
    }

    /// Starts sending to a subscriber (video from the next keyframe, which is requested).
    pub fn add_sink(&self, sink: Arc<Sink>) {
        if self.inner.codec.is_some() {
            sink.need_keyframe.store(true, Ordering::Relaxed);
            self.inner.waiting.fetch_add(1, Ordering::Relaxed);
            self.inner.fresh.store(true, Ordering::Relaxed);
        }
        self.inner.sinks.rcu(|list| {
            let mut next = Vec::clone(list);
            next.push(sink.clone());
            next
        });
        self.spawn_feedback(sink);
        self.request_keyframe();
    }

    /// Starts copying the stream to a recording (asking the publisher for a keyframe).
    pub fn add_tap(&self, tap: Arc<Tap>) {
        self.inner.taps.add(tap);
        self.request_keyframe();
    }

    pub fn remove_tap(&self, tap: &Arc<Tap>) {
        self.inner.taps.remove(tap);
    }

    /// Stops sending to a subscriber.
    pub fn remove_sink(&self, sink: &Arc<Sink>) {
        self.inner.sinks.rcu(|list| {
            list.iter()
                .filter(|s| !Arc::ptr_eq(s, sink))
                .cloned()
                .collect::<Vec<_>>()
        });
        if sink.need_keyframe.swap(false, Ordering::Relaxed) {
            self.inner.waiting.fetch_sub(1, Ordering::Relaxed);
        }
    }

    /// Pauses or resumes one subscriber's copy; resuming video waits for a keyframe.
    pub fn set_sink_paused(&self, sink: &Arc<Sink>, paused: bool) {
        let was = sink.paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            self.wait_for_keyframe(sink);
        }
    }

    /// Pauses or resumes the stream for every subscriber (the publisher's pause).
    pub fn set_paused(&self, paused: bool) {
        let was = self.inner.paused.swap(paused, Ordering::Relaxed);
        if was && !paused {
            for sink in self.inner.sinks.load().iter() {
                self.wait_for_keyframe(sink);
            }
        }
    }

    pub fn is_paused(&self) -> bool {
        self.inner.paused.load(Ordering::Relaxed)
    }

    /// Closes (or opens) the stream for every subscriber by the room's rules; independent of
    /// [`Forwarder::set_paused`]. Opening restarts video on a keyframe.
    pub fn set_gated(&self, gated: bool) {
        let was = self.inner.gated.swap(gated, Ordering::Relaxed);
        if was && !gated {
            for sink in self.inner.sinks.load().iter() {
                self.wait_for_keyframe(sink);
            }
        }
    }

    fn wait_for_keyframe(&self, sink: &Arc<Sink>) {
        if self.inner.codec.is_some() && !sink.need_keyframe.swap(true, Ordering::Relaxed) {
            self.inner.waiting.fetch_add(1, Ordering::Relaxed);
            self.inner.fresh.store(true, Ordering::Relaxed);
            self.request_keyframe();
        }
    }

    /// Asks the publisher for a keyframe (sent by the forwarder task, rate-limited).
    pub fn request_keyframe(&self) {
        if self.inner.codec.is_some() {
            self.inner.keyframe_wanted.notify_one();
        }
    }

    pub fn stop(&self) {
        self.inner.stop.cancel();
    }

    /// Reads keyframe requests the subscriber sends for its copy and passes them on.
    fn spawn_feedback(&self, sink: Arc<Sink>) {
        let f = self.clone();
        let count = TaskCount::start(&self.tasks);
        tokio::spawn(async move {
            let _count = count;
            loop {
                tokio::select! {
                    ev = sink.track.poll() => match ev {
                        Some(TrackLocalEvent::OnRtcpPacket(_)) => f.request_keyframe(),
                        Some(_) => {}
                        None => break,
                    },
                    _ = f.inner.stop.cancelled() => break,
                }
                // A sink no longer in the list needs no feedback.
                if !f.inner.sinks.load().iter().any(|s| Arc::ptr_eq(s, &sink)) {
                    break;
                }
            }
        });
    }

    async fn run(&self, track: Arc<dyn TrackRemote>) {
        let media_ssrc = track.ssrcs().await.first().copied().unwrap_or(0);
        let mut limit = KeyframeRequests::new(self.inner.keyframe_interval);
        let mut tick = tokio::time::interval(self.inner.keyframe_interval);
        tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
        loop {
            let deferred_at = limit.deadline().map(tokio::time::Instant::from_std);
            let want_pli = tokio::select! {
                ev = track.poll() => match ev {
                    Some(TrackRemoteEvent::OnRtpPacket(p)) => {
                        self.forward(p).await;
                        false
                    }
                    Some(TrackRemoteEvent::OnEnded) | None => break,
                    Some(_) => false,
                },
                _ = self.inner.keyframe_wanted.notified() => true,
                // Someone still waits for a keyframe: ask again.
                _ = tick.tick() => self.inner.waiting.load(Ordering::Relaxed) > 0,
                _ = sleep_until_opt(deferred_at) => true,
                _ = self.inner.stop.cancelled() => break,
            };
            if !want_pli {
                continue;
            }
            // The shared rate limit (taoyao_media::forward): repeated asks wait the keyframe
            // interval, a subscriber that just started waiting is served sooner, and an ask held
            // back is deferred, not lost.
            if self.inner.fresh.swap(false, Ordering::Relaxed) {
                limit.fresh_waiter();
            }
            if !limit.ask(Instant::now()) {
                continue;
            }
            let pli = PictureLossIndication {
                sender_ssrc: 0,
                media_ssrc,
            };
            match track.write_rtcp(vec![Box::new(pli)]).await {
                Ok(()) => MediaCounters::add(&self.inner.counters.keyframe_requests, 1),
                Err(e) => tracing::debug!(stream = self.inner.stream, "PLI not sent: {e}"),
            }
        }
        self.inner.stop.cancel();
        tracing::debug!(stream = self.inner.stream, "forwarder ended");
    }

    async fn forward(&self, p: rtc::rtp::packet::Packet) {
        self.inner.packets_in.fetch_add(1, Ordering::Relaxed);
        self.inner
            .bytes_in
            .fetch_add(p.payload.len() as u64, Ordering::Relaxed);
        let seq = p.header.sequence_number;
        let last = self.inner.last_in.load(Ordering::Relaxed);
        let ahead = seq.wrapping_sub(last as u16);
        if last & VALID == 0 || (ahead != 0 && ahead < 0x8000) {
            if last & VALID != 0 && ahead > 1 {
                // Packets between the last one and this one have not arrived (yet): lost,
                // unless a late one fills in (not subtracted: loss as a receiver report sees it).
                MediaCounters::add(
                    &self.inner.counters.publisher_packets_lost,
                    u64::from(ahead - 1),
                );
            }
            self.inner
                .last_in
                .store(VALID | u32::from(seq), Ordering::Relaxed);
        }
        let sinks = self.inner.sinks.load();
        if self.inner.paused.load(Ordering::Relaxed) || self.inner.gated.load(Ordering::Relaxed) {
            for s in sinks.iter() {
                s.skip();
            }
            return;
        }
        self.inner.taps.offer(self.inner.kind, &p);
        if let Some(l) = &self.inner.level
            && let Some(ext) = p.header.get_extension(l.ext_id)
            && let Some(byte) = ext.first()
        {
            // Heard only while forwarded: a paused or gated member is silent to the others.
            l.meter.observe(*byte);
        }
        let key = match self.inner.codec {
            Some(codec) if self.inner.waiting.load(Ordering::Relaxed) > 0 => {
                is_keyframe(codec, &p.payload)
            }
            _ => false,
        };
        for sink in sinks.iter() {
            if sink.paused.load(Ordering::Relaxed) {
                sink.skip();
                continue;
            }
            if sink.need_keyframe.load(Ordering::Relaxed) {
                if !key {
                    sink.skip();
                    continue;
                }
                if sink.need_keyframe.swap(false, Ordering::Relaxed) {
                    self.inner.waiting.fetch_sub(1, Ordering::Relaxed);
                }
            }
            let mut out = p.clone();
            out.header.ssrc = sink.ssrc;
            out.header.payload_type = sink.payload_type;
            // The subscriber's connection negotiated its own extensions (or none): send none.
            out.header.extension = false;
            out.header.extension_profile = 0;
            out.header.extensions.clear();
            out.header.extensions_padding = 0;
            out.header.sequence_number = sink.map_seq(p.header.sequence_number);
            let bytes = out.payload.len() as u64;
            if sink.track.write_rtp(out).await.is_ok() {
                sink.sent.fetch_add(1, Ordering::Relaxed);
                MediaCounters::add(&self.inner.counters.forwarded_packets, 1);
                MediaCounters::add(&self.inner.counters.forwarded_bytes, bytes);
            }
        }
    }
}
