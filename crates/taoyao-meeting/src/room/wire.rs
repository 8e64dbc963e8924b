//! Every JSON shape the room sends: answers, notifications to members, the room's summary and
//! status, and a media backend's events as signals. The concern files decide what to say and
//! to whom; this file alone spells how it looks on the wire (docs/protocol.md).

use std::time::Duration;

use serde_json::{Value, json};
use taoyao_signal::ClientHandle;
use taoyao_webrtc::{ArchitectureKind, MediaEvent, Negotiation, Transport};

use super::RoomTask;
use crate::modes::FloorEvent;
use crate::signals;
use taoyao_live::LiveEvent;

impl RoomTask {
    /// The room's entry in `room::list`.
    pub(crate) fn summary_json(&self) -> Value {
        json!({
            "roomId": self.id,
            "name": self.name,
            "architecture": self.architecture,
            "owner": self.rules.owner(),
            "hasPassword": self.rules.has_password(),
            "memberCount": self.rules.members().len(),
            "createdAt": self.created_at,
            "mode": self.modes.mode(),
            "live": self.live_json(),
        })
    }

    /// The live's state while on air, else null.
    pub(super) fn live_json(&self) -> Value {
        match &self.live {
            Some(l) if l.is_on_air() => {
                let on_stage = |id: &str| id == l.anchor() || l.cohosts().any(|c| c == id);
                let viewers = self
                    .rules
                    .members()
                    .iter()
                    .filter(|m| !on_stage(&m.id))
                    .count();
                json!({
                    "anchor": l.anchor(),
                    "cohosts": l.cohosts().collect::<Vec<_>>(),
                    "viewers": viewers,
                    "paused": l.is_paused(),
                    "startedAt": l.started_at(),
                })
            }
            _ => Value::Null,
        }
    }

    /// Mode, presenters and floor, as members are told them.
    pub(super) fn mode_json(&self) -> Value {
        json!({
            "roomId": self.id,
            "mode": self.modes.mode(),
            "presenters": self.modes.presenters().collect::<Vec<_>>(),
            "floor": {
                "holder": self.modes.floor_holder(),
                "queue": self.modes.queue().collect::<Vec<_>>(),
            },
        })
    }

    pub(super) fn members_json(&self) -> Vec<Value> {
        self.rules
            .members()
            .iter()
            .map(|m| {
                let client_type = self.clients.get(&m.id).map(|c| c.info().client_type);
                json!({
                    "clientId": m.id,
                    "name": m.name,
                    "clientType": client_type,
                    "joinedAt": m.joined_at,
                    "owner": m.id == self.rules.owner(),
                })
            })
            .collect()
    }

    pub(super) async fn status_json(&self) -> Value {
        let mut v = self.summary_json();
        v["members"] = Value::Array(self.members_json());
        v["streams"] = json!(self.media.streams().await);
        let m = self.mode_json();
        v["presenters"] = m["presenters"].clone();
        v["floor"] = m["floor"].clone();
        v["recordings"] = self.recordings_json().await;
        v
    }

    /// One member as `members_json` lists it.
    pub(super) fn member_json(&self, id: &str) -> Value {
        self.members_json()
            .into_iter()
            .find(|m| m["clientId"] == id)
            .unwrap_or(Value::Null)
    }
}

/// `room::enter` to the others: `{roomId, client}`.
pub(super) fn entered(room: &str, member: Value) -> Value {
    json!({"roomId": room, "client": member})
}

/// `room::leave` to the others (a member left, was expelled or disconnected).
pub(super) fn left(room: &str, client: &str, reason: &str) -> Value {
    json!({"roomId": room, "clientId": client, "reason": reason})
}

/// `room::close` to the members.
pub(super) fn closed(room: &str, reason: &str) -> Value {
    json!({"roomId": room, "reason": reason})
}

/// `room::expel` to the expelled member.
pub(super) fn expelled(room: &str, reason: &str) -> Value {
    json!({"roomId": room, "reason": reason})
}

/// `room::invite` to the invited client.
pub(super) fn invitation(
    room: &str,
    name: &str,
    architecture: ArchitectureKind,
    from: &str,
    has_password: bool,
) -> Value {
    json!({"roomId": room, "name": name, "architecture": architecture, "from": from,
           "hasPassword": has_password})
}

/// `room::client::list`'s answer.
pub(super) fn client_list(room: &str, clients: Vec<Value>) -> Value {
    json!({"roomId": room, "clients": clients})
}

