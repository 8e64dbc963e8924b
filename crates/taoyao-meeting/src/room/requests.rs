//! The room's request bodies, decoded once ([`taoyao_signal::fields::decode`]) into typed
//! structs before any rule is applied: a missing or wrong field is 3400 naming it. Fields a
//! body carries that a signal does not use (`roomId`, a client's extras) are ignored.

use serde::Deserialize;
use taoyao_webrtc::{MediaKind, MemberId, StreamId, SubscribePolicy, Transport};

use crate::modes::MeetingMode;

/// `room::enter` (the registry reads `architecture` / `mode` when it makes the room).
#[derive(Debug, Deserialize)]
pub(crate) struct Enter<'a> {
    pub password: Option<&'a str>,
    pub subscribe: Option<Subscribe>,
}

/// `subscribe` as the wire spells it (taoyao's subscribeType).
#[derive(Debug, Clone, Copy, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum Subscribe {
    All,
    Audio,
    Video,
    None,
}

impl From<Subscribe> for SubscribePolicy {
    fn from(s: Subscribe) -> Self {
        match s {
            Subscribe::All => SubscribePolicy::All,
            Subscribe::Audio => SubscribePolicy::AudioOnly,
            Subscribe::Video => SubscribePolicy::VideoOnly,
            Subscribe::None => SubscribePolicy::None,
        }
    }
}

/// A request about one member: `room::invite`, `room::expel`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Target<'a> {
    pub client_id: &'a str,
}

/// `media::exchange`'s routing (the negotiation itself is read by `Negotiation::from_body`).
#[derive(Debug, Deserialize)]
pub(crate) struct Exchange<'a> {
    pub to: Option<&'a str>,
    pub transport: Option<Transport>,
}

/// `media::restart`.
#[derive(Debug, Deserialize)]
pub(crate) struct Restart {
    pub transport: Transport,
}

/// `media::publish` with an offer (sfu, mcu).
#[derive(Debug, Deserialize)]
pub(crate) struct PublishOffer {
    pub sdp: String,
}

/// `media::publish` (mesh announcement) / `unpublish` / `pause` / `resume` / `subscribe` /
/// `unsubscribe`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct StreamBody {
    pub kind: Option<MediaKind>,
    pub stream_id: Option<StreamId>,
    pub client_id: Option<MemberId>,
}

/// `room::mode`.
#[derive(Debug, Deserialize)]
pub(crate) struct Mode {
    pub mode: MeetingMode,
}

/// `room::presenter`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Presenter<'a> {
    pub client_id: &'a str,
    /// Absent (or null): add.
    pub action: Option<PresenterAction>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum PresenterAction {
    #[default]
    Add,
    Remove,
    Handover,
}

/// `room::floor`.
#[derive(Debug, Deserialize)]
pub(crate) struct Floor {
    /// Absent (or null): request.
    pub action: Option<FloorAction>,
}

#[derive(Debug, Clone, Copy, Default, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum FloorAction {
    #[default]
    Request,
    Release,
}

/// `room::mute`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Mute<'a> {
    pub client_id: &'a str,
    pub kind: Option<MediaKind>,
    /// Absent: mute.
    pub muted: Option<bool>,
}

/// `live::start`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct LiveStart<'a> {
    /// An admin names the anchor; absent: the owner starts its own.
    pub client_id: Option<&'a str>,
}

/// `live::cohost`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Cohost<'a> {
    pub action: CohostAction,
    pub client_id: Option<&'a str>,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Deserialize)]
#[serde(rename_all = "lowercase")]
pub(crate) enum CohostAction {
    Request,
    Invite,
    Accept,
    Decline,
    End,
}

/// `record::start` / `record::stop`.
#[derive(Debug, Deserialize)]
#[serde(rename_all = "camelCase")]
pub(crate) struct Record<'a> {
    pub client_id: Option<&'a str>,
    /// The room's mixed audio (mcu) instead of a member.
    pub mix: Option<bool>,
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;
    use taoyao_signal::fields::decode;

    #[test]
    fn bodies_decode_with_their_wire_names_and_defaults() {
        let body = json!({"roomId": "r", "clientId": "b"});
        let p: Presenter = decode(&body).unwrap();
        assert!(matches!((p.client_id, p.action), ("b", None)));
        let f: Floor = decode(&json!({"action": null})).unwrap();
        assert!(f.action.is_none());
        let f: Floor = decode(&json!({"action": "release"})).unwrap();
        assert!(matches!(f.action, Some(FloorAction::Release)));
        let body = json!({"subscribe": "audio"});
        let e: Enter = decode(&body).unwrap();
        assert_eq!(
            e.subscribe.map(SubscribePolicy::from),
            Some(SubscribePolicy::AudioOnly)
        );
        let body = json!({"clientId": "b", "kind": "video"});
        let m: Mute = decode(&body).unwrap();
        assert_eq!((m.kind, m.muted), (Some(MediaKind::Video), None));
        let r: Restart = decode(&json!({"transport": "subscribe"})).unwrap();
        assert_eq!(r.transport, Transport::Subscribe);
        for (bad, field) in [
            (decode::<Restart>(&json!({})).map(|_| ()), "transport"),
            (
                decode::<Mode>(&json!({"mode": "party"})).map(|_| ()),
                "mode",
            ),
            (
                decode::<Cohost>(&json!({"action": "wave"})).map(|_| ()),
                "action",
            ),
            (
                decode::<Mute>(&json!({"clientId": "b", "muted": 1})).map(|_| ()),
                "muted",
            ),
            (
                decode::<Enter>(&json!({"subscribe": "some"})).map(|_| ()),
                "subscribe",
            ),
        ] {
            let e = bad.unwrap_err();
            assert_eq!(e.code, taoyao_boot::Code::BadRequest);
            assert!(e.message.starts_with(field), "{}", e.message);
        }
    }
}
