//! One room as a task: it owns the room's rules, its members' connections and its media room,
//! and takes commands over a channel, so nothing about a room is shared behind a lock but the
//! small summary `room::list` reads.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use serde_json::{Value, json};
use taoyao_signal::fields::{optional_str, required_str};
use taoyao_signal::{ClientHandle, Grants, Reply, Request, SignalError, SignalHub};
use taoyao_webrtc::sdp_check::media_sections;
use taoyao_webrtc::{
    ArchitectureKind, JoinOptions, MediaEvent, MediaKind, MediaRoom, Negotiation, StreamAction,
    StreamRequest, SubscribePolicy, Transport,
};
use tokio::sync::{mpsc, oneshot};
use tokio::time::Instant;

use crate::rooms::RoomsShared;
use crate::rules::{Actor, RoomRules};
use crate::signals;

mod recording;

pub(crate) enum RoomCommand {
    /// A room-scoped signal from a client; the answer goes back on `reply`.
    Signal {
        req: Request,
        reply: oneshot::Sender<Result<Reply, SignalError>>,
    },
    /// A client's connection ended: if this connection is a member, it leaves.
    ClientGone { client: ClientHandle },
}

pub(crate) struct RoomSettings {
    pub id: String,
    pub name: String,
    pub architecture: ArchitectureKind,
    pub owner: String,
    pub password: Option<String>,
    pub max_members: usize,
}

pub(crate) struct RoomTask {
    id: String,
    name: String,
    architecture: ArchitectureKind,
    created_at: u64,
    rules: RoomRules,
    /// Members' connections, by client id.
    clients: HashMap<String, ClientHandle>,
    media: Arc<dyn MediaRoom>,
    hub: SignalHub,
    summary: Arc<Mutex<Value>>,
    shared: Arc<RoomsShared>,
    serial: u64,
    closed: bool,
    /// mesh: members whose clients were asked to record locally.
    mesh_recordings: Vec<taoyao_webrtc::RecordingInfo>,
}

pub(crate) fn now_ms() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_millis() as u64)
        .unwrap_or(0)
}

fn actor(c: &ClientHandle) -> Actor<'_> {
    Actor {
        id: c.id(),
        admin: c.info().grants.admin,
    }
}

