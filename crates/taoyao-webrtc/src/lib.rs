//! The media seam of taoyao-rs: the [`MediaArchitecture`] trait that the mesh, sfu and mcu
//! backends implement, the vocabulary they share (negotiation messages, media kinds, events),
//! and the `[webrtc]` settings.
//!
//! A backend knows rooms, members and streams only as ids ([`RoomId`], [`MemberId`],
//! [`StreamId`]: each its own type) and never formats a signaling message or holds
//! a WebSocket: it reports back through [`MediaEvents`], which the scenario layer (meeting, live)
//! turns into signals.
//!
//! This crate is the seam only: it compiles without webrtc-rs, libopus or libwebm, so the mesh
//! backend and the meeting rules build light. The server's WebRTC plumbing (peer connections,
//! forwarding, recorder taps) lives in the sfu backend, which the mcu builds on.

pub mod config;
pub mod ids;
pub mod sdp_check;
pub mod seam;

pub use config::{IceServer, WebrtcConfig};
pub use ids::{MemberId, RoomId, StreamId};
pub use seam::*;
