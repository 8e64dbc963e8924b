//! Meeting scenario: rooms (who may enter, who owns them, what members may do), the `room::`
//! and `media::` signals that drive a room's media through the `MediaArchitecture` seam, and
//! 1:1 P2P calls (`session::`). [`modes`] holds the meeting-mode rules (meeting, broadcast,
//! intercom floor control) as a pure state machine; the room task also applies the live rules
//! of taoyao-live (`live::` signals): a live is a room put on air by its owner.
//!
//! The rules are a state machine with no I/O ([`rules`]); each room is a task that owns its
//! rules, its members' connections and its media room. This crate knows neither how RTP moves
//! (that is the backend's) nor how a WebSocket works (that is taoyao-signal's).
//!
//! A room service is [`Rooms`] registered on a taoyao-signal hub, with the backends it offers
//! (here mesh alone; `examples/mesh_rooms.rs` serves it):
//!
//! ```no_run
//! use std::sync::Arc;
//! use taoyao_boot::{IdGenerator, Shutdown};
//! use taoyao_meeting::{RecordingConfig, Rooms, RoomsConfig};
//! use taoyao_signal::{AuthConfig, SignalConfig, SignalHub};
//!
//! # async fn run() -> Result<(), Box<dyn std::error::Error>> {
//! let (shutdown, ids) = (Shutdown::new(), Arc::new(IdGenerator::new()));
//! let rooms = Rooms::new(
//!     RoomsConfig::default(), // mesh by default
//!     taoyao_live::LiveConfig::default(),
//!     RecordingConfig::default(),
//!     vec![Arc::new(taoyao_webrtc_mesh::Mesh)],
//!     ids.clone(),
//!     shutdown.clone(),
//! )?;
//! let hub = SignalHub::builder(SignalConfig::default(), AuthConfig::default(), shutdown)
//!     .ids(ids)
//!     .handler(Arc::new(rooms))
//!     .build()
//!     .map_err(|d| format!("{} handled twice", d.0))?;
//! let app = hub.router(); // serve with axum, with ConnectInfo<SocketAddr>
//! # let _ = app; Ok(()) }
//! ```

pub mod calls;
pub mod config;
pub mod download;
pub mod events;
pub mod modes;
pub mod rules;
pub mod signals;

mod member_index;
mod room;
mod rooms;

pub use calls::Calls;
pub use config::{CallsConfig, NamedRoom, RecordingConfig, RoomsConfig};
pub use download::{DownloadError, DownloadLinks};
pub use events::{RoomEvent, RoomEventKind, RoomObserver};
pub use modes::MeetingMode;
pub use rooms::{Architectures, Rooms};
