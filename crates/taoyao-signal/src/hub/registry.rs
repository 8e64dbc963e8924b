//! The online clients by id. A client id is online on at most one connection: registering it
//! again replaces the old connection (the session closes that one).

use std::collections::HashMap;
use std::sync::RwLock;

use axum::extract::ws::Utf8Bytes;
use serde_json::Value;

use super::SignalHub;
use crate::client::ClientHandle;
use crate::envelope::Message;
use crate::error::SignalError;

pub(crate) struct Registry {
    clients: RwLock<HashMap<String, ClientHandle>>,
    max_clients: usize,
}

impl Registry {
    pub(crate) fn new(max_clients: usize) -> Registry {
        Registry {
            clients: RwLock::new(HashMap::new()),
            max_clients,
        }
    }

    fn get(&self, id: &str) -> Option<ClientHandle> {
        self.clients.read().expect("clients lock").get(id).cloned()
    }

    fn all(&self) -> Vec<ClientHandle> {
        let map = self.clients.read().expect("clients lock");
        map.values().cloned().collect()
    }

    fn len(&self) -> usize {
        self.clients.read().expect("clients lock").len()
    }

    /// Puts a client in. Returns the connection it replaced, if the id was online, or an error
    /// if the server is full.
    fn insert(&self, client: ClientHandle) -> Result<Option<ClientHandle>, SignalError> {
        let mut map = self.clients.write().expect("clients lock");
        let max = self.max_clients;
        if !map.contains_key(client.id()) && map.len() >= max {
            return Err(SignalError::forbidden(format!(
                "the server is full ({max} clients online)"
            )));
        }
        Ok(map.insert(client.id().to_owned(), client))
    }

    /// Removes the client if the registry still holds this connection of it.
    fn remove(&self, client: &ClientHandle) -> bool {
        let mut map = self.clients.write().expect("clients lock");
        match map.get(client.id()) {
            Some(current) if current.same_connection(client) => {
                map.remove(client.id());
                true
            }
            _ => false,
        }
    }
}

impl SignalHub {
    pub fn client(&self, id: &str) -> Option<ClientHandle> {
        self.inner.registry.get(id)
    }

    /// Every online client, in no particular order.
    pub fn clients(&self) -> Vec<ClientHandle> {
        self.inner.registry.all()
    }

    pub fn client_count(&self) -> usize {
        self.inner.registry.len()
    }

    pub(crate) fn insert(&self, client: ClientHandle) -> Result<Option<ClientHandle>, SignalError> {
        self.inner.registry.insert(client)
    }

    pub(crate) fn remove(&self, client: &ClientHandle) -> bool {
        self.inner.registry.remove(client)
    }

    /// Sends a notification to every online client but `except`; the message is serialized
    /// once. Returns how many clients it was queued for.
    pub fn broadcast(&self, signal: &str, body: Value, except: Option<&str>) -> usize {
        let msg = Message::new(self.inner.ids.message_id(), signal, body);
        let text: Utf8Bytes = msg.to_json().into();
        self.clients()
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
