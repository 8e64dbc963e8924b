//! Errors of the engine's operations: bad input from the control plane or a client, never a bug
//! (bugs panic).

use crate::shard::{ConnId, OutputId, TapId, TrackRef};

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum EngineError {
    #[error("no connection {0} on this shard")]
    NoConnection(ConnId),
    #[error("no track {} on {}", .0.track, .0.conn)]
    NoTrack(TrackRef),
    #[error("no tap {} on that track", .0.0)]
    NoTap(TapId),
    #[error("{} is forwarded to that connection already", .0.track)]
    AlreadySending(TrackRef),
    #[error("{} is not forwarded to that connection", .0.track)]
    NotSending(TrackRef),
    #[error("no output {} on {}", .1.0, .0)]
    NoOutput(ConnId, OutputId),
    /// The client's SDP was refused (parse or negotiation).
    #[error("sdp: {0}")]
    Sdp(String),
    /// rtc refused an operation.
    #[error("rtc: {0}")]
    Rtc(String),
    /// The engine's settings cannot be applied (ports, shard count, a bind that failed).
    #[error("engine config: {0}")]
    Config(String),
    /// The shard thread is gone (driver only).
    #[error("shard stopped")]
    Stopped,
    #[error("io: {0}")]
    Io(#[from] std::io::Error),
}

impl EngineError {
    pub(crate) fn rtc(e: rtc::shared::error::Error) -> Self {
        EngineError::Rtc(e.to_string())
    }
    pub(crate) fn sdp(e: rtc::shared::error::Error) -> Self {
        EngineError::Sdp(e.to_string())
    }
}
