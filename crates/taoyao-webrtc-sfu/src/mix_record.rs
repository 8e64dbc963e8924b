//! mcu rooms: recording the room's mixed audio (the shared mix a member who is not speaking
//! hears) as one Opus-only WebM. The mixer task hands each tick's shared packet to the
//! recording's tap (never waiting); the writer thread is the same as a member recording's.

use std::sync::Arc;

use crate::recorder::{RecordEnd, Recording};
use taoyao_media::record::Tracks;
use taoyao_webrtc::{MediaError, MediaEvent, MemberId, RecordRequest, RecordingInfo};

use crate::mixing::MixCmd;
use crate::{SfuRoom, Shared};

impl SfuRoom {
    pub(crate) async fn mix_record_start(&self, request: RecordRequest) -> Result<(), MediaError> {
        let Some(mixer) = self.shared.mixer.clone() else {
            return Err(MediaError::NoMixing);
        };
        if self
            .shared
            .state
            .lock()
            .expect("state lock")
            .mix_recording
            .is_some()
        {
            return Err(MediaError::AlreadyRecording("the room's mix".into()));
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
            let mut st = self.shared.state.lock().expect("state lock");
            if st.mix_recording.is_some() {
                rec.request_stop();
                return Err(MediaError::AlreadyRecording("the room's mix".into()));
            }
            st.mix_recording = Some(rec.clone());
        }
        if !mixer.send(MixCmd::Tap(rec.tap.clone())) {
            rec.request_stop();
        }
        tracing::info!(
            room = self.shared.room,
            file = rec.request.file,
            "mix recording started"
        );
        let shared = self.shared.clone();
        let finished = rec.finished();
        let count = crate::forwarder::TaskCount::start(&self.shared.tasks);
        tokio::spawn(async move {
            let _count = count;
            let result = finished.await;
            let _ = mixer.send(MixCmd::Untap(rec.tap.clone()));
            {
                let mut st = shared.state.lock().expect("state lock");
                if st
                    .mix_recording
                    .as_ref()
                    .is_some_and(|r| Arc::ptr_eq(r, &rec))
                {
                    st.mix_recording = None;
                }
            }
            tell_end(&shared, None, &rec, &result, None);
        });
        Ok(())
    }

    pub(crate) async fn mix_record_stop(&self) -> Result<(), MediaError> {
        let rec = self
            .shared
            .state
            .lock()
            .expect("state lock")
            .mix_recording
            .take()
            .ok_or_else(|| MediaError::NotRecording("the room's mix".into()))?;
        rec.request_stop();
        // Returns once the room's lane has the end (the spawned task above tells it).
        rec.finished_and_reported().await;
        Ok(())
    }

    pub(crate) fn mix_recording_info(&self) -> Option<RecordingInfo> {
        let st = self.shared.state.lock().expect("state lock");
        st.mix_recording.as_ref().map(|r| RecordingInfo {
            client_id: String::new(),
            mix: true,
            file: r.request.file.clone(),
            started_by: r.request.requester.to_string(),
            started_at: r
                .started_at
                .duration_since(std::time::UNIX_EPOCH)
                .map_or(0, |d| d.as_millis() as u64),
        })
    }
}

/// Logs how a recording ended and tells every member and its requester (`member` `None`: the
/// room's mix); `note` says why a finalized recording ended early.
pub(crate) fn tell_end(
    shared: &Shared,
    member: Option<&MemberId>,
    rec: &Recording,
    result: &RecordEnd,
    note: Option<String>,
) {
    let req = &rec.request;
    // The file's real duration whatever ended it; the error beside it when one did.
    let duration_ms = result.duration().as_millis() as u64;
    let error = result.error().map(|e| e.to_string()).or(note);
    match &result.file {
        Ok(s) => tracing::info!(
            room = shared.room,
            member = member.map(MemberId::as_str),
            file = req.file,
            duration_ms,
            bytes = s.bytes,
            dropped = rec.tap.dropped(),
            cut = error.as_deref(),
            "recording finalized"
        ),
        Err(e) => tracing::warn!(
            room = shared.room,
            member = member.map(MemberId::as_str),
            file = req.file,
            "recording ended: {e}"
        ),
    }
    let mut to = shared.member_ids();
    if !to.contains(&req.requester) {
        to.push(req.requester.clone());
    }
    for to in to {
        shared.events.emit(MediaEvent::RecordingStopped {
            to,
            member: member.cloned(),
            file: req.file.clone(),
            duration_ms,
            error: error.clone(),
        });
    }
    rec.mark_reported();
}
