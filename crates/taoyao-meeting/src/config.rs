//! `[rooms]` and `[calls]`.

use serde::{Deserialize, Serialize};
use taoyao_boot::{Invalid, Validate};
use taoyao_webrtc::ArchitectureKind;

use crate::modes::MeetingMode;

/// `[rooms]`: how rooms are made and bounded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RoomsConfig {
    /// The architecture of a room nobody chose one for.
    pub default_architecture: ArchitectureKind,
    /// Whether `room::create` may ask for an architecture (named rooms always use theirs).
    pub client_may_choose_architecture: bool,
    /// Rooms per server.
    pub max_rooms: usize,
    /// Members per room (a named room may set its own).
    pub max_members: usize,
    /// Media sections one member may send in one negotiation (audio + video = 2).
    pub max_tracks_per_member: usize,
    /// A room with no members closes after this long (named rooms too; they are made again on
    /// the next enter).
    pub empty_room_timeout_ms: u64,
    /// The meeting mode of a room nobody chose one for.
    pub default_mode: MeetingMode,
    /// Intercom: a floor holder loses the floor after this long.
    pub floor_max_hold_ms: u64,
    /// mcu: audio level reports queued for a room task before newer ones are dropped (and
    /// counted); every other media event is queued whatever its number (see the room lane).
    pub max_queued_audio_levels: usize,
    /// Rooms configured by name: whoever creates or enters a room of that name gets these
    /// settings.
    pub named: Vec<NamedRoom>,
}

impl Default for RoomsConfig {
    fn default() -> Self {
        RoomsConfig {
            default_architecture: ArchitectureKind::Mesh,
            client_may_choose_architecture: true,
            max_rooms: 1000,
            max_members: 16,
            max_tracks_per_member: 4,
            empty_room_timeout_ms: 60_000,
            default_mode: MeetingMode::Meeting,
            floor_max_hold_ms: 60_000,
            max_queued_audio_levels: 256,
            named: Vec::new(),
        }
    }
}

/// `[[rooms.named]]`: one room's settings by name.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct NamedRoom {
    pub name: String,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub architecture: Option<ArchitectureKind>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub mode: Option<MeetingMode>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub max_members: Option<usize>,
}

impl std::fmt::Debug for NamedRoom {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("NamedRoom")
            .field("name", &self.name)
            .field("architecture", &self.architecture)
            .field("mode", &self.mode)
            .field("password", &self.password.as_ref().map(|_| "<redacted>"))
            .field("max_members", &self.max_members)
            .finish()
    }
}

impl RoomsConfig {
    pub fn named(&self, name: &str) -> Option<&NamedRoom> {
        self.named.iter().find(|r| r.name == name)
    }
}

impl Validate for RoomsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_rooms == 0 {
            return Err(Invalid::new("rooms.max_rooms", "must be greater than 0"));
        }
        if self.max_members < 2 {
            return Err(Invalid::new("rooms.max_members", "must be at least 2"));
        }
        if self.max_tracks_per_member == 0 {
            return Err(Invalid::new(
                "rooms.max_tracks_per_member",
                "must be greater than 0",
            ));
        }
        if self.floor_max_hold_ms == 0 {
            return Err(Invalid::new(
                "rooms.floor_max_hold_ms",
                "must be greater than 0",
            ));
        }
        if self.max_queued_audio_levels == 0 {
            return Err(Invalid::new(
                "rooms.max_queued_audio_levels",
                "must be greater than 0",
            ));
        }
        if self.empty_room_timeout_ms == 0 {
            return Err(Invalid::new(
                "rooms.empty_room_timeout_ms",
                "must be greater than 0",
            ));
        }
        let mut seen = std::collections::HashSet::new();
        for (i, r) in self.named.iter().enumerate() {
            if r.name.is_empty() || r.name.chars().count() > 64 {
                return Err(Invalid::new(
                    format!("rooms.named[{i}].name"),
                    "must be 1 to 64 characters",
                ));
            }
            if !seen.insert(&r.name) {
                return Err(Invalid::new(
                    format!("rooms.named[{i}].name"),
                    format!("{} is named twice", r.name),
                ));
            }
            if r.max_members.is_some_and(|m| m < 2) {
                return Err(Invalid::new(
                    format!("rooms.named[{i}].max_members"),
                    "must be at least 2",
                ));
            }
            if r.password.as_ref().is_some_and(|p| p.is_empty()) {
                return Err(Invalid::new(
                    format!("rooms.named[{i}].password"),
                    "must not be empty (leave it out for no password)",
                ));
            }
        }
        Ok(())
    }
}

/// `[calls]`: 1:1 P2P calls (`session::`).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct CallsConfig {
    /// Calls one client may be part of at once.
    pub max_per_client: usize,
}

impl Default for CallsConfig {
    fn default() -> Self {
        CallsConfig { max_per_client: 4 }
    }
}

impl Validate for CallsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_per_client == 0 {
            return Err(Invalid::new(
                "calls.max_per_client",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}

/// `[recording]`: server-side recording (sfu / mcu rooms) and the files it makes.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct RecordingConfig {
    /// Where files go: `<dir>/<roomId>/<clientId>-<UTC time>.webm` (relative: to the working
    /// directory).
    pub dir: std::path::PathBuf,
    /// Recordings running at once on the server.
    pub max_concurrent: usize,
    /// A recording stops (finalized) when its file would grow past this; 0: no limit.
    pub max_file_bytes: u64,
    /// A recording stops (finalized) after this long; 0: no limit.
    pub max_duration_ms: u64,
    /// RTP packets queued for a recording's writer before further ones are dropped.
    pub queue_packets: usize,
    /// How long a download link from `record::list` opens its file.
    pub link_ttl_ms: u64,
}

impl Default for RecordingConfig {
    fn default() -> Self {
        RecordingConfig {
            dir: "recordings".into(),
            max_concurrent: 16,
            max_file_bytes: 2 * 1024 * 1024 * 1024,
            max_duration_ms: 4 * 3600 * 1000,
            queue_packets: 4096,
            link_ttl_ms: 10 * 60 * 1000,
        }
    }
}

impl Validate for RecordingConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.dir.as_os_str().is_empty() {
            return Err(Invalid::new("recording.dir", "must not be empty"));
        }
        if self.queue_packets == 0 {
            return Err(Invalid::new(
                "recording.queue_packets",
                "must be greater than 0",
            ));
        }
        if self.link_ttl_ms < 1000 {
            return Err(Invalid::new(
                "recording.link_ttl_ms",
                "must be at least 1000",
            ));
        }
        Ok(())
    }
}
