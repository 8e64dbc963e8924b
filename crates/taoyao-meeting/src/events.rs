//! What happened in the rooms, for whoever watches from outside the protocol (webhooks,
//! metrics): rooms opening and closing, members coming and going, streams, recordings, lives.
//! Room tasks emit these inline through a [`RoomObserver`]; an observer must return at once
//! (queue, count), never wait, so no room is held up by a slow consumer.

use serde::Serialize;
use taoyao_webrtc::{ArchitectureKind, MediaEvent, MediaKind, StreamAction};

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

/// Turns a backend's per-recipient media events into one room event each: a stream is
/// announced to every other member and a finished recording to everyone concerned, but an
/// observer wants it once. Keyed by stream id / file, which are unique within a room.
#[derive(Default)]
pub(crate) struct MediaEventDedup {
    streams: std::collections::HashSet<String>,
    finished: std::collections::HashSet<String>,
}

impl MediaEventDedup {
    /// The room event `e` means, the first time it is seen; `dir` is `recording.dir` (for the
    /// finished file's size).
    pub(crate) fn room_event(
        &mut self,
        dir: &std::path::Path,
        e: &MediaEvent,
    ) -> Option<RoomEventKind> {
        match e {
            MediaEvent::Stream {
                member,
                stream: Some(stream),
                kind,
                action,
                ..
            } => match action {
                StreamAction::Publish if self.streams.insert(stream.clone()) => {
                    Some(RoomEventKind::TrackPublished {
                        client_id: member.clone(),
                        stream_id: stream.clone(),
                        kind: *kind,
                    })
                }
                StreamAction::Unpublish if self.streams.remove(stream) => {
                    Some(RoomEventKind::TrackUnpublished {
                        client_id: member.clone(),
                        stream_id: stream.clone(),
                        kind: *kind,
                    })
                }
                _ => None,
            },
            MediaEvent::RecordingStopped {
                member,
                mix,
                file,
                duration_ms,
                error,
                ..
            } if self.finished.insert(file.clone()) => Some(RoomEventKind::RecordingFinished {
                client_id: (!mix).then(|| member.clone()),
                mix: *mix,
                bytes: std::fs::metadata(dir.join(file)).map_or(0, |m| m.len()),
                file: file.clone(),
                duration_ms: *duration_ms,
                error: error.clone(),
            }),
            _ => None,
        }
    }
}
