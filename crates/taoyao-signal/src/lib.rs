//! The taoyao signaling core: the message envelope and code table, the registry of online
//! clients, request/response correlation in both directions, and the WebSocket session at
//! `/websocket.signal` (axum).
//!
//! Other crates add signal groups (rooms, media, live ...) by implementing [`SignalHandler`] and
//! registering it on the [`SignalHubBuilder`]. This crate knows nothing of rooms' rules or of
//! how RTP moves; it must stay usable on its own as an embedded signaling server. What it needs
//! to know of rooms (who shares one with whom, for `signal.presence = "rooms"`) a room service
//! tells it through a [`PresenceScope`].
//!
//! A signal group of one signal, served with everything `client::` on `/websocket.signal`
//! (`examples/signal_only.rs` is the runnable version):
//!
//! ```
//! use std::sync::Arc;
//! use async_trait::async_trait;
//! use serde_json::json;
//! use taoyao_signal::{AuthConfig, Reply, Request, SignalConfig, SignalError, SignalHandler, SignalHub};
//!
//! struct Echo;
//!
//! #[async_trait]
//! impl SignalHandler for Echo {
//!     fn signals(&self) -> Vec<&'static str> {
//!         vec!["echo::say"]
//!     }
//!     async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
//!         let text = taoyao_signal::fields::required_str(&req.message.body, "text")?;
//!         Ok(Reply::Body(json!({ "text": text, "from": req.client.id() })))
//!     }
//! }
//!
//! let hub = SignalHub::builder(SignalConfig::default(), AuthConfig::default(), Default::default())
//!     .handler(Arc::new(Echo))
//!     .build()
//!     .expect("no signal has two handlers");
//! assert!(hub.signals().contains(&"echo::say"));
//! assert!(hub.signals().contains(&"client::list"));
//! // Serve it: axum::serve(listener, hub.router().into_make_service_with_connect_info::<SocketAddr>())
//! let _routes: axum::Router = hub.router();
//! ```

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
