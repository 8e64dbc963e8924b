//! docs/protocol.md lists every signal the server handles.

use taoyao_boot::Shutdown;
use taoyao_server::{Config, build};

#[test]
fn every_handled_signal_is_documented() {
    let doc = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../docs/protocol.md"
    ))
    .expect("docs/protocol.md");
    let parts = build(&Config::default(), &Shutdown::new()).unwrap();
    let mut signals = parts.hub.signals();
    signals.extend([
        taoyao_signal::signals::CLIENT_REGISTER,
        taoyao_signal::signals::CLIENT_CONFIG,
        taoyao_signal::signals::CLIENT_ONLINE,
        taoyao_signal::signals::CLIENT_OFFLINE,
        taoyao_signal::signals::PLATFORM_ERROR,
    ]);
    let missing: Vec<_> = signals
        .iter()
        .filter(|s| !doc.contains(&format!("`{s}`")))
        .collect();
    assert!(
        missing.is_empty(),
        "docs/protocol.md does not list {missing:?}"
    );
}
