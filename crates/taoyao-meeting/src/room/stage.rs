//! The stage: who may publish and be heard. Meeting modes, presenters and the intercom floor
//! (`room::mode`, `room::presenter`, `room::floor`), a manager's server-side mute
//! (`room::mute`), and the live (`live::start`, `live::stop`, `live::cohost`); after each
//! change every member's media gate is set to what the rules allow.

use taoyao_signal::{Grants, Reply, Request, SignalError};
use taoyao_webrtc::{MediaKind, MemberId, StreamAction, StreamRequest};

use super::requests::{
    Cohost, CohostAction, Floor, FloorAction, LiveStart, Mode, Mute, Presenter, PresenterAction,
};
use super::{RoomTask, actor, clock_now, now_ms, refused, wire};
use crate::events::RoomEventKind;
use crate::modes::{FloorEvent, MeetingMode};
use crate::signals;
use taoyao_live::{Live, LiveEvent};

impl RoomTask {
    pub(super) async fn set_mode(&mut self, req: &Request, r: Mode) -> Result<Reply, SignalError> {
        self.rules
            .require_manager(actor(&req.client), "change the mode")
            .map_err(refused)?;
        let events = self.modes.set_mode(r.mode);
        self.tell_floor(events);
        self.apply_gates().await;
        self.tell_members(signals::ROOM_MODE, self.mode_json(), None);
        Ok(Reply::Body(self.mode_json()))
    }

    pub(super) async fn presenter(
        &mut self,
        req: &Request,
        r: Presenter<'_>,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_manager(actor(&req.client), "choose presenters")
            .map_err(refused)?;
        let target = r.client_id;
        if !self.rules.is_member(target) {
            return Err(SignalError::not_found(format!(
                "client {target} is not in this room"
            )));
        }
        let before: Vec<String> = self.modes.presenters().map(str::to_owned).collect();
        match r.action.unwrap_or_default() {
            PresenterAction::Add => self.modes.add_presenter(target),
            PresenterAction::Remove => self.modes.remove_presenter(target),
            PresenterAction::Handover => self.modes.hand_over(target),
        }
        self.apply_gates().await;
        // Presenters who lost the stage stop publishing (in broadcast mode).
        if self.modes.mode() == MeetingMode::Broadcast {
            for gone in before {
                if !self.modes.presenters().any(|p| p == gone) {
                    self.unpublish_all(&gone).await;
                }
            }
        }
        self.tell_members(signals::ROOM_PRESENTER, self.mode_json(), None);
        Ok(Reply::Body(self.mode_json()))
    }

