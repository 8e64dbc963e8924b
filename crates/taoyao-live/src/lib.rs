//! Live-streaming scenario rules: an anchor publishes, viewers watch subscribe-only, a viewer
//! may be brought on stage to co-host (连麦). A state machine with no I/O: the room task
//! (taoyao-meeting) applies what it returns, tells members and gates media.
//!
//! - `start` by the room's owner (the anchor) puts the room on air; `stop` takes it off.
//! - On air, only the anchor and accepted co-hosts may publish; everyone else is a viewer.
//! - Co-host: a viewer asks (`request`) and the anchor accepts or declines, or the anchor
//!   invites and the viewer accepts or declines; either the anchor or the co-host ends it.
//! - The anchor dropping off either stops the live or pauses it for a grace period
//!   ([`AnchorDrop`]); coming back within it resumes.

use std::collections::BTreeSet;

use serde::{Deserialize, Serialize};
use taoyao_boot::{Code, ErrorCode};

/// What happens when the anchor's connection ends while on air.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum AnchorDrop {
    /// The live stops at once and viewers are told.
    #[default]
    Stop,
    /// Viewers are told the live paused; it resumes if the anchor is back within the grace
    /// period, else it stops.
    Pause,
}

/// `[live]`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LiveConfig {
    pub on_anchor_drop: AnchorDrop,
    /// With `on_anchor_drop = "pause"`: how long the anchor may be away.
    pub anchor_grace_ms: u64,
    /// Co-hosts on stage at once, besides the anchor.
    pub max_cohosts: usize,
    /// While a room is live it holds this many viewers besides the stage (the anchor and
    /// `max_cohosts`), in place of `rooms.max_members` when that is smaller: a live's audience
    /// is larger than a meeting.
    pub max_viewers: usize,
}

impl Default for LiveConfig {
    fn default() -> Self {
        LiveConfig {
            on_anchor_drop: AnchorDrop::Stop,
            anchor_grace_ms: 30_000,
            max_cohosts: 3,
            max_viewers: 200,
        }
    }
}

impl taoyao_boot::Validate for LiveConfig {
    fn validate(&self) -> Result<(), taoyao_boot::Invalid> {
        if self.anchor_grace_ms == 0 {
            return Err(taoyao_boot::Invalid::new(
                "live.anchor_grace_ms",
                "must be greater than 0",
            ));
        }
        if self.max_viewers == 0 {
            return Err(taoyao_boot::Invalid::new(
                "live.max_viewers",
                "must be greater than 0",
            ));
        }
        Ok(())
    }
}

