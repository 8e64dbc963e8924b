//! Recording RTP to a WebM file (VP8 + Opus), muxed by libwebm's mkvmuxer (the `webm` crate),
//! which writes the duration and the cues when the file is finalized.
//!
//! Synchronous and with time passed in: the caller feeds packets with their arrival time from
//! one thread that may block on the disk (never the RTP path).
//!
//! - Video RTP is assembled into frames by rtc's `SampleBuilder` (VP8 depacketizer), which
//!   tolerates reordering and reports packets it had to drop; after a loss the recorder skips
//!   to the next keyframe and asks for one.
//! - Timestamps: each track's RTP timestamp is unwrapped (u32 wrap-around) and placed on one
//!   millisecond timeline whose zero is the first packet's arrival; a track starts at its own
//!   first packet's arrival, so audio and video stay in sync. When a track's RTP time and its
//!   arrival time drift apart by more than [`RESYNC`] (a paused sender, a restarted encoder),
//!   the track is anchored again to the arrival time.
//! - Both tracks reach the muxer interleaved in timestamp order, as mkvmuxer requires: a frame
//!   is written once every track has reached its time, or once it is [`MAX_SKEW`] older than
//!   the newest frame (a track that stalls does not hold the other back). Each track's
//!   timestamps stay strictly increasing in the file.
//! - The file's video track needs the picture size, read from the first keyframe: until it
//!   arrives (at most [`KEYFRAME_WAIT`]) frames are held.

use std::collections::BTreeMap;
use std::fs::File;
use std::io::{Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use bytes::Bytes;
use rtc::media::io::sample_builder::SampleBuilder;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packet::Packet;
use webm::mux::{AudioCodecId, AudioTrack, Segment, SegmentBuilder, VideoCodecId, VideoTrack};

/// A frame waits at most this long (on the timeline) for the other track to catch up.
pub const MAX_SKEW: Duration = Duration::from_millis(1000);
/// A track whose RTP time drifts this far from its arrival time is anchored again.
pub const RESYNC: Duration = Duration::from_secs(2);
/// Longest wait for the first video keyframe before the file starts without the picture size.
pub const KEYFRAME_WAIT: Duration = Duration::from_secs(3);
/// Picture size written when no keyframe came within [`KEYFRAME_WAIT`].
const FALLBACK_SIZE: (u32, u32) = (640, 480);

const VIDEO_CLOCK: u64 = 90_000;
const AUDIO_CLOCK: u64 = 48_000;

/// Which tracks a recording has.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Tracks {
    pub video: bool,
    pub audio: bool,
}

/// Where a recording stops on its own.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordLimits {
    /// Largest file; 0: no limit.
    pub max_bytes: u64,
    /// Longest recording; zero: no limit.
    pub max_duration: Duration,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RecordError {
    #[error("cannot write {path}: {reason}")]
    Io { path: PathBuf, reason: String },
    #[error("the recording reached its limit: {0}")]
    Limit(String),
    #[error("nothing was recorded (no media arrived)")]
    Empty,
    #[error("muxer: {0}")]
    Mux(String),
}

/// What a finished recording holds.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RecordSummary {
    pub path: PathBuf,
    pub duration: Duration,
    pub bytes: u64,
    pub video_frames: u64,
    pub audio_frames: u64,
    /// Video frames skipped while waiting for a keyframe after a loss.
    pub video_frames_skipped: u64,
}

/// What the caller should do after a push.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct PushOutcome {
    /// The recorder waits for a keyframe: ask the sender for one.
    pub want_keyframe: bool,
}

/// A `File` that counts what is written to it and refuses to grow past a limit.
struct CountingFile {
    file: File,
    pos: u64,
    len: u64,
    max: u64,
}

impl Write for CountingFile {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        let end = self.pos + buf.len() as u64;
        if self.max > 0 && end > self.max {
            return Err(std::io::Error::new(
                std::io::ErrorKind::StorageFull,
                "recording.max_file_bytes reached",
            ));
        }
        let n = self.file.write(buf)?;
        self.pos += n as u64;
        self.len = self.len.max(self.pos);
        Ok(n)
    }

    fn flush(&mut self) -> std::io::Result<()> {
        self.file.flush()
    }
}

