//! Meeting scenario: rooms (who may enter, who owns them, what members may do), the `room::`
//! and `media::` signals that drive a room's media through the `MediaArchitecture` seam, and
//! 1:1 P2P calls (`session::`). [`modes`] holds the meeting-mode rules (meeting, broadcast,
//! intercom floor control) as a pure state machine; the room task also applies the live rules
//! of taoyao-live (`live::` signals): a live is a room put on air by its owner.
//!
//! The rules are a state machine with no I/O ([`rules`]); each room is a task that owns its
//! rules, its members' connections and its media room. This crate knows neither how RTP moves
//! (that is the backend's) nor how a WebSocket works (that is taoyao-signal's).

pub mod calls;
pub mod config;
pub mod download;
pub mod events;
pub mod modes;
pub mod rules;
pub mod signals;

mod room;
mod rooms;

pub use calls::Calls;
pub use config::{CallsConfig, NamedRoom, RecordingConfig, RoomsConfig};
pub use download::{DownloadError, DownloadLinks};
pub use events::{RoomEvent, RoomEventKind, RoomObserver};
pub use modes::MeetingMode;
pub use rooms::{Architectures, Rooms};
