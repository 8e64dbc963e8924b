//! The SFU implementation of the `MediaArchitecture` seam: every member sends its media once to
//! the server over webrtc-rs, and the server forwards RTP to each subscriber (RTCP: PLI/FIR,
//! NACK, REMB/TWCC). Filled by the SFU issue; it knows rooms only as ids and never formats a
//! signaling message.
