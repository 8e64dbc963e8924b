//! The MCU implementation of the `MediaArchitecture` seam: members send to the server; video is
//! forwarded exactly as in the sfu backend (the same transports, forwarder and sinks), audio is
//! decoded, mixed per receiver (everyone but the receiver, the loudest speakers only) and
//! re-encoded, so each member receives one mixed audio track whatever the room's size.
//!
//! This crate owns the mixing: a room is an sfu room ([`Sfu::open_room_as`]) whose audio
//! path ([`taoyao_webrtc_sfu::audio_path::AudioPath`]) is this room's mixer task
//! (`taoyao_media::mixer::AudioMixer` on a drift-free 20 ms clock, `mixing.rs`): publishers'
//! audio tracks feed it instead of a forwarder, and each member's subscribe connection carries
//! one mixed Opus track (stream id `mix`). [`McuRoom`] adds what only mixing can do, recording
//! the room's mix (`mix_record.rs`), and passes everything else to the sfu room.

pub mod config;
mod mix_record;
mod mixing;

pub use config::McuConfig;

use std::sync::atomic::AtomicUsize;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use async_trait::async_trait;
use taoyao_webrtc::{
    ArchitectureKind, Capabilities, Counterpart, JoinOptions, MediaArchitecture, MediaError,
    MediaEvents, MediaGates, MediaRecorder, MediaRoom, MediaRoomStats, MemberId, MixRecorder,
    Negotiation, RecordRequest, RecordingInfo, RoomId, StreamAction, StreamInfo, StreamRequest,
    Transport, WebrtcConfig,
};
use taoyao_webrtc_sfu::peer::PeerFactory;
use taoyao_webrtc_sfu::recorder::Recording;
use taoyao_webrtc_sfu::{Sfu, SfuRoom, SfuStats};

/// The mcu architecture: the sfu's transports with a mixer per room.
pub struct Mcu {
    sfu: Sfu,
    config: McuConfig,
}

impl Mcu {
    /// An mcu backend; share the peer-connection factory with the sfu backend where both run.
    pub fn new(factory: Arc<PeerFactory>, config: McuConfig) -> Self {
        Mcu {
            sfu: Sfu::with_factory(factory),
            config,
        }
    }

    /// An mcu backend with its own peer-connection factory.
    pub fn with_config(webrtc: WebrtcConfig, config: McuConfig) -> Self {
        Mcu::new(Arc::new(PeerFactory::new(webrtc)), config)
    }

    /// Connections and tasks (the mixers' among them) across this backend's rooms.
    pub fn stats(&self) -> SfuStats {
        self.sfu.stats()
    }

    /// The media totals of the factory it runs on (mixer ticks and drops included).
    pub fn media_counters(&self) -> taoyao_webrtc_sfu::forwarder::MediaCountersSnapshot {
        self.sfu.media_counters()
    }
}

#[async_trait]
impl MediaArchitecture for Mcu {
    fn kind(&self) -> ArchitectureKind {
        ArchitectureKind::Mcu
    }

    async fn open_room(
        &self,
        room: &RoomId,
        events: MediaEvents,
    ) -> Result<Arc<dyn MediaRoom>, MediaError> {
        let factory = self.sfu.factory();
        let mixer = mixing::spawn(
            room.to_string(),
            self.sfu.task_counter().clone(),
            factory.counters().clone(),
            mixing::MixSettings {
                max_speakers: self.config.max_speakers,
                queue_packets: self.config.queue_packets,
                level_interval: Duration::from_millis(factory.config().audio_level_interval_ms),
            },
            events.clone(),
        );
        let sfu = self.sfu.open_room_as(
            room,
            events.clone(),
            ArchitectureKind::Mcu,
            Some(Arc::new(mixer.clone())),
        );
        Ok(Arc::new(McuRoom {
            inner: Arc::new(Inner {
                sfu,
                mixer,
                events,
                tasks: self.sfu.task_counter().clone(),
                mix_recording: Mutex::new(None),
            }),
        }))
    }
}

