//! The `client::` signals every server answers (register is answered by the session itself,
//! since it changes the connection's state).

use async_trait::async_trait;
use serde_json::{Value, json};

use crate::client::ClientType;
use crate::error::SignalError;
use crate::fields::{optional_str, required_str};
use crate::hub::{Reply, Request, SignalHandler};
use crate::signals::{self, close};

pub(crate) struct ClientSignals;

#[async_trait]
impl SignalHandler for ClientSignals {
    fn signals(&self) -> Vec<&'static str> {
        vec![
            signals::CLIENT_HEARTBEAT,
            signals::CLIENT_CLOSE,
            signals::CLIENT_LIST,
            signals::CLIENT_STATUS,
            signals::CLIENT_UNICAST,
            signals::CLIENT_BROADCAST,
            signals::CLIENT_BROADCAST_ALL,
        ]
    }

    async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        match req.message.signal() {
            signals::CLIENT_HEARTBEAT => {
                // taoyao clients report battery, charging, signal ... here; kept as given.
                if let Some(status) = body.get("status") {
                    req.client.set_reported_status(status.clone());
                }
                Ok(Reply::empty())
            }
            signals::CLIENT_CLOSE => {
                req.reply(json!({}));
                req.client.close(close::NORMAL, "closed by client");
                Ok(Reply::Deferred)
            }
            signals::CLIENT_LIST => {
                let filter = match body.get("clientType") {
                    None | Some(Value::Null) => None,
                    Some(Value::String(t)) => Some(ClientType::parse(t).ok_or_else(|| {
                        SignalError::bad_request(format!("unknown clientType {t:?}"))
                    })?),
                    Some(_) => return Err(SignalError::bad_request("clientType must be a string")),
                };
                let mut clients: Vec<_> = req
                    .hub
                    .clients()
                    .into_iter()
                    .filter(|c| filter.is_none_or(|t| c.info().client_type == t))
                    .collect();
                clients.sort_by(|a, b| a.id().cmp(b.id()));
                let list: Vec<Value> = clients.iter().map(|c| c.status_json()).collect();
                Ok(Reply::Body(json!({ "clients": list })))
            }
            signals::CLIENT_STATUS => {
                let id = optional_str(body, "clientId")?.unwrap_or(req.client.id());
                let c = req
                    .hub
                    .client(id)
                    .ok_or_else(|| SignalError::not_found(format!("client {id} is not online")))?;
                Ok(Reply::Body(c.status_json()))
            }
            signals::CLIENT_UNICAST => {
                let to = required_str(body, "to")?;
                let target = req
                    .hub
                    .client(to)
                    .ok_or_else(|| SignalError::not_found(format!("client {to} is not online")))?;
                target.notify(signals::CLIENT_UNICAST, with_from(body, req.client.id()));
                Ok(Reply::empty())
            }
            signals::CLIENT_BROADCAST | signals::CLIENT_BROADCAST_ALL => {
                let signal = req.message.signal();
                let except = (signal == signals::CLIENT_BROADCAST).then_some(req.client.id());
                let n = req
                    .hub
                    .broadcast(signal, with_from(body, req.client.id()), except);
                Ok(Reply::Body(json!({ "delivered": n })))
            }
            other => Err(SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {other}"),
            )),
        }
    }
}

/// The sender's body with `from` set to the sender, so a receiver can trust who sent it.
fn with_from(body: &Value, from: &str) -> Value {
    let mut b = body.clone();
    b["from"] = Value::String(from.to_owned());
    b
}
