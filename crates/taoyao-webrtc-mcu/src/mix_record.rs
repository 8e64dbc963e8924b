//! Recording the room's mixed audio (the shared mix a member who is not speaking hears) as one
//! Opus-only WebM. The mixer task hands each tick's shared packet to the recording's tap
//! (never waiting); the writer thread is the same as a member recording's.

use std::sync::Arc;

use taoyao_media::record::Tracks;
use taoyao_webrtc::{MediaError, RecordRequest, RecordingInfo};
use taoyao_webrtc_sfu::forwarder::TaskCount;
use taoyao_webrtc_sfu::recorder::{self, Recording};

use crate::McuRoom;
use crate::mixing::MixCmd;

const THE_MIX: &str = "the room's mix";

impl McuRoom {
    pub(crate) async fn mix_record_start(&self, request: RecordRequest) -> Result<(), MediaError> {
        if self.inner.mix_recording.lock().expect("mix lock").is_some() {
            return Err(MediaError::AlreadyRecording(THE_MIX.into()));
        }
        let tracks = Tracks {
            video: false,
            audio: true,
        };
        let rec = Arc::new(Recording::start(request, tracks, || {}).map_err(|e| {
            MediaError::RecordingFailed {
                what: "the mix".into(),
                source: taoyao_webrtc::source(e),
            }
        })?);
        {
            let mut current = self.inner.mix_recording.lock().expect("mix lock");
            if current.is_some() {
                rec.request_stop();
                return Err(MediaError::AlreadyRecording(THE_MIX.into()));
            }
            *current = Some(rec.clone());
        }
        let mixer = self.inner.mixer.clone();
        if !mixer.send(MixCmd::Tap(rec.tap.clone())) {
            rec.request_stop();
        }
        tracing::info!(
            room = self.inner.sfu.room(),
            file = rec.request.file,
            "mix recording started"
        );
        let inner = self.inner.clone();
        let finished = rec.finished();
        let count = TaskCount::start(&self.inner.tasks);
        tokio::spawn(async move {
            let _count = count;
            let result = finished.await;
            mixer.send(MixCmd::Untap(rec.tap.clone()));
            {
                let mut current = inner.mix_recording.lock().expect("mix lock");
                if current.as_ref().is_some_and(|r| Arc::ptr_eq(r, &rec)) {
                    *current = None;
                }
            }
            recorder::tell_end(
                &inner.events,
                inner.sfu.room(),
                inner.sfu.member_ids(),
                None,
                &rec,
                &result,
                None,
            );
        });
        Ok(())
    }

    pub(crate) async fn mix_record_stop(&self) -> Result<(), MediaError> {
        let rec = self
            .inner
            .mix_recording
            .lock()
            .expect("mix lock")
            .take()
            .ok_or_else(|| MediaError::NotRecording(THE_MIX.into()))?;
        rec.request_stop();
        // Returns once the room's lane has the end (the spawned task above tells it).
        rec.finished_and_reported().await;
        Ok(())
    }

    pub(crate) fn mix_recording_info(&self) -> Option<RecordingInfo> {
        let current = self.inner.mix_recording.lock().expect("mix lock");
        current.as_ref().map(|r| r.info(None))
    }
}
