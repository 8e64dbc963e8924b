//! The signaling hub: the registry of online clients, the table of signal handlers, and the
//! axum route that turns each WebSocket into a session.
//!
//! Other crates extend the protocol by registering a [`SignalHandler`] for their signal group
//! when the hub is built; the handler table is fixed after that, so dispatch takes no lock.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

use async_trait::async_trait;
use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::ws::{Utf8Bytes, WebSocketUpgrade};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::{Value, json};
use taoyao_boot::{IdGenerator, Shutdown};

use crate::auth::{Authenticator, Credentials, Identity};
use crate::builtin::ClientSignals;
use crate::client::{ClientHandle, ClientInfo, ClientType, Connection};
use crate::config::{AuthConfig, SignalConfig};
use crate::envelope::Message;
use crate::error::SignalError;
use crate::observe::SignalObserver;
use crate::presence::{Presence, PresenceScope};

/// The WebSocket path of the signaling endpoint.
pub const WEBSOCKET_PATH: &str = "/websocket.signal";

/// One request from a registered client, as a handler receives it.
pub struct Request {
    pub hub: SignalHub,
    pub client: ClientHandle,
    pub message: Message,
}

impl Request {
    /// Answers the request with success (for handlers that return [`Reply::Deferred`]).
    pub fn reply(&self, body: Value) -> bool {
        self.hub
            .observe(self.message.signal(), taoyao_boot::Code::Success);
        self.client.send(&self.message.reply(body))
    }

    /// Answers the request with an error (for handlers that return [`Reply::Deferred`]).
    pub fn reply_error(&self, err: &SignalError) -> bool {
        self.hub.observe(self.message.signal(), err.code);
        self.client
            .send(&self.message.reply_error(err.code, err.message.clone()))
    }
}

/// What a handler returns when it succeeds.
#[derive(Debug)]
pub enum Reply {
    /// Answer the request with code 0000 and this body.
    Body(Value),
    /// The handler answers (or has answered) by itself, e.g. after waiting on another client
    /// in a task of its own.
    Deferred,
}

impl Reply {
    pub fn empty() -> Reply {
        Reply::Body(json!({}))
    }
}

/// A group of signals. Requests of one connection are handled in order, one at a time, so a
/// handler that must wait on something slow (another client's answer) should spawn that wait
/// and return [`Reply::Deferred`].
#[async_trait]
pub trait SignalHandler: Send + Sync + 'static {
    /// The signal names this handler answers.
    fn signals(&self) -> Vec<&'static str>;

    async fn handle(&self, req: Request) -> Result<Reply, SignalError>;

    /// A registered client's connection ended (closed, timed out, dropped, or taken over by a
    /// new connection registering the same id). Compare connections with
    /// [`ClientHandle::same_connection`]: when the id was taken over, `client` is the old
    /// connection and the registry already holds the new one.
    async fn client_closed(&self, _hub: &SignalHub, _client: &ClientHandle) {}
}

