//! Checks of media files with ffprobe / ffmpeg, for tests (this crate's and the server's,
//! through the `ffcheck` feature): what a player would find in a recording.

use std::path::Path;
use std::process::Command;

/// (codec names, duration in seconds) as ffprobe reads them.
pub fn probe(path: &Path) -> (Vec<String>, f64) {
    let out = Command::new("ffprobe")
        .args([
            "-v",
            "error",
            "-show_entries",
            "stream=codec_name:format=duration",
        ])
        .args(["-of", "default=noprint_wrappers=1"])
        .arg(path)
        .output()
        .expect("ffprobe (scripts/install-test-deps.sh)");
    let text = String::from_utf8_lossy(&out.stdout).to_string();
    let codecs = text
        .lines()
        .filter_map(|l| l.strip_prefix("codec_name="))
        .map(str::to_owned)
        .collect();
    let duration = text
        .lines()
        .find_map(|l| l.strip_prefix("duration="))
        .and_then(|d| d.parse().ok())
        .unwrap_or(0.0);
    (codecs, duration)
}

/// What `ffmpeg -v error -i FILE -f null -` prints (nothing for a clean decode).
pub fn decode_errors(path: &Path) -> String {
    let out = Command::new("ffmpeg")
        .args(["-v", "error", "-i"])
        .arg(path)
        .args(["-f", "null", "-"])
        .output()
        .expect("ffmpeg (scripts/install-test-deps.sh)");
    assert!(out.status.success(), "ffmpeg failed on {}", path.display());
    String::from_utf8_lossy(&out.stderr).to_string()
}
