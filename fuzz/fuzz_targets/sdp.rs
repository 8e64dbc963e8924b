//! Any SDP a member may send: the room layer's SDP check, and the SFU's own handling of a publish
//! offer (a real webrtc-rs peer connection applies it and answers), never panic.
#![no_main]

use std::sync::OnceLock;

use libfuzzer_sys::fuzz_target;
use taoyao_webrtc::peer::{PeerEvents, PeerFactory};
use taoyao_webrtc::sdp_check::media_sections;
use taoyao_webrtc::WebrtcConfig;

fn runtime() -> &'static tokio::runtime::Runtime {
    static RT: OnceLock<tokio::runtime::Runtime> = OnceLock::new();
    RT.get_or_init(|| tokio::runtime::Builder::new_current_thread().enable_all().build().expect("runtime"))
}

fn factory() -> &'static PeerFactory {
    static F: OnceLock<PeerFactory> = OnceLock::new();
    F.get_or_init(|| {
        PeerFactory::new(WebrtcConfig {
            udp_port_min: 0,
            udp_port_max: 0,
            gather_timeout_ms: 50,
            ..WebrtcConfig::default()
        })
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(sdp) = std::str::from_utf8(data) else { return };
    let _ = media_sections(sdp);
    runtime().block_on(async {
        let peer = factory().create(PeerEvents::default()).await.expect("peer connection");
        let _ = peer.answer(sdp.to_owned()).await;
        peer.close().await;
    });
});
