//! The signaling hub: what every connection of a server shares. It is put together from parts,
//! each in its own module:
//!
//! - [`registry`]: the online clients by id (register, replace, remove, broadcast);
//! - [`dispatch`]: the signal handler table, fixed once built (so dispatch takes no lock), and
//!   the one path by which a request reaches its handler and its answer is counted;
//! - [`builder`]: [`SignalHubBuilder`], which checks that no signal has two handlers;
//! - [`route`]: the axum route that upgrades `/websocket.signal` and hands each socket to
//!   [`SignalHub::serve`] (the session, `session.rs`, is generic over the socket's sink and
//!   stream, so it runs and is tested without one).
//!
//! Other crates extend the protocol by registering a [`SignalHandler`] for their signal group
//! when the hub is built.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::time::Duration;

use serde_json::Value;
use taoyao_boot::{IdGenerator, Shutdown};

use crate::auth::{Authenticator, Credentials, Identity};
use crate::config::SignalConfig;
use crate::error::SignalError;
use crate::presence::Presence;

pub mod builder;
pub mod dispatch;
pub mod registry;
pub mod route;

pub use builder::{DuplicateSignal, SignalHubBuilder};
pub use dispatch::{Reply, Request, SignalHandler};
pub use route::WEBSOCKET_PATH;

use dispatch::Dispatch;
use registry::Registry;

pub(crate) struct HubInner {
    pub(crate) config: SignalConfig,
    pub(crate) auth: Authenticator,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) shutdown: Shutdown,
    pub(crate) registry: Registry,
    pub(crate) dispatch: Dispatch,
    /// The `client::config` body pushed after register.
    pub(crate) client_config: Value,
    next_conn: AtomicU64,
    /// Orders registrations and presence events (a client hears only of later events).
    next_seq: AtomicU64,
    pub(crate) presence: Presence,
    pub(crate) open_connections: AtomicUsize,
}

impl HubInner {
    pub(crate) fn next_seq(&self) -> u64 {
        self.next_seq.fetch_add(1, Ordering::Relaxed)
    }
}

/// The shared signaling state; clone it freely.
#[derive(Clone)]
pub struct SignalHub {
    pub(crate) inner: Arc<HubInner>,
}

impl SignalHub {
    pub fn config(&self) -> &SignalConfig {
        &self.inner.config
    }

    pub fn ids(&self) -> &Arc<IdGenerator> {
        &self.inner.ids
    }

    pub(crate) fn next_connection(&self) -> u64 {
        self.inner.next_conn.fetch_add(1, Ordering::Relaxed)
    }

    /// The default timeout for server-to-client requests.
    pub fn request_timeout(&self) -> Duration {
        Duration::from_millis(self.inner.config.request_timeout_ms)
    }

    /// Open connections, registered or not.
    pub fn connection_count(&self) -> usize {
        self.inner.open_connections.load(Ordering::Relaxed)
    }

    /// Checks an access token exactly as `client::register` does (signature, expiry, one-time
    /// `jti`), and nothing else: a password login or the open mode never yields an identity
    /// here, so an HTTP API that accepts only this is closed when `auth.token_secret` is unset.
    pub fn authenticate_token(&self, token: &str) -> Result<Identity, SignalError> {
        self.inner.auth.authenticate(&Credentials {
            client_id: None,
            token: Some(token),
            username: None,
            password: None,
        })
    }
}
