//! Real test media: VP8 in IVF and Opus in Ogg, made by ffmpeg (nothing large is committed),
//! loaded into memory as frames and 20 ms packets.

use std::path::{Path, PathBuf};
use std::time::Duration;

use anyhow::{Context, bail};
use bytes::Bytes;
use rtc::media::io::ivf_reader::IVFReader;
use rtc::media::io::ogg_reader::OggReader;

/// What to make.
#[derive(Debug, Clone)]
pub struct MediaSpec {
    pub width: u32,
    pub height: u32,
    pub fps: u32,
    pub video_kbps: u32,
    pub audio_kbps: u32,
    /// A keyframe at least every this many frames (the sender also jumps to the next keyframe
    /// when asked for one).
    pub keyframe_every: u32,
    pub seconds: u32,
    pub tone_hz: u32,
}

impl Default for MediaSpec {
    fn default() -> Self {
        MediaSpec {
            width: 320,
            height: 240,
            fps: 30,
            video_kbps: 500,
            audio_kbps: 32,
            keyframe_every: 30,
            seconds: 10,
            tone_hz: 440,
        }
    }
}

/// One VP8 frame.
#[derive(Debug, Clone)]
pub struct Frame {
    pub data: Bytes,
    pub keyframe: bool,
}

/// Media loaded in memory, ready to send in a loop.
#[derive(Debug, Clone)]
pub struct TestMedia {
    pub video: Vec<Frame>,
    pub frame_duration: Duration,
    /// One Opus packet per 20 ms.
    pub audio: Vec<Bytes>,
}

fn run(cmd: &mut std::process::Command) -> anyhow::Result<()> {
    let out = cmd
        .output()
        .context("running ffmpeg (install it: scripts/install-test-deps.sh)")?;
    if !out.status.success() {
        bail!("ffmpeg failed: {}", String::from_utf8_lossy(&out.stderr));
    }
    Ok(())
}

impl TestMedia {
    /// Makes the files in `dir` (once per spec) and loads them.
    pub fn make(dir: &Path, spec: &MediaSpec) -> anyhow::Result<TestMedia> {
        std::fs::create_dir_all(dir)?;
        let tag = format!(
            "{}x{}-{}fps-{}k-g{}-{}s-{}hz-{}k",
            spec.width,
            spec.height,
            spec.fps,
            spec.video_kbps,
            spec.keyframe_every,
            spec.seconds,
            spec.tone_hz,
            spec.audio_kbps
        );
        let ivf: PathBuf = dir.join(format!("video-{tag}.ivf"));
        let ogg: PathBuf = dir.join(format!("audio-{tag}.ogg"));
        if !ivf.exists() {
            let tmp = dir.join(format!("video-{tag}.{}.tmp.ivf", rand::random::<u64>()));
            run(std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!(
                    "testsrc2=size={}x{}:rate={}",
                    spec.width, spec.height, spec.fps
                ))
                .args(["-c:v", "libvpx", "-deadline", "realtime", "-cpu-used", "8"])
                .arg("-b:v")
                .arg(format!("{}k", spec.video_kbps))
                .arg("-g")
                .arg(spec.keyframe_every.to_string())
                .arg("-t")
                .arg(spec.seconds.to_string())
                .arg(&tmp))?;
            std::fs::rename(&tmp, &ivf)?;
        }
        if !ogg.exists() {
            let tmp = dir.join(format!("audio-{tag}.{}.tmp.ogg", rand::random::<u64>()));
            run(std::process::Command::new("ffmpeg")
                .args(["-v", "error", "-y", "-f", "lavfi", "-i"])
                .arg(format!("sine=frequency={}:sample_rate=48000", spec.tone_hz))
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
                .arg("-b:a")
                .arg(format!("{}k", spec.audio_kbps))
                .arg("-t")
                .arg(spec.seconds.to_string())
                .arg(&tmp))?;
            std::fs::rename(&tmp, &ogg)?;
        }
        Self::load(&ivf, &ogg)
    }

    pub fn load(ivf: &Path, ogg: &Path) -> anyhow::Result<TestMedia> {
        let (mut reader, header) =
            IVFReader::new(std::io::BufReader::new(std::fs::File::open(ivf)?))
                .map_err(|e| anyhow::anyhow!("{}: {e}", ivf.display()))?;
        let mut video = Vec::new();
        while let Ok((frame, _)) = reader.parse_next_frame() {
            // VP8 frame tag: bit 0 of the first byte is 0 on a keyframe.
            let keyframe = frame.first().is_some_and(|b| b & 1 == 0);
            video.push(Frame {
                data: frame.freeze(),
                keyframe,
            });
        }
        if video.is_empty() || !video[0].keyframe {
            bail!(
                "{} holds no VP8 frames starting with a keyframe",
                ivf.display()
            );
        }
        let frame_duration = Duration::from_secs_f64(
            f64::from(header.timebase_numerator) / f64::from(header.timebase_denominator.max(1)),
        );
        let (mut reader, _) =
            OggReader::new(std::io::BufReader::new(std::fs::File::open(ogg)?), true)
                .map_err(|e| anyhow::anyhow!("{}: {e}", ogg.display()))?;
        let mut audio = Vec::new();
        while let Ok((page, _)) = reader.parse_next_page() {
            if page.starts_with(b"OpusTags") {
                continue;
            }
            audio.push(page.freeze());
        }
        if audio.is_empty() {
            bail!("{} holds no Opus packets", ogg.display());
        }
        Ok(TestMedia {
            video,
            frame_duration,
            audio,
        })
    }
}
