//! The MCU implementation of the `MediaArchitecture` seam: members send to the server; video is
//! forwarded exactly as in the sfu backend (the same transports, forwarder and sinks), audio is
//! decoded, mixed per receiver (everyone but the receiver, the loudest speakers only) and
//! re-encoded, so each member receives one mixed audio track whatever the room's size.
//!
//! The room machinery is the sfu backend's, run in mcu mode: a room then starts a mixer task
//! (`taoyao_media::mixer::AudioMixer` on a drift-free 20 ms clock), publishers' audio tracks
//! feed it instead of a forwarder, and each member's subscribe connection carries one mixed
//! Opus track (stream id `mix`). This crate names that configuration.

use std::sync::Arc;

use taoyao_webrtc::{ArchitectureKind, WebrtcConfig};
use taoyao_webrtc_sfu::Sfu;
use taoyao_webrtc_sfu::peer::PeerFactory;

/// An mcu backend; share the peer-connection factory with the sfu backend where both run.
pub fn mcu(factory: Arc<PeerFactory>) -> Sfu {
    Sfu::with_factory(factory, ArchitectureKind::Mcu)
}

/// An mcu backend with its own peer-connection factory.
pub fn mcu_with_config(config: WebrtcConfig) -> Sfu {
    mcu(Arc::new(PeerFactory::new(config)))
}
