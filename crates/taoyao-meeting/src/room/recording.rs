//! `record::start` / `record::stop` / `record::list` in a room. sfu / mcu rooms record on the
//! server (the media backend writes the files); mesh rooms ask the member's client to record
//! locally with `control::client::record`.

use std::path::{Path, PathBuf};
use std::time::Duration;

use serde_json::{Value, json};
use taoyao_signal::{Reply, Request, SignalError};
use taoyao_webrtc::{MediaError, MemberId, RecordLimits, RecordRequest, RecordingInfo};

use super::RoomEnv;
use super::requests::Record;
use super::{RoomTask, actor, now_ms, wire};
use crate::events::RoomEventKind;
use crate::signals;

/// Keeps letters, digits, `-` and `_` of an id; anything else (a `/`, a `.`) becomes `_`, so an
/// id can never name another directory.
pub(crate) fn sanitize(id: &str) -> String {
    let s: String = id
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() { "_".into() } else { s }
}

/// `<clientId>-<UTC time>.webm`, e.g. `alice-20260102T030405123Z.webm`.
fn file_name(client: &str) -> String {
    let t = time::OffsetDateTime::now_utc();
    format!(
        "{}-{:04}{:02}{:02}T{:02}{:02}{:02}{:03}Z.webm",
        sanitize(client),
        t.year(),
        u8::from(t.month()),
        t.day(),
        t.hour(),
        t.minute(),
        t.second(),
        t.millisecond()
    )
}

/// The room's directory under `dir`.
pub(crate) fn room_dir(dir: &Path, room: &str) -> PathBuf {
    dir.join(sanitize(room))
}

impl RoomTask {
    /// The members a record request is about: `clientId`, or everyone (the owner only).
    fn record_targets(&self, req: &Request, r: &Record) -> Result<Vec<String>, SignalError> {
        let who = actor(&req.client);
        self.rules
            .require_member(who)
            .or_else(|_| self.rules.require_viewer(who))
            .map_err(|e| SignalError::from_coded(&e))?;
        let manager = who.admin || who.id == self.rules.owner();
        match r.client_id {
            Some(target) => {
                if !self.rules.is_member(target) {
                    return Err(SignalError::not_found(format!(
                        "client {target} is not in this room"
                    )));
                }
                if target != who.id && !manager {
                    return Err(SignalError::forbidden(
                        "only the room owner or the member itself may record a member",
                    ));
                }
                Ok(vec![target.to_owned()])
            }
            None if manager => Ok(self.rules.members().iter().map(|m| m.id.clone()).collect()),
            None => Err(SignalError::forbidden(
                "only the room owner may record the whole room",
            )),
        }
    }

    /// `mix: true`: the room's mixed audio (mcu), the owner (or an admin) only.
    fn wants_mix(&self, req: &Request, r: &Record) -> Result<bool, SignalError> {
        let mix = r.mix.unwrap_or(false);
        if mix {
            let who = actor(&req.client);
            if !(who.admin || who.id == self.rules.owner()) {
                return Err(SignalError::forbidden(
                    "only the room owner may record the room's mix",
                ));
            }
            if r.client_id.is_some() {
                return Err(SignalError::bad_request(
                    "give clientId (a member) or mix (the room's mix), not both",
                ));
            }
        }
        Ok(mix)
    }

    /// What to record to `recording.dir/<roomId>/<name>`, holding one `max_concurrent` permit.
    fn record_request(&self, name: String, by: &str) -> Result<RecordRequest, SignalError> {
        let cfg = &self.shared.recording;
        let permit = self
            .shared
            .record_slots
            .clone()
            .try_acquire_owned()
            .map_err(|_| {
                SignalError::forbidden(format!(
                    "the server is already making its maximum of {} recordings (recording.max_concurrent)",
                    cfg.max_concurrent
                ))
            })?;
        Ok(RecordRequest {
            requester: MemberId::from(by),
            path: room_dir(&cfg.dir, &self.id).join(&name),
            file: format!("{}/{name}", sanitize(&self.id)),
            limits: RecordLimits {
                max_bytes: cfg.max_file_bytes,
                max_duration: Duration::from_millis(cfg.max_duration_ms),
            },
            queue: cfg.queue_packets,
            permit: Some(permit),
        })
    }

