//! taoyao-bench: the load generator and measurement tool (the seed's "taoyao-test"), and the
//! WebRTC client the server's own tests drive real media with.
//!
//! - [`media`]: VP8 / Opus test media made by ffmpeg.
//! - [`peer`]: a webrtc-rs client peer that sends that media and records what it receives.
//! - [`member`]: a room member: signaling WebSocket + publish and subscribe connections.
//! - [`procstat`]: CPU and memory of a process, from /proc.

pub mod media;
pub mod member;
pub mod peer;
pub mod procstat;
