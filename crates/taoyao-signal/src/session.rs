//! One signaling connection, from upgrade to cleanup.
//!
//! Two tasks: this one reads frames and handles requests in order; a writer drains the
//! connection's outbound queue into the socket. Closing is one path for every reason (client
//! asked, replaced, timed out, too slow, server shutdown): record the close frame, cancel the
//! connection's token; the writer flushes what is queued (so "why" reaches the client before
//! the close), sends the close frame, and the reader cleans up.
//!
//! The session knows the socket only as a sink and a stream of WebSocket messages, so the
//! route hands it an upgraded socket's halves and the tests at the end of this file drive it
//! over channels, with paused time.

use std::net::SocketAddr;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use axum::extract::ws::{CloseFrame, Message as WsMessage, Utf8Bytes};
use futures_util::{Sink, SinkExt, Stream, StreamExt};
use serde_json::{Value, json};
use taoyao_boot::Code;
use tokio::sync::mpsc;
use tokio::time::Instant;

use crate::auth::Credentials;
use crate::client::{ClientHandle, ClientInfo, ClientType, Connection};
use crate::envelope::Message;
use crate::error::SignalError;
use crate::hub::SignalHub;
use crate::signals::{self, close};

/// Longest client id and display name accepted at register.
const MAX_ID_LEN: usize = 64;
/// How long one socket write may take before the client is treated as gone.
const WRITE_TIMEOUT: Duration = Duration::from_secs(10);

/// Counts a connection as open for as long as it lives.
struct OpenGuard(SignalHub);

impl Drop for OpenGuard {
    fn drop(&mut self) {
        self.0
            .inner
            .open_connections
            .fetch_sub(1, Ordering::Relaxed);
    }
}

type Limiter = governor::DefaultDirectRateLimiter;

impl SignalHub {
    /// Serves one signaling connection over any transport that carries WebSocket messages:
    /// `stream` yields what the client sends, `sink` takes what the server sends (text frames,
    /// then one close frame). Returns when the connection is over and cleaned up (the client
    /// offline, the room services told). [`SignalHub::router`] calls it for every upgraded
    /// socket; an embedder with a transport of its own can call it directly. Limits, timeouts
    /// and shutdown apply as on the route, except `signal.max_connections`, which the route
    /// checks before upgrading.
    pub async fn serve<Si, St>(&self, sink: Si, stream: St, remote: SocketAddr)
    where
        Si: Sink<WsMessage> + Unpin + Send + 'static,
        St: Stream<Item = Result<WsMessage, axum::Error>> + Unpin + Send,
    {
        let tracked = self.inner.shutdown.clone();
        tracked.track(run(self.clone(), sink, stream, remote)).await
    }
}

async fn run<Si, St>(hub: SignalHub, sink: Si, mut stream: St, remote: SocketAddr)
where
    Si: Sink<WsMessage> + Unpin + Send + 'static,
    St: Stream<Item = Result<WsMessage, axum::Error>> + Unpin + Send,
{
    hub.inner.open_connections.fetch_add(1, Ordering::Relaxed);
    let _open = OpenGuard(hub.clone());
    let cfg = hub.config().clone();
    let (tx, rx) = mpsc::channel(cfg.outbound_queue);
    let conn = Arc::new(Connection::new(
        hub.next_connection(),
        tx,
        hub.ids().clone(),
        cfg.max_pending_requests,
    ));
    tracing::debug!(conn = conn.serial, %remote, "connection open");
    let writer = tokio::spawn(write_loop(sink, rx, conn.clone()));
    let nz = |v: u32| std::num::NonZeroU32::new(v).unwrap_or(std::num::NonZeroU32::MIN);
    let quota = governor::Quota::per_second(nz(cfg.rate_per_sec)).allow_burst(nz(cfg.rate_burst));
    let mut session = Session {
        hub,
        conn: conn.clone(),
        remote,
        client: None,
        limiter: Limiter::direct(quota),
        refused_in_a_row: 0,
        unread: false,
    };
    session.read_loop(&mut stream).await;
    session.cleanup().await;
    conn.closed.cancel();
    // The writer ends by itself once the token is cancelled; a socket that cannot take the
    // close frame is given up after the write timeout.
    let _ = tokio::time::timeout(WRITE_TIMEOUT * 2, writer).await;
    if session.unread {
        // A frame was refused at its header: its payload is still arriving, unread. Closing
        // the socket now would answer it with a TCP reset, which can destroy the close frame
        // before the client reads it; so the socket stays open (and unread) a moment longer.
        let linger = Duration::from_millis(session.hub.config().oversize_linger_ms);
        let shutdown = session.hub.inner.shutdown.clone();
        tokio::select! {
            _ = tokio::time::sleep(linger) => {}
            _ = shutdown.triggered() => {}
        }
    }
    drop(stream);
    tracing::debug!(conn = conn.serial, "connection closed");
}

