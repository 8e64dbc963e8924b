//! Meeting scenario: rooms (who may enter, who owns them, what members may do), the `room::`
//! and `media::` signals that drive a room's media through the `MediaArchitecture` seam, and
//! 1:1 P2P calls (`session::`). [`modes`] holds the meeting-mode rules (meeting, broadcast,
//! intercom floor control) as a pure state machine; wiring them into rooms and signals comes
//! with the meeting-modes issue.
//!
//! The rules are a state machine with no I/O ([`rules`]); each room is a task that owns its
//! rules, its members' connections and its media room. This crate knows neither how RTP moves
//! (that is the backend's) nor how a WebSocket works (that is taoyao-signal's).

pub mod calls;
pub mod config;
pub mod modes;
pub mod rules;
pub mod signals;

mod room;
mod rooms;

pub use calls::Calls;
pub use config::{CallsConfig, NamedRoom, RecordingConfig, RoomsConfig};
pub use rooms::{Architectures, Rooms};
