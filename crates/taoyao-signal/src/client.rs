//! A registered client as the rest of the server sees it: a cheap, cloneable handle holding its
//! identity and the sending half of its connection. Sending never blocks: a client whose queue
//! is full is too slow to keep up and is closed rather than allowed to hold others up.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use taoyao_boot::{Code, IdGenerator};
use tokio::sync::{mpsc, oneshot};
use tokio_util::sync::CancellationToken;

use crate::auth::Grants;
use crate::envelope::Message;
use crate::error::SignalError;
use crate::signals::close;

/// What kind of device a client is (taoyao's clientType).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum ClientType {
    Web,
    Mobile,
    Camera,
    Media,
    Other,
}

impl ClientType {
    pub const ALL: [ClientType; 5] = [
        ClientType::Web,
        ClientType::Mobile,
        ClientType::Camera,
        ClientType::Media,
        ClientType::Other,
    ];

    pub fn parse(s: &str) -> Option<ClientType> {
        Self::ALL.into_iter().find(|t| t.as_str() == s)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            ClientType::Web => "WEB",
            ClientType::Mobile => "MOBILE",
            ClientType::Camera => "CAMERA",
            ClientType::Media => "MEDIA",
            ClientType::Other => "OTHER",
        }
    }
}

/// Who a client is, fixed at register time.
#[derive(Debug, Clone, PartialEq, Eq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct ClientInfo {
    pub client_id: String,
    pub name: String,
    pub client_type: ClientType,
    /// The remote address of the WebSocket connection.
    pub ip: String,
    /// Unix time in milliseconds.
    pub registered_at: u64,
    /// The login used, when password login is on.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    /// What the client may do (from its token, or full rights for a password / open login).
    pub grants: Grants,
}

/// The sending side of one WebSocket connection, shared by the session and the client handle.
pub(crate) struct Connection {
    pub(crate) serial: u64,
    pub(crate) tx: mpsc::Sender<Utf8Bytes>,
    /// Cancelled to close the connection; the writer flushes what is queued, then sends the
    /// close frame recorded in `close_frame`.
    pub(crate) closed: CancellationToken,
    pub(crate) close_frame: Mutex<Option<(u16, String)>>,
    pub(crate) pending: Mutex<HashMap<u64, oneshot::Sender<Message>>>,
    pub(crate) ids: Arc<IdGenerator>,
    pub(crate) max_pending: usize,
}

impl Connection {
    pub(crate) fn new(
        serial: u64,
        tx: mpsc::Sender<Utf8Bytes>,
        ids: Arc<IdGenerator>,
        max_pending: usize,
    ) -> Connection {
        Connection {
            serial,
            tx,
            closed: CancellationToken::new(),
            close_frame: Mutex::new(None),
            pending: Mutex::new(HashMap::new()),
            ids,
            max_pending,
        }
    }

    pub(crate) fn send_text(&self, text: Utf8Bytes) -> bool {
        match self.tx.try_send(text) {
            Ok(()) => true,
            Err(mpsc::error::TrySendError::Full(_)) => {
                tracing::warn!(
                    conn = self.serial,
                    "client too slow: outbound queue full, closing"
                );
                self.close(close::POLICY, "too slow to read messages");
                false
            }
            Err(mpsc::error::TrySendError::Closed(_)) => false,
        }
    }

    pub(crate) fn send(&self, msg: &Message) -> bool {
        self.send_text(msg.to_json().into())
    }

    /// Closes the connection with this WebSocket close code (the first reason given wins).
    pub(crate) fn close(&self, code: u16, reason: &str) {
        {
            let mut frame = self.close_frame.lock().expect("close_frame lock");
            if frame.is_none() {
                *frame = Some((code, reason.to_owned()));
            }
        }
        self.closed.cancel();
    }

    /// Hands a response to the server request waiting for it; false if none waits.
    pub(crate) fn resolve(&self, msg: Message) -> Result<(), Message> {
        let waiter = self.pending.lock().expect("pending lock").remove(&msg.id());
        match waiter {
            Some(tx) => {
                let _ = tx.send(msg);
                Ok(())
            }
            None => Err(msg),
        }
    }
}

/// A registered client. Clone freely; the connection closes when its session ends, not when
/// handles drop.
#[derive(Clone)]
pub struct ClientHandle {
    info: Arc<ClientInfo>,
    conn: Arc<Connection>,
    status: Arc<Mutex<Value>>,
    /// Its place in the hub's order of registrations and presence events.
    seq: u64,
}

impl std::fmt::Debug for ClientHandle {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClientHandle")
            .field("client_id", &self.info.client_id)
            .field("conn", &self.conn.serial)
            .finish()
    }
}