async fn write_loop<Si>(mut sink: Si, mut rx: mpsc::Receiver<Utf8Bytes>, conn: Arc<Connection>)
where
    Si: Sink<WsMessage> + Unpin,
{
    loop {
        tokio::select! {
            biased;
            next = rx.recv() => {
                let Some(text) = next else { break };
                if !write(&mut sink, WsMessage::Text(text)).await {
                    conn.closed.cancel();
                    return;
                }
            }
            _ = conn.closed.cancelled() => break,
        }
    }
    // Flush what was queued before the close (e.g. the message saying why), then close.
    while let Ok(text) = rx.try_recv() {
        if !write(&mut sink, WsMessage::Text(text)).await {
            return;
        }
    }
    let frame = conn
        .close_frame
        .lock()
        .expect("close_frame lock")
        .take()
        .unwrap_or((close::NORMAL, String::new()));
    let close = WsMessage::Close(Some(CloseFrame {
        code: frame.0,
        reason: frame.1.into(),
    }));
    if write(&mut sink, close).await {
        let _ = tokio::time::timeout(WRITE_TIMEOUT, sink.close()).await;
    }
}

async fn write<Si: Sink<WsMessage> + Unpin>(sink: &mut Si, msg: WsMessage) -> bool {
    matches!(
        tokio::time::timeout(WRITE_TIMEOUT, sink.send(msg)).await,
        Ok(Ok(()))
    )
}

struct Session {
    hub: SignalHub,
    conn: Arc<Connection>,
    remote: SocketAddr,
    client: Option<ClientHandle>,
    limiter: Limiter,
    refused_in_a_row: u32,
    /// A frame was refused at its header, so its payload was never read.
    unread: bool,
}

/// What a failed read means for the client: the close code, why, and whether the frame's
/// payload was left unread (refused at its header).
fn classify_read_error(err: axum::Error, max: usize) -> (u16, String, bool) {
    use tungstenite::error::{CapacityError, Error as WsError};
    match err.into_inner().downcast::<WsError>() {
        Ok(e) => match *e {
            WsError::Capacity(CapacityError::MessageTooLong { size, .. }) => (
                close::TOO_BIG,
                format!("message of {size} bytes is over the limit of {max} bytes"),
                true,
            ),
            WsError::Capacity(_) => (
                close::TOO_BIG,
                format!("message is over the limit of {max} bytes"),
                true,
            ),
            WsError::Utf8(_) => (
                close::INVALID_DATA,
                "text frame is not valid UTF-8".to_owned(),
                false,
            ),
            other => (1002, format!("WebSocket protocol error: {other}"), false),
        },
        Err(other) => (1002, format!("WebSocket error: {other}"), false),
    }
}

impl Session {
    fn deadline(&self, last_activity: Instant, connected: Instant) -> Instant {
        let cfg = self.hub.config();
        match self.client {
            Some(_) => last_activity + Duration::from_millis(cfg.heartbeat_timeout_ms),
            None => connected + Duration::from_millis(cfg.register_timeout_ms),
        }
    }

