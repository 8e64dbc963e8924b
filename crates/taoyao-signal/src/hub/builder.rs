//! [`SignalHubBuilder`]: a hub's parts, checked once (no signal may have two handlers).

use std::collections::HashMap;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, AtomicUsize};

use serde_json::{Value, json};
use taoyao_boot::{IdGenerator, Shutdown};

use super::dispatch::{Dispatch, SignalHandler};
use super::registry::Registry;
use super::{HubInner, SignalHub};
use crate::auth::Authenticator;
use crate::builtin::ClientSignals;
use crate::config::{AuthConfig, SignalConfig};
use crate::observe::SignalObserver;
use crate::presence::{Presence, PresenceScope};

/// Builds a [`SignalHub`].
pub struct SignalHubBuilder {
    config: SignalConfig,
    auth: AuthConfig,
    shutdown: Shutdown,
    ids: Arc<IdGenerator>,
    handlers: Vec<Arc<dyn SignalHandler>>,
    client_config: serde_json::Map<String, Value>,
    observer: Option<Arc<dyn SignalObserver>>,
    presence_scope: Option<Arc<dyn PresenceScope>>,
}

/// Two handlers claimed the same signal.
#[derive(Debug, thiserror::Error)]
#[error("signal {0} has two handlers")]
pub struct DuplicateSignal(pub &'static str);

impl SignalHub {
    pub fn builder(config: SignalConfig, auth: AuthConfig, shutdown: Shutdown) -> SignalHubBuilder {
        SignalHubBuilder {
            config,
            auth,
            shutdown,
            ids: Arc::new(IdGenerator::new()),
            handlers: Vec::new(),
            client_config: serde_json::Map::new(),
            observer: None,
            presence_scope: None,
        }
    }
}

impl SignalHubBuilder {
    /// Shares an id generator with other parts of the server.
    pub fn ids(mut self, ids: Arc<IdGenerator>) -> Self {
        self.ids = ids;
        self
    }

    /// Adds a handler for a signal group.
    pub fn handler(mut self, h: Arc<dyn SignalHandler>) -> Self {
        self.handlers.push(h);
        self
    }

    /// Reports handled signals and refusals to `o` (e.g. the server's metrics).
    pub fn observer(mut self, o: Arc<dyn SignalObserver>) -> Self {
        self.observer = Some(o);
        self
    }

    /// Says who shares a room with whom, for `signal.presence = "rooms"` (a room service
    /// provides it). Without one, `rooms` tells nobody.
    pub fn presence_scope(mut self, s: Arc<dyn PresenceScope>) -> Self {
        self.presence_scope = Some(s);
        self
    }

    /// Adds a field to the `client::config` body pushed after register (e.g. `iceServers`).
    pub fn client_config(mut self, key: &str, value: Value) -> Self {
        self.client_config.insert(key.to_owned(), value);
        self
    }

    pub fn build(self) -> Result<SignalHub, DuplicateSignal> {
        let mut handlers: HashMap<&'static str, Arc<dyn SignalHandler>> = HashMap::new();
        let mut all: Vec<Arc<dyn SignalHandler>> = vec![Arc::new(ClientSignals)];
        all.extend(self.handlers);
        for h in &all {
            for s in h.signals() {
                if handlers.insert(s, h.clone()).is_some() {
                    return Err(DuplicateSignal(s));
                }
            }
        }
        let mut client_config = self.client_config;
        client_config.insert(
            "limits".into(),
            json!({
                "maxMessageBytes": self.config.max_message_bytes,
                "heartbeatTimeoutMs": self.config.heartbeat_timeout_ms,
                // A third of the timeout leaves room for two lost heartbeats.
                "heartbeatIntervalMs": self.config.heartbeat_timeout_ms / 3,
                "requestTimeoutMs": self.config.request_timeout_ms,
            }),
        );
        let presence = Presence::new(self.config.presence, self.presence_scope);
        Ok(SignalHub {
            inner: Arc::new(HubInner {
                presence,
                next_seq: AtomicU64::new(1),
                registry: Registry::new(self.config.max_clients),
                dispatch: Dispatch::new(handlers, all, self.observer),
                config: self.config,
                auth: Authenticator::new(self.auth),
                ids: self.ids,
                shutdown: self.shutdown,
                client_config: Value::Object(client_config),
                next_conn: AtomicU64::new(1),
                open_connections: AtomicUsize::new(0),
            }),
        })
    }
}
