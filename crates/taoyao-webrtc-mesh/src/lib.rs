//! The mesh implementation of the `MediaArchitecture` seam: every member connects peer to peer
//! to every other; the server only relays offers, answers and ICE candidates between members of
//! the same room and never touches media.
//!
//! Who offers (so that two peers never offer to each other at once): when a member joins, it
//! offers to every member already in the room; members already there wait for its offer. A
//! later renegotiation (a track added or removed) is offered by the side that changed, and the
//! web client resolves the rare collision with the "perfect negotiation" pattern, the peer with
//! the smaller client id being the polite one. Publish, unpublish, pause and resume are relayed
//! to every other member: in mesh each sender stops or resumes its own tracks, so the relay is
//! what lets the others show it.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::sync::Mutex;
use std::sync::atomic::{AtomicU64, Ordering};

use async_trait::async_trait;
use taoyao_webrtc::{
    ArchitectureKind, Capabilities, Counterpart, JoinOptions, MediaArchitecture, MediaError,
    MediaEvent, MediaEvents, MediaRoom, MediaRoomStats, MemberId, Negotiation, RoomId,
    StreamAction, StreamRequest,
};

/// The mesh architecture. It holds no state of its own: each room is independent.
#[derive(Debug, Default, Clone)]
pub struct Mesh;

#[async_trait]
impl MediaArchitecture for Mesh {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Mesh
    }

    async fn open_room(
        &self,
        _room: &RoomId,
        events: MediaEvents,
    ) -> Result<Arc<dyn MediaRoom>, MediaError> {
        Ok(Arc::new(MeshRoom {
            events,
            members: Mutex::new(BTreeSet::new()),
            relayed: AtomicU64::new(0),
        }))
    }
}

struct MeshRoom {
    events: MediaEvents,
    members: Mutex<BTreeSet<MemberId>>,
    relayed: AtomicU64,
}

impl MeshRoom {
    fn is_member(&self, m: &str) -> bool {
        self.members.lock().expect("members lock").contains(m)
    }

    fn others(&self, m: &str) -> Vec<MemberId> {
        self.members
            .lock()
            .expect("members lock")
            .iter()
            .filter(|x| x.as_str() != m)
            .cloned()
            .collect()
    }
}

#[async_trait]
impl MediaRoom for MeshRoom {
    fn capabilities(&self) -> Capabilities {
        Capabilities::RELAY
    }

    async fn join(&self, member: &MemberId, _opts: JoinOptions) -> Result<(), MediaError> {
        if !self
            .members
            .lock()
            .expect("members lock")
            .insert(member.clone())
        {
            return Err(MediaError::AlreadyJoined(member.clone()));
        }
        Ok(())
    }

    async fn leave(&self, member: &MemberId) {
        self.members
            .lock()
            .expect("members lock")
            .remove(member.as_str());
    }