    async fn read_loop<St>(&mut self, stream: &mut St)
    where
        St: Stream<Item = Result<WsMessage, axum::Error>> + Unpin,
    {
        let connected = Instant::now();
        let mut last_activity = connected;
        let shutdown = self.hub.inner.shutdown.clone();
        loop {
            let deadline = self.deadline(last_activity, connected);
            let frame = tokio::select! {
                f = tokio::time::timeout_at(deadline, stream.next()) => f,
                _ = self.conn.closed.cancelled() => return,
                _ = shutdown.triggered() => {
                    self.notify(signals::CLIENT_CLOSE, json!({"reason": "server shutting down"}));
                    self.conn.close(close::GOING_AWAY, "server shutting down");
                    return;
                }
            };
            let frame = match frame {
                Err(_elapsed) => {
                    let (code, what) = match self.client {
                        Some(_) => (Code::Timeout, "heartbeat timeout: nothing received in time"),
                        None => (
                            Code::Unauthorized,
                            "register timeout: client::register not sent in time",
                        ),
                    };
                    self.platform_error(0, code, what);
                    self.conn.close(close::POLICY, what);
                    return;
                }
                Ok(None) => return,
                Ok(Some(Err(e))) => {
                    let (ws_code, why, unread) =
                        classify_read_error(e, self.hub.config().max_message_bytes);
                    self.unread = unread;
                    self.platform_error(0, Code::BadMessage, &why);
                    self.conn.close(ws_code, &why);
                    return;
                }
                Ok(Some(Ok(f))) => f,
            };
            last_activity = Instant::now();
            let size = match &frame {
                WsMessage::Text(t) => t.len(),
                WsMessage::Binary(b) => b.len(),
                _ => 0,
            };
            let max = self.hub.config().max_message_bytes;
            if size > max {
                let why = format!("message of {size} bytes is over the limit of {max} bytes");
                self.platform_error(0, Code::BadMessage, &why);
                self.conn.close(close::TOO_BIG, &why);
                return;
            }
            if matches!(frame, WsMessage::Text(_) | WsMessage::Binary(_))
                && !self.within_rate(&frame)
            {
                if self.refused_in_a_row >= self.hub.config().rate_close_after {
                    let why = "rate limit exceeded: too many messages";
                    self.platform_error(0, Code::Forbidden, why);
                    self.conn.close(close::POLICY, why);
                    return;
                }
                continue;
            }
            match frame {
                WsMessage::Text(text) => self.on_text(text.as_str()).await,
                WsMessage::Binary(_) => self.platform_error(
                    0,
                    Code::BadMessage,
                    "binary frames are not supported: send JSON text frames",
                ),
                WsMessage::Close(_) => return,
                WsMessage::Ping(_) | WsMessage::Pong(_) => {}
            }
        }
    }

    /// Takes a token from the bucket; a message over the rate is answered with 3403 (its own
    /// id when it parses) and not handled.
    fn within_rate(&mut self, frame: &WsMessage) -> bool {
        if self.limiter.check().is_ok() {
            self.refused_in_a_row = 0;
            return true;
        }
        self.refused_in_a_row += 1;
        self.hub.observe_rate_limited();
        let why = format!(
            "rate limited: more than {} messages per second (burst {})",
            self.hub.config().rate_per_sec,
            self.hub.config().rate_burst
        );
        match frame {
            WsMessage::Text(t) => match Message::parse(t.as_str()) {
                Ok(m) if !m.is_response() => self.send(&m.reply_error(Code::Forbidden, why)),
                _ => self.platform_error(0, Code::Forbidden, &why),
            },
            _ => self.platform_error(0, Code::Forbidden, &why),
        }
        false
    }

    fn send(&self, msg: &Message) {
        self.conn.send(msg);
    }

    fn notify(&self, signal: &str, body: Value) {
        self.send(&Message::new(self.hub.ids().message_id(), signal, body));
    }

    fn platform_error(&self, id: u64, code: Code, message: &str) {
        let mut m = Message::new(id, signals::PLATFORM_ERROR, json!({}));
        m.code = Some(code);
        m.message = Some(message.to_owned());
        self.send(&m);
    }

    async fn on_text(&mut self, text: &str) {
        let msg = match Message::parse(text) {
            Ok(m) => m,
            Err(e) => {
                self.platform_error(e.id.unwrap_or(0), Code::BadMessage, &e.reason);
                return;
            }
        };
        // A message with a code is a response; if a server request waits for it, it is done.
        let msg = if msg.is_response() {
            match self.conn.resolve(msg) {
                Ok(()) => return,
                Err(msg) => msg,
            }
        } else {
            msg
        };
        if msg.signal() == signals::CLIENT_REGISTER {
            match self.register(&msg) {
                Ok(()) => self.hub.observe(signals::CLIENT_REGISTER, Code::Success),
                Err(e) => {
                    self.hub.observe(signals::CLIENT_REGISTER, e.code);
                    self.send(&msg.reply_error(e.code, e.message));
                }
            }
            return;
        }
        let Some(client) = self.client.clone() else {
            self.send(&msg.reply_error(
                Code::Unauthorized,
                "not registered: send client::register first",
            ));
            return;
        };
        // What the answer needs of the request: its id and signal, not its body.
        let head = Message::new(msg.id(), msg.signal(), Value::Null);
        match self.hub.dispatch(client, msg).await {
            Some(Ok(body)) => self.send(&head.reply(body)),
            Some(Err(e)) => self.send(&head.reply_error(e.code, e.message)),
            // The handler answers by itself.
            None => {}
        }
    }

