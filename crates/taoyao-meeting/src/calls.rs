//! 1:1 P2P calls (taoyao's "monitor" mode): `session::call` makes a session between two
//! clients, and the server relays their negotiation, pause / resume and close. Media flows
//! peer to peer; the caller makes the offer.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use taoyao_boot::IdGenerator;
use taoyao_signal::fields::{bool_or, required_str};
use taoyao_signal::{ClientHandle, Reply, Request, SignalError, SignalHandler, SignalHub};
use taoyao_webrtc::{MediaKind, Negotiation};

use crate::config::CallsConfig;
use crate::signals;

struct Call {
    caller: ClientHandle,
    callee: ClientHandle,
}

impl Call {
    /// The other party, if `who` is in this call on this connection.
    fn peer_of(&self, who: &ClientHandle) -> Option<&ClientHandle> {
        if self.caller.same_connection(who) {
            Some(&self.callee)
        } else if self.callee.same_connection(who) {
            Some(&self.caller)
        } else {
            None
        }
    }
}

/// The `session::` signals. Register it on the signal hub.
pub struct Calls {
    config: CallsConfig,
    ids: Arc<IdGenerator>,
    calls: Mutex<HashMap<String, Call>>,
}

impl Calls {
    pub fn new(config: CallsConfig, ids: Arc<IdGenerator>) -> Self {
        Calls {
            config,
            ids,
            calls: Mutex::new(HashMap::new()),
        }
    }

    /// Calls in progress.
    pub fn count(&self) -> usize {
        self.calls.lock().expect("calls lock").len()
    }

    fn calls_of(map: &HashMap<String, Call>, who: &ClientHandle) -> usize {
        map.values().filter(|c| c.peer_of(who).is_some()).count()
    }

    /// The peer of `who` in session `id`.
    fn peer(&self, id: &str, who: &ClientHandle) -> Result<ClientHandle, SignalError> {
        let map = self.calls.lock().expect("calls lock");
        let call = map
            .get(id)
            .ok_or_else(|| SignalError::not_found(format!("session {id} not found")))?;
        call.peer_of(who)
            .cloned()
            .ok_or_else(|| SignalError::forbidden(format!("you are not in session {id}")))
    }
}

#[async_trait]
impl SignalHandler for Calls {
    fn signals(&self) -> Vec<&'static str> {
        vec![
            signals::SESSION_CALL,
            signals::SESSION_EXCHANGE,
            signals::SESSION_PAUSE,
            signals::SESSION_RESUME,
            signals::SESSION_CLOSE,
        ]
    }

    async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        let me = &req.client;
        match req.message.signal() {
            signals::SESSION_CALL => {
                let target = required_str(body, "clientId")?;
                let (audio, video) = (bool_or(body, "audio", true)?, bool_or(body, "video", true)?);
                if target == me.id() {
                    return Err(SignalError::bad_request("you cannot call yourself"));
                }
                let callee = req.hub.client(target).ok_or_else(|| {
                    SignalError::not_found(format!("client {target} is not online"))
                })?;
                let id = self.ids.unique();
                {
                    let mut map = self.calls.lock().expect("calls lock");
                    let max = self.config.max_per_client;
                    if Self::calls_of(&map, me) >= max {
                        return Err(SignalError::forbidden(format!(
                            "you are in {max} calls already"
                        )));
                    }
                    if Self::calls_of(&map, &callee) >= max {
                        return Err(SignalError::forbidden(format!(
                            "{target} is in {max} calls already"
                        )));
                    }
                    map.insert(
                        id.clone(),
                        Call {
                            caller: me.clone(),
                            callee: callee.clone(),
                        },
                    );
                }
                callee.notify(
                    signals::SESSION_CALL,
                    json!({"sessionId": id, "clientId": me.id(), "name": me.info().name,
                           "audio": audio, "video": video}),
                );
                Ok(Reply::Body(
                    json!({"sessionId": id, "clientId": target, "audio": audio, "video": video}),
                ))
            }
            signals::SESSION_EXCHANGE => {
                let id = required_str(body, "sessionId")?;
                let peer = self.peer(id, me)?;
                let negotiation =
                    Negotiation::from_body(body).map_err(|e| SignalError::from_coded(&e))?;
                let mut out = negotiation.to_body();
                out.insert("sessionId".into(), json!(id));
                out.insert("from".into(), json!(me.id()));
                peer.notify(signals::SESSION_EXCHANGE, Value::Object(out));
                Ok(Reply::empty())
            }
            s @ (signals::SESSION_PAUSE | signals::SESSION_RESUME) => {
                let id = required_str(body, "sessionId")?;
                let kind = required_str(body, "type")?;
                MediaKind::parse(kind).ok_or_else(|| {
                    SignalError::bad_request(format!("type must be audio or video, not {kind:?}"))
                })?;
                let peer = self.peer(id, me)?;
                peer.notify(s, json!({"sessionId": id, "from": me.id(), "type": kind}));
                Ok(Reply::empty())
            }
            signals::SESSION_CLOSE => {
                let id = required_str(body, "sessionId")?;
                let peer = self.peer(id, me)?;
                self.calls.lock().expect("calls lock").remove(id);
                peer.notify(
                    signals::SESSION_CLOSE,
                    json!({"sessionId": id, "from": me.id(), "reason": "closed"}),
                );
                Ok(Reply::empty())
            }
            other => Err(SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {other}"),
            )),
        }
    }

    async fn client_closed(&self, _hub: &SignalHub, client: &ClientHandle) {
        let ended: Vec<(String, ClientHandle)> = {
            let mut map = self.calls.lock().expect("calls lock");
            let ids: Vec<String> = map
                .iter()
                .filter(|(_, c)| c.peer_of(client).is_some())
                .map(|(id, _)| id.clone())
                .collect();
            ids.into_iter()
                .filter_map(|id| {
                    let call = map.remove(&id)?;
                    let peer = call.peer_of(client)?.clone();
                    Some((id, peer))
                })
                .collect()
        };
        for (id, peer) in ended {
            peer.notify(
                signals::SESSION_CLOSE,
                json!({"sessionId": id, "from": client.id(), "reason": "peer disconnected"}),
            );
        }
    }
}