/// Delivers a media backend's event as a signal to the member it is for.
pub(crate) fn deliver(hub: &SignalHub, room: &str, event: MediaEvent) {
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
            if let Some(c) = hub.client(&to) {
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
            if let Some(c) = hub.client(&to) {
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
            if let Some(c) = hub.client(&to) {
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
            if let Some(c) = hub.client(&to) {
                let mut body = json!({"roomId": room, "clientId": member, "file": file,
                                      "durationMs": duration_ms});
                if let Some(e) = error {
                    body["error"] = json!(e);
                }
                c.notify(signals::RECORD_STOP, body);
            }
        }
        other => tracing::warn!(room, ?other, "media event with no signal"),
    }
}

impl RoomTask {
    pub(crate) fn new(
        s: RoomSettings,
        media: Arc<dyn MediaRoom>,
        hub: SignalHub,
        shared: Arc<RoomsShared>,
        serial: u64,
        summary: Arc<Mutex<Value>>,
    ) -> Self {
        let task = RoomTask {
            rules: RoomRules::new(s.id.clone(), s.owner, s.password, s.max_members),
            id: s.id,
            name: s.name,
            architecture: s.architecture,
            created_at: now_ms(),
            clients: HashMap::new(),
            media,
            hub,
            summary,
            shared,
            serial,
            closed: false,
            mesh_recordings: Vec::new(),
        };
        task.publish_summary();
        task
    }

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
        })
    }

    fn publish_summary(&self) {
        *self.summary.lock().expect("summary lock") = self.summary_json();
    }

    fn members_json(&self) -> Vec<Value> {
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

    async fn status_json(&self) -> Value {
        let mut v = self.summary_json();
        v["members"] = Value::Array(self.members_json());
        v["streams"] = json!(self.media.streams().await);
        v["recordings"] = self.recordings_json().await;
        v
    }

    /// Notifies every member but `except`; returns how many were told.
    fn tell_members(&self, signal: &str, body: Value, except: Option<&str>) -> usize {
        self.clients
            .iter()
            .filter(|(id, _)| Some(id.as_str()) != except)
            .filter(|(_, c)| c.notify(signal, body.clone()))
            .count()
    }

    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<RoomCommand>) {
        let empty_timeout = Duration::from_millis(self.shared.config.empty_room_timeout_ms);
        let shutdown = self.shared.shutdown.clone();
        let mut empty_since = Some(Instant::now());
        tracing::info!(room = self.id, architecture = %self.architecture, "room open");
        while !self.closed {
            let deadline = empty_since.map(|t| t + empty_timeout);
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(RoomCommand::Signal { req, reply }) => {
                        let r = self.handle(req).await;
                        let _ = reply.send(r);
                    }
                    Some(RoomCommand::ClientGone { client }) => self.client_gone(client).await,
                },
                _ = sleep_until_opt(deadline) => {
                    tracing::info!(room = self.id, "room empty for {empty_timeout:?}: closing");
                    break;
                }
                _ = shutdown.triggered() => break,
            }
            match (self.rules.is_empty(), empty_since) {
                (true, None) => empty_since = Some(Instant::now()),
                (false, Some(_)) => empty_since = None,
                _ => {}
            }
            self.publish_summary();
        }
        // Stop taking commands first, so nothing is accepted that will not be handled.
        rx.close();
        self.shared.remove(&self.id, self.serial);
        for m in self.clients.keys() {
            self.media.leave(m).await;
        }
        self.media.close().await;
        tracing::info!(room = self.id, "room closed");
    }

    async fn handle(&mut self, req: Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        let who = actor(&req.client);
        let err = |e: crate::rules::RoomError| SignalError::from_coded(&e);
        match req.message.signal() {
            signals::ROOM_ENTER => {
                let password = optional_str(body, "password")?;
                let subscribe = match optional_str(body, "subscribe")? {
                    None => SubscribePolicy::All,
                    Some(s) => SubscribePolicy::parse(s).ok_or_else(|| {
                        SignalError::bad_request(format!(
                            "subscribe must be all, audio, video or none, not {s:?}"
                        ))
                    })?,
                };
                self.rules
                    .enter(who, &req.client.info().name, password, now_ms())
                    .map_err(err)?;
                if let Err(e) = self
                    .media
                    .join(
                        req.client.id(),
                        JoinOptions::new(req.client.info().name.clone()).with_subscribe(subscribe),
                    )
                    .await
                {
                    let _ = self.rules.leave(req.client.id());
                    return Err(SignalError::from_coded(&e));
                }
                self.clients
                    .insert(req.client.id().to_owned(), req.client.clone());
                let member = self
                    .members_json()
                    .into_iter()
                    .find(|m| m["clientId"] == req.client.id())
                    .unwrap_or(Value::Null);
                self.tell_members(
                    signals::ROOM_ENTER,
                    json!({"roomId": self.id, "client": member}),
                    Some(req.client.id()),
                );
                // Answer first, from this task, so the answer is queued before any offer the
                // subscriptions below send the newcomer.
                req.reply(self.status_json().await);
                if self.architecture != ArchitectureKind::Mesh && subscribe != SubscribePolicy::None
                {
                    let kind = match subscribe {
                        SubscribePolicy::AudioOnly => Some(MediaKind::Audio),
                        SubscribePolicy::VideoOnly => Some(MediaKind::Video),
                        _ => None,
                    };
                    let all = StreamRequest {
                        kind,
                        ..Default::default()
                    };
                    if let Err(e) = self
                        .media
                        .stream(req.client.id(), StreamAction::Subscribe, all)
                        .await
                    {
                        tracing::warn!(
                            room = self.id,
                            client = req.client.id(),
                            "subscribing the newcomer: {e}"
                        );
                    }
                }
                Ok(Reply::Deferred)
            }
            signals::ROOM_LEAVE => {
                self.rules.require_member(who).map_err(err)?;
                self.remove_member(req.client.id(), "left").await;
                Ok(Reply::empty())
            }
            signals::ROOM_CLOSE => {
                self.rules.close(who).map_err(err)?;
                let by = req.client.id().to_owned();
                self.tell_members(
                    signals::ROOM_CLOSE,
                    json!({"roomId": self.id, "reason": format!("closed by {by}")}),
                    Some(&by),
                );
                for m in self.clients.keys() {
                    self.media.leave(m).await;
                }
                self.clients.clear();
                self.closed = true;
                Ok(Reply::empty())
            }
            signals::ROOM_STATUS => {
                self.rules.require_viewer(who).map_err(err)?;
                Ok(Reply::Body(self.status_json().await))
            }
            signals::ROOM_CLIENT_LIST => {
                self.rules.require_viewer(who).map_err(err)?;
                Ok(Reply::Body(
                    json!({"roomId": self.id, "clients": self.members_json()}),
                ))
            }
            signals::ROOM_INVITE => {
                let target = required_str(body, "clientId")?;
                self.rules.require_manager(who, "invite").map_err(err)?;
                let client = self.hub.client(target).ok_or_else(|| {
                    SignalError::not_found(format!("client {target} is not online"))
                })?;
                self.rules.invite(who, target).map_err(err)?;
                client.notify(
                    signals::ROOM_INVITE,
                    json!({"roomId": self.id, "name": self.name, "architecture": self.architecture,
                           "from": req.client.id(), "hasPassword": self.rules.has_password()}),
                );
                Ok(Reply::empty())
            }
            signals::ROOM_EXPEL => {
                let target = required_str(body, "clientId")?;
                self.rules.expel(who, target).map_err(err)?;
                // The rules removed the member; release its media and connection too.
                let reason = format!("expelled by {}", req.client.id());
                if let Some(c) = self.clients.remove(target) {
                    c.notify(
                        signals::ROOM_EXPEL,
                        json!({"roomId": self.id, "reason": reason}),
                    );
                }
                self.media.leave(target).await;
                self.tell_members(
                    signals::ROOM_LEAVE,
                    json!({"roomId": self.id, "clientId": target, "reason": reason}),
                    None,
                );
                Ok(Reply::empty())
            }
            signals::ROOM_BROADCAST => {
                self.rules.require_member(who).map_err(err)?;
                let mut b = body.clone();
                b["from"] = json!(req.client.id());
                let n = self.tell_members(signals::ROOM_BROADCAST, b, Some(req.client.id()));
                Ok(Reply::Body(json!({"delivered": n})))
            }
            signals::MEDIA_EXCHANGE => {
                self.rules.require_member(who).map_err(err)?;
                let to = optional_str(body, "to")?;
                let transport = transport(body)?;
                let negotiation =
                    Negotiation::from_body(body).map_err(|e| SignalError::from_coded(&e))?;
                self.negotiate(&req.client, to, transport, negotiation)
                    .await
            }
            signals::MEDIA_PUBLISH if body.get("sdp").is_some() => {
                // sfu / mcu: publishing is the offer on the member's publish connection.
                self.rules.require_member(who).map_err(err)?;
                if !req.client.info().grants.publish {
                    return Err(Grants::denied("publish"));
                }
                let offer = Negotiation::Offer {
                    sdp: required_str(body, "sdp")?.to_owned(),
                };
                self.negotiate(&req.client, None, Some(Transport::Publish), offer)
                    .await
            }
            s @ (signals::MEDIA_PUBLISH
            | signals::MEDIA_UNPUBLISH
            | signals::MEDIA_PAUSE
            | signals::MEDIA_RESUME
            | signals::MEDIA_SUBSCRIBE
            | signals::MEDIA_UNSUBSCRIBE) => {
                self.rules.require_member(who).map_err(err)?;
                let grants = &req.client.info().grants;
                if s == signals::MEDIA_PUBLISH && !grants.publish {
                    return Err(Grants::denied("publish"));
                }
                if s == signals::MEDIA_SUBSCRIBE && !grants.subscribe {
                    return Err(Grants::denied("subscribe"));
                }
                let kind = match optional_str(body, "kind")? {
                    None => None,
                    Some(k) => Some(MediaKind::parse(k).ok_or_else(|| {
                        SignalError::bad_request(format!("kind must be audio or video, not {k:?}"))
                    })?),
                };
                let action = match s {
                    signals::MEDIA_PUBLISH => StreamAction::Publish,
                    signals::MEDIA_UNPUBLISH => StreamAction::Unpublish,
                    signals::MEDIA_PAUSE => StreamAction::Pause,
                    signals::MEDIA_RESUME => StreamAction::Resume,
                    signals::MEDIA_SUBSCRIBE => StreamAction::Subscribe,
                    _ => StreamAction::Unsubscribe,
                };
                let request = StreamRequest {
                    stream: optional_str(body, "streamId")?.map(str::to_owned),
                    client: optional_str(body, "clientId")?.map(str::to_owned),
                    kind,
                };
                if request.client.as_deref() == Some(req.client.id())
                    && matches!(action, StreamAction::Subscribe | StreamAction::Unsubscribe)
                {
                    return Err(SignalError::bad_request("you cannot subscribe to yourself"));
                }
                if let Some(c) = &request.client
                    && !self.rules.is_member(c)
                {
                    return Err(SignalError::not_found(format!(
                        "client {c} is not in this room"
                    )));
                }
                self.media
                    .stream(req.client.id(), action, request)
                    .await
                    .map_err(|e| SignalError::from_coded(&e))?;
                Ok(Reply::empty())
            }
            signals::RECORD_START => self.record_start(&req).await,
            signals::RECORD_STOP => self.record_stop(&req).await,
            signals::RECORD_LIST => self.record_list(&req),
            other => Err(SignalError::new(
                taoyao_boot::Code::UnsupportedSignal,
                format!("unsupported signal {other}"),
            )),
        }
    }

    /// Hands a negotiation message to the media backend; an answer it makes is the reply.
    async fn negotiate(
        &self,
        client: &ClientHandle,
        to: Option<&str>,
        transport: Option<Transport>,
        negotiation: Negotiation,
    ) -> Result<Reply, SignalError> {
        self.check_sdp(client, &negotiation)?;
        let answer = self
            .media
            .exchange(client.id(), to, transport, negotiation)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(match answer {
            Some(n) => {
                let mut body = n.to_body();
                body.insert("roomId".into(), json!(self.id));
                if let Some(t) = transport {
                    body.insert("transport".into(), json!(t));
                }
                Reply::Body(Value::Object(body))
            }
            None => Reply::empty(),
        })
    }

    /// Holds an offer or answer to the sender's grants and to the published-tracks limit.
    fn check_sdp(&self, client: &ClientHandle, n: &Negotiation) -> Result<(), SignalError> {
        let (Negotiation::Offer { sdp } | Negotiation::Answer { sdp }) = n else {
            return Ok(());
        };
        let sections = media_sections(sdp).map_err(|e| SignalError::from_coded(&e))?;
        let grants = &client.info().grants;
        let sending = sections
            .iter()
            .filter(|m| m.sends && m.kind != "application")
            .count();
        if sending > 0 && !grants.publish {
            return Err(Grants::denied("publish (the SDP sends media)"));
        }
        if sections
            .iter()
            .any(|m| m.receives && m.kind != "application")
            && !grants.subscribe
        {
            return Err(Grants::denied("subscribe (the SDP receives media)"));
        }
        let max = self.shared.config.max_tracks_per_member;
        if sending > max {
            return Err(SignalError::forbidden(format!(
                "{sending} sending media sections: at most {max} per member (rooms.max_tracks_per_member)"
            )));
        }
        Ok(())
    }

    /// A member leaves (asked, or its connection ended): media released, others told.
    async fn remove_member(&mut self, id: &str, reason: &str) {
        if self.rules.leave(id).is_err() {
            return;
        }
        self.clients.remove(id);
        self.mesh_recordings.retain(|r| r.client_id != id);
        self.media.leave(id).await;
        self.tell_members(
            signals::ROOM_LEAVE,
            json!({"roomId": self.id, "clientId": id, "reason": reason}),
            None,
        );
    }

    async fn client_gone(&mut self, client: ClientHandle) {
        let is_this_connection = self
            .clients
            .get(client.id())
            .is_some_and(|c| c.same_connection(&client));
        if is_this_connection {
            self.remove_member(client.id(), "disconnected").await;
        }
    }
}

fn transport(body: &Value) -> Result<Option<Transport>, SignalError> {
    match optional_str(body, "transport")? {
        None => Ok(None),
        Some(t) => Transport::parse(t).map(Some).ok_or_else(|| {
            SignalError::bad_request(format!("transport must be publish or subscribe, not {t:?}"))
        }),
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
