//! The crates that carry no media themselves compile without the media stack: the seam
//! (taoyao-webrtc), this mesh backend, the meeting and live rules, the signaling core. `cargo tree` must list
//! none of webrtc-rs (`webrtc`, `rtc`), libopus (`opus`, `audiopus_sys`), libwebm (`webm`,
//! `webm-sys`), nor the TLS stack and certificate maker (`rustls`, `rcgen`), which only the
//! server enables (taoyao-boot's `tls` feature).

use std::path::Path;
use std::process::Command;

const HEAVY: [&str; 8] = [
    "webrtc",
    "rtc",
    "opus",
    "audiopus_sys",
    "webm",
    "webm-sys",
    "rustls",
    "rcgen",
];

fn normal_dependencies(package: &str) -> Vec<String> {
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let out = Command::new(env!("CARGO"))
        .args([
            "tree",
            "--offline",
            "--locked",
            "-e",
            "normal",
            "--prefix",
            "none",
        ])
        .args(["-p", package])
        .current_dir(&workspace)
        .output()
        .expect("run cargo tree");
    assert!(
        out.status.success(),
        "cargo tree -p {package}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split(' ').next().map(str::to_owned))
        .collect()
}

#[test]
fn seam_mesh_meeting_live_and_signal_compile_without_the_media_stack() {
    for package in [
        "taoyao-webrtc",
        "taoyao-webrtc-mesh",
        "taoyao-meeting",
        "taoyao-live",
        "taoyao-signal",
    ] {
        let deps = normal_dependencies(package);
        assert!(
            deps.iter().any(|d| d == package),
            "cargo tree listed {package} itself"
        );
        let heavy: Vec<&String> = deps
            .iter()
            .filter(|d| HEAVY.contains(&d.as_str()))
            .collect();
        assert!(heavy.is_empty(), "{package} depends on {heavy:?}");
    }
    // The check can fail: the sfu backend does carry the media stack.
    let sfu = normal_dependencies("taoyao-webrtc-sfu");
    assert!(sfu.iter().any(|d| d == "webrtc") && sfu.iter().any(|d| d == "opus"));
}