/// `room::broadcast` to the others: the sender's body with `from`.
pub(super) fn broadcast(body: &Value, from: &str) -> Value {
    let mut b = body.clone();
    b["from"] = json!(from);
    b
}

/// A fan-out's answer: how many were told.
pub(super) fn delivered(n: usize) -> Value {
    json!({"delivered": n})
}

/// The server's answer to a negotiation message (sfu / mcu).
pub(super) fn negotiation(room: &str, transport: Option<Transport>, n: &Negotiation) -> Value {
    let mut body = n.to_body();
    body.insert("roomId".into(), json!(room));
    if let Some(t) = transport {
        body.insert("transport".into(), json!(t));
    }
    Value::Object(body)
}

/// `room::floor` to the members: the room's mode state and what happened.
pub(super) fn floor_event(mode: Value, e: &FloorEvent) -> Value {
    let (kind, member, reason) = match e {
        FloorEvent::Granted(m) => ("granted", m, None),
        FloorEvent::Queued { member, .. } => ("queued", member, None),
        FloorEvent::Released(m) => ("released", m, None),
        FloorEvent::Revoked { member, reason } => ("revoked", member, Some(*reason)),
    };
    let mut body = mode;
    body["event"] = json!({"type": kind, "clientId": member, "reason": reason});
    body
}

/// `room::floor`'s answer: the mode state, whether the asker holds the floor, its place in the
/// queue.
pub(super) fn floor_answer(mode: Value, granted: bool, position: Option<usize>) -> Value {
    let mut reply = mode;
    reply["granted"] = json!(granted);
    if let Some(p) = position {
        reply["position"] = json!(p);
    }
    reply
}

/// `room::mute` to the members, and its answer.
pub(super) fn muted(room: &str, client: &str, audio: bool, video: bool, by: &str) -> Value {
    json!({"roomId": room, "clientId": client, "audio": audio, "video": video, "by": by})
}

/// `live::start` to the members, and its answer: the live's state with the room.
pub(super) fn live_started(room: &str, live: Value) -> Value {
    let mut body = live;
    body["roomId"] = json!(room);
    body
}

/// `live::cohost`'s answer.
pub(super) fn live_state(room: &str, live: Value) -> Value {
    json!({"roomId": room, "live": live})
}

/// `live::stop` to the members.
pub(super) fn live_stopped(room: &str, reason: &str) -> Value {
    json!({"roomId": room, "reason": reason})
}

/// `live::pause` to the members: the anchor is away, for at most `grace`.
pub(super) fn live_paused(room: &str, reason: &str, grace: Duration) -> Value {
    json!({"roomId": room, "reason": reason, "resumeWithinMs": grace.as_millis() as u64})
}

/// `live::resume` to the members: the anchor is back.
pub(super) fn live_resumed(room: &str, anchor: &str) -> Value {
    json!({"roomId": room, "anchor": anchor})
}

/// `live::cohost` for a co-hosting step, and who it is for: one member, or (None) the room.
pub(super) fn cohost_note(room: &str, anchor: &str, e: &LiveEvent) -> (Value, Option<String>) {
    match e {
        // A request goes to the anchor; an invitation to the viewer.
        LiveEvent::Requested(v) => (
            json!({"roomId": room, "action": "request", "clientId": v}),
            Some(anchor.to_owned()),
        ),
        LiveEvent::Invited(v) => (
            json!({"roomId": room, "action": "invite", "clientId": v, "from": anchor}),
            Some(v.clone()),
        ),
        LiveEvent::Declined { viewer, by } => {
            let other = if by == anchor { viewer } else { anchor };
            (
                json!({"roomId": room, "action": "decline", "clientId": viewer, "by": by}),
                Some(other.to_owned()),
            )
        }
        LiveEvent::OnStage(v) => (
            json!({"roomId": room, "action": "accept", "clientId": v}),
            None,
        ),
        LiveEvent::OffStage { cohost, by } => (
            json!({"roomId": room, "action": "end", "clientId": cohost, "by": by}),
            None,
        ),
    }
}

/// `record::start` to the members (and an entry of its answer): a member's recording (`file`
/// where the server records) or, with `client` None, the room's mix.
pub(super) fn recording_started(
    room: &str,
    client: Option<&str>,
    by: &str,
    file: Option<&str>,
) -> Value {
    let mut note = match client {
        Some(c) => json!({"roomId": room, "clientId": c, "by": by}),
        None => json!({"roomId": room, "mix": true, "by": by}),
    };
    if let Some(f) = file {
        note["file"] = json!(f);
    }
    note
}

