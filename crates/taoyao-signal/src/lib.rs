//! The taoyao signaling core: the message envelope and code table, the registry of online
//! clients, request/response correlation in both directions, and the WebSocket session at
//! `/websocket.signal` (axum).
//!
//! Other crates add signal groups (rooms, media, live ...) by implementing [`SignalHandler`] and
//! registering it on the [`SignalHubBuilder`]. This crate knows nothing of rooms' rules or of
//! how RTP moves; it must stay usable on its own as an embedded signaling server.

pub mod auth;
pub mod client;
pub mod config;
pub mod envelope;
pub mod error;
pub mod fields;
pub mod hub;
pub mod observe;
pub mod presence;
pub mod signals;

mod builtin;
mod session;

pub use auth::{Authenticator, Claims, Grants, Identity, issue_token};
pub use client::{ClientHandle, ClientInfo, ClientType};
pub use config::{AuthConfig, SignalConfig, UserConfig};
pub use envelope::{Message, PROTOCOL_VERSION, ParseError};
pub use error::SignalError;
pub use hub::{
    DuplicateSignal, Reply, Request, SignalHandler, SignalHub, SignalHubBuilder, WEBSOCKET_PATH,
};
pub use observe::SignalObserver;
pub use presence::{PresenceMode, PresenceScope};
pub use taoyao_boot::Code;
