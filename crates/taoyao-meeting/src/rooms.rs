//! The room registry and the `room::` / `media::` signal handler: finds (or makes) the room a
//! request is for and hands the request to that room's task.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use async_trait::async_trait;
use serde_json::{Value, json};
use taoyao_boot::{IdGenerator, Shutdown};
use taoyao_signal::fields::{optional_str, required_str};
use taoyao_signal::{
    ClientHandle, Grants, PresenceScope, Reply, Request, SignalError, SignalHandler, SignalHub,
};
use taoyao_webrtc::{ArchitectureKind, MediaArchitecture, MediaEvents, MediaRoomStats, RoomId};
use tokio::sync::{mpsc, oneshot};

use crate::config::{RecordingConfig, RoomsConfig};
use crate::download::{self, DownloadError, DownloadLinks};
use crate::events::{RoomEventKind, RoomObserver};
use crate::member_index::MemberIndex;
use crate::modes::MeetingMode;
use crate::room::{RoomCommand, RoomEnv, RoomSettings, RoomTask};
use crate::signals;
use taoyao_live::LiveConfig;

/// Commands queued per room before senders wait.
const ROOM_QUEUE: usize = 256;
/// Longest room id or name.
const MAX_NAME_LEN: usize = 64;

#[derive(Clone)]
struct RoomEntry {
    tx: mpsc::Sender<RoomCommand>,
    summary: Arc<Mutex<Value>>,
    media: Arc<dyn taoyao_webrtc::MediaRoom>,
    architecture: ArchitectureKind,
    serial: u64,
}

pub(crate) struct RoomsShared {
    /// What every room task is given (the room knows nothing of this registry).
    env: Arc<RoomEnv>,
    architectures: HashMap<ArchitectureKind, Arc<dyn MediaArchitecture>>,
    map: Mutex<HashMap<String, RoomEntry>>,
    ids: Arc<IdGenerator>,
    next_serial: AtomicU64,
}

/// The registry reads the rooms' shared settings as its own (`self.shared.config` ...).
impl std::ops::Deref for RoomsShared {
    type Target = RoomEnv;

    fn deref(&self) -> &RoomEnv {
        &self.env
    }
}

impl RoomsShared {
    /// Called by the spawn wrapper once a room task has ended; a newer room of the same id is
    /// left alone.
    pub(crate) fn remove(&self, id: &str, serial: u64) {
        let mut map = self.map.lock().expect("rooms lock");
        if map.get(id).is_some_and(|e| e.serial == serial) {
            map.remove(id);
        }
    }
}

/// The rooms of one server. Register it on the signal hub as a [`SignalHandler`].
#[derive(Clone)]
pub struct Rooms {
    shared: Arc<RoomsShared>,
}

/// The backends a server offers.
pub type Architectures = Vec<Arc<dyn MediaArchitecture>>;

/// What `room::create` / an auto-creating `room::enter` asked for.
struct CreateRequest<'a> {
    id: Option<&'a str>,
    name: &'a str,
    password: Option<&'a str>,
    architecture: Option<&'a str>,
    mode: Option<&'a str>,
}

impl Rooms {
    /// `architectures` are the backends this server runs; the default architecture and every
    /// named room's must be among them.
    pub fn new(
        config: RoomsConfig,
        live: LiveConfig,
        recording: RecordingConfig,
        architectures: Architectures,
        ids: Arc<IdGenerator>,
        shutdown: Shutdown,
    ) -> Result<Rooms, String> {
        let architectures: HashMap<_, _> =
            architectures.into_iter().map(|a| (a.kind(), a)).collect();
        let wanted = std::iter::once((
            "rooms.default_architecture".to_owned(),
            config.default_architecture,
        ))
        .chain(config.named.iter().enumerate().filter_map(|(i, r)| {
            r.architecture
                .map(|a| (format!("rooms.named[{i}].architecture"), a))
        }));
        for (key, a) in wanted {
            if !architectures.contains_key(&a) {
                return Err(format!(
                    "{key}: the {a} architecture is not available in this server"
                ));
            }
        }
        Ok(Rooms {
            shared: Arc::new(RoomsShared {
                env: Arc::new(RoomEnv {
                    config,
                    live,
                    record_slots: Arc::new(tokio::sync::Semaphore::new(recording.max_concurrent)),
                    links: DownloadLinks::new(std::time::Duration::from_millis(
                        recording.link_ttl_ms,
                    )),
                    recording,
                    shutdown,
                    observer: std::sync::OnceLock::new(),
                    members: Mutex::new(MemberIndex::default()),
                }),
                architectures,
                map: Mutex::new(HashMap::new()),
                ids,
                next_serial: AtomicU64::new(1),
            }),
        })
    }

