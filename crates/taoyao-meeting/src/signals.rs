//! Signal names of the room, media and session groups.

use taoyao_webrtc::StreamAction;

pub const ROOM_CREATE: &str = "room::create";
pub const ROOM_ENTER: &str = "room::enter";
pub const ROOM_LEAVE: &str = "room::leave";
pub const ROOM_CLOSE: &str = "room::close";
pub const ROOM_LIST: &str = "room::list";
pub const ROOM_STATUS: &str = "room::status";
pub const ROOM_CLIENT_LIST: &str = "room::client::list";
pub const ROOM_INVITE: &str = "room::invite";
pub const ROOM_EXPEL: &str = "room::expel";
pub const ROOM_BROADCAST: &str = "room::broadcast";
pub const ROOM_MODE: &str = "room::mode";
pub const ROOM_PRESENTER: &str = "room::presenter";
pub const ROOM_FLOOR: &str = "room::floor";
/// A manager (owner, admin) mutes or unmutes a member's audio / video on the server; also the
/// notification that tells the room.
pub const ROOM_MUTE: &str = "room::mute";

pub const LIVE_START: &str = "live::start";
pub const LIVE_STOP: &str = "live::stop";
pub const LIVE_LIST: &str = "live::list";
pub const LIVE_COHOST: &str = "live::cohost";
/// Server -> members: the anchor dropped off (pause policy) / came back.
pub const LIVE_PAUSE: &str = "live::pause";
pub const LIVE_RESUME: &str = "live::resume";

pub const MEDIA_EXCHANGE: &str = "media::exchange";
pub const MEDIA_PUBLISH: &str = "media::publish";
pub const MEDIA_UNPUBLISH: &str = "media::unpublish";
pub const MEDIA_PAUSE: &str = "media::pause";
pub const MEDIA_RESUME: &str = "media::resume";
pub const MEDIA_SUBSCRIBE: &str = "media::subscribe";
pub const MEDIA_UNSUBSCRIBE: &str = "media::unsubscribe";
/// sfu / mcu: replace one of the member's server connections (`transport`).
pub const MEDIA_RESTART: &str = "media::restart";
/// Server -> members of an mcu room: audio levels and the active speaker.
pub const MEDIA_AUDIO_VOLUME: &str = "media::audio::volume";
/// S->C: a subscribe offer went unanswered and the subscribe connection was closed.
pub const MEDIA_SUBSCRIBE_TIMEOUT: &str = "media::subscribe::timeout";

/// Start / stop recording a member (or, with no clientId, every member); also the
/// notifications that tell the room.
pub const RECORD_START: &str = "record::start";
pub const RECORD_STOP: &str = "record::stop";
/// The recorded files of a room.
pub const RECORD_LIST: &str = "record::list";
/// Server -> a mesh member's client: record locally (enabled true) or stop.
pub const CONTROL_CLIENT_RECORD: &str = "control::client::record";

pub const SESSION_CALL: &str = "session::call";
pub const SESSION_EXCHANGE: &str = "session::exchange";
pub const SESSION_PAUSE: &str = "session::pause";
pub const SESSION_RESUME: &str = "session::resume";
pub const SESSION_CLOSE: &str = "session::close";

/// The notification that tells members about a stream action.
pub fn media_signal(action: StreamAction) -> &'static str {
    match action {
        StreamAction::Publish => MEDIA_PUBLISH,
        StreamAction::Unpublish => MEDIA_UNPUBLISH,
        StreamAction::Pause => MEDIA_PAUSE,
        StreamAction::Resume => MEDIA_RESUME,
        StreamAction::Subscribe => MEDIA_SUBSCRIBE,
        StreamAction::Unsubscribe => MEDIA_UNSUBSCRIBE,
    }
}