/// `record::start`'s answer.
pub(super) fn recordings_answer(room: &str, started: Vec<Value>, failed: Vec<Value>) -> Value {
    json!({"roomId": room, "recordings": started, "failed": failed})
}

/// One member `record::start` could not record, in its answer.
pub(super) fn recording_failed(client: &str, code: &str, message: &str) -> Value {
    json!({"clientId": client, "code": code, "message": message})
}

/// `record::stop`'s answer.
pub(super) fn stopped_answer(room: &str, stopped: Vec<String>, mix: bool) -> Value {
    json!({"roomId": room, "stopped": stopped, "mix": mix})
}

/// `record::stop` to the members when a mesh client's local recording stops.
pub(super) fn local_recording_stopped(room: &str, client: &str) -> Value {
    json!({"roomId": room, "clientId": client})
}

/// `control::client::record` to a mesh member: record locally, or stop.
pub(super) fn client_record(room: &str, client: &str, enabled: bool, by: &str) -> Value {
    json!({"roomId": room, "clientId": client, "enabled": enabled, "by": by})
}

/// One file of `record::list`.
pub(super) fn recorded_file(file: String, bytes: u64, modified_at: u64, url: String) -> Value {
    json!({"file": file, "bytes": bytes, "modifiedAt": modified_at, "url": url})
}

/// `record::list`'s answer.
pub(super) fn recorded_files(room: &str, files: Vec<Value>) -> Value {
    json!({"roomId": room, "files": files})
}

/// Delivers a media backend's event as a signal to the client it is for (`find` looks it up:
/// the room's members, else the hub, for a requester outside the room).
pub(super) fn deliver(find: impl Fn(&str) -> Option<ClientHandle>, room: &str, event: MediaEvent) {
    match event {
        MediaEvent::Negotiation {
            to,
            from,
            transport,
            negotiation,
        } => {
            let mut body = negotiation.to_body();
            body.insert("roomId".into(), json!(room));
            if let Some(from) = from {
                body.insert("from".into(), json!(from));
            }
            if let Some(t) = transport {
                body.insert("transport".into(), json!(t));
            }
            if let Some(c) = find(&to) {
                c.notify(signals::MEDIA_EXCHANGE, Value::Object(body));
            }
        }
        MediaEvent::Stream {
            to,
            member,
            stream,
            kind,
            action,
        } => {
            if let Some(c) = find(&to) {
                let mut body = json!({"roomId": room, "clientId": member, "kind": kind});
                if let Some(s) = stream {
                    body["streamId"] = json!(s);
                }
                c.notify(signals::media_signal(action), body);
            }
        }
        MediaEvent::AudioLevels {
            to,
            levels,
            speaker,
        } => {
            if let Some(c) = find(&to) {
                // taoyao's form: volume in dB below full scale, 0 loudest .. -127 silent.
                let volumes: Vec<Value> = levels
                    .iter()
                    .map(|(id, dbov)| json!({"clientId": id, "volume": -i32::from(*dbov)}))
                    .collect();
                c.notify(
                    signals::MEDIA_AUDIO_VOLUME,
                    json!({"roomId": room, "volumes": volumes, "speaker": speaker}),
                );
            }
        }
        MediaEvent::RecordingStopped {
            to,
            member,
            file,
            duration_ms,
            error,
        } => {
            if let Some(c) = find(&to) {
                let mut body = json!({"roomId": room, "file": file, "durationMs": duration_ms});
                match member {
                    Some(m) => body["clientId"] = json!(m),
                    None => body["mix"] = json!(true),
                }
                if let Some(e) = error {
                    body["error"] = json!(e);
                }
                c.notify(signals::RECORD_STOP, body);
            }
        }
        MediaEvent::SubscribeTimedOut { to, after_ms } => {
            if let Some(c) = find(&to) {
                c.notify(
                    signals::MEDIA_SUBSCRIBE_TIMEOUT,
                    json!({
                        "roomId": room,
                        "transport": "subscribe",
                        "code": "2001",
                        "message": format!(
                            "the subscribe offer went unanswered for {after_ms} ms: the server \
                             closed its subscribe connection; close yours and send \
                             media::restart {{transport: \"subscribe\"}} for a new one carrying \
                             your subscriptions"
                        ),
                    }),
                );
            }
        }
        // The room's own: for the observer, no member is told.
        MediaEvent::StreamStarted { .. } | MediaEvent::StreamEnded { .. } => {}
        other => tracing::warn!(room, ?other, "media event with no signal"),
    }
}
