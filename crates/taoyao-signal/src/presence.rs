//! `client::online` / `client::offline`: who hears that a client came or went.
//!
//! `signal.presence` chooses the audience: `all` (every online client, taoyao's behaviour),
//! `rooms` (only clients that share a room with it, as a [`PresenceScope`] says) or `none`.
//! Sessions never fan out themselves: they queue an event and go on, and one presence task
//! drains the queue in batches, serializes each event once and queues the text to its
//! audience. A burst of registrations therefore costs each registering session O(1), and with
//! `all` the registry is read once per batch, not once per event.
//!
//! A client hears only about events that happened after it registered (each registration and
//! each event takes a number from one counter), as it did when the session sent them inline.

use std::sync::{Arc, Weak};

use axum::extract::ws::Utf8Bytes;
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use tokio::sync::mpsc;

use crate::client::ClientHandle;
use crate::envelope::Message;
use crate::hub::{HubInner, SignalHub};
use crate::signals;

/// `signal.presence`: who is told when a client registers or its connection ends.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PresenceMode {
    /// Every online client (taoyao's behaviour). N registrations send N^2 notifications.
    All,
    /// Only clients that share a room with it (the room service's [`PresenceScope`] says who).
    /// The cost is bounded by the rooms' own fan-out (`room::enter` / `room::leave` already
    /// reach every member), so it grows with room sizes, not with the server's client count.
    #[default]
    Rooms,
    /// Nobody; clients ask with `client::list`.
    None,
}

/// Says which clients share a room with a client. A room service provides it to the hub
/// ([`crate::SignalHubBuilder::presence_scope`]) so that this crate needs to know nothing of
/// rooms. It is called from sessions and the presence task, so it must answer at once (read
/// an index, never wait on a room).
pub trait PresenceScope: Send + Sync + 'static {
    /// The ids of the clients that share at least one room with `client_id` (it may include
    /// `client_id` itself; the hub leaves it out).
    fn peers(&self, client_id: &str) -> Vec<String>;
}

/// Who an event goes to, fixed when it is queued.
enum Audience {
    /// Every client registered before the event (read when the batch is sent).
    Everyone,
    /// These client ids (those that shared a room with the client when it happened).
    Ids(Vec<String>),
}

struct PresenceEvent {
    /// Clients registered at or after this number did not see the event happen.
    seq: u64,
    /// The client the event is about (never told about itself).
    about: String,
    signal: &'static str,
    body: Value,
    audience: Audience,
}

/// Most events sent in one batch (one registry read with `presence = all`).
const BATCH: usize = 256;

/// The queue into the presence task; the task starts with the first event (a runtime is
/// running by then) and ends when the hub is dropped.
pub(crate) struct Presence {
    mode: PresenceMode,
    scope: Option<Arc<dyn PresenceScope>>,
    tx: std::sync::OnceLock<mpsc::UnboundedSender<PresenceEvent>>,
}

impl Presence {
    pub(crate) fn new(mode: PresenceMode, scope: Option<Arc<dyn PresenceScope>>) -> Presence {
        Presence {
            mode,
            scope,
            tx: std::sync::OnceLock::new(),
        }
    }

    /// The audience of an event about `client` in this mode; None when nobody is told. With
    /// `rooms` it is read now, before the client's rooms let it go.
    fn audience(&self, client: &str) -> Option<Audience> {
        match self.mode {
            PresenceMode::None => None,
            PresenceMode::All => Some(Audience::Everyone),
            PresenceMode::Rooms => {
                let mut ids = self.scope.as_ref()?.peers(client);
                ids.retain(|id| id != client);
                ids.sort_unstable();
                ids.dedup();
                (!ids.is_empty()).then_some(Audience::Ids(ids))
            }
        }
    }

    /// A client registered (not a connection replacing one of the same id).
    pub(crate) fn online(&self, hub: &SignalHub, client: &ClientHandle) {
        self.queue(
            hub,
            client.id(),
            signals::CLIENT_ONLINE,
            client.status_json(),
        );
    }

    /// A client's last connection ended. Call it before the room services hear of it, so that
    /// `rooms` still finds the rooms it was in.
    pub(crate) fn offline(&self, hub: &SignalHub, client: &ClientHandle) {
        self.queue(
            hub,
            client.id(),
            signals::CLIENT_OFFLINE,
            json!({"clientId": client.id()}),
        );
    }

    fn queue(&self, hub: &SignalHub, about: &str, signal: &'static str, body: Value) {
        let Some(audience) = self.audience(about) else {
            return;
        };
        let event = PresenceEvent {
            seq: hub.inner.next_seq(),
            about: about.to_owned(),
            signal,
            body,
            audience,
        };
        let tx = self.tx.get_or_init(|| {
            let (tx, rx) = mpsc::unbounded_channel();
            let task = run(Arc::downgrade(&hub.inner), rx, hub.inner.shutdown.clone());
            hub.inner.shutdown.spawn(task);
            tx
        });
        // The task ends only once the hub is gone, and then nobody is left to tell.
        let _ = tx.send(event);
    }
}

async fn run(
    hub: Weak<HubInner>,
    mut rx: mpsc::UnboundedReceiver<PresenceEvent>,
    shutdown: taoyao_boot::Shutdown,
) {
    let mut batch = Vec::with_capacity(BATCH);
    loop {
        // Clients of a server that stops are told by `client::close`, not one by one.
        let n = tokio::select! {
            n = rx.recv_many(&mut batch, BATCH) => n,
            _ = shutdown.triggered() => return,
        };
        if n == 0 {
            return;
        }
        let Some(inner) = hub.upgrade() else { return };
        let hub = SignalHub { inner };
        send_batch(&hub, &batch);
        batch.clear();
        drop(hub);
        // Let the writers drain what this batch queued before the next one adds more.
        tokio::task::yield_now().await;
    }
}

fn send_batch(hub: &SignalHub, batch: &[PresenceEvent]) {
    let mut everyone: Option<Vec<ClientHandle>> = None;
    for e in batch {
        let text: Utf8Bytes = Message::new(hub.ids().message_id(), e.signal, e.body.clone())
            .to_json()
            .into();
        let heard = |c: &ClientHandle| c.registered_seq() < e.seq && c.id() != e.about;
        match &e.audience {
            Audience::Everyone => {
                let all = everyone.get_or_insert_with(|| hub.clients());
                for c in all.iter().filter(|c| heard(c)) {
                    c.send_text(text.clone());
                }
            }
            Audience::Ids(ids) => {
                for c in ids.iter().filter_map(|id| hub.client(id)) {
                    if heard(&c) {
                        c.send_text(text.clone());
                    }
                }
            }
        }
    }
}