    fn register(&mut self, msg: &Message) -> Result<(), SignalError> {
        if let Some(c) = &self.client {
            return Err(SignalError::bad_request(format!(
                "already registered as {} on this connection",
                c.id()
            )));
        }
        let text = |key: &str, required: bool| -> Result<Option<String>, SignalError> {
            match msg.body.get(key) {
                None | Some(Value::Null) if !required => Ok(None),
                None | Some(Value::Null) => {
                    Err(SignalError::bad_request(format!("{key} is required")))
                }
                Some(Value::String(s)) => Ok(Some(s.clone())),
                Some(_) => Err(SignalError::bad_request(format!("{key} must be a string"))),
            }
        };
        let body_id = text("clientId", false)?;
        let token = text("token", false)?;
        let username = text("username", false)?;
        let password = text("password", false)?;
        let identity = self.hub.inner.auth.authenticate(&Credentials {
            client_id: body_id.as_deref(),
            token: token.as_deref(),
            username: username.as_deref(),
            password: password.as_deref(),
        })?;
        let client_id = identity.client_id;
        check_name("clientId", &client_id)?;
        let name = text("name", false)?
            .or(identity.name)
            .unwrap_or_else(|| client_id.clone());
        check_name("name", &name)?;
        let client_type = match text("clientType", false)? {
            None => ClientType::Web,
            Some(t) => ClientType::parse(&t).ok_or_else(|| {
                SignalError::bad_request(format!(
                    "unknown clientType {t:?}: one of WEB, MOBILE, CAMERA, MEDIA, OTHER"
                ))
            })?,
        };
        let info = ClientInfo {
            client_id,
            name,
            client_type,
            ip: self.remote.ip().to_string(),
            registered_at: SystemTime::now()
                .duration_since(UNIX_EPOCH)
                .map(|d| d.as_millis() as u64)
                .unwrap_or(0),
            username: identity.username,
            grants: identity.grants,
        };
        let handle = ClientHandle::new(info, self.conn.clone(), self.hub.inner.next_seq());
        let replaced = self.hub.insert(handle.clone())?;
        if let Some(old) = &replaced {
            tracing::info!(
                client = handle.id(),
                "client id registered again: replacing the old connection"
            );
            old.notify(
                signals::CLIENT_CLOSE,
                json!({"reason": "replaced: this client id registered from another connection"}),
            );
            old.close(close::REPLACED, "replaced by a new connection");
        }
        self.client = Some(handle.clone());
        self.send(&msg.reply(handle.status_json()));
        self.notify(signals::CLIENT_CONFIG, self.hub.inner.client_config.clone());
        if replaced.is_none() {
            self.hub.inner.presence.online(&self.hub, &handle);
        }
        tracing::info!(client = handle.id(), ip = %self.remote.ip(), "client registered");
        Ok(())
    }

    async fn cleanup(&mut self) {
        // Waiting server requests fail at once ("client left") instead of timing out.
        self.conn.pending.lock().expect("pending lock").clear();
        let Some(client) = self.client.take() else {
            return;
        };
        let removed = self.hub.remove(&client);
        if removed {
            // Queued before the room services hear of it: `presence = rooms` reads the rooms
            // the client is still in. (When the id lives on in a newer connection, it is
            // still online: nobody is told.)
            tracing::info!(client = client.id(), "client offline");
            self.hub.inner.presence.offline(&self.hub, &client);
        }
        self.hub.client_closed(&client).await;
    }
}

fn check_name(key: &str, v: &str) -> Result<(), SignalError> {
    if v.is_empty() || v.chars().count() > MAX_ID_LEN {
        return Err(SignalError::bad_request(format!(
            "{key} must be 1 to {MAX_ID_LEN} characters"
        )));
    }
    if v.chars().any(char::is_control) {
        return Err(SignalError::bad_request(format!(
            "{key} must not contain control characters"
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests;