/// One mcu room: an sfu room whose audio goes to this room's mixer, and the mix's recording.
pub struct McuRoom {
    inner: Arc<Inner>,
}

struct Inner {
    sfu: SfuRoom,
    mixer: mixing::Mixer,
    events: MediaEvents,
    tasks: Arc<AtomicUsize>,
    /// The recording of the room's mix, if one runs.
    mix_recording: Mutex<Option<Arc<Recording>>>,
}

#[async_trait]
impl MediaRoom for McuRoom {
    fn capabilities(&self) -> Capabilities {
        Capabilities::forwarding(true)
    }

    async fn join(&self, member: &MemberId, opts: JoinOptions) -> Result<(), MediaError> {
        self.inner.sfu.join(member, opts).await
    }

    async fn leave(&self, member: &MemberId) {
        self.inner.sfu.leave(member).await
    }

    async fn exchange(
        &self,
        from: &MemberId,
        with: Counterpart<'_>,
        negotiation: Negotiation,
    ) -> Result<Option<Negotiation>, MediaError> {
        self.inner.sfu.exchange(from, with, negotiation).await
    }

    async fn stream(
        &self,
        member: &MemberId,
        action: StreamAction,
        request: StreamRequest,
    ) -> Result<(), MediaError> {
        self.inner.sfu.stream(member, action, request).await
    }

    async fn stats(&self) -> MediaRoomStats {
        self.inner.sfu.stats().await
    }

    async fn restart(&self, member: &MemberId, transport: Transport) -> Result<(), MediaError> {
        self.inner.sfu.restart(member, transport).await
    }

    async fn streams(&self) -> Vec<StreamInfo> {
        self.inner.sfu.streams().await
    }

    fn gates(&self) -> Option<&dyn MediaGates> {
        self.inner.sfu.gates()
    }

    fn recorder(&self) -> Option<&dyn MediaRecorder> {
        Some(self)
    }

    fn mix(&self) -> Option<&dyn MixRecorder> {
        Some(self)
    }

    async fn close(&self) {
        // The mix file is finalized before the members (and the mixer's input) go.
        let _ = self.mix_record_stop().await;
        self.inner.sfu.close().await
    }
}

/// Members are recorded as in the sfu (their audio tapped before the mixer); the room's
/// recordings include the mix's.
#[async_trait]
impl MediaRecorder for McuRoom {
    async fn record_start(
        &self,
        member: &MemberId,
        request: RecordRequest,
    ) -> Result<(), MediaError> {
        self.inner.sfu.record_start(member, request).await
    }

    async fn record_stop(&self, member: &MemberId) -> Result<(), MediaError> {
        self.inner.sfu.record_stop(member).await
    }

    async fn recordings(&self) -> Vec<RecordingInfo> {
        let mut all = self.inner.sfu.recordings().await;
        all.extend(self.mix_recording_info());
        all
    }
}

#[async_trait]
impl MixRecorder for McuRoom {
    async fn record_mix_start(&self, request: RecordRequest) -> Result<(), MediaError> {
        self.mix_record_start(request).await
    }

    async fn record_mix_stop(&self) -> Result<(), MediaError> {
        self.mix_record_stop().await
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn an_mcu_room_mixes_and_its_facets_say_so() {
        let mcu = Mcu::with_config(WebrtcConfig::default(), McuConfig::default());
        let room = mcu
            .open_room(&"r".into(), MediaEvents::new(|_| {}))
            .await
            .unwrap();
        let caps = room.capabilities();
        assert!(caps.carries_media && caps.mixing && caps.server_subscriptions);
        assert!(room.gates().is_some() && room.recorder().is_some() && room.mix().is_some());
        taoyao_webrtc::facets_match_capabilities(&*room).unwrap();
        assert_eq!(mcu.stats().tasks, 1, "the room's mixer runs");
        room.close().await;
        drop(room);
        tokio::time::timeout(Duration::from_secs(5), async {
            while mcu.stats().tasks != 0 {
                tokio::time::sleep(Duration::from_millis(10)).await;
            }
        })
        .await
        .expect("the mixer ends with its room");
    }
}
