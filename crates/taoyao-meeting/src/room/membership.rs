//! Who is in the room: entering (with its media and, in sfu/mcu, its subscriptions), leaving,
//! closing, invitations, expulsions, the room's status and member list, and broadcasts.

use std::time::Duration;

use taoyao_signal::{ClientHandle, Reply, Request, SignalError};
use taoyao_webrtc::{
    JoinOptions, MediaKind, MemberId, StreamAction, StreamRequest, SubscribePolicy,
};
use tokio::time::Instant;

use super::requests::{Enter, Target};
use super::{RoomTask, actor, clock_now, now_ms, refused, wire};
use crate::events::RoomEventKind;
use crate::signals;

impl RoomTask {
    pub(super) async fn enter(
        &mut self,
        req: &Request,
        r: Enter<'_>,
    ) -> Result<Reply, SignalError> {
        let who = actor(&req.client);
        let me = req.client.id();
        let subscribe = r
            .subscribe
            .map_or(SubscribePolicy::All, SubscribePolicy::from);
        // A live holds an audience (`live.max_viewers`), a meeting `max_members`.
        let capacity = match self.live_on_air() {
            Some(_) => self.shared.live.room_capacity(self.max_members),
            None => self.max_members,
        };
        self.rules.set_max_members(capacity);
        self.rules
            .enter(who, &req.client.info().name, r.password, now_ms())
            .map_err(refused)?;
        if let Err(e) = self
            .media
            .join(
                &MemberId::from(me),
                JoinOptions::new(req.client.info().name.clone()).with_subscribe(subscribe),
            )
            .await
        {
            let _ = self.rules.leave(me);
            return Err(SignalError::from_coded(&e));
        }
        self.clients.insert(me.to_owned(), req.client.clone());
        let member = self.member_json(me);
        self.tell_members(
            signals::ROOM_ENTER,
            wire::entered(&self.id, member),
            Some(me),
        );
        self.shared.emit(
            &self.id,
            RoomEventKind::ParticipantJoined {
                client_id: me.to_owned(),
                name: req.client.info().name.clone(),
            },
        );
        // The room's rules close what the newcomer may not send (before it sends).
        self.apply_gates().await;
        let anchor_back = self
            .live
            .as_mut()
            .is_some_and(|l| l.is_on_air() && l.anchor() == me && l.anchor_back());
        // The answer is what the room is now; the offers the subscriptions below make wait on
        // the lane until the task has sent it.
        let mut status = self.status_json().await;
        status["mayPublish"] = self.may_publish(me).into();
        if anchor_back {
            self.anchor_deadline = None;
            self.tell_members(
                signals::LIVE_RESUME,
                wire::live_resumed(&self.id, me),
                Some(me),
            );
        }
        if self.caps.server_subscriptions && subscribe != SubscribePolicy::None {
            let kind = match subscribe {
                SubscribePolicy::AudioOnly => Some(MediaKind::Audio),
                SubscribePolicy::VideoOnly => Some(MediaKind::Video),
                _ => None,
            };
            let all = StreamRequest {
                kind,
                ..Default::default()
            };
            if let Err(e) = self
                .media
                .stream(&MemberId::from(me), StreamAction::Subscribe, all)
                .await
            {
                tracing::warn!(room = self.id, client = me, "subscribing the newcomer: {e}");
            }
        }
        Ok(Reply::Body(status))
    }

