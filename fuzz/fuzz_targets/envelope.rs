//! Any text frame: the envelope parser and the negotiation-body reader never panic, and what
//! parses serializes and parses back to the same message.
#![no_main]

use libfuzzer_sys::fuzz_target;
use taoyao_signal::Message;
use taoyao_webrtc::Negotiation;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else { return };
    if let Ok(m) = Message::parse(text) {
        let again = Message::parse(&m.to_json()).expect("a serialized message parses");
        assert_eq!(again, m);
        let _ = Negotiation::from_body(&m.body);
        let _ = m.reply(serde_json::json!({})).to_json();
    }
});
