//! Codec and RTP building blocks with no rooms and no sessions: keyframe detection, the audio
//! jitter buffer, the drift-free mixing clock, N-1 mixing with a limiter and loudest-speaker
//! selection, audio levels and their per-stream meter, the recording taps' queue; Opus decode /
//! encode and the recorders as the MCU and recording work lands.
//!
//! Pure pieces with time passed in, unit-tested without sockets. This crate must never know what
//! a room, a member or a signal is.

pub mod clock;
#[cfg(any(test, feature = "ffcheck"))]
pub mod ffcheck;
pub mod forward;
pub mod jitter;
pub mod keyframe;
pub mod levels;
pub mod mix;
pub mod mixer;
pub mod record;
pub mod tap;
