//! The bottom of taoyao-rs: what every other crate may rely on and nothing more.
//!
//! - [`config`]: loads a typed config tree in layers (built-in defaults -> a TOML file ->
//!   `TAOYAO__SECTION__KEY` environment variables), rejects unknown keys naming the key and where
//!   it came from, and carries the [`config::Validate`] contract each section implements.
//! - [`code`]: taoyao's protocol code table and the [`code::ErrorCode`] trait every crate's error
//!   enum implements, so that the signaling edge can turn any error into a code and a message.
//! - [`ids`]: id generation (message ids, room and session ids), an instance, not a global.
//! - `log` (feature `logging`): tracing initialisation.
//! - `tls` (feature `tls`): loading PEM certificate and key into rustls, and making development
//!   certificates.
//! - [`shutdown`]: one cancellation signal (SIGINT/SIGTERM or programmatic) every task can await,
//!   and a tracker to wait for tasks to drain.
//!
//! This crate reads files and environment variables only inside [`config::load`] and
//! `log::init`; it knows nothing of WebSockets, rooms or media. The two features are the
//! server's: a library crate that embeds the rules (taoyao-live, the mesh backend) compiles no
//! TLS or subscriber code (`cargo test -p taoyao-boot --all-features` runs every test).

pub mod code;
pub mod config;
pub mod ids;
#[cfg(feature = "logging")]
pub mod log;
pub mod shutdown;
#[cfg(feature = "tls")]
pub mod tls;

pub use code::{Code, ErrorCode};
pub use config::{ConfigError, Invalid, Validate};
pub use ids::IdGenerator;
pub use shutdown::Shutdown;