    /// Reports every room's events to `o` from now on; false if an observer was already set.
    pub fn observe(&self, o: Arc<dyn RoomObserver>) -> bool {
        self.shared.observer.set(o).is_ok()
    }

    /// Every room's `room::list` entry, ordered by id (what an operator's view reads).
    pub fn summaries(&self) -> Vec<Value> {
        let map = self.shared.map.lock().expect("rooms lock");
        let mut rooms: Vec<Value> = map
            .values()
            .map(|e| e.summary.lock().expect("summary lock").clone())
            .collect();
        rooms.sort_by(|a, b| a["roomId"].as_str().cmp(&b["roomId"].as_str()));
        rooms
    }

    /// The media counters of every room, with its architecture.
    pub async fn all_media_stats(&self) -> Vec<(ArchitectureKind, MediaRoomStats)> {
        let entries: Vec<(ArchitectureKind, Arc<dyn taoyao_webrtc::MediaRoom>)> = self
            .shared
            .map
            .lock()
            .expect("rooms lock")
            .values()
            .map(|e| (e.architecture, e.media.clone()))
            .collect();
        let mut out = Vec::with_capacity(entries.len());
        for (kind, media) in entries {
            out.push((kind, media.stats().await));
        }
        out
    }

    /// Server-side recordings running now (each holds one `recording.max_concurrent` slot).
    pub fn recordings_running(&self) -> usize {
        self.shared.recording.max_concurrent - self.shared.record_slots.available_permits()
    }

    /// The recording config (where files go; whether the directory must be writable).
    pub fn recording_config(&self) -> &RecordingConfig {
        &self.shared.recording
    }

    /// The rooms config this registry was built with.
    pub fn config(&self) -> &RoomsConfig {
        &self.shared.config
    }

    /// The finished and running files of a room, open or closed, with download links (as
    /// `record::list` answers an admin). The caller checks who may see them.
    pub fn recording_files(&self, room: &str) -> Value {
        crate::room::list_recordings(&self.shared, room)
    }

    /// Deletes one finished file of a room (`name` as `record::list` gives it after the
    /// room's directory). A file being written is refused (3400): stop its recording first.
    /// The caller checks who may delete.
    pub async fn delete_recording(&self, room: &str, name: &str) -> Result<(), SignalError> {
        let path =
            download::resolve(&self.shared.recording.dir, room, name).map_err(|e| match e {
                DownloadError::BadPath(_) => SignalError::bad_request(e.to_string()),
                _ => SignalError::not_found(format!("no recording {room}/{name}")),
            })?;
        if let Some(entry) = self.entry(room)
            && let Some(recorder) = entry.media.recorder()
        {
            let file = format!("{room}/{name}");
            if recorder.recordings().await.iter().any(|r| r.file == file) {
                return Err(SignalError::bad_request(format!(
                    "{file} is still being recorded: stop the recording first"
                )));
            }
        }
        std::fs::remove_file(&path)
            .map_err(|e| SignalError::system(format!("cannot delete {room}/{name}: {e}")))
    }

    pub fn room_count(&self) -> usize {
        self.shared.map.lock().expect("rooms lock").len()
    }

    /// The media counters of a room, if it exists (tests assert cleanup with them).
    pub async fn media_stats(&self, room: &str) -> Option<MediaRoomStats> {
        let entry = self.entry(room)?;
        Some(entry.media.stats().await)
    }

