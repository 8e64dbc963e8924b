//! Meeting modes as a state machine with no I/O, time passed in: who may publish, and the
//! intercom floor (one talker at a time: request, grant, release, queue, timeout).
//!
//! - **meeting**: everyone may publish.
//! - **broadcast**: only presenters publish (the owner, plus whoever the owner names; the owner
//!   may hand the stage over); everyone else listens.
//! - **intercom**: everyone may publish video, but only the floor holder's audio is forwarded.
//!   The floor goes to the first requester, then in queue order; a holder that releases,
//!   leaves or holds it past `max_hold` loses it and the next in the queue gets it.
//!
//! The room task applies the events this returns (tells members, gates forwarding).

use std::collections::{BTreeSet, VecDeque};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};

#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum MeetingMode {
    #[default]
    Meeting,
    Broadcast,
    Intercom,
}

impl MeetingMode {
    pub fn parse(s: &str) -> Option<MeetingMode> {
        match s {
            "meeting" => Some(MeetingMode::Meeting),
            "broadcast" => Some(MeetingMode::Broadcast),
            "intercom" => Some(MeetingMode::Intercom),
            _ => None,
        }
    }
}

/// What changed, for the room to announce.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum FloorEvent {
    Granted(String),
    Queued {
        member: String,
        position: usize,
    },
    Released(String),
    /// Taken back: the holder left or held it too long.
    Revoked {
        member: String,
        reason: &'static str,
    },
}

#[derive(Debug, Clone)]
pub struct Modes {
    mode: MeetingMode,
    presenters: BTreeSet<String>,
    holder: Option<(String, Instant)>,
    queue: VecDeque<String>,
    max_hold: Duration,
}

impl Modes {
    /// `owner` presents in broadcast mode from the start.
    pub fn new(mode: MeetingMode, owner: &str, max_hold: Duration) -> Self {
        Modes {
            mode,
            presenters: BTreeSet::from([owner.to_owned()]),
            holder: None,
            queue: VecDeque::new(),
            max_hold,
        }
    }

    pub fn mode(&self) -> MeetingMode {
        self.mode
    }

    pub fn presenters(&self) -> impl Iterator<Item = &str> {
        self.presenters.iter().map(String::as_str)
    }

    pub fn floor_holder(&self) -> Option<&str> {
        self.holder.as_ref().map(|(h, _)| h.as_str())
    }

    pub fn queue(&self) -> impl Iterator<Item = &str> {
        self.queue.iter().map(String::as_str)
    }

    /// Changing mode clears the floor (it only exists in intercom).
    pub fn set_mode(&mut self, mode: MeetingMode) -> Vec<FloorEvent> {
        self.mode = mode;
        let mut events = Vec::new();
        if mode != MeetingMode::Intercom {
            if let Some((h, _)) = self.holder.take() {
                events.push(FloorEvent::Released(h));
            }
            self.queue.clear();
        }
        events
    }

    /// May `member` publish at all (any kind) in this mode?
    pub fn may_publish(&self, member: &str) -> bool {
        match self.mode {
            MeetingMode::Meeting | MeetingMode::Intercom => true,
            MeetingMode::Broadcast => self.presenters.contains(member),
        }
    }

    /// Is `member`'s audio forwarded now?
    pub fn audio_forwarded(&self, member: &str) -> bool {
        match self.mode {
            MeetingMode::Meeting => true,
            MeetingMode::Broadcast => self.presenters.contains(member),
            MeetingMode::Intercom => self.floor_holder() == Some(member),
        }
    }

    pub fn add_presenter(&mut self, member: &str) {
        self.presenters.insert(member.to_owned());
    }

    pub fn remove_presenter(&mut self, member: &str) {
        self.presenters.remove(member);
    }

    /// Hands the stage to `to`: it becomes the only presenter.
    pub fn hand_over(&mut self, to: &str) {
        self.presenters.clear();
        self.presenters.insert(to.to_owned());
    }

    /// `member` asks for the floor (intercom only; elsewhere it is granted trivially).
    pub fn request_floor(&mut self, member: &str, now: Instant) -> Vec<FloorEvent> {
        if self.mode != MeetingMode::Intercom {
            return Vec::new();
        }
        match &self.holder {
            None => {
                self.holder = Some((member.to_owned(), now));
                vec![FloorEvent::Granted(member.to_owned())]
            }
            Some((h, _)) if h == member => Vec::new(),
            Some(_) => {
                if !self.queue.iter().any(|q| q == member) {
                    self.queue.push_back(member.to_owned());
                }
                let position = self.queue.iter().position(|q| q == member).unwrap_or(0) + 1;
                vec![FloorEvent::Queued {
                    member: member.to_owned(),
                    position,
                }]
            }
        }
    }

    /// The holder gives the floor back (or a queued member gives up its place).
    pub fn release_floor(&mut self, member: &str, now: Instant) -> Vec<FloorEvent> {
        self.queue.retain(|q| q != member);
        if self.floor_holder() == Some(member) {
            self.holder = None;
            let mut events = vec![FloorEvent::Released(member.to_owned())];
            events.extend(self.grant_next(now));
            return events;
        }
        Vec::new()
    }

