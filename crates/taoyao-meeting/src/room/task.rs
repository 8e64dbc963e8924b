//! The room task's loop: commands from the registry, the backend's lane, the floor / anchor /
//! empty-room timers and shutdown, one at a time; then the room's orderly end.

use std::time::Duration;

use taoyao_signal::Reply;
use taoyao_webrtc::{MediaEvent, MemberId};
use tokio::sync::mpsc;
use tokio::time::Instant;

use super::{RoomCommand, RoomTask, clock_now, wire};
use crate::events::RoomEventKind;
use taoyao_live::AnchorDrop;

impl RoomTask {
    pub(crate) async fn run(mut self, mut rx: mpsc::Receiver<RoomCommand>) {
        let empty_timeout = Duration::from_millis(self.shared.config.empty_room_timeout_ms);
        let shutdown = self.shared.shutdown.clone();
        let mut empty_since = Some(Instant::now());
        tracing::info!(room = self.id, architecture = %self.architecture, "room open");
        while !self.closed {
            let deadline = empty_since.map(|t| t + empty_timeout);
            let floor_deadline = self.modes.floor_deadline().map(Instant::from_std);
            let anchor_deadline = self.anchor_deadline;
            tokio::select! {
                cmd = rx.recv() => match cmd {
                    None => break,
                    Some(RoomCommand::Signal { req, answered }) => {
                        let r = self.handle(&req).await;
                        // Before the lane is read again: whatever the backend emitted while
                        // handling this request (the offer after a publish or subscribe) reaches
                        // the client after this answer.
                        match r {
                            Ok(Reply::Body(b)) => { req.reply(b); }
                            Ok(Reply::Deferred) => {}
                            Err(e) => { req.reply_error(&e); }
                        }
                        let _ = answered.send(());
                    }
                    Some(RoomCommand::ClientGone { client }) => self.client_gone(client).await,
                },
                Some(e) = self.lane.recv() => self.on_media_event(e),
                _ = sleep_until_opt(floor_deadline) => {
                    let events = self.modes.tick(clock_now());
                    self.tell_floor(events);
                    self.apply_gates().await;
                }
                _ = sleep_until_opt(anchor_deadline) => {
                    if let Some(l) = &mut self.live {
                        l.anchor_dropped(AnchorDrop::Stop);
                    }
                    self.stop_live("the anchor did not come back");
                    self.apply_gates().await;
                }
                _ = sleep_until_opt(deadline) => {
                    tracing::info!(room = self.id, "room empty for {empty_timeout:?}: closing");
                    break;
                }
                _ = shutdown.triggered() => break,
            }
            match (self.rules.is_empty(), empty_since) {
                (true, None) => empty_since = Some(Instant::now()),
                (false, Some(_)) => empty_since = None,
                _ => {}
            }
            self.publish_summary();
        }
        // Stop taking commands first, so nothing is accepted that will not be handled.
        rx.close();
        let reason = if self.shared.shutdown.is_triggered() {
            "shutdown"
        } else {
            "the room closed"
        };
        self.finish(reason).await;
        tracing::info!(
            room = self.id,
            audio_levels_dropped = self.lane.dropped(),
            "room closed"
        );
    }

    /// Ends what the room still holds, told in this order: its recordings (each file
    /// finalized), its live, its members (their streams first), then the room.
    async fn finish(&mut self, reason: &str) {
        let media = self.media.clone();
        let recordings = match media.recorder() {
            Some(r) => r.recordings().await,
            None => Vec::new(),
        };
        for r in recordings {
            let stopped = match (r.mix, media.mix(), media.recorder()) {
                (true, Some(mix), _) => mix.record_mix_stop().await,
                (false, _, Some(recorder)) => {
                    recorder.record_stop(&MemberId::from(&r.client_id)).await
                }
                _ => continue,
            };
            if let Err(e) = stopped {
                tracing::debug!(room = self.id, file = r.file, "stopping at close: {e}");
            }
        }
        self.drain_lane();
        if self.live_on_air().is_some() {
            self.anchor_deadline = None;
            self.shared.emit(
                &self.id,
                RoomEventKind::LiveFinished {
                    reason: reason.to_owned(),
                },
            );
        }
        // Those still here (room::close has already let everyone go), in join order, so the
        // observer hears a stable story.
        let members: Vec<String> = self
            .rules
            .members()
            .iter()
            .filter(|m| self.clients.contains_key(&m.id))
            .map(|m| m.id.clone())
            .collect();
        self.let_go(members, reason).await;
        self.media.close().await;
        self.drain_lane();
        self.shared.emit(&self.id, RoomEventKind::RoomFinished);
    }

    /// The room ends for `members` (in the order given): each one's media is released and the
    /// observer hears it left for `reason`; then the room holds no connections.
    pub(super) async fn let_go(&mut self, members: Vec<String>, reason: &str) {
        for m in members {
            self.leave_media(&m).await;
            self.shared.emit(
                &self.id,
                RoomEventKind::ParticipantLeft {
                    client_id: m,
                    reason: reason.to_owned(),
                },
            );
        }
        self.clients.clear();
    }

    /// Releases a member's media and hands on what that emitted (its recording's end, its
    /// streams' end) before the caller tells anyone the member left.
    pub(super) async fn leave_media(&mut self, member: &str) {
        self.media.leave(&MemberId::from(member)).await;
        self.drain_lane();
    }

    /// Delivers whatever the backend has emitted so far.
    fn drain_lane(&mut self) {
        while let Some(e) = self.lane.try_recv() {
            self.on_media_event(e);
        }
    }

    /// One backend event: the room's own (a stream started or ended) goes to the observer;
    /// the rest is delivered to the member it is for (a finished recording also to the
    /// observer, once).
    fn on_media_event(&mut self, e: MediaEvent) {
        let kind = match &e {
            MediaEvent::StreamStarted {
                member,
                stream,
                kind,
            } => Some(RoomEventKind::TrackPublished {
                client_id: member.to_string(),
                stream_id: stream.to_string(),
                kind: Some(*kind),
            }),
            MediaEvent::StreamEnded {
                member,
                stream,
                kind,
            } => Some(RoomEventKind::TrackUnpublished {
                client_id: member.to_string(),
                stream_id: stream.to_string(),
                kind: Some(*kind),
            }),
            MediaEvent::RecordingStopped { .. } if self.shared.observed() => self
                .dedup
                .recording_finished(&self.shared.recording.dir, &e),
            _ => None,
        };
        if let Some(kind) = kind {
            self.shared.emit(&self.id, kind);
        }
        let (clients, hub) = (&self.clients, &self.hub);
        wire::deliver(
            |to| clients.get(to).cloned().or_else(|| hub.client(to)),
            &self.id,
            e,
        );
    }
}

async fn sleep_until_opt(deadline: Option<Instant>) {
    match deadline {
        Some(d) => tokio::time::sleep_until(d).await,
        None => std::future::pending().await,
    }
}