pub(crate) struct HubInner {
    pub(crate) config: SignalConfig,
    pub(crate) auth: Authenticator,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) shutdown: Shutdown,
    clients: RwLock<HashMap<String, ClientHandle>>,
    handlers: HashMap<&'static str, Arc<dyn SignalHandler>>,
    lifecycle: Vec<Arc<dyn SignalHandler>>,
    pub(crate) client_config: Value,
    observer: Option<Arc<dyn SignalObserver>>,
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
                config: self.config,
                auth: Authenticator::new(self.auth),
                ids: self.ids,
                shutdown: self.shutdown,
                clients: RwLock::new(HashMap::new()),
                handlers,
                lifecycle: all,
                client_config: Value::Object(client_config),
                observer: self.observer,
                next_conn: AtomicU64::new(1),
                open_connections: AtomicUsize::new(0),
            }),
        })
    }
}

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

    /// The axum routes of the signaling endpoint. Serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(&self) -> Router {
        let hub = self.clone();
        Router::new().route(
            WEBSOCKET_PATH,
            get(
                move |ws: WebSocketUpgrade, ConnectInfo(remote): ConnectInfo<SocketAddr>| {
                    let hub = hub.clone();
                    async move { hub.upgrade(ws, remote) }
                },
            ),
        )
    }

    fn upgrade(&self, ws: WebSocketUpgrade, remote: SocketAddr) -> Response {
        let open = self.inner.open_connections.load(Ordering::Relaxed);
        if open >= self.inner.config.max_connections {
            tracing::warn!(open, "refusing a WebSocket: signal.max_connections reached");
            if let Some(o) = &self.inner.observer {
                o.connection_refused();
            }
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many connections",
            )
                .into_response();
        }
        // The WebSocket layer reads up to 4x the limit so that a moderately oversized message is
        // consumed whole and refused cleanly (error, then close 1009); stopping at the frame
        // header would leave its payload unread, and closing a socket with unread data resets
        // it before the client sees why. Larger ones are cut off at the header.
        let hard = self.inner.config.max_message_bytes.saturating_mul(4);
        let hub = self.clone();
        ws.max_message_size(hard)
            .max_frame_size(hard)
            .read_buffer_size(self.inner.config.ws_read_buffer_bytes)
            .on_upgrade(move |socket| {
                let tracked = hub.inner.shutdown.clone();
                tracked.track(crate::session::run(hub, socket, remote))
            })
            .into_response()
    }

    pub fn config(&self) -> &SignalConfig {
        &self.inner.config
    }

    /// Reports an answered request to the observer, under the name in the handler table
    /// (`"unknown"` for a name the hub does not handle, keeping the label set fixed).
    pub(crate) fn observe(&self, signal: &str, code: taoyao_boot::Code) {
        let Some(o) = &self.inner.observer else {
            return;
        };
        let name = if signal == crate::signals::CLIENT_REGISTER {
            crate::signals::CLIENT_REGISTER
        } else {
            self.inner
                .handlers
                .get_key_value(signal)
                .map_or("unknown", |(k, _)| *k)
        };
        o.handled(name, code);
    }

    pub(crate) fn observe_rate_limited(&self) {
        if let Some(o) = &self.inner.observer {
            o.rate_limited();
        }
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

    /// Handles one signal for a caller with no WebSocket (the admin REST API) as if `who` had
    /// sent it over a connection: the same handler, rules and grant checks. The caller is not
    /// put in the registry (it is never online, never a room member by connecting);
    /// notifications a handler sends it are dropped. Returns the answer's body, or its error.
    pub async fn call_as(
        &self,
        who: &Identity,
        signal: &str,
        body: Value,
    ) -> Result<Value, SignalError> {
        let Some(handler) = self.handler(signal).cloned() else {
            let e = SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {signal}"),
            );
            self.observe(signal, e.code);
            return Err(e);
        };
        // A deferred answer arrives on this queue like on a WebSocket; notifications that share
        // it are skipped while waiting (a queue that fills only drops further ones).
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        let conn = Arc::new(Connection {
            serial: self.next_connection(),
            tx,
            closed: tokio_util::sync::CancellationToken::new(),
            close_frame: std::sync::Mutex::new(None),
            pending: std::sync::Mutex::new(HashMap::new()),
            ids: self.ids().clone(),
            // Nobody could answer a server request sent to this caller: one fails at once.
            max_pending: 0,
        });
        let info = ClientInfo {
            client_id: who.client_id.clone(),
            name: who.name.clone().unwrap_or_else(|| who.client_id.clone()),
            client_type: ClientType::Other,
            ip: "api".into(),
            registered_at: crate::auth::now_s() * 1000,
            username: None,
            grants: who.grants.clone(),
        };
        let message = Message::new(self.ids().message_id(), signal, body);
        let id = message.id();
        let req = Request {
            hub: self.clone(),
            client: ClientHandle::new(info, conn, self.inner.next_seq()),
            message,
        };
        match handler.handle(req).await {
            Ok(Reply::Body(b)) => {
                self.observe(signal, taoyao_boot::Code::Success);
                Ok(b)
            }
            Err(e) => {
                self.observe(signal, e.code);
                Err(e)
            }
            Ok(Reply::Deferred) => {
                let wait = async {
                    while let Some(text) = rx.recv().await {
                        if let Ok(m) = Message::parse(text.as_str())
                            && m.is_response()
                            && m.id() == id
                        {
                            return Some(m);
                        }
                    }
                    None
                };
                match tokio::time::timeout(self.request_timeout(), wait).await {
                    Ok(Some(m)) => match m.code {
                        Some(taoyao_boot::Code::Success) | None => Ok(m.body),
                        Some(code) => Err(SignalError::new(
                            code,
                            m.message.unwrap_or_else(|| code.meaning().to_owned()),
                        )),
                    },
                    Ok(None) => Err(SignalError::system(format!("{signal} gave no answer"))),
                    Err(_) => Err(SignalError::timeout(format!(
                        "{signal} did not answer within {} ms",
                        self.request_timeout().as_millis()
                    ))),
                }
            }
        }
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

    pub(crate) fn handler(&self, signal: &str) -> Option<&Arc<dyn SignalHandler>> {
        self.inner.handlers.get(signal)
    }

    /// Every signal name with a handler (register is answered by the session itself).
    pub fn signals(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.inner.handlers.keys().copied().collect();
        v.sort_unstable();
        v
    }

    pub fn client(&self, id: &str) -> Option<ClientHandle> {
        self.inner
            .clients
            .read()
            .expect("clients lock")
            .get(id)
            .cloned()
    }

    /// Every online client, in no particular order.
    pub fn clients(&self) -> Vec<ClientHandle> {
        self.inner
            .clients
            .read()
            .expect("clients lock")
            .values()
            .cloned()
            .collect()
    }

    /// Open WebSocket connections, registered or not.
    pub fn connection_count(&self) -> usize {
        self.inner.open_connections.load(Ordering::Relaxed)
    }

    pub fn client_count(&self) -> usize {
        self.inner.clients.read().expect("clients lock").len()
    }

    /// Puts a client into the registry. Returns the connection it replaced, if the id was
    /// online, or an error if the server is full.
    pub(crate) fn insert(&self, client: ClientHandle) -> Result<Option<ClientHandle>, SignalError> {
        let mut map = self.inner.clients.write().expect("clients lock");
        let max = self.inner.config.max_clients;
        if !map.contains_key(client.id()) && map.len() >= max {
            return Err(SignalError::forbidden(format!(
                "the server is full ({max} clients online)"
            )));
        }
        Ok(map.insert(client.id().to_owned(), client))
    }

    /// Removes the client if the registry still holds this connection of it.
    pub(crate) fn remove(&self, client: &ClientHandle) -> bool {
        let mut map = self.inner.clients.write().expect("clients lock");
        match map.get(client.id()) {
            Some(current) if current.same_connection(client) => {
                map.remove(client.id());
                true
            }
            _ => false,
        }
    }

    pub(crate) async fn client_closed(&self, client: &ClientHandle) {
        for h in &self.inner.lifecycle {
            h.client_closed(self, client).await;
        }
    }

    /// Sends a notification to every online client but `except`; the message is serialized
    /// once. Returns how many clients it was queued for.
    pub fn broadcast(&self, signal: &str, body: Value, except: Option<&str>) -> usize {
        let msg = Message::new(self.inner.ids.message_id(), signal, body);
        let text: Utf8Bytes = msg.to_json().into();
        let clients = self.clients();
        clients
            .iter()
            .filter(|c| Some(c.id()) != except)
            .filter(|c| c.send_text(text.clone()))
            .count()
    }

    /// Sends a notification to one client.
    pub fn notify(&self, to: &str, signal: &str, body: Value) -> Result<(), SignalError> {
        let client = self
            .client(to)
            .ok_or_else(|| SignalError::not_found(format!("client {to} is not online")))?;
        client.notify(signal, body);
        Ok(())
    }
}
