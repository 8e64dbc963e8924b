//! Where a room's audio goes when the room does not forward it: a backend built on this crate
//! plugs one in ([`crate::Sfu::open_room_as`]); the mcu's mixer is one
//! (`taoyao-webrtc-mcu`). This crate knows nothing of mixing: it hands each published audio
//! track's packets to the path (after the member's recording taps), tells it who joined,
//! left, paused or was gated, and gives each subscriber's connection one audio track the path
//! writes to ([`AudioOutput`], once the subscriber's answer fixed its SSRC and payload type).
//! Video is forwarded as in any sfu room.

use std::sync::Arc;

use async_trait::async_trait;
use bytes::Bytes;
use taoyao_webrtc::MemberId;
use webrtc::media_stream::track_local::static_rtp::TrackLocalStaticRTP;

/// The track a member receives the path's audio on, as its subscribe connection negotiated it.
pub struct AudioOutput {
    pub track: Arc<TrackLocalStaticRTP>,
    pub ssrc: u32,
    pub payload_type: u8,
}

/// A room's audio path. Calls come from the room's handlers and its tracks' reader tasks; none
/// may wait on the room.
#[async_trait]
pub trait AudioPath: Send + Sync {
    fn joined(&self, member: &MemberId);
    fn left(&self, member: &MemberId);
    /// The member paused (or resumed) its own audio.
    fn paused(&self, member: &MemberId, paused: bool);
    /// The room's rules closed (or opened) the member's audio, independent of its own pause.
    fn gated(&self, member: &MemberId, closed: bool);
    /// An Opus packet of the member's audio track number `track` (each track its own sequence
    /// space). Must not wait: a path that is behind drops. False once the path has ended
    /// (the reader stops).
    fn packet(&self, member: &MemberId, track: u32, seq: u16, payload: Bytes) -> bool;
    /// The member's audio track number `track` ended (after its last packet).
    async fn end_track(&self, member: &MemberId, track: u32);
    /// Where the member's audio from the path goes (again after a new subscribe connection).
    fn output(&self, member: &MemberId, out: AudioOutput);
}
