//! taoyao-bench: the load generator and measurement tool (the seed's "taoyao-test"), and the
//! WebRTC client the server's own tests drive real media with.
//!
//! - [`media`]: VP8 / Opus test media made by ffmpeg.
//! - [`peer`]: a webrtc-rs client peer that sends that media and records what it receives.
//! - [`member`]: a room member: signaling WebSocket + publish and subscribe connections.
//! - [`procstat`]: CPU and memory of a process, from /proc.
//! - [`signal`]: a bare signaling connection (requests, notifications, heartbeat).
//! - [`report`]: what a run measured: table, JSON, sweep chart.
//! - [`janus`]: the same media scenarios against Janus (VideoRoom, AudioBridge).
//! - [`scenario`]: the load scenarios, as functions the binary and the smoke tests call.

pub mod janus;
pub mod media;
pub mod member;
pub mod peer;
pub mod procstat;
pub mod report;
pub mod scenario;
pub mod signal;