    pub(super) async fn record_start(
        &mut self,
        req: &Request,
        r: Record<'_>,
    ) -> Result<Reply, SignalError> {
        if self.wants_mix(req, &r)? {
            self.rules
                .require_member(actor(&req.client))
                .or_else(|_| self.rules.require_viewer(actor(&req.client)))
                .map_err(|e| SignalError::from_coded(&e))?;
            let media = self.media.clone();
            let Some(mix) = media.mix() else {
                return Err(SignalError::bad_request(
                    "only mcu rooms mix audio; record the members instead",
                ));
            };
            let by = req.client.id().to_owned();
            let request = self.record_request(file_name("mix"), &by)?;
            let file = request.file.clone();
            mix.record_mix_start(request)
                .await
                .map_err(|e| SignalError::from_coded(&e))?;
            let note = wire::recording_started(&self.id, None, &by, Some(&file));
            self.tell_members(signals::RECORD_START, note.clone(), None);
            self.shared.emit(
                &self.id,
                RoomEventKind::RecordingStarted {
                    client_id: None,
                    mix: true,
                    file: Some(file),
                    by: by.clone(),
                },
            );
            return Ok(Reply::Body(wire::recordings_answer(
                &self.id,
                vec![note],
                Vec::new(),
            )));
        }
        let targets = self.record_targets(req, &r)?;
        let by = req.client.id().to_owned();
        let whole_room = targets.len() != 1 || r.client_id.is_none();
        let mut started = Vec::new();
        let mut failed = Vec::new();
        for target in targets {
            match self.record_one(&target, &by).await {
                Ok(file) => {
                    let note =
                        wire::recording_started(&self.id, Some(&target), &by, file.as_deref());
                    self.tell_members(signals::RECORD_START, note.clone(), None);
                    self.shared.emit(
                        &self.id,
                        RoomEventKind::RecordingStarted {
                            client_id: Some(target.clone()),
                            mix: false,
                            file,
                            by: by.clone(),
                        },
                    );
                    started.push(note);
                }
                Err(e) if whole_room => {
                    failed.push(wire::recording_failed(&target, e.code.as_str(), &e.message))
                }
                Err(e) => return Err(e),
            }
        }
        if started.is_empty() {
            return Err(SignalError::bad_request(
                "nobody in the room has media to record",
            ));
        }
        Ok(Reply::Body(wire::recordings_answer(
            &self.id, started, failed,
        )))
    }

    /// Starts recording one member; the file name on the server, if it records there.
    async fn record_one(&mut self, target: &str, by: &str) -> Result<Option<String>, SignalError> {
        let media = self.media.clone();
        let Some(recorder) = media.recorder() else {
            // The member's client records (RecordingPlace::Client).
            if self.mesh_recordings.iter().any(|r| r.client_id == target) {
                return Err(SignalError::bad_request(format!(
                    "{target} is already being recorded"
                )));
            }
            let client = self.clients.get(target).ok_or_else(|| {
                SignalError::not_found(format!("client {target} is not connected"))
            })?;
            client.notify(
                signals::CONTROL_CLIENT_RECORD,
                wire::client_record(&self.id, target, true, by),
            );
            self.mesh_recordings.push(RecordingInfo {
                client_id: target.to_owned(),
                mix: false,
                file: String::new(),
                started_by: by.to_owned(),
                started_at: now_ms(),
            });
            return Ok(None);
        };
        let request = self.record_request(file_name(target), by)?;
        let file = request.file.clone();
        recorder
            .record_start(&MemberId::from(target), request)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(Some(file))
    }