impl LiveConfig {
    /// How many members a live room holds: the stage and `max_viewers`, or the room's own
    /// limit (`room_max`) when that is larger.
    pub fn room_capacity(&self, room_max: usize) -> usize {
        room_max.max(1 + self.max_cohosts + self.max_viewers)
    }
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum LiveError {
    #[error("only the anchor may {0}")]
    NotAnchor(&'static str),
    #[error("the room is not live")]
    NotLive,
    #[error("the room is already live")]
    AlreadyLive,
    #[error("{0} is not waiting for that")]
    NothingPending(String),
    #[error("{0} is already on stage")]
    AlreadyOnStage(String),
    #[error("{0} is not on stage")]
    NotOnStage(String),
    #[error("the stage is full ({0} co-hosts)")]
    StageFull(usize),
    #[error("the anchor cannot {0}")]
    AnchorCannot(&'static str),
}

impl ErrorCode for LiveError {
    fn code(&self) -> Code {
        match self {
            LiveError::NotAnchor(_) | LiveError::StageFull(_) => Code::Forbidden,
            LiveError::NothingPending(_) | LiveError::NotOnStage(_) => Code::NotFound,
            LiveError::NotLive
            | LiveError::AlreadyLive
            | LiveError::AlreadyOnStage(_)
            | LiveError::AnchorCannot(_) => Code::BadRequest,
        }
    }
}

/// A change to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LiveEvent {
    /// `viewer` asks the anchor to co-host.
    Requested(String),
    /// The anchor invites `viewer`.
    Invited(String),
    /// A request or an invitation was declined (`by` the one who declined).
    Declined { viewer: String, by: String },
    /// `viewer` is on stage.
    OnStage(String),
    /// `cohost` left the stage (`by` who ended it).
    OffStage { cohost: String, by: String },
}

#[derive(Debug, Clone)]
pub struct Live {
    anchor: String,
    on_air: bool,
    /// The anchor is away (pause on drop).
    paused: bool,
    started_at: u64,
    cohosts: BTreeSet<String>,
    requests: BTreeSet<String>,
    invites: BTreeSet<String>,
    max_cohosts: usize,
}

impl Live {
    /// `anchor` (the room's owner) goes on air at `now_ms`.
    pub fn start(anchor: &str, now_ms: u64, max_cohosts: usize) -> Live {
        Live {
            anchor: anchor.to_owned(),
            on_air: true,
            paused: false,
            started_at: now_ms,
            cohosts: BTreeSet::new(),
            requests: BTreeSet::new(),
            invites: BTreeSet::new(),
            max_cohosts,
        }
    }

    pub fn anchor(&self) -> &str {
        &self.anchor
    }

    pub fn is_on_air(&self) -> bool {
        self.on_air
    }

    pub fn is_paused(&self) -> bool {
        self.paused
    }

    pub fn started_at(&self) -> u64 {
        self.started_at
    }

    pub fn cohosts(&self) -> impl Iterator<Item = &str> {
        self.cohosts.iter().map(String::as_str)
    }

    /// May `member` publish? The anchor and co-hosts; viewers not.
    pub fn may_publish(&self, member: &str) -> bool {
        member == self.anchor || self.cohosts.contains(member)
    }

    /// The anchor (or an admin, `admin`) takes the room off air. Co-hosts leave the stage.
    pub fn stop(&mut self, by: &str, admin: bool) -> Result<Vec<String>, LiveError> {
        if by != self.anchor && !admin {
            return Err(LiveError::NotAnchor("stop the live"));
        }
        self.on_air = false;
        self.requests.clear();
        self.invites.clear();
        Ok(std::mem::take(&mut self.cohosts).into_iter().collect())
    }

    /// A viewer asks to co-host.
    pub fn request(&mut self, viewer: &str) -> Result<LiveEvent, LiveError> {
        self.check_viewer(viewer, "ask to co-host")?;
        self.requests.insert(viewer.to_owned());
        Ok(LiveEvent::Requested(viewer.to_owned()))
    }

    /// The anchor invites a viewer.
    pub fn invite(&mut self, by: &str, viewer: &str) -> Result<LiveEvent, LiveError> {
        self.require_anchor(by, "invite a co-host")?;
        self.check_viewer(viewer, "invite itself")?;
        self.invites.insert(viewer.to_owned());
        Ok(LiveEvent::Invited(viewer.to_owned()))
    }

    /// `by` accepts: the anchor accepting `viewer`'s request, or a viewer (`by`) accepting the
    /// anchor's invitation (`viewer` = `by`).
    pub fn accept(&mut self, by: &str, viewer: &str) -> Result<LiveEvent, LiveError> {
        let pending = if by == self.anchor {
            &mut self.requests
        } else if by == viewer {
            &mut self.invites
        } else {
            return Err(LiveError::NotAnchor("accept someone else's request"));
        };
        if !pending.contains(viewer) {
            return Err(LiveError::NothingPending(viewer.to_owned()));
        }
        if self.cohosts.len() >= self.max_cohosts {
            return Err(LiveError::StageFull(self.max_cohosts));
        }
        pending.remove(viewer);
        self.requests.remove(viewer);
        self.invites.remove(viewer);
        self.cohosts.insert(viewer.to_owned());
        Ok(LiveEvent::OnStage(viewer.to_owned()))
    }

    /// `by` declines: the anchor declining `viewer`'s request, or a viewer declining an invite.
    pub fn decline(&mut self, by: &str, viewer: &str) -> Result<LiveEvent, LiveError> {
        let pending = if by == self.anchor {
            &mut self.requests
        } else if by == viewer {
            &mut self.invites
        } else {
            return Err(LiveError::NotAnchor("decline someone else's request"));
        };
        if !pending.remove(viewer) {
            return Err(LiveError::NothingPending(viewer.to_owned()));
        }
        Ok(LiveEvent::Declined {
            viewer: viewer.to_owned(),
            by: by.to_owned(),
        })
    }

    /// The anchor, or the co-host itself, ends a co-host's time on stage.
    pub fn end(&mut self, by: &str, cohost: &str) -> Result<LiveEvent, LiveError> {
        if by != self.anchor && by != cohost {
            return Err(LiveError::NotAnchor("end someone else's co-hosting"));
        }
        if !self.cohosts.remove(cohost) {
            return Err(LiveError::NotOnStage(cohost.to_owned()));
        }
        Ok(LiveEvent::OffStage {
            cohost: cohost.to_owned(),
            by: by.to_owned(),
        })
    }

    /// A member left the room: its requests, invitations and place on stage go.
    pub fn member_left(&mut self, member: &str) -> Option<LiveEvent> {
        self.requests.remove(member);
        self.invites.remove(member);
        self.cohosts.remove(member).then(|| LiveEvent::OffStage {
            cohost: member.to_owned(),
            by: member.to_owned(),
        })
    }

    /// The anchor dropped off: with [`AnchorDrop::Pause`] the live waits (true), else it stops
    /// (false).
    pub fn anchor_dropped(&mut self, policy: AnchorDrop) -> bool {
        match policy {
            AnchorDrop::Pause => {
                self.paused = true;
                true
            }
            AnchorDrop::Stop => {
                self.on_air = false;
                self.cohosts.clear();
                self.requests.clear();
                self.invites.clear();
                false
            }
        }
    }

    /// The anchor is back while paused.
    pub fn anchor_back(&mut self) -> bool {
        std::mem::replace(&mut self.paused, false)
    }

    fn require_anchor(&self, by: &str, what: &'static str) -> Result<(), LiveError> {
        if by != self.anchor {
            return Err(LiveError::NotAnchor(what));
        }
        Ok(())
    }

    fn check_viewer(&self, viewer: &str, what: &'static str) -> Result<(), LiveError> {
        if !self.on_air {
            return Err(LiveError::NotLive);
        }
        if viewer == self.anchor {
            return Err(LiveError::AnchorCannot(what));
        }
        if self.cohosts.contains(viewer) {
            return Err(LiveError::AlreadyOnStage(viewer.to_owned()));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn live() -> Live {
        Live::start("anchor", 1, 2)
    }

    #[test]
    fn a_live_room_holds_the_stage_and_its_viewers_or_the_room_limit_if_larger() {
        let c = LiveConfig {
            max_cohosts: 3,
            max_viewers: 200,
            ..LiveConfig::default()
        };
        assert_eq!(c.room_capacity(16), 204);
        assert_eq!(c.room_capacity(1000), 1000);
        use taoyao_boot::Validate;
        let zero = LiveConfig {
            max_viewers: 0,
            ..LiveConfig::default()
        };
        assert!(
            zero.validate()
                .unwrap_err()
                .to_string()
                .contains("live.max_viewers")
        );
    }

    #[test]
    fn only_the_anchor_and_cohosts_publish() {
        let mut l = live();
        assert!(l.may_publish("anchor"));
        assert!(!l.may_publish("v1"));
        l.request("v1").unwrap();
        assert_eq!(
            l.accept("anchor", "v1"),
            Ok(LiveEvent::OnStage("v1".into()))
        );
        assert!(l.may_publish("v1"));
        assert!(!l.may_publish("v2"));
    }

    #[test]
    fn a_request_is_accepted_or_declined_by_the_anchor_only() {
        let mut l = live();
        l.request("v1").unwrap();
        assert_eq!(
            l.accept("v2", "v1"),
            Err(LiveError::NotAnchor("accept someone else's request"))
        );
        // A viewer cannot accept its own request (only an invitation).
        assert_eq!(
            l.accept("v1", "v1"),
            Err(LiveError::NothingPending("v1".into()))
        );
        assert_eq!(
            l.decline("anchor", "v1"),
            Ok(LiveEvent::Declined {
                viewer: "v1".into(),
                by: "anchor".into()
            })
        );
        assert_eq!(
            l.accept("anchor", "v1"),
            Err(LiveError::NothingPending("v1".into()))
        );
    }

    #[test]
    fn an_invitation_is_accepted_or_declined_by_the_viewer() {
        let mut l = live();
        assert_eq!(
            l.invite("v1", "v2"),
            Err(LiveError::NotAnchor("invite a co-host"))
        );
        l.invite("anchor", "v1").unwrap();
        assert_eq!(
            l.accept("anchor", "v1"),
            Err(LiveError::NothingPending("v1".into())),
            "the anchor cannot accept its own invitation"
        );
        assert_eq!(l.accept("v1", "v1"), Ok(LiveEvent::OnStage("v1".into())));
        l.invite("anchor", "v2").unwrap();
        assert!(matches!(
            l.decline("v2", "v2"),
            Ok(LiveEvent::Declined { .. })
        ));
        assert!(!l.may_publish("v2"));
    }

    #[test]
    fn the_stage_is_bounded() {
        let mut l = live();
        for v in ["v1", "v2", "v3"] {
            l.request(v).unwrap();
        }
        l.accept("anchor", "v1").unwrap();
        l.accept("anchor", "v2").unwrap();
        assert_eq!(l.accept("anchor", "v3"), Err(LiveError::StageFull(2)));
        // Still pending: room on stage later.
        l.end("v1", "v1").unwrap();
        assert!(l.accept("anchor", "v3").is_ok());
    }

    #[test]
    fn cohosting_is_ended_by_the_anchor_or_the_cohost_only() {
        let mut l = live();
        l.request("v1").unwrap();
        l.accept("anchor", "v1").unwrap();
        assert_eq!(
            l.end("v2", "v1"),
            Err(LiveError::NotAnchor("end someone else's co-hosting"))
        );
        assert_eq!(
            l.end("anchor", "v1"),
            Ok(LiveEvent::OffStage {
                cohost: "v1".into(),
                by: "anchor".into()
            })
        );
        assert!(!l.may_publish("v1"));
        assert_eq!(
            l.end("anchor", "v1"),
            Err(LiveError::NotOnStage("v1".into()))
        );
    }

    #[test]
    fn stop_takes_everyone_off_stage_and_ends_requests() {
        let mut l = live();
        l.request("v1").unwrap();
        l.accept("anchor", "v1").unwrap();
        l.request("v2").unwrap();
        assert_eq!(
            l.stop("v1", false),
            Err(LiveError::NotAnchor("stop the live"))
        );
        assert_eq!(l.stop("anchor", false), Ok(vec!["v1".to_owned()]));
        assert!(!l.is_on_air());
        assert_eq!(l.request("v3"), Err(LiveError::NotLive));
        assert_eq!(
            l.accept("anchor", "v2"),
            Err(LiveError::NothingPending("v2".into()))
        );
    }

    #[test]
    fn a_leaving_member_loses_its_place() {
        let mut l = live();
        l.request("v1").unwrap();
        l.accept("anchor", "v1").unwrap();
        l.invite("anchor", "v2").unwrap();
        assert!(matches!(
            l.member_left("v1"),
            Some(LiveEvent::OffStage { .. })
        ));
        assert_eq!(l.member_left("v2"), None);
        assert_eq!(
            l.accept("v2", "v2"),
            Err(LiveError::NothingPending("v2".into()))
        );
    }

    #[test]
    fn the_anchor_dropping_stops_or_pauses() {
        let mut l = live();
        assert!(!l.anchor_dropped(AnchorDrop::Stop));
        assert!(!l.is_on_air());
        let mut l = live();
        assert!(l.anchor_dropped(AnchorDrop::Pause));
        assert!(l.is_on_air() && l.is_paused());
        assert!(l.anchor_back());
        assert!(!l.is_paused());
        assert!(!l.anchor_back());
    }

    #[test]
    fn the_anchor_cannot_cohost_with_itself() {
        let mut l = live();
        assert_eq!(
            l.request("anchor"),
            Err(LiveError::AnchorCannot("ask to co-host"))
        );
        assert_eq!(
            l.invite("anchor", "anchor"),
            Err(LiveError::AnchorCannot("invite itself"))
        );
    }
}
