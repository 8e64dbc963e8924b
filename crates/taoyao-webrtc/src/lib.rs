//! The media seam of taoyao-rs: the [`MediaArchitecture`] trait that the mesh, sfu and mcu
//! backends implement, the vocabulary they share (negotiation messages, media kinds, events),
//! and the `[webrtc]` settings.
//!
//! A backend knows rooms and members only as ids and never formats a signaling message or holds
//! a WebSocket: it reports back through [`MediaEvents`], which the scenario layer (meeting, live)
//! turns into signals.

pub mod config;
pub mod forwarder;
pub mod peer;
pub mod recorder;
pub mod rtcp;
pub mod sdp_check;
pub mod seam;

pub use config::{IceServer, WebrtcConfig};
pub use seam::*;