    pub(super) async fn record_stop(
        &mut self,
        req: &Request,
        r: Record<'_>,
    ) -> Result<Reply, SignalError> {
        if self.wants_mix(req, &r)? {
            // Returns once the file is finalized; the room hears record::stop from the backend.
            match self.media.mix() {
                Some(mix) => mix.record_mix_stop().await,
                None => Err(MediaError::NotRecording("the room's mix".into())),
            }
            .map_err(|e| SignalError::from_coded(&e))?;
            return Ok(Reply::Body(wire::stopped_answer(
                &self.id,
                Vec::new(),
                true,
            )));
        }
        let targets = self.record_targets(req, &r)?;
        let single = r.client_id.is_some();
        // The owner stopping the whole room stops the mix recording too.
        let media = self.media.clone();
        let mix_stopped = match media.mix() {
            Some(mix) if !single => mix.record_mix_stop().await.is_ok(),
            _ => false,
        };
        let mut stopped = Vec::new();
        for target in targets {
            let Some(recorder) = media.recorder() else {
                // The member's client records (RecordingPlace::Client).
                let Some(i) = self
                    .mesh_recordings
                    .iter()
                    .position(|r| r.client_id == target)
                else {
                    if single {
                        return Err(SignalError::not_found(format!(
                            "{target} is not being recorded"
                        )));
                    }
                    continue;
                };
                self.mesh_recordings.remove(i);
                if let Some(c) = self.clients.get(&target) {
                    c.notify(
                        signals::CONTROL_CLIENT_RECORD,
                        wire::client_record(&self.id, &target, false, req.client.id()),
                    );
                }
                self.tell_members(
                    signals::RECORD_STOP,
                    wire::local_recording_stopped(&self.id, &target),
                    None,
                );
                stopped.push(target);
                continue;
            };
            // Returns once the file is finalized; the room hears record::stop from the backend.
            match recorder.record_stop(&MemberId::from(&target)).await {
                Ok(()) => stopped.push(target),
                Err(e) if single => return Err(SignalError::from_coded(&e)),
                Err(_) => {}
            }
        }
        Ok(Reply::Body(wire::stopped_answer(
            &self.id,
            stopped,
            mix_stopped,
        )))
    }

    /// The room's recordings in progress (room status).
    pub(super) async fn recordings_json(&self) -> Value {
        let mut all = match self.media.recorder() {
            Some(r) => r.recordings().await,
            None => Vec::new(),
        };
        all.extend(self.mesh_recordings.iter().cloned());
        json!(all)
    }

    /// The finished and running files of this room on the server.
    pub(super) fn record_list(&self, req: &Request) -> Result<Reply, SignalError> {
        self.rules
            .require_viewer(actor(&req.client))
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(Reply::Body(list_files(&self.shared, &self.id)))
    }
}

/// `{roomId, files: [{file, bytes, modifiedAt, url}]}`: the room's files on the server, each
/// with a download link (`url`, signed, valid `recording.link_ttl_ms`). Only for callers that
/// may see the room (its members, admins).
pub(crate) fn list_files(shared: &RoomEnv, room: &str) -> Value {
    let room_id = sanitize(room);
    let dir = shared.recording.dir.join(&room_id);
    let mut files = Vec::new();
    if let Ok(entries) = std::fs::read_dir(&dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            let Ok(meta) = e.metadata() else { continue };
            if !meta.is_file() || crate::download::check_names(&room_id, &name).is_err() {
                continue;
            }
            let modified = meta
                .modified()
                .ok()
                .and_then(|m| m.duration_since(std::time::UNIX_EPOCH).ok())
                .map_or(0, |d| d.as_millis() as u64);
            files.push(wire::recorded_file(
                format!("{room_id}/{name}"),
                meta.len(),
                modified,
                shared.links.url(&room_id, &name),
            ));
        }
    }
    files.sort_by(|a, b| a["file"].as_str().cmp(&b["file"].as_str()));
    wire::recorded_files(room, files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn ids_cannot_leave_the_directory() {
        assert_eq!(sanitize("../../etc"), "______etc");
        assert_eq!(sanitize("a/b"), "a_b");
        assert_eq!(sanitize(""), "_");
        assert_eq!(sanitize("bob-1_x"), "bob-1_x");
        let f = file_name("../x");
        assert!(f.starts_with("___x-") && f.ends_with("Z.webm"), "{f}");
        assert!(!f.contains('/'));
    }
}
