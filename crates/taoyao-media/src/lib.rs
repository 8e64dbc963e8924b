//! Codec and RTP building blocks with no rooms and no sessions: keyframe detection today; Opus
//! decode / mix / encode, the jitter buffer, audio levels and the recorders (WebM / Ogg / IVF
//! writers) as the MCU and recording work lands.
//!
//! Pure pieces with time passed in, unit-tested without sockets. This crate must never know what
//! a room, a member or a signal is.

pub mod keyframe;
