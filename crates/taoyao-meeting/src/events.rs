//! What happened in the rooms, for whoever watches from outside the protocol (webhooks,
//! metrics): rooms opening and closing, members coming and going, streams, recordings, lives.
//! Room tasks emit these inline through a [`RoomObserver`]; an observer must return at once
//! (queue, count), never wait, so no room is held up by a slow consumer.

use serde::Serialize;
use taoyao_webrtc::{ArchitectureKind, MediaEvent, MediaKind};

use crate::modes::MeetingMode;

/// One event of one room.
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(rename_all = "camelCase")]
pub struct RoomEvent {
    /// The room id.
    pub room: String,
    #[serde(flatten)]
    pub kind: RoomEventKind,
}

/// The events, named as webhooks send them (`"event": "room_started"` ...).
#[derive(Debug, Clone, PartialEq, Serialize)]
#[serde(tag = "event", rename_all = "snake_case")]
#[non_exhaustive]
pub enum RoomEventKind {
    #[serde(rename_all = "camelCase")]
    RoomStarted {
        name: String,
        architecture: ArchitectureKind,
        mode: MeetingMode,
        owner: String,
    },
    RoomFinished,
    #[serde(rename_all = "camelCase")]
    ParticipantJoined {
        client_id: String,
        name: String,
    },
    #[serde(rename_all = "camelCase")]
    ParticipantLeft {
        client_id: String,
        reason: String,
    },
    #[serde(rename_all = "camelCase")]
    TrackPublished {
        client_id: String,
        stream_id: String,
        kind: Option<MediaKind>,
    },
    #[serde(rename_all = "camelCase")]
    TrackUnpublished {
        client_id: String,
        stream_id: String,
        kind: Option<MediaKind>,
    },
    #[serde(rename_all = "camelCase")]
    RecordingStarted {
        /// The member recorded (absent for the room's mix).
        client_id: Option<String>,
        mix: bool,
        /// `<roomId>/<name>.webm` under `recording.dir`; absent when a mesh client records
        /// locally.
        file: Option<String>,
        by: String,
    },
    #[serde(rename_all = "camelCase")]
    RecordingFinished {
        client_id: Option<String>,
        mix: bool,
        file: String,
        /// The file's size once finalized (0 if it could not be read).
        bytes: u64,
        duration_ms: u64,
        /// Why it ended early (a write error, a limit), if it did.
        error: Option<String>,
    },
    #[serde(rename_all = "camelCase")]
    LiveStarted {
        anchor: String,
    },
    LiveFinished {
        reason: String,
    },
}

/// Receives every room's events.
pub trait RoomObserver: Send + Sync + 'static {
    fn event(&self, e: RoomEvent);
}

/// A finished recording is told to every member concerned, but an observer wants it once:
/// keyed by file, unique within a room. (Streams need no such thing: backends emit a stream's
/// start and end once, for the room.)
#[derive(Default)]
pub(crate) struct MediaEventDedup {
    finished: std::collections::HashSet<String>,
}

impl MediaEventDedup {
    /// The `recording_finished` event `e` means, the first time it is seen; `dir` is
    /// `recording.dir` (for the finished file's size).
    pub(crate) fn recording_finished(
        &mut self,
        dir: &std::path::Path,
        e: &MediaEvent,
    ) -> Option<RoomEventKind> {
        match e {
            MediaEvent::RecordingStopped {
                member,
                file,
                duration_ms,
                error,
                ..
            } if self.finished.insert(file.clone()) => Some(RoomEventKind::RecordingFinished {
                client_id: member.as_ref().map(|m| m.to_string()),
                mix: member.is_none(),
                bytes: std::fs::metadata(dir.join(file)).map_or(0, |m| m.len()),
                file: file.clone(),
                duration_ms: *duration_ms,
                error: error.clone(),
            }),
            _ => None,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn each_recording_is_one_event_however_many_are_told() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::create_dir(dir.path().join("r")).unwrap();
        std::fs::write(dir.path().join("r/a.webm"), [0u8; 42]).unwrap();
        let mut d = MediaEventDedup::default();
        let stopped = |to: &str| MediaEvent::RecordingStopped {
            to: to.into(),
            member: Some("a".into()),
            file: "r/a.webm".into(),
            duration_ms: 1500,
            error: None,
        };
        match d.recording_finished(dir.path(), &stopped("a")) {
            Some(RoomEventKind::RecordingFinished {
                bytes, client_id, ..
            }) => {
                assert_eq!((bytes, client_id.as_deref()), (42, Some("a")));
            }
            other => panic!("{other:?}"),
        }
        assert_eq!(d.recording_finished(dir.path(), &stopped("b")), None);
    }

    #[test]
    fn events_serialize_with_their_webhook_names() {
        let e = RoomEvent {
            room: "r".into(),
            kind: RoomEventKind::ParticipantLeft {
                client_id: "a".into(),
                reason: "left".into(),
            },
        };
        assert_eq!(
            serde_json::to_value(&e).unwrap(),
            serde_json::json!({"room": "r", "event": "participant_left", "clientId": "a", "reason": "left"})
        );
    }
}
