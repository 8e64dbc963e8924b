//! The media seam of taoyao-rs: the `MediaArchitecture` trait that the mesh, sfu and mcu backends
//! implement (arriving with the Rooms issue), and the WebRTC settings they share.
//!
//! This crate knows rooms and members only as ids and never formats a signaling message: a
//! backend reports back through events that the scenario layer turns into signals.

pub mod config;

pub use config::{IceServer, WebrtcConfig};
