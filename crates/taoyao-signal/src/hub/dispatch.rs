//! The signal handler table and the one path a request takes to its handler: the session
//! (a WebSocket) and [`SignalHub::call_as`] (the admin API) both go through
//! [`SignalHub::dispatch`], which also counts every answer for the observer.

use std::collections::HashMap;
use std::sync::Arc;

use async_trait::async_trait;
use serde_json::{Value, json};
use taoyao_boot::Code;

use super::SignalHub;
use crate::auth::Identity;
use crate::client::{ClientHandle, ClientInfo, ClientType, Connection};
use crate::envelope::Message;
use crate::error::SignalError;
use crate::observe::SignalObserver;

/// One request from a registered client, as a handler receives it.
pub struct Request {
    pub hub: SignalHub,
    pub client: ClientHandle,
    pub message: Message,
}

impl Request {
    /// Answers the request with success (for handlers that return [`Reply::Deferred`]).
    pub fn reply(&self, body: Value) -> bool {
        self.hub.observe(self.message.signal(), Code::Success);
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

/// The handler table (fixed once built) and who hears of answers.
pub(crate) struct Dispatch {
    handlers: HashMap<&'static str, Arc<dyn SignalHandler>>,
    /// Every handler once, in registration order, for `client_closed`.
    lifecycle: Vec<Arc<dyn SignalHandler>>,
    observer: Option<Arc<dyn SignalObserver>>,
}

impl Dispatch {
    pub(crate) fn new(
        handlers: HashMap<&'static str, Arc<dyn SignalHandler>>,
        lifecycle: Vec<Arc<dyn SignalHandler>>,
        observer: Option<Arc<dyn SignalObserver>>,
    ) -> Dispatch {
        Dispatch {
            handlers,
            lifecycle,
            observer,
        }
    }
}

impl SignalHub {
    /// Every signal name with a handler (register is answered by the session itself).
    pub fn signals(&self) -> Vec<&'static str> {
        let mut v: Vec<_> = self.inner.dispatch.handlers.keys().copied().collect();
        v.sort_unstable();
        v
    }

    /// Hands `message` from `client` to its signal's handler. Returns the answer to send, or
    /// `None` when the handler answers by itself ([`Reply::Deferred`]). Every answer given
    /// here is reported to the observer; an unknown signal is 3415 (unsupported signal).
    pub(crate) async fn dispatch(
        &self,
        client: ClientHandle,
        message: Message,
    ) -> Option<Result<Value, SignalError>> {
        let Some((&signal, handler)) = self.inner.dispatch.handlers.get_key_value(message.signal())
        else {
            self.observe(message.signal(), Code::UnsupportedSignal);
            return Some(Err(SignalError::new(
                Code::UnsupportedSignal,
                format!("unsupported signal {}", message.signal()),
            )));
        };
        let handler = handler.clone();
        let req = Request {
            hub: self.clone(),
            client,
            message,
        };
        let answer = match handler.handle(req).await {
            Ok(Reply::Body(body)) => Ok(body),
            // Request::reply / reply_error report these when they answer.
            Ok(Reply::Deferred) => return None,
            Err(e) => Err(e),
        };
        let code = answer.as_ref().map_or_else(|e| e.code, |_| Code::Success);
        self.observe(signal, code);
        Some(answer)
    }

    /// Reports an answered request to the observer, under the name in the handler table
    /// (`"unknown"` for a name the hub does not handle, keeping the label set fixed).
    pub(crate) fn observe(&self, signal: &str, code: Code) {
        let d = &self.inner.dispatch;
        let Some(o) = &d.observer else {
            return;
        };
        let name = if signal == crate::signals::CLIENT_REGISTER {
            crate::signals::CLIENT_REGISTER
        } else {
            d.handlers
                .get_key_value(signal)
                .map_or("unknown", |(k, _)| *k)
        };
        o.handled(name, code);
    }

    pub(crate) fn observe_rate_limited(&self) {
        if let Some(o) = &self.inner.dispatch.observer {
            o.rate_limited();
        }
    }

    pub(crate) fn observe_connection_refused(&self) {
        if let Some(o) = &self.inner.dispatch.observer {
            o.connection_refused();
        }
    }

    /// Tells every handler that `client`'s connection ended.
    pub(crate) async fn client_closed(&self, client: &ClientHandle) {
        for h in &self.inner.dispatch.lifecycle {
            h.client_closed(self, client).await;
        }
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
        // A deferred answer arrives on this queue like on a WebSocket; notifications that share
        // it are skipped while waiting (a queue that fills only drops further ones).
        let (tx, mut rx) = tokio::sync::mpsc::channel(64);
        // Nobody could answer a server request sent to this caller: one fails at once.
        let conn = Arc::new(Connection::new(
            self.next_connection(),
            tx,
            self.ids().clone(),
            0,
        ));
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
        let client = ClientHandle::new(info, conn, self.inner.next_seq());
        if let Some(answer) = self.dispatch(client, message).await {
            return answer;
        }
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
                Some(Code::Success) | None => Ok(m.body),
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