    /// A member left the room.
    pub fn member_left(&mut self, member: &str, now: Instant) -> Vec<FloorEvent> {
        self.presenters.remove(member);
        self.queue.retain(|q| q != member);
        if self.floor_holder() == Some(member) {
            self.holder = None;
            let mut events = vec![FloorEvent::Revoked {
                member: member.to_owned(),
                reason: "left",
            }];
            events.extend(self.grant_next(now));
            return events;
        }
        Vec::new()
    }

    /// Takes the floor back from a holder past `max_hold`.
    pub fn tick(&mut self, now: Instant) -> Vec<FloorEvent> {
        match &self.holder {
            Some((h, since)) if now.duration_since(*since) >= self.max_hold => {
                let member = h.clone();
                self.holder = None;
                let mut events = vec![FloorEvent::Revoked {
                    member,
                    reason: "timeout",
                }];
                events.extend(self.grant_next(now));
                events
            }
            _ => Vec::new(),
        }
    }

    /// When the holder must give the floor back (for the room task's timer).
    pub fn floor_deadline(&self) -> Option<Instant> {
        self.holder
            .as_ref()
            .map(|(_, since)| *since + self.max_hold)
    }

    fn grant_next(&mut self, now: Instant) -> Option<FloorEvent> {
        let next = self.queue.pop_front()?;
        self.holder = Some((next.clone(), now));
        Some(FloorEvent::Granted(next))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn intercom() -> (Modes, Instant) {
        (
            Modes::new(MeetingMode::Intercom, "owner", Duration::from_secs(30)),
            Instant::now(),
        )
    }

    #[test]
    fn broadcast_mode_lets_only_presenters_publish() {
        let mut m = Modes::new(MeetingMode::Broadcast, "owner", Duration::from_secs(30));
        assert!(m.may_publish("owner"));
        assert!(!m.may_publish("viewer"));
        m.add_presenter("guest");
        assert!(m.may_publish("guest") && m.audio_forwarded("guest"));
        m.hand_over("viewer");
        assert!(m.may_publish("viewer"));
        assert!(!m.may_publish("owner") && !m.may_publish("guest"));
        m.set_mode(MeetingMode::Meeting);
        assert!(m.may_publish("anyone") && m.audio_forwarded("anyone"));
    }

    #[test]
    fn the_floor_passes_in_queue_order() {
        let (mut m, t) = intercom();
        assert_eq!(
            m.request_floor("a", t),
            vec![FloorEvent::Granted("a".into())]
        );
        assert_eq!(
            m.request_floor("b", t),
            vec![FloorEvent::Queued {
                member: "b".into(),
                position: 1
            }]
        );
        assert_eq!(
            m.request_floor("c", t),
            vec![FloorEvent::Queued {
                member: "c".into(),
                position: 2
            }]
        );
        assert_eq!(
            m.request_floor("b", t),
            vec![FloorEvent::Queued {
                member: "b".into(),
                position: 1
            }],
            "asking twice keeps the place"
        );
        assert!(m.audio_forwarded("a") && !m.audio_forwarded("b"));
        assert!(
            m.may_publish("b"),
            "everyone may publish; only the holder's audio is forwarded"
        );
        assert_eq!(
            m.release_floor("a", t),
            vec![
                FloorEvent::Released("a".into()),
                FloorEvent::Granted("b".into())
            ]
        );
        assert_eq!(
            m.release_floor("b", t),
            vec![
                FloorEvent::Released("b".into()),
                FloorEvent::Granted("c".into())
            ]
        );
        assert_eq!(
            m.release_floor("c", t),
            vec![FloorEvent::Released("c".into())]
        );
        assert_eq!(m.floor_holder(), None);
        assert!(m.release_floor("zz", t).is_empty());
    }

    #[test]
    fn a_holder_that_leaves_or_times_out_loses_the_floor() {
        let (mut m, t) = intercom();
        m.request_floor("a", t);
        m.request_floor("b", t);
        m.request_floor("c", t);
        assert_eq!(
            m.member_left("a", t),
            vec![
                FloorEvent::Revoked {
                    member: "a".into(),
                    reason: "left"
                },
                FloorEvent::Granted("b".into())
            ]
        );
        assert!(m.tick(t + Duration::from_secs(29)).is_empty());
        assert_eq!(m.floor_deadline(), Some(t + Duration::from_secs(30)));
        assert_eq!(
            m.tick(t + Duration::from_secs(30)),
            vec![
                FloorEvent::Revoked {
                    member: "b".into(),
                    reason: "timeout"
                },
                FloorEvent::Granted("c".into())
            ]
        );
        // A queued member that leaves just drops out of the queue.
        m.request_floor("d", t);
        assert!(m.member_left("d", t).is_empty());
        assert_eq!(m.queue().count(), 0);
    }

    #[test]
    fn leaving_intercom_clears_the_floor() {
        let (mut m, t) = intercom();
        m.request_floor("a", t);
        m.request_floor("b", t);
        assert_eq!(
            m.set_mode(MeetingMode::Meeting),
            vec![FloorEvent::Released("a".into())]
        );
        assert_eq!(m.floor_holder(), None);
        assert_eq!(m.queue().count(), 0);
        assert!(
            m.request_floor("a", t).is_empty(),
            "no floor outside intercom"
        );
        assert_eq!(MeetingMode::parse("intercom"), Some(MeetingMode::Intercom));
        assert_eq!(MeetingMode::parse("party"), None);
    }
}