    async fn exchange(
        &self,
        from: &MemberId,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Option<Negotiation>, MediaError> {
        if !self.is_member(from) {
            return Err(MediaError::NotJoined(from.clone()));
        }
        let Counterpart::Peer(to) = with else {
            return Err(MediaError::Unsupported {
                arch: ArchitectureKind::Mesh,
                what: "negotiating with the server: mesh media goes peer to peer (name `to`)"
                    .into(),
            });
        };
        if to == from {
            return Err(MediaError::SelfNegotiation);
        }
        if !self.is_member(to) {
            return Err(MediaError::NotJoined(to.clone()));
        }
        self.relayed.fetch_add(1, Ordering::Relaxed);
        self.events.emit(MediaEvent::Negotiation {
            to: to.clone(),
            from: Some(from.clone()),
            transport: None,
            negotiation,
        });
        Ok(None)
    }

    async fn stream(
        &self,
        member: &MemberId,
        action: StreamAction,
        request: StreamRequest,
    ) -> Result<(), MediaError> {
        if !self.is_member(member) {
            return Err(MediaError::NotJoined(member.clone()));
        }
        if matches!(action, StreamAction::Subscribe | StreamAction::Unsubscribe) {
            return Err(MediaError::Unsupported {
                arch: ArchitectureKind::Mesh,
                what: "every member receives everyone directly; there is nothing to subscribe to"
                    .into(),
            });
        }
        for to in self.others(member) {
            self.events.emit(MediaEvent::Stream {
                to,
                member: member.clone(),
                stream: None,
                kind: request.kind,
                action,
            });
        }
        Ok(())
    }

    async fn stats(&self) -> MediaRoomStats {
        let mut s = MediaRoomStats::default();
        s.members = self.members.lock().expect("members lock").len();
        s.negotiations = self.relayed.load(Ordering::Relaxed);
        s
    }

    async fn close(&self) {
        self.members.lock().expect("members lock").clear();
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use taoyao_webrtc::Transport;

    fn recorder() -> (MediaEvents, Arc<Mutex<Vec<MediaEvent>>>) {
        let log = Arc::new(Mutex::new(Vec::new()));
        let l = log.clone();
        (MediaEvents::new(move |e| l.lock().unwrap().push(e)), log)
    }

    #[tokio::test]
    async fn relays_only_so_it_has_no_server_facets() {
        let (events, _) = recorder();
        let room = Mesh.open_room(&"r".into(), events).await.unwrap();
        assert_eq!(room.capabilities(), Capabilities::RELAY);
        assert!(room.gates().is_none() && room.recorder().is_none() && room.mix().is_none());
        taoyao_webrtc::facets_match_capabilities(&*room).unwrap();
    }

    #[tokio::test]
    async fn relays_between_members_only() {
        let (events, log) = recorder();
        let room = Mesh.open_room(&"r".into(), events).await.unwrap();
        room.join(&"a".into(), JoinOptions::new("A")).await.unwrap();
        room.join(&"b".into(), JoinOptions::new("B")).await.unwrap();
        assert!(matches!(
            room.join(&"a".into(), JoinOptions::new("A")).await,
            Err(MediaError::AlreadyJoined(_))
        ));
        let offer = Negotiation::Offer { sdp: "v=0".into() };
        room.exchange(&"a".into(), Counterpart::Peer(&"b".into()), offer.clone())
            .await
            .unwrap();
        assert_eq!(
            log.lock().unwrap()[0],
            MediaEvent::Negotiation {
                to: "b".into(),
                from: Some("a".into()),
                transport: None,
                negotiation: offer.clone()
            }
        );
        assert!(matches!(
            room.exchange(&"a".into(), Counterpart::Peer(&"c".into()), offer.clone()).await,
            Err(MediaError::NotJoined(x)) if x == "c"
        ));
        assert!(matches!(
            room.exchange(&"a".into(), Counterpart::Peer(&"a".into()), offer.clone())
                .await,
            Err(MediaError::SelfNegotiation)
        ));
        assert!(matches!(
            room.exchange(
                &"a".into(),
                Counterpart::Server(Transport::Publish),
                offer.clone()
            )
            .await,
            Err(MediaError::Unsupported { .. })
        ));
        assert!(matches!(
            room.exchange(&"z".into(), Counterpart::Peer(&"a".into()), offer)
                .await,
            Err(MediaError::NotJoined(_))
        ));
        assert_eq!(room.stats().await.negotiations, 1);
    }

    #[tokio::test]
    async fn stream_changes_go_to_every_other_member() {
        let (events, log) = recorder();
        let room = Mesh.open_room(&"r".into(), events).await.unwrap();
        for m in ["a", "b", "c"] {
            room.join(&m.into(), JoinOptions::new(m)).await.unwrap();
        }
        let audio = StreamRequest {
            kind: Some(taoyao_webrtc::MediaKind::Audio),
            ..Default::default()
        };
        room.stream(&"b".into(), StreamAction::Pause, audio)
            .await
            .unwrap();
        assert!(matches!(
            room.stream(
                &"b".into(),
                StreamAction::Subscribe,
                StreamRequest::default()
            )
            .await,
            Err(MediaError::Unsupported { .. })
        ));
        let to: Vec<_> = log
            .lock()
            .unwrap()
            .iter()
            .map(|e| match e {
                MediaEvent::Stream { to, member, .. } => {
                    assert_eq!(member, "b");
                    to.clone()
                }
                other => panic!("{other:?}"),
            })
            .collect();
        assert_eq!(to, vec!["a", "c"]);
        room.leave(&"c".into()).await;
        room.leave(&"c".into()).await;
        assert_eq!(room.stats().await.members, 2);
        room.close().await;
        assert_eq!(room.stats().await.members, 0);
    }
}