impl Seek for CountingFile {
    fn seek(&mut self, to: SeekFrom) -> std::io::Result<u64> {
        self.pos = self.file.seek(to)?;
        Ok(self.pos)
    }
}

/// A track's RTP time on the recording's timeline.
#[derive(Default)]
struct Timeline {
    /// Last extended (unwrapped) RTP timestamp.
    last: Option<i64>,
    /// (extended RTP timestamp, timeline ms) of the anchor.
    anchor: Option<(i64, i64)>,
}

impl Timeline {
    /// Unwraps `ts` against the last one seen (a jump of less than half the range either way).
    fn extend(&mut self, ts: u32) -> i64 {
        let ext = match self.last {
            None => i64::from(ts),
            Some(last) => last + i64::from(ts.wrapping_sub(last as u32) as i32),
        };
        self.last = Some(ext);
        ext
    }

    /// The timeline time (ms) of RTP timestamp `ts`, arriving at `arrival_ms`.
    #[cfg(test)]
    fn at(&mut self, ts: u32, clock: u64, arrival_ms: i64) -> i64 {
        let ext = self.extend(ts);
        self.at_ext(ext, clock, arrival_ms)
    }

    /// The timeline time (ms) of extended RTP timestamp `ext`, arriving at `arrival_ms`, rounded
    /// to the nearest millisecond.
    fn at_ext(&mut self, ext: i64, clock: u64, arrival_ms: i64) -> i64 {
        let since = |a_ext: i64| ((ext - a_ext) as f64 * 1000.0 / clock as f64).round() as i64;
        if let Some((a_ext, a_ms)) = self.anchor {
            let t = a_ms + since(a_ext);
            if (t - arrival_ms).abs() <= RESYNC.as_millis() as i64 {
                return t;
            }
        }
        self.anchor = Some((ext, arrival_ms));
        arrival_ms
    }
}

struct VideoIn {
    builder: SampleBuilder<Vp8Packet>,
    timeline: Timeline,
    need_keyframe: bool,
    size: Option<(u32, u32)>,
    skipped: u64,
    grid: FrameGrid,
}

/// Puts video frames on a 30 fps grid (multiples of 100/3 ms), one frame per grid point.
///
/// WebM holds whole milliseconds, and readers put a ~30 fps stream back on a 1/30 s grid
/// (ffmpeg 5 does for `-f null`): frames whose RTP times jitter by a few ms around that grid
/// could round to the same tick there ("non monotonically increasing dts"). Snapping moves a
/// frame by about half a frame (~17 ms, plus its jitter when it yields its grid point to the
/// previous frame; below what lip sync notices). A frame that would have
/// to go more than one grid step late (a source faster than 30 fps) keeps its own time.
#[derive(Default)]
struct FrameGrid {
    last: Option<i64>,
}

impl FrameGrid {
    const STEP: f64 = 100.0 / 3.0;

    fn snap(&mut self, t: i64) -> i64 {
        let mut idx = (t as f64 / Self::STEP).round() as i64;
        if let Some(last) = self.last
            && idx <= last
        {
            idx = last + 1;
        }
        let snapped = (idx as f64 * Self::STEP).round() as i64;
        if snapped - t > Self::STEP as i64 {
            return t;
        }
        self.last = Some(idx);
        snapped
    }
}

struct AudioIn {
    timeline: Timeline,
    last_ext: Option<i64>,
}

struct Muxing {
    segment: Segment<CountingFile>,
    video: Option<VideoTrack>,
    audio: Option<AudioTrack>,
}

struct Pending {
    video: bool,
    keyframe: bool,
    data: Bytes,
}

/// One recording in progress. Call [`WebmRecorder::finish`] to finalize the file; dropped
/// without it, the file is left incomplete.
pub struct WebmRecorder {
    path: PathBuf,
    limits: RecordLimits,
    origin: Option<Instant>,
    video: Option<VideoIn>,
    audio: Option<AudioIn>,
    file: Option<CountingFile>,
    mux: Option<Muxing>,
    /// Frames by (timeline ms, arrival serial), waiting for the reorder window.
    queue: BTreeMap<(i64, u64), Pending>,
    serial: u64,
    newest_ms: i64,
    /// Newest frame time of each track (video, audio).
    newest_track_ms: [Option<i64>; 2],
    /// Last time written of each track (video, audio).
    last_track_ms: [Option<i64>; 2],
    last_written_ms: i64,
    video_frames: u64,
    audio_frames: u64,
}