    /// The recorded file a download link names, once the link's token is checked (see
    /// [`DownloadLinks`]); the path is under `recording.dir` after every link is followed.
    pub fn recording_file(
        &self,
        room: &str,
        name: &str,
        token: Option<&str>,
    ) -> Result<std::path::PathBuf, DownloadError> {
        self.shared.links.check(room, name, token)?;
        download::resolve(&self.shared.recording.dir, room, name)
    }

    fn entry(&self, id: &str) -> Option<RoomEntry> {
        self.shared.map.lock().expect("rooms lock").get(id).cloned()
    }

    fn available(&self) -> String {
        let mut v: Vec<_> = self
            .shared
            .architectures
            .keys()
            .map(|k| k.as_str())
            .collect();
        v.sort_unstable();
        v.join(", ")
    }

    async fn create(
        &self,
        hub: &SignalHub,
        owner: &ClientHandle,
        r: CreateRequest<'_>,
    ) -> Result<(String, RoomEntry), SignalError> {
        check_name("name", r.name)?;
        let cfg = &self.shared.config;
        let named = cfg.named(r.name);
        let requested = match r.architecture {
            None => None,
            Some(a) => Some(ArchitectureKind::parse(a).ok_or_else(|| {
                SignalError::bad_request(format!("unknown architecture {a:?}: mesh, sfu or mcu"))
            })?),
        };
        let architecture = match (named.and_then(|n| n.architecture), requested) {
            (Some(fixed), Some(asked)) if fixed != asked => {
                return Err(SignalError::forbidden(format!(
                    "room {} is configured as {fixed}",
                    r.name
                )));
            }
            (Some(fixed), _) => fixed,
            (None, Some(_)) if !cfg.client_may_choose_architecture => {
                return Err(SignalError::forbidden(
                    "this server chooses rooms' architecture (rooms.client_may_choose_architecture = false)",
                ));
            }
            (None, Some(asked)) => asked,
            (None, None) => cfg.default_architecture,
        };
        let backend = self
            .shared
            .architectures
            .get(&architecture)
            .ok_or_else(|| {
                SignalError::bad_request(format!(
                    "the {architecture} architecture is not available (this server runs: {})",
                    self.available()
                ))
            })?;
        if r.password.is_some_and(str::is_empty) {
            return Err(SignalError::bad_request("password must not be empty"));
        }
        let password = named
            .and_then(|n| n.password.clone())
            .or_else(|| r.password.map(str::to_owned));
        let max_members = named.and_then(|n| n.max_members).unwrap_or(cfg.max_members);
        let asked_mode = match r.mode {
            None => None,
            Some(m) => Some(MeetingMode::parse(m).ok_or_else(|| {
                SignalError::bad_request(format!(
                    "unknown mode {m:?}: meeting, broadcast or intercom"
                ))
            })?),
        };
        let mode = match (named.and_then(|n| n.mode), asked_mode) {
            (Some(fixed), Some(asked)) if fixed != asked => {
                return Err(SignalError::forbidden(format!(
                    "room {} is configured in {fixed:?} mode",
                    r.name
                )));
            }
            (Some(fixed), _) => fixed,
            (None, Some(asked)) => asked,
            (None, None) => cfg.default_mode,
        };
        let id = match r.id {
            Some(id) => id.to_owned(),
            None => self.shared.ids.unique(),
        };
        let settings = RoomSettings {
            id: id.clone(),
            name: r.name.to_owned(),
            architecture,
            owner: owner.id().to_owned(),
            password,
            max_members,
            mode,
        };
        // The backend's events go to the room task, which alone writes to its members.
        let (to_room, lane) = crate::room::lane(cfg.max_queued_audio_levels);
        let media = backend
            .open_room(
                &RoomId::from(&id),
                MediaEvents::new(move |e| to_room.push(e)),
            )
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        let serial = self.shared.next_serial.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(ROOM_QUEUE);
        let summary = Arc::new(Mutex::new(Value::Null));
        let entry = RoomEntry {
            tx,
            summary: summary.clone(),
            media: media.clone(),
            architecture,
            serial,
        };
        {
            let mut map = self.shared.map.lock().expect("rooms lock");
            if map.contains_key(&id) {
                return Err(SignalError::bad_request(format!("room {id} exists")));
            }
            if map.len() >= cfg.max_rooms {
                return Err(SignalError::forbidden(format!(
                    "the server has its maximum of {} rooms",
                    cfg.max_rooms
                )));
            }
            map.insert(id.clone(), entry.clone());
        }
        let task = RoomTask::new(
            settings,
            media,
            hub.clone(),
            self.shared.env.clone(),
            summary,
            lane,
        );
        // The wrapper, not the room, takes the room out of the registry when its task ends.
        let registry = self.shared.clone();
        let room_id = id.clone();
        self.shared.shutdown.spawn(async move {
            task.run(rx).await;
            registry.remove(&room_id, serial);
        });
        self.shared.emit(
            &id,
            RoomEventKind::RoomStarted {
                name: r.name.to_owned(),
                architecture,
                mode,
                owner: owner.id().to_owned(),
            },
        );
        tracing::info!(room = id, owner = owner.id(), %architecture, "room created");
        Ok((id, entry))
    }

