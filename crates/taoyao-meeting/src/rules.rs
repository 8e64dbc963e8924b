//! A room's rules as a state machine with no I/O: membership, ownership, passwords,
//! invitations, limits. The room task drives it and turns its results into signals.

use std::collections::HashSet;

use subtle::ConstantTimeEq;
use taoyao_boot::{Code, ErrorCode};

/// Who is acting, as the rules need to know them.
#[derive(Debug, Clone, Copy)]
pub struct Actor<'a> {
    pub id: &'a str,
    /// An admin login: may manage any room.
    pub admin: bool,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum RoomError {
    #[error("you are not a member of room {0}")]
    NotMember(String),
    #[error("only the room's owner or an admin may {0}")]
    NotManager(&'static str),
    #[error("wrong room password")]
    WrongPassword,
    #[error("room {room} is full ({max} members)")]
    Full { room: String, max: usize },
    #[error("you are already in room {0}")]
    AlreadyMember(String),
    #[error("client {0} is not in this room")]
    TargetNotMember(String),
    #[error("client {0} is already in this room")]
    TargetAlreadyMember(String),
    #[error("you cannot {0} yourself")]
    SelfTarget(&'static str),
}

impl ErrorCode for RoomError {
    fn code(&self) -> Code {
        match self {
            RoomError::NotMember(_) | RoomError::NotManager(_) | RoomError::WrongPassword => {
                Code::Forbidden
            }
            RoomError::Full { .. } => Code::Forbidden,
            RoomError::TargetNotMember(_) => Code::NotFound,
            RoomError::AlreadyMember(_)
            | RoomError::TargetAlreadyMember(_)
            | RoomError::SelfTarget(_) => Code::BadRequest,
        }
    }
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Member {
    pub id: String,
    pub name: String,
    /// Unix ms.
    pub joined_at: u64,
}

#[derive(Debug, Clone)]
pub struct RoomRules {
    id: String,
    owner: String,
    password: Option<String>,
    max_members: usize,
    /// In join order.
    members: Vec<Member>,
    invited: HashSet<String>,
}

impl RoomRules {
    pub fn new(
        id: impl Into<String>,
        owner: impl Into<String>,
        password: Option<String>,
        max_members: usize,
    ) -> Self {
        RoomRules {
            id: id.into(),
            owner: owner.into(),
            password,
            max_members,
            members: Vec::new(),
            invited: HashSet::new(),
        }
    }

    pub fn owner(&self) -> &str {
        &self.owner
    }

    /// Changes how many members may be in the room from the next `enter` on (a live room holds
    /// more); members already in stay.
    pub fn set_max_members(&mut self, max: usize) {
        self.max_members = max;
    }

    pub fn has_password(&self) -> bool {
        self.password.is_some()
    }

    pub fn members(&self) -> &[Member] {
        &self.members
    }

    pub fn is_member(&self, id: &str) -> bool {
        self.members.iter().any(|m| m.id == id)
    }

    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    fn may_manage(&self, who: Actor<'_>) -> bool {
        who.admin || who.id == self.owner
    }

    /// Enters the room. The owner, admins and invited clients need no password.
    pub fn enter(
        &mut self,
        who: Actor<'_>,
        name: &str,
        password: Option<&str>,
        now_ms: u64,
    ) -> Result<(), RoomError> {
        if self.is_member(who.id) {
            return Err(RoomError::AlreadyMember(self.id.clone()));
        }
        if let Some(expected) = &self.password
            && !self.may_manage(who)
            && !self.invited.contains(who.id)
        {
            let given = password.unwrap_or("");
            let ok: bool = expected.as_bytes().ct_eq(given.as_bytes()).into();
            if !ok {
                return Err(RoomError::WrongPassword);
            }
        }
        if self.members.len() >= self.max_members {
            return Err(RoomError::Full {
                room: self.id.clone(),
                max: self.max_members,
            });
        }
        self.invited.remove(who.id);
        self.members.push(Member {
            id: who.id.to_owned(),
            name: name.to_owned(),
            joined_at: now_ms,
        });
        Ok(())
    }

    pub fn leave(&mut self, id: &str) -> Result<Member, RoomError> {
        let pos = self
            .members
            .iter()
            .position(|m| m.id == id)
            .ok_or_else(|| RoomError::NotMember(self.id.clone()))?;
        Ok(self.members.remove(pos))
    }

    /// Room signals other than enter need membership.
    pub fn require_member(&self, who: Actor<'_>) -> Result<(), RoomError> {
        if self.is_member(who.id) {
            Ok(())
        } else {
            Err(RoomError::NotMember(self.id.clone()))
        }
    }

    /// Reading the room (status, member list): members, and admins.
    pub fn require_viewer(&self, who: Actor<'_>) -> Result<(), RoomError> {
        if who.admin {
            Ok(())
        } else {
            self.require_member(who)
        }
    }

    pub fn require_manager(&self, who: Actor<'_>, action: &'static str) -> Result<(), RoomError> {
        if self.may_manage(who) {
            Ok(())
        } else {
            Err(RoomError::NotManager(action))
        }
    }

    /// Invites a client: it may then enter without the password.
    pub fn invite(&mut self, who: Actor<'_>, target: &str) -> Result<(), RoomError> {
        self.require_manager(who, "invite")?;
        if target == who.id {
            return Err(RoomError::SelfTarget("invite"));
        }
        if self.is_member(target) {
            return Err(RoomError::TargetAlreadyMember(target.to_owned()));
        }
        self.invited.insert(target.to_owned());
        Ok(())
    }

    /// Removes a member.
    pub fn expel(&mut self, who: Actor<'_>, target: &str) -> Result<Member, RoomError> {
        self.require_manager(who, "expel")?;
        if target == who.id {
            return Err(RoomError::SelfTarget("expel"));
        }
        self.invited.remove(target);
        self.leave(target)
            .map_err(|_| RoomError::TargetNotMember(target.to_owned()))
    }

    pub fn close(&self, who: Actor<'_>) -> Result<(), RoomError> {
        self.require_manager(who, "close the room")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn a(id: &str) -> Actor<'_> {
        Actor { id, admin: false }
    }

    fn room(password: Option<&str>) -> RoomRules {
        RoomRules::new("r", "owner", password.map(Into::into), 3)
    }

    #[test]
    fn enter_leave_and_limits() {
        let mut r = room(None);
        r.enter(a("owner"), "O", None, 1).unwrap();
        r.enter(a("b"), "B", None, 2).unwrap();
        assert_eq!(
            r.enter(a("b"), "B", None, 3),
            Err(RoomError::AlreadyMember("r".into()))
        );
        r.enter(a("c"), "C", None, 3).unwrap();
        assert_eq!(
            r.enter(a("d"), "D", None, 4),
            Err(RoomError::Full {
                room: "r".into(),
                max: 3
            })
        );
        let ids: Vec<_> = r.members().iter().map(|m| m.id.as_str()).collect();
        assert_eq!(ids, ["owner", "b", "c"], "join order");
        assert_eq!(r.leave("b").unwrap().name, "B");
        assert_eq!(r.leave("b"), Err(RoomError::NotMember("r".into())));
        r.enter(a("d"), "D", None, 5).unwrap();
    }

    #[test]
    fn password_is_needed_except_for_owner_admin_and_invited() {
        let mut r = room(Some("secret"));
        assert_eq!(r.enter(a("x"), "X", None, 0), Err(RoomError::WrongPassword));
        assert_eq!(
            r.enter(a("x"), "X", Some("nope"), 0),
            Err(RoomError::WrongPassword)
        );
        assert_eq!(
            r.enter(a("x"), "X", Some("secre"), 0),
            Err(RoomError::WrongPassword)
        );
        r.enter(a("x"), "X", Some("secret"), 0).unwrap();
        r.enter(a("owner"), "O", None, 0).unwrap();
        r.enter(
            Actor {
                id: "adm",
                admin: true,
            },
            "A",
            None,
            0,
        )
        .unwrap();
        assert!(r.has_password());
        let mut r = room(Some("secret"));
        r.invite(a("owner"), "guest").unwrap();
        r.enter(a("guest"), "G", None, 0).unwrap();
        r.leave("guest").unwrap();
        assert_eq!(
            r.enter(a("guest"), "G", None, 0),
            Err(RoomError::WrongPassword),
            "an invitation is used once"
        );
    }

    #[test]
    fn only_owner_or_admin_manage() {
        let mut r = room(None);
        for m in ["owner", "b", "c"] {
            r.enter(a(m), m, None, 0).unwrap();
        }
        assert_eq!(
            r.close(a("b")),
            Err(RoomError::NotManager("close the room"))
        );
        assert_eq!(r.expel(a("b"), "c"), Err(RoomError::NotManager("expel")));
        assert_eq!(r.invite(a("b"), "z"), Err(RoomError::NotManager("invite")));
        assert_eq!(
            r.expel(a("owner"), "owner"),
            Err(RoomError::SelfTarget("expel"))
        );
        assert_eq!(
            r.expel(a("owner"), "zz"),
            Err(RoomError::TargetNotMember("zz".into()))
        );
        assert_eq!(
            r.invite(a("owner"), "b"),
            Err(RoomError::TargetAlreadyMember("b".into()))
        );
        assert_eq!(r.expel(a("owner"), "c").unwrap().id, "c");
        let admin = Actor {
            id: "adm",
            admin: true,
        };
        assert!(r.close(admin).is_ok());
        assert!(r.require_viewer(admin).is_ok());
        assert_eq!(
            r.require_member(a("zz")),
            Err(RoomError::NotMember("r".into()))
        );
        assert!(r.close(a("owner")).is_ok());
    }

    #[test]
    fn codes() {
        assert_eq!(RoomError::NotMember("r".into()).code(), Code::Forbidden);
        assert_eq!(RoomError::NotManager("x").code(), Code::Forbidden);
        assert_eq!(
            RoomError::TargetNotMember("x".into()).code(),
            Code::NotFound
        );
        assert_eq!(
            RoomError::AlreadyMember("r".into()).code(),
            Code::BadRequest
        );
    }
}