impl ClientHandle {
    pub(crate) fn new(info: ClientInfo, conn: Arc<Connection>, seq: u64) -> Self {
        ClientHandle {
            info: Arc::new(info),
            conn,
            status: Arc::new(Mutex::new(json!({}))),
            seq,
        }
    }

    /// A client whose messages go to a channel instead of a WebSocket, registered in no hub:
    /// for driving a handler or a room without a socket (tests, in-process clients). It holds
    /// `queue` messages before it counts as too slow (and is closed, like a socket's); requests
    /// the server sends it fail at once, since nothing would answer them.
    pub fn over_channel(
        info: ClientInfo,
        ids: Arc<IdGenerator>,
        queue: usize,
    ) -> (ClientHandle, mpsc::Receiver<Utf8Bytes>) {
        // Apart from the hubs' serials (which count from 1), for logs.
        static NEXT: std::sync::atomic::AtomicU64 = std::sync::atomic::AtomicU64::new(1 << 62);
        let (tx, rx) = mpsc::channel(queue.max(1));
        let serial = NEXT.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let conn = Arc::new(Connection::new(serial, tx, ids, 0));
        // Registered in no hub: no place in its order of registrations.
        (ClientHandle::new(info, conn, 0), rx)
    }

    /// When it registered, in the hub's order of registrations and presence events.
    pub(crate) fn registered_seq(&self) -> u64 {
        self.seq
    }

    pub fn id(&self) -> &str {
        &self.info.client_id
    }

    pub fn info(&self) -> &ClientInfo {
        &self.info
    }

    /// Identifies the connection: a client id registered again gets a new one.
    pub fn connection(&self) -> u64 {
        self.conn.serial
    }

    /// Both handles are the same connection (not just the same client id).
    pub fn same_connection(&self, other: &ClientHandle) -> bool {
        Arc::ptr_eq(&self.conn, &other.conn)
    }

    /// The last status the client reported in a heartbeat (battery, signal ...), as given.
    pub fn reported_status(&self) -> Value {
        self.status.lock().expect("status lock").clone()
    }

    pub(crate) fn set_reported_status(&self, v: Value) {
        *self.status.lock().expect("status lock") = v;
    }

    /// What `client::list`, `client::status` and `client::online` show of a client.
    pub fn status_json(&self) -> Value {
        let mut v = serde_json::to_value(&*self.info).expect("client info serializes");
        v["status"] = self.reported_status();
        v
    }

    /// Queues a message; false if the client is gone or too slow (and is being closed).
    pub fn send(&self, msg: &Message) -> bool {
        self.conn.send(msg)
    }

    /// Queues an already serialized message (for broadcasts: serialize once, send many).
    pub fn send_text(&self, text: Utf8Bytes) -> bool {
        self.conn.send_text(text)
    }

    /// Sends a notification (a message that expects no answer).
    pub fn notify(&self, signal: &str, body: Value) -> bool {
        self.send(&Message::new(self.conn.ids.message_id(), signal, body))
    }

    /// Sends a request to the client and waits for its answer. An answer with a code other than
    /// 0000 becomes an error with that code; no answer within `timeout` is 2001.
    pub async fn request(
        &self,
        signal: &str,
        body: Value,
        timeout: Duration,
    ) -> Result<Message, SignalError> {
        let id = self.conn.ids.message_id();
        let (tx, rx) = oneshot::channel();
        {
            let mut pending = self.conn.pending.lock().expect("pending lock");
            if pending.len() >= self.conn.max_pending {
                return Err(SignalError::system(format!(
                    "client {} has {} unanswered requests already",
                    self.id(),
                    pending.len()
                )));
            }
            pending.insert(id, tx);
        }
        if !self.send(&Message::new(id, signal, body)) {
            self.conn.pending.lock().expect("pending lock").remove(&id);
            return Err(SignalError::not_found(format!(
                "client {} is gone",
                self.id()
            )));
        }
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(answer)) => match answer.code {
                Some(Code::Success) | None => Ok(answer),
                Some(code) => Err(SignalError::new(
                    code,
                    answer.message.unwrap_or_else(|| code.meaning().to_owned()),
                )),
            },
            Ok(Err(_)) => Err(SignalError::not_found(format!(
                "client {} left before answering {signal}",
                self.id()
            ))),
            Err(_) => {
                self.conn.pending.lock().expect("pending lock").remove(&id);
                Err(SignalError::timeout(format!(
                    "client {} did not answer {signal} within {} ms",
                    self.id(),
                    timeout.as_millis()
                )))
            }
        }
    }

    /// Closes the client's connection with a WebSocket close code and reason.
    pub fn close(&self, code: u16, reason: &str) {
        self.conn.close(code, reason)
    }
}