    /// Hands a request to its room and waits until the room has answered it (the room task
    /// answers the client itself, ordered with what the room sends it).
    async fn forward(
        entry: &RoomEntry,
        req: Request,
    ) -> Result<Result<Reply, SignalError>, Request> {
        let (answered, rx) = oneshot::channel();
        if let Err(mpsc::error::SendError(cmd)) =
            entry.tx.send(RoomCommand::Signal { req, answered }).await
        {
            let RoomCommand::Signal { req, .. } = cmd else {
                unreachable!("sent a signal")
            };
            return Err(req);
        }
        Ok(match rx.await {
            Ok(()) => Ok(Reply::Deferred),
            Err(_) => Err(SignalError::not_found("the room closed")),
        })
    }
}

/// Who shares a room with a client, for `signal.presence = "rooms"`.
impl PresenceScope for Rooms {
    fn peers(&self, client_id: &str) -> Vec<String> {
        let index = self.shared.members.lock().expect("members lock");
        let Some(rooms) = index.rooms_of.get(client_id) else {
            return Vec::new();
        };
        rooms
            .iter()
            .filter_map(|r| index.members_of.get(r))
            .flatten()
            .filter(|c| c.as_str() != client_id)
            .cloned()
            .collect()
    }
}

fn check_name(key: &str, v: &str) -> Result<(), SignalError> {
    if v.is_empty() || v.chars().count() > MAX_NAME_LEN || v.chars().any(char::is_control) {
        return Err(SignalError::bad_request(format!(
            "{key} must be 1 to {MAX_NAME_LEN} characters, no control characters"
        )));
    }
    Ok(())
}

