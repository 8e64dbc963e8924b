//! The room's media signals: negotiation (`media::exchange`, an sfu/mcu publish offer),
//! connection restarts and stream actions, each held to the member's grants and the room's
//! stage rules before it reaches the backend.

use taoyao_signal::{ClientHandle, Grants, Reply, Request, SignalError};
use taoyao_webrtc::sdp_check::media_sections;
use taoyao_webrtc::{Counterpart, MemberId, Negotiation, StreamAction, StreamRequest, Transport};

use super::requests::{Exchange, PublishOffer, Restart, StreamBody};
use super::{RoomTask, actor, member_id, refused, wire};
use crate::signals;

impl RoomTask {
    pub(super) async fn exchange(
        &mut self,
        req: &Request,
        r: Exchange<'_>,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        let negotiation =
            Negotiation::from_body(&req.message.body).map_err(|e| SignalError::from_coded(&e))?;
        // Who the other end is follows from what the room's media does; saying so is the
        // client's part (docs/protocol.md: `to` in mesh, `transport` in sfu / mcu).
        let to: MemberId;
        let with = if self.caps.carries_media {
            Counterpart::Server(r.transport.ok_or_else(|| {
                SignalError::bad_request(format!(
                    "in an {} room media::exchange needs transport: publish or subscribe",
                    self.architecture
                ))
            })?)
        } else {
            to = r.to.map(MemberId::from).ok_or_else(|| {
                SignalError::bad_request("in a mesh room media::exchange needs `to`")
            })?;
            Counterpart::Peer(&to)
        };
        self.negotiate(&req.client, with, negotiation).await
    }

    pub(super) async fn restart(
        &mut self,
        req: &Request,
        r: Restart,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        self.media
            .restart(&member_id(&req.client), r.transport)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(Reply::empty())
    }

    /// sfu / mcu: publishing is the offer on the member's publish connection.
    pub(super) async fn publish_offer(
        &mut self,
        req: &Request,
        r: PublishOffer,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        if !req.client.info().grants.publish {
            return Err(Grants::denied("publish"));
        }
        if !self.may_publish(req.client.id()) {
            return Err(self.publish_refusal());
        }
        let offer = Negotiation::Offer { sdp: r.sdp };
        self.negotiate(&req.client, Counterpart::Server(Transport::Publish), offer)
            .await
    }

    /// `media::publish` (mesh: an announcement) / `unpublish` / `pause` / `resume` /
    /// `subscribe` / `unsubscribe`.
    pub(super) async fn stream_action(
        &mut self,
        req: &Request,
        signal: &str,
        r: StreamBody,
    ) -> Result<Reply, SignalError> {
        self.rules
            .require_member(actor(&req.client))
            .map_err(refused)?;
        let grants = &req.client.info().grants;
        let action = match signal {
            signals::MEDIA_PUBLISH => StreamAction::Publish,
            signals::MEDIA_UNPUBLISH => StreamAction::Unpublish,
            signals::MEDIA_PAUSE => StreamAction::Pause,
            signals::MEDIA_RESUME => StreamAction::Resume,
            signals::MEDIA_SUBSCRIBE => StreamAction::Subscribe,
            _ => StreamAction::Unsubscribe,
        };
        if action == StreamAction::Publish && !grants.publish {
            return Err(Grants::denied("publish"));
        }
        if action == StreamAction::Publish && !self.may_publish(req.client.id()) {
            return Err(self.publish_refusal());
        }
        if action == StreamAction::Subscribe && !grants.subscribe {
            return Err(Grants::denied("subscribe"));
        }
        let request = StreamRequest {
            stream: r.stream_id,
            client: r.client_id,
            kind: r.kind,
        };
        if request.client.as_deref() == Some(req.client.id())
            && matches!(action, StreamAction::Subscribe | StreamAction::Unsubscribe)
        {
            return Err(SignalError::bad_request("you cannot subscribe to yourself"));
        }
        if let Some(c) = &request.client
            && !self.rules.is_member(c)
        {
            return Err(SignalError::not_found(format!(
                "client {c} is not in this room"
            )));
        }
        self.media
            .stream(&member_id(&req.client), action, request)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(Reply::empty())
    }

    /// Hands a negotiation message to the media backend; an answer it makes is the reply.
    async fn negotiate(
        &self,
        client: &ClientHandle,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Reply, SignalError> {
        self.check_sdp(client, &negotiation)?;
        let transport = match with {
            Counterpart::Server(t) => Some(t),
            Counterpart::Peer(_) => None,
        };
        let answer = self
            .media
            .exchange(&member_id(client), with, negotiation)
            .await
            .map_err(|e| SignalError::from_coded(&e))?;
        Ok(match answer {
            Some(n) => Reply::Body(wire::negotiation(&self.id, transport, &n)),
            None => Reply::empty(),
        })
    }

    /// Holds an offer or answer to the sender's grants and to the published-tracks limit.
    pub(super) fn check_sdp(
        &self,
        client: &ClientHandle,
        n: &Negotiation,
    ) -> Result<(), SignalError> {
        let (Negotiation::Offer { sdp } | Negotiation::Answer { sdp }) = n else {
            return Ok(());
        };
        let sections = media_sections(sdp).map_err(|e| SignalError::from_coded(&e))?;
        let grants = &client.info().grants;
        let sending = sections
            .iter()
            .filter(|m| m.sends && m.kind != "application")
            .count();
        if sending > 0 && !grants.publish {
            return Err(Grants::denied("publish (the SDP sends media)"));
        }
        if sending > 0 && !self.may_publish(client.id()) {
            return Err(self.publish_refusal());
        }
        if sections
            .iter()
            .any(|m| m.receives && m.kind != "application")
            && !grants.subscribe
        {
            return Err(Grants::denied("subscribe (the SDP receives media)"));
        }
        let max = self.shared.config.max_tracks_per_member;
        if sending > max {
            return Err(SignalError::forbidden(format!(
                "{sending} sending media sections: at most {max} per member (rooms.max_tracks_per_member)"
            )));
        }
        Ok(())
    }
}