    pub(super) async fn floor(&mut self, req: &Request, r: Floor) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        if self.modes.mode() != MeetingMode::Intercom {
            return Err(SignalError::bad_request(
                "the floor exists only in intercom mode",
            ));
        }
        let (me, now) = (req.client.id(), clock_now());
        let events = match r.action.unwrap_or_default() {
            FloorAction::Request => self.modes.request_floor(me, now),
            FloorAction::Release => self.modes.release_floor(me, now),
        };
        self.tell_floor(events);
        self.apply_gates().await;
        let position = self.modes.queue().position(|q| q == me).map(|p| p + 1);
        Ok(Reply::Body(wire::floor_answer(
            self.mode_json(),
            self.modes.floor_holder() == Some(me),
            position,
        )))
    }

    /// `room::mute`: a manager closes (or reopens) a member's audio and/or video on the server
    /// through the room's gate, and the room is told; the member's own publishing is untouched,
    /// so unmuting resumes it. Not in mesh: media does not pass through the server there.
    pub(super) async fn mute(&mut self, req: &Request, r: Mute<'_>) -> Result<Reply, SignalError> {
        self.rules
            .require_manager(actor(&req.client), "mute members")
            .map_err(refused)?;
        let target = r.client_id;
        if !self.rules.is_member(target) {
            return Err(SignalError::not_found(format!(
                "client {target} is not in this room"
            )));
        }
        let muted = r.muted.unwrap_or(true);
        if !self.caps.carries_media {
            return Err(SignalError::bad_request(
                "a mesh room's media does not pass through the server: it cannot be muted there",
            ));
        }
        let entry = self.muted.entry(target.to_owned()).or_default();
        if r.kind != Some(MediaKind::Audio) {
            entry.0 = muted;
        }
        if r.kind != Some(MediaKind::Video) {
            entry.1 = muted;
        }
        let (video, audio) = *entry;
        if !video && !audio {
            self.muted.remove(target);
        }
        self.apply_gates().await;
        let note = wire::muted(&self.id, target, audio, video, req.client.id());
        self.tell_members(signals::ROOM_MUTE, note.clone(), None);
        Ok(Reply::Body(note))
    }

    pub(super) async fn live_start(
        &mut self,
        req: &Request,
        r: LiveStart<'_>,
    ) -> Result<Reply, SignalError> {
        let who = actor(&req.client);
        // The owner starts its own live; an admin may put a member on air as anchor.
        let (anchor, anchor_client) = match r.client_id {
            Some(a) if who.admin => {
                let c = self.clients.get(a).cloned().ok_or_else(|| {
                    SignalError::not_found(format!("client {a} is not in this room"))
                })?;
                (a.to_owned(), c)
            }
            Some(_) => {
                return Err(SignalError::forbidden(
                    "only an admin names the anchor; the owner starts its own live",
                ));
            }
            None => {
                self.rules.require_member(who).map_err(refused)?;
                if req.client.id() != self.rules.owner() {
                    return Err(SignalError::forbidden(
                        "only the room's owner may start a live (as its anchor)",
                    ));
                }
                (req.client.id().to_owned(), req.client.clone())
            }
        };
        if !anchor_client.info().grants.anchor {
            return Err(Grants::denied("anchor"));
        }
        if !self.caps.carries_media {
            return Err(SignalError::bad_request(
                "a live runs on sfu or mcu, not in a mesh room",
            ));
        }
        if self.live_on_air().is_some() {
            return Err(SignalError::bad_request("the room is already live"));
        }
        self.live = Some(Live::start(&anchor, now_ms(), self.shared.live.max_cohosts));
        // Viewers stop publishing: their streams end, their gates close.
        let viewers: Vec<String> = self
            .clients
            .keys()
            .filter(|id| **id != anchor)
            .cloned()
            .collect();
        self.apply_gates().await;
        for v in viewers {
            self.unpublish_all(&v).await;
        }
        let body = wire::live_started(&self.id, self.live_json());
        self.tell_members(signals::LIVE_START, body.clone(), Some(req.client.id()));
        self.shared
            .emit(&self.id, RoomEventKind::LiveStarted { anchor });
        Ok(Reply::Body(body))
    }

    /// Members (the live's rules say which), and admins from outside.
    pub(super) async fn live_stop(&mut self, req: &Request) -> Result<Reply, SignalError> {
        let who = actor(&req.client);
        self.rules.require_viewer(who).map_err(refused)?;
        let live = self
            .live
            .as_mut()
            .filter(|l| l.is_on_air())
            .ok_or_else(|| SignalError::bad_request("the room is not live"))?;
        let cohosts = live
            .stop(req.client.id(), who.admin)
            .map_err(|e| SignalError::from_coded(&e))?;
        for c in cohosts {
            self.unpublish_all(&c).await;
        }
        self.stop_live(&format!("stopped by {}", req.client.id()));
        self.apply_gates().await;
        Ok(Reply::empty())
    }

    pub(super) async fn cohost(
        &mut self,
        req: &Request,
        r: Cohost<'_>,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        let me = req.client.id().to_owned();
        let live = self
            .live
            .as_mut()
            .filter(|l| l.is_on_air())
            .ok_or_else(|| SignalError::bad_request("the room is not live"))?;
        let anchor = live.anchor().to_owned();
        // The anchor names the viewer; a viewer acts for itself.
        let viewer = match (r.client_id, me == anchor) {
            (Some(t), _) => t.to_owned(),
            (None, false) => me.clone(),
            (None, true) => {
                return Err(SignalError::bad_request("clientId: which viewer?"));
            }
        };
        if !self.rules.is_member(&viewer) {
            return Err(SignalError::not_found(format!(
                "client {viewer} is not in this room"
            )));
        }
        let event = match r.action {
            CohostAction::Request if viewer == me => live.request(&me),
            CohostAction::Request => {
                return Err(SignalError::bad_request("you can only ask for yourself"));
            }
            CohostAction::Invite => live.invite(&me, &viewer),
            CohostAction::Accept => live.accept(&me, &viewer),
            CohostAction::Decline => live.decline(&me, &viewer),
            CohostAction::End => live.end(&me, &viewer),
        }
        .map_err(|e| SignalError::from_coded(&e))?;
        if let LiveEvent::OffStage { cohost, .. } = &event {
            let cohost = cohost.clone();
            self.apply_gates().await;
            self.unpublish_all(&cohost).await;
        } else {
            self.apply_gates().await;
        }
        self.tell_live(&event);
        Ok(Reply::Body(wire::live_state(&self.id, self.live_json())))
    }

    /// Tells everyone about floor changes.
    pub(super) fn tell_floor(&self, events: Vec<FloorEvent>) {
        for e in events {
            let body = wire::floor_event(self.mode_json(), &e);
            self.tell_members(signals::ROOM_FLOOR, body, None);
        }
    }

    /// Tells a co-hosting step to whom it concerns: one member, or the room.
    pub(super) fn tell_live(&self, e: &LiveEvent) {
        let Some(l) = &self.live else { return };
        let (body, to) = wire::cohost_note(&self.id, l.anchor(), e);
        match to {
            Some(to) => {
                if let Some(c) = self.clients.get(&to) {
                    c.notify(signals::LIVE_COHOST, body);
                }
            }
            None => {
                self.tell_members(signals::LIVE_COHOST, body, None);
            }
        }
    }

    pub(super) fn live_on_air(&self) -> Option<&Live> {
        self.live.as_ref().filter(|l| l.is_on_air())
    }

    /// May `member` publish now? On air, the anchor and co-hosts; else by the meeting mode.
    pub(super) fn may_publish(&self, member: &str) -> bool {
        match self.live_on_air() {
            Some(l) => l.may_publish(member),
            None => self.modes.may_publish(member),
        }
    }

    pub(super) fn publish_refusal(&self) -> SignalError {
        if self.live_on_air().is_some() {
            SignalError::forbidden(
                "viewers of a live do not publish: ask the anchor to co-host (live::cohost)",
            )
        } else {
            SignalError::forbidden("only presenters publish in broadcast mode")
        }
    }

    /// Sets every member's media gate to what the rules allow now (only the changes reach the
    /// backend): video open if the member may publish; audio also needs the floor in intercom;
    /// either stays closed while a manager has it muted.
    pub(super) async fn apply_gates(&mut self) {
        let ids: Vec<String> = self.clients.keys().cloned().collect();
        for id in ids {
            let publish = self.may_publish(&id);
            let audio =
                publish && (self.live_on_air().is_some() || self.modes.audio_forwarded(&id));
            let (video_muted, audio_muted) = self.muted.get(&id).copied().unwrap_or_default();
            let want = (publish && !video_muted, audio && !audio_muted);
            if self.gates.get(&id).copied().unwrap_or((true, true)) == want {
                continue;
            }
            // Where the server carries no media (mesh) the rules are kept at signaling only.
            if let Some(gates) = self.media.gates() {
                let member = MemberId::from(&id);
                for (kind, open) in [(MediaKind::Video, want.0), (MediaKind::Audio, want.1)] {
                    if let Err(e) = gates.set_gate(&member, Some(kind), open).await {
                        tracing::warn!(room = self.id, member = id, "gate: {e}");
                    }
                }
            }
            self.gates.insert(id, want);
        }
    }

    /// Takes a member off stage: its streams end, so viewers' connections drop them.
    pub(super) async fn unpublish_all(&self, member: &str) {
        if self.caps.carries_media
            && let Err(e) = self
                .media
                .stream(
                    &MemberId::from(member),
                    StreamAction::Unpublish,
                    StreamRequest::default(),
                )
                .await
        {
            tracing::debug!(room = self.id, member, "unpublish: {e}");
        }
    }

    pub(super) fn stop_live(&mut self, reason: &str) {
        self.anchor_deadline = None;
        self.shared.emit(
            &self.id,
            RoomEventKind::LiveFinished {
                reason: reason.to_owned(),
            },
        );
        self.tell_members(
            signals::LIVE_STOP,
            wire::live_stopped(&self.id, reason),
            None,
        );
    }
}