#[async_trait]
impl SignalHandler for Rooms {
    fn signals(&self) -> Vec<&'static str> {
        vec![
            signals::ROOM_CREATE,
            signals::ROOM_ENTER,
            signals::ROOM_LEAVE,
            signals::ROOM_CLOSE,
            signals::ROOM_LIST,
            signals::ROOM_STATUS,
            signals::ROOM_CLIENT_LIST,
            signals::ROOM_INVITE,
            signals::ROOM_EXPEL,
            signals::ROOM_BROADCAST,
            signals::ROOM_MODE,
            signals::ROOM_PRESENTER,
            signals::ROOM_FLOOR,
            signals::ROOM_MUTE,
            signals::LIVE_START,
            signals::LIVE_STOP,
            signals::LIVE_LIST,
            signals::LIVE_COHOST,
            signals::MEDIA_EXCHANGE,
            signals::MEDIA_PUBLISH,
            signals::MEDIA_UNPUBLISH,
            signals::MEDIA_PAUSE,
            signals::MEDIA_RESUME,
            signals::MEDIA_SUBSCRIBE,
            signals::MEDIA_UNSUBSCRIBE,
            signals::MEDIA_RESTART,
            signals::RECORD_START,
            signals::RECORD_STOP,
            signals::RECORD_LIST,
        ]
    }

    async fn handle(&self, req: Request) -> Result<Reply, SignalError> {
        let body = &req.message.body;
        match req.message.signal() {
            signals::ROOM_CREATE => {
                let name = required_str(body, "name")?;
                if !req.client.info().grants.may_enter(name) {
                    return Err(Grants::denied(&format!("room {name}")));
                }
                let (_, entry) = self
                    .create(
                        &req.hub,
                        &req.client,
                        CreateRequest {
                            id: None,
                            name,
                            password: optional_str(body, "password")?,
                            architecture: optional_str(body, "architecture")?,
                            mode: optional_str(body, "mode")?,
                        },
                    )
                    .await?;
                let summary = entry.summary.lock().expect("summary lock").clone();
                Ok(Reply::Body(summary))
            }
            signals::LIVE_LIST => {
                // The live client list: rooms on air, with their anchors and viewer counts.
                let map = self.shared.map.lock().expect("rooms lock");
                let mut lives: Vec<Value> = map
                    .values()
                    .filter_map(|e| {
                        let s = e.summary.lock().expect("summary lock");
                        s["live"].is_object().then(|| {
                            let mut l = s["live"].clone();
                            l["roomId"] = s["roomId"].clone();
                            l["name"] = s["name"].clone();
                            l["architecture"] = s["architecture"].clone();
                            l
                        })
                    })
                    .collect();
                lives.sort_by(|a, b| a["roomId"].as_str().cmp(&b["roomId"].as_str()));
                Ok(Reply::Body(json!({ "lives": lives })))
            }
            signals::ROOM_LIST => Ok(Reply::Body(json!({ "rooms": self.summaries() }))),
            signals::ROOM_ENTER => {
                let id = required_str(body, "roomId")?.to_owned();
                check_name("roomId", &id)?;
                if !req.client.info().grants.may_enter(&id) {
                    return Err(Grants::denied(&format!("room {id}")));
                }
                let mut req = req;
                // A room that closes just as we reach it is made again, once.
                for _ in 0..2 {
                    let entry = match self.entry(&id) {
                        Some(e) => e,
                        None => {
                            let body = req.message.body.clone();
                            match self
                                .create(
                                    &req.hub,
                                    &req.client,
                                    CreateRequest {
                                        id: Some(&id),
                                        name: &id,
                                        password: optional_str(&body, "password")?,
                                        architecture: optional_str(&body, "architecture")?,
                                        mode: optional_str(&body, "mode")?,
                                    },
                                )
                                .await
                            {
                                Ok((_, e)) => e,
                                // Someone else made it at the same moment: use theirs.
                                Err(_) if self.entry(&id).is_some() => continue,
                                Err(e) => return Err(e),
                            }
                        }
                    };
                    match Self::forward(&entry, req).await {
                        Ok(r) => return r,
                        Err(back) => {
                            self.shared.remove(&id, entry.serial);
                            req = back;
                        }
                    }
                }
                Err(SignalError::system(format!(
                    "room {id} keeps closing; try again"
                )))
            }
            _ => {
                let id = required_str(body, "roomId")?.to_owned();
                // An admin may list (and download) the files of a room that has closed.
                if req.message.signal() == signals::RECORD_LIST
                    && self.entry(&id).is_none()
                    && req.client.info().grants.admin
                {
                    return Ok(Reply::Body(crate::room::list_recordings(&self.shared, &id)));
                }
                let entry = self
                    .entry(&id)
                    .ok_or_else(|| SignalError::not_found(format!("room {id} not found")))?;
                match Self::forward(&entry, req).await {
                    Ok(r) => r,
                    Err(_) => Err(SignalError::not_found(format!("room {id} not found"))),
                }
            }
        }
    }

    async fn client_closed(&self, _hub: &SignalHub, client: &ClientHandle) {
        // Only the rooms it is a member of (each room checks it is this connection).
        let rooms: Vec<String> = self
            .shared
            .members
            .lock()
            .expect("members lock")
            .rooms_of
            .get(client.id())
            .map(|r| r.iter().cloned().collect())
            .unwrap_or_default();
        let entries: Vec<RoomEntry> = rooms.iter().filter_map(|r| self.entry(r)).collect();
        for e in entries {
            let _ =
                e.tx.send(RoomCommand::ClientGone {
                    client: client.clone(),
                })
                .await;
        }
    }
}