    pub(super) async fn leave(&mut self, req: &Request) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        self.remove_member(req.client.id(), "left").await;
        Ok(Reply::empty())
    }

    pub(super) async fn close(&mut self, req: &Request) -> Result<Reply, SignalError> {
        self.rules.close(actor(&req.client)).map_err(refused)?;
        let by = req.client.id().to_owned();
        self.tell_members(
            signals::ROOM_CLOSE,
            wire::closed(&self.id, &format!("closed by {by}")),
            Some(&by),
        );
        let reason = format!("the room was closed by {by}");
        // In join order, so the observer hears a stable story.
        let members: Vec<String> = self.rules.members().iter().map(|m| m.id.clone()).collect();
        self.let_go(members, &reason).await;
        self.closed = true;
        Ok(Reply::empty())
    }

    pub(super) async fn status(&mut self, req: &Request) -> Result<Reply, SignalError> {
        self.rules
            .require_viewer(actor(&req.client))
            .map_err(refused)?;
        Ok(Reply::Body(self.status_json().await))
    }

    pub(super) fn client_list(&self, req: &Request) -> Result<Reply, SignalError> {
        self.rules
            .require_viewer(actor(&req.client))
            .map_err(refused)?;
        Ok(Reply::Body(wire::client_list(
            &self.id,
            self.members_json(),
        )))
    }

    pub(super) fn invite(&mut self, req: &Request, r: Target<'_>) -> Result<Reply, SignalError> {
        let who = actor(&req.client);
        self.rules.require_manager(who, "invite").map_err(refused)?;
        let client = self.hub.client(r.client_id).ok_or_else(|| {
            SignalError::not_found(format!("client {} is not online", r.client_id))
        })?;
        self.rules.invite(who, r.client_id).map_err(refused)?;
        client.notify(
            signals::ROOM_INVITE,
            wire::invitation(
                &self.id,
                &self.name,
                self.architecture,
                req.client.id(),
                self.rules.has_password(),
            ),
        );
        Ok(Reply::empty())
    }

    pub(super) async fn expel(
        &mut self,
        req: &Request,
        r: Target<'_>,
    ) -> Result<Reply, SignalError> {
        let target = r.client_id;
        self.rules
            .expel(actor(&req.client), target)
            .map_err(refused)?;
        // The rules removed the member; release its media and connection too.
        let reason = format!("expelled by {}", req.client.id());
        if let Some(c) = self.clients.remove(target) {
            c.notify(signals::ROOM_EXPEL, wire::expelled(&self.id, &reason));
        }
        self.leave_media(target).await;
        self.gates.remove(target);
        self.muted.remove(target);
        self.tell_members(
            signals::ROOM_LEAVE,
            wire::left(&self.id, target, &reason),
            None,
        );
        self.shared.emit(
            &self.id,
            RoomEventKind::ParticipantLeft {
                client_id: target.to_owned(),
                reason,
            },
        );
        Ok(Reply::empty())
    }

    /// Members, and admins from outside (an operator's announcement).
    pub(super) fn broadcast(&self, req: &Request) -> Result<Reply, SignalError> {
        self.rules
            .require_viewer(actor(&req.client))
            .map_err(refused)?;
        let n = self.tell_members(
            signals::ROOM_BROADCAST,
            wire::broadcast(&req.message.body, req.client.id()),
            Some(req.client.id()),
        );
        Ok(Reply::Body(wire::delivered(n)))
    }

    /// A member leaves (asked, or its connection ended): media released, others told.
    pub(super) async fn remove_member(&mut self, id: &str, reason: &str) {
        if self.rules.leave(id).is_err() {
            return;
        }
        self.clients.remove(id);
        self.gates.remove(id);
        self.muted.remove(id);
        self.mesh_recordings.retain(|r| r.client_id != id);
        self.leave_media(id).await;
        self.tell_members(signals::ROOM_LEAVE, wire::left(&self.id, id, reason), None);
        self.shared.emit(
            &self.id,
            RoomEventKind::ParticipantLeft {
                client_id: id.to_owned(),
                reason: reason.to_owned(),
            },
        );
        let floor = self.modes.member_left(id, clock_now());
        self.tell_floor(floor);
        let on_air_anchor = self
            .live_on_air()
            .is_some_and(|l| l.anchor() == id && !l.is_paused());
        if on_air_anchor {
            let policy = self.shared.live.on_anchor_drop;
            let paused = self.live.as_mut().is_some_and(|l| l.anchor_dropped(policy));
            if paused {
                let grace = Duration::from_millis(self.shared.live.anchor_grace_ms);
                self.anchor_deadline = Some(Instant::now() + grace);
                self.tell_members(
                    signals::LIVE_PAUSE,
                    wire::live_paused(&self.id, &format!("the anchor {reason}"), grace),
                    None,
                );
            } else {
                self.stop_live(&format!("the anchor {reason}"));
            }
        } else if let Some(e) = self.live.as_mut().and_then(|l| l.member_left(id)) {
            self.tell_live(&e);
        }
        self.apply_gates().await;
    }

    pub(super) async fn client_gone(&mut self, client: ClientHandle) {
        let is_this_connection = self
            .clients
            .get(client.id())
            .is_some_and(|c| c.same_connection(&client));
        if is_this_connection {
            self.remove_member(client.id(), "disconnected").await;
        }
    }
}
