//! Smoke runs of the bench's Janus side (`--target janus`): sfu-fanout and meeting against
//! VideoRoom, mcu against AudioBridge, at tiny sizes for two seconds each, inside a private
//! network namespace set up as scripts/bench-vs-janus.sh does. Checks the tool's own
//! correctness (packets counted, no loss, JSON written), not speed. Needs `janus`, `unshare`
//! and `ip` (scripts/install-test-deps.sh) and root.

use std::path::{Path, PathBuf};
use std::process::Command;

use taoyao_bench::report::read_json;

#[test]
fn janus_scenarios_run_count_and_report() {
    let bench = env!("CARGO_BIN_EXE_taoyao-bench");
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let config = root.join("scripts/janus");
    let tmp = PathBuf::from(env!("CARGO_TARGET_TMPDIR"));
    let out = tmp.join(format!("janus-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&out).unwrap();
    let media = tmp.join("media");
    let script = format!(
        r#"set -e
ip link set lo up
ip link add janus0 type bridge
ip addr add 127.0.0.2/32 dev janus0
ip link set janus0 up
janus -F '{config}' -o > '{out}/janus.log' 2>&1 &
J=$!
trap 'kill $J' EXIT
for _ in $(seq 100); do (exec 3<>/dev/tcp/127.0.0.1/8188) 2>/dev/null && break; sleep 0.1; done
B="'{bench}' --quiet --target janus --bind-ip 127.0.0.2 --media-dir '{media}' --server-pid $J"
eval $B --json '{out}/sfu-fanout.json' sfu-fanout --subscribers 2 --seconds 2
eval $B --json '{out}/meeting.json' meeting --members 3 --seconds 2
eval $B --json '{out}/mcu.json' mcu --members 3 --seconds 2
"#,
        config = config.display(),
        out = out.display(),
        media = media.display(),
    );
    let status = Command::new("unshare")
        .args(["-n", "bash", "-c", &script])
        .status()
        .expect("unshare (util-linux) runs");
    let log = std::fs::read_to_string(out.join("janus.log")).unwrap_or_default();
    assert!(
        status.success(),
        "bench against Janus failed; Janus log:\n{log}"
    );
    for (file, scenario, receivers_per_sender) in [
        ("sfu-fanout.json", "sfu-fanout", 2.0),
        ("meeting.json", "meeting", 2.0),
        ("mcu.json", "mcu", 1.0),
    ] {
        let reports = read_json(&out.join(file)).expect("json written");
        assert_eq!(reports.len(), 1);
        let r = &reports[0];
        assert_eq!(
            (r.scenario.as_str(), r.target.as_str()),
            (scenario, "janus")
        );
        assert!(r.packets_sent > 0 && r.packets_received > 0, "{r:?}");
        assert_eq!(r.lost, 0, "loss on loopback: {r:?}");
        let ratio = r.packets_received as f64 / (r.packets_sent as f64 * receivers_per_sender);
        assert!((0.9..1.1).contains(&ratio), "{r:?}");
        assert!(r.server_cpu.is_some_and(|c| c > 0.0), "{r:?}");
        if scenario != "mcu" {
            assert!(r.latency.is_some(), "forwarded payloads matched: {r:?}");
        }
    }
    std::fs::remove_dir_all(&out).ok();
}