impl WebmRecorder {
    /// Creates the file (and its directory). Nothing is written until media arrives.
    pub fn create(
        path: impl Into<PathBuf>,
        tracks: Tracks,
        limits: RecordLimits,
    ) -> Result<WebmRecorder, RecordError> {
        let path = path.into();
        if !tracks.video && !tracks.audio {
            return Err(RecordError::Empty);
        }
        let io = |e: std::io::Error| RecordError::Io {
            path: path.clone(),
            reason: e.to_string(),
        };
        if let Some(dir) = path.parent() {
            std::fs::create_dir_all(dir).map_err(io)?;
        }
        let file = File::create(&path).map_err(io)?;
        Ok(WebmRecorder {
            limits,
            origin: None,
            video: tracks.video.then(|| VideoIn {
                builder: SampleBuilder::new(128, Vp8Packet::default(), VIDEO_CLOCK as u32)
                    .with_max_time_delay(Duration::from_millis(500)),
                timeline: Timeline::default(),
                need_keyframe: true,
                size: None,
                skipped: 0,
                grid: FrameGrid::default(),
            }),
            audio: tracks.audio.then(|| AudioIn {
                timeline: Timeline::default(),
                last_ext: None,
            }),
            file: Some(CountingFile {
                file,
                pos: 0,
                len: 0,
                max: limits.max_bytes,
            }),
            mux: None,
            queue: BTreeMap::new(),
            serial: 0,
            newest_ms: 0,
            newest_track_ms: [None; 2],
            last_track_ms: [None; 2],
            last_written_ms: 0,
            video_frames: 0,
            audio_frames: 0,
            path,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    fn ms_since_origin(&mut self, arrival: Instant) -> i64 {
        let origin = *self.origin.get_or_insert(arrival);
        arrival.saturating_duration_since(origin).as_millis() as i64
    }

    /// A video RTP packet (VP8) that arrived at `arrival`.
    pub fn push_video(
        &mut self,
        packet: Packet,
        arrival: Instant,
    ) -> Result<PushOutcome, RecordError> {
        let arrival_ms = self.ms_since_origin(arrival);
        let Some(v) = self.video.as_mut() else {
            return Ok(PushOutcome::default());
        };
        v.builder.push(arrival, packet);
        let mut frames = Vec::new();
        while let Some(sample) = v.builder.pop(arrival) {
            let lost = sample
                .prev_dropped_packets
                .saturating_sub(sample.prev_padding_packets);
            if lost > 0 && !v.need_keyframe {
                v.need_keyframe = true;
            }
            let key = sample.data.first().is_some_and(|b| b & 0x01 == 0);
            if v.need_keyframe && !key {
                v.skipped += 1;
                continue;
            }
            if key {
                v.need_keyframe = false;
                if v.size.is_none() && sample.data.len() >= 10 {
                    let w = u16::from_le_bytes([sample.data[6], sample.data[7]]) & 0x3fff;
                    let h = u16::from_le_bytes([sample.data[8], sample.data[9]]) & 0x3fff;
                    if w > 0 && h > 0 {
                        v.size = Some((u32::from(w), u32::from(h)));
                    }
                }
            }
            let ext = v.timeline.extend(sample.packet_timestamp);
            let t = v.timeline.at_ext(ext, VIDEO_CLOCK, arrival_ms);
            let t = v.grid.snap(t);
            frames.push((t, key, sample.data));
        }
        let want_keyframe = v.need_keyframe;
        for (t, key, data) in frames {
            self.enqueue(t, true, key, data);
        }
        self.drain(arrival_ms, false)?;
        Ok(PushOutcome { want_keyframe })
    }

    /// An audio RTP packet (Opus: the payload is one frame) that arrived at `arrival`.
    pub fn push_audio(&mut self, packet: Packet, arrival: Instant) -> Result<(), RecordError> {
        let arrival_ms = self.ms_since_origin(arrival);
        let Some(a) = self.audio.as_mut() else {
            return Ok(());
        };
        if packet.payload.is_empty() {
            return Ok(());
        }
        let ext = a.timeline.extend(packet.header.timestamp);
        // A duplicate or a packet older than one already taken: too late for the file.
        if a.last_ext.is_some_and(|l| ext <= l) {
            return Ok(());
        }
        a.last_ext = Some(ext);
        let t = a.timeline.at_ext(ext, AUDIO_CLOCK, arrival_ms);
        self.enqueue(t, false, true, packet.payload);
        self.drain(arrival_ms, false)
    }

    fn enqueue(&mut self, t: i64, video: bool, keyframe: bool, data: Bytes) {
        self.serial += 1;
        self.newest_ms = self.newest_ms.max(t);
        let i = usize::from(!video);
        self.newest_track_ms[i] = Some(self.newest_track_ms[i].map_or(t, |n| n.max(t)));
        self.queue.insert(
            (t, self.serial),
            Pending {
                video,
                keyframe,
                data,
            },
        );
    }

    /// Starts the file once the picture size is known (or waited for long enough).
    fn start_muxing(&mut self, now_ms: i64, force: bool) -> Result<bool, RecordError> {
        if self.mux.is_some() {
            return Ok(true);
        }
        let size = match &self.video {
            None => None,
            Some(v) => match v.size {
                Some(s) => Some(s),
                None if force || now_ms >= KEYFRAME_WAIT.as_millis() as i64 => Some(FALLBACK_SIZE),
                None => return Ok(false),
            },
        };
        let Some(file) = self.file.take() else {
            return Err(RecordError::Mux("the file is gone".into()));
        };
        let mux = |e: webm::mux::Error| RecordError::Mux(e.to_string());
        let mut builder = SegmentBuilder::new(webm::mux::Writer::new(file))
            .map_err(mux)?
            .set_writing_app("taoyao-rs")
            .map_err(mux)?;
        let mut video = None;
        if let Some((w, h)) = size {
            let (b, t) = builder
                .add_video_track(w, h, VideoCodecId::VP8, None)
                .map_err(mux)?;
            builder = b;
            video = Some(t);
        }
        let mut audio = None;
        if self.audio.is_some() {
            let (b, t) = builder
                .add_audio_track(48_000, 2, AudioCodecId::Opus, None)
                .map_err(mux)?;
            builder = b.set_codec_private(t, &opus_head()).map_err(mux)?;
            audio = Some(t);
        }
        self.mux = Some(Muxing {
            segment: builder.build(),
            video,
            audio,
        });
        Ok(true)
    }

    /// Writes the frames older than the reorder window (all of them when `all`).
    fn drain(&mut self, now_ms: i64, all: bool) -> Result<(), RecordError> {
        if !self.start_muxing(now_ms, all)? {
            // Frames wait for the picture size; audio held this long is not worth keeping.
            return Ok(());
        }
        let horizon = if all {
            i64::MAX
        } else {
            // Every track this recording has must have reached a time before it is written.
            let mut h = i64::MAX;
            for (i, present) in [self.video.is_some(), self.audio.is_some()]
                .into_iter()
                .enumerate()
            {
                if present {
                    h = h.min(self.newest_track_ms[i].unwrap_or(i64::MIN));
                }
            }
            h.max(self.newest_ms - MAX_SKEW.as_millis() as i64)
        };
        let max_ms = self.limits.max_duration.as_millis() as i64;
        while let Some(entry) = self.queue.first_entry() {
            let (t, _) = *entry.key();
            if t > horizon {
                break;
            }
            let frame = entry.remove();
            if max_ms > 0 && t > max_ms {
                self.queue.clear();
                return Err(RecordError::Limit(format!(
                    "recording.max_duration_ms ({max_ms} ms)"
                )));
            }
            let Some(m) = self.mux.as_mut() else { break };
            let track = if frame.video {
                m.video.map(u64::from)
            } else {
                m.audio.map(u64::from)
            };
            let Some(track) = track else { continue };
            let i = usize::from(!frame.video);
            let t = t
                .max(self.last_written_ms)
                .max(self.last_track_ms[i].map_or(i64::MIN, |l| l + 1));
            let ns = u64::try_from(t).unwrap_or(0) * 1_000_000;
            if let Err(e) = m.segment.add_frame(track, &frame.data, ns, frame.keyframe) {
                self.queue.clear();
                return Err(self.write_error(e));
            }
            self.last_written_ms = t;
            self.last_track_ms[i] = Some(t);
            if frame.video {
                self.video_frames += 1;
            } else {
                self.audio_frames += 1;
            }
        }
        Ok(())
    }

    fn write_error(&self, e: webm::mux::Error) -> RecordError {
        if self.limits.max_bytes > 0 {
            // The counting file refuses writes past the limit; libwebm reports only "failed".
            if let Ok(meta) = std::fs::metadata(&self.path)
                && meta.len() + 64 * 1024 >= self.limits.max_bytes
            {
                return RecordError::Limit(format!(
                    "recording.max_file_bytes ({} bytes)",
                    self.limits.max_bytes
                ));
            }
        }
        RecordError::Io {
            path: self.path.clone(),
            reason: format!("write failed ({e}): disk full or not writable"),
        }
    }

    /// Writes what is queued and finalizes the file (duration, cues). A recording that
    /// stopped on an error is finalized the same way, with what it had.
    pub fn finish(mut self) -> Result<RecordSummary, RecordError> {
        let drained = self.drain(i64::MAX, true);
        let Some(m) = self.mux.take() else {
            return Err(RecordError::Empty);
        };
        if self.video_frames + self.audio_frames == 0 {
            let _ = std::fs::remove_file(&self.path);
            return Err(RecordError::Empty);
        }
        let duration = Duration::from_millis(u64::try_from(self.last_written_ms).unwrap_or(0));
        let writer = m.segment.finalize(None).map_err(|_| RecordError::Io {
            path: self.path.clone(),
            reason: "finalizing failed: disk full or not writable".into(),
        })?;
        let mut file = writer.into_inner();
        file.flush().map_err(|e| RecordError::Io {
            path: self.path.clone(),
            reason: e.to_string(),
        })?;
        let _ = file.file.sync_all();
        drained.or_else(|e| match e {
            // Finalized with what fitted.
            RecordError::Limit(_) => Ok(()),
            e => Err(e),
        })?;
        Ok(RecordSummary {
            path: self.path.clone(),
            duration,
            bytes: file.len,
            video_frames: self.video_frames,
            audio_frames: self.audio_frames,
            video_frames_skipped: self.video.as_ref().map_or(0, |v| v.skipped),
        })
    }
}

/// The Opus identification header Matroska carries as CodecPrivate (RFC 7845 5.1): version 1,
/// 2 channels, no pre-skip, 48 kHz, 0 dB, channel mapping family 0.
fn opus_head() -> [u8; 19] {
    let mut h = [0u8; 19];
    h[..8].copy_from_slice(b"OpusHead");
    h[8] = 1;
    h[9] = 2;
    h[12..16].copy_from_slice(&48_000u32.to_le_bytes());
    h
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ffcheck::{decode_errors, probe};

    #[test]
    fn rtp_timestamps_unwrap() {
        let mut t = Timeline::default();
        assert_eq!(t.extend(u32::MAX - 10), i64::from(u32::MAX - 10));
        assert_eq!(t.extend(5), i64::from(u32::MAX) + 6);
        // A late packet from before the wrap.
        assert_eq!(t.extend(u32::MAX - 1), i64::from(u32::MAX - 1));
        assert_eq!(t.extend(10), i64::from(u32::MAX) + 11);
    }

    #[test]
    fn jittery_thirty_fps_video_gets_one_clean_tick_per_frame_on_a_thirty_fps_grid() {
        // Frames ~33.3 ms apart with a few ms of jitter, from any starting phase: every frame
        // lands within 0.05 of its own 1/30 s tick (as ffmpeg rescales it), ticks increasing.
        for start in 0..100i64 {
            let mut grid = FrameGrid::default();
            let mut last_tick = None;
            for k in 0..300i64 {
                let jitter = (k * 7919 + start * 31) % 9 - 4; // -4..=4 ms
                let t = start + (k as f64 * 100.0 / 3.0).round() as i64 + jitter;
                let ms = grid.snap(t);
                // Half a frame, plus the jitter when a frame had to yield its grid point.
                assert!((ms - t).abs() <= 25, "moved {} ms", ms - t);
                let exact = ms as f64 * 30.0 / 1000.0;
                assert!(
                    (exact - exact.round()).abs() < 0.05,
                    "start {start}, frame {k}: {exact}"
                );
                let tick = exact.round() as i64;
                assert!(
                    last_tick.is_none_or(|l| tick > l),
                    "start {start}: frame {k} repeats tick {tick}"
                );
                last_tick = Some(tick);
            }
        }
    }

    #[test]
    fn video_faster_than_thirty_fps_keeps_its_own_times() {
        let mut grid = FrameGrid::default();
        let mut last = i64::MIN;
        for k in 0..600i64 {
            let t = (k as f64 * 1000.0 / 60.0).round() as i64;
            let ms = grid.snap(t);
            assert!(ms - t <= 34, "frame {k} runs {} ms late", ms - t);
            assert!(ms > last || ms == t, "frame {k}");
            last = ms;
        }
    }

    #[test]
    fn timeline_follows_rtp_and_reanchors_after_a_jump() {
        let mut t = Timeline::default();
        // First packet at 100 ms on the timeline.
        assert_eq!(t.at(u32::MAX - 899, 90_000, 100), 100);
        // 900 ticks = 10 ms later, across the wrap; arrival jitter does not matter.
        assert_eq!(t.at((u32::MAX - 899).wrapping_add(900), 90_000, 140), 110);
        assert_eq!(t.at(1800, 90_000, 120), 130);
        // The sender jumped an hour ahead: anchored to arrival.
        assert_eq!(t.at(1800 + 90_000 * 3600, 90_000, 200), 200);
        assert_eq!(t.at(1800 + 90_000 * 3601, 90_000, 1190), 1200);
    }

    #[test]
    fn opus_head_layout() {
        let h = opus_head();
        assert_eq!(&h[..8], b"OpusHead");
        assert_eq!(h[9], 2);
        assert_eq!(u32::from_le_bytes([h[12], h[13], h[14], h[15]]), 48_000);
    }
    /// Real VP8 (30 fps, keyframe every 30 frames) and Opus (20 ms) made by ffmpeg.
    fn real_media(dir: &Path, seconds: u32) -> (Vec<Bytes>, Vec<Bytes>) {
        use rtc::media::io::ivf_reader::IVFReader;
        use rtc::media::io::ogg_reader::OggReader;
        std::fs::create_dir_all(dir).unwrap();
        let ivf = dir.join("v.ivf");
        let ogg = dir.join("a.ogg");
        let t = seconds.to_string();
        let ok = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "testsrc2=size=320x240:rate=30",
            ])
            .args([
                "-c:v",
                "libvpx",
                "-deadline",
                "realtime",
                "-cpu-used",
                "8",
                "-g",
                "30",
            ])
            .args(["-t", &t])
            .arg(&ivf)
            .status()
            .expect("ffmpeg (scripts/install-test-deps.sh)");
        assert!(ok.success());
        let ok = std::process::Command::new("ffmpeg")
            .args([
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                "sine=frequency=440:sample_rate=48000",
            ])
            .args([
                "-ac",
                "2",
                "-c:a",
                "libopus",
                "-frame_duration",
                "20",
                "-page_duration",
                "20000",
            ])
            .args(["-t", &t])
            .arg(&ogg)
            .status()
            .unwrap();
        assert!(ok.success());
        let (mut r, _) = IVFReader::new(File::open(&ivf).unwrap()).unwrap();
        let mut video = Vec::new();
        while let Ok((f, _)) = r.parse_next_frame() {
            video.push(f.freeze());
        }
        let (mut r, _) = OggReader::new(File::open(&ogg).unwrap(), true).unwrap();
        let mut audio = Vec::new();
        while let Ok((p, _)) = r.parse_next_page() {
            if !p.starts_with(b"OpusTags") {
                audio.push(p.freeze());
            }
        }
        (video, audio)
    }

    fn rtp(seq: u16, ts: u32, marker: bool, payload: Bytes) -> Packet {
        Packet {
            header: rtc::rtp::header::Header {
                version: 2,
                marker,
                sequence_number: seq,
                timestamp: ts,
                ..Default::default()
            },
            payload,
        }
    }

    /// Sends `seconds` of real media as RTP (timestamps starting just before the u32 wrap,
    /// one video packet lost at 1.5 s) with simulated arrival times.
    fn record(
        path: &Path,
        seconds: u32,
        limits: RecordLimits,
    ) -> Result<RecordSummary, RecordError> {
        use rtc::rtp::packetizer::Payloader;
        let dir = path.parent().unwrap();
        let (video, audio) = real_media(dir, seconds);
        let mut rec = WebmRecorder::create(
            path,
            Tracks {
                video: true,
                audio: true,
            },
            limits,
        )?;
        let start = Instant::now();
        let mut payloader = rtc::rtp::codec::vp8::Vp8Payloader::default();
        let (mut vseq, mut aseq) = (65_000u16, 1u16);
        let vts0 = u32::MAX - 90_000;
        let ats0 = 7u32;
        let mut events: Vec<(u64, bool, usize)> = Vec::new();
        for i in 0..video.len() {
            events.push((i as u64 * 1000 / 30, true, i));
        }
        for i in 0..audio.len() {
            events.push((i as u64 * 20, false, i));
        }
        events.sort();
        let mut result = Ok(());
        for (ms, is_video, i) in events {
            let at = start + Duration::from_millis(ms + 5);
            if is_video {
                let ts = vts0.wrapping_add((i as u32) * 3000);
                let parts = payloader.payload(1200, &video[i]).unwrap();
                let n = parts.len();
                for (k, p) in parts.into_iter().enumerate() {
                    vseq = vseq.wrapping_add(1);
                    if i == 45 && k == 0 {
                        continue; // lost
                    }
                    if let Err(e) = rec.push_video(rtp(vseq, ts, k + 1 == n, p), at) {
                        result = Err(e);
                        break;
                    }
                }
            } else {
                aseq = aseq.wrapping_add(1);
                let ts = ats0.wrapping_add(i as u32 * 960);
                if let Err(e) = rec.push_audio(rtp(aseq, ts, false, audio[i].clone()), at) {
                    result = Err(e);
                }
            }
            if result.is_err() {
                break;
            }
        }
        let summary = rec.finish();
        result.and(summary)
    }

    #[test]
    fn real_vp8_and_opus_make_a_playable_webm() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("rec/a.webm");
        let unlimited = RecordLimits {
            max_bytes: 0,
            max_duration: Duration::ZERO,
        };
        let s = record(&path, 4, unlimited).unwrap();
        let (codecs, duration) = probe(&path);
        assert_eq!(codecs, ["vp8", "opus"], "{s:?}");
        assert!((duration - 4.0).abs() < 0.2, "duration {duration}, {s:?}");
        assert_eq!(decode_errors(&path), "", "{s:?}");
        // The lost packet at frame 45 costs frames up to the keyframe at 60.
        assert!((10..=15).contains(&s.video_frames_skipped), "{s:?}");
        // Every Opus packet (libopus may add one for its padding).
        assert!((200..=201).contains(&s.audio_frames), "{s:?}");
        // Of 120 frames: the one with the lost packet is dropped whole, and the last one stays
        // in the SampleBuilder (a frame completes when the next one starts).
        assert!(s.video_frames + s.video_frames_skipped >= 116, "{s:?}");
        assert!(s.bytes > 10_000 && s.bytes == std::fs::metadata(&path).unwrap().len());
    }

    #[test]
    fn limits_stop_the_recording_with_a_finalized_file() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("b.webm");
        let limits = RecordLimits {
            max_bytes: 0,
            max_duration: Duration::from_secs(2),
        };
        let err = record(&path, 4, limits).unwrap_err();
        assert!(matches!(err, RecordError::Limit(_)), "{err}");
        let (codecs, duration) = probe(&path);
        assert_eq!(codecs, ["vp8", "opus"]);
        assert!((duration - 2.0).abs() < 0.2, "duration {duration}");
        assert_eq!(decode_errors(&path), "");
    }

    #[test]
    fn an_unwritable_directory_is_a_clear_error() {
        let dir = tempfile::tempdir().unwrap();
        let blocker = dir.path().join("file");
        std::fs::write(&blocker, b"x").unwrap();
        let err = WebmRecorder::create(
            blocker.join("sub/c.webm"),
            Tracks {
                video: true,
                audio: true,
            },
            RecordLimits {
                max_bytes: 0,
                max_duration: Duration::ZERO,
            },
        )
        .err()
        .unwrap();
        assert!(matches!(err, RecordError::Io { .. }), "{err}");
    }
}
