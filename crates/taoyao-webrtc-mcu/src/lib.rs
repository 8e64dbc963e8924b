//! The MCU implementation of the `MediaArchitecture` seam: video goes through the shared
//! forwarder as in the SFU, audio is decoded, mixed per receiver (everyone but the receiver) and
//! re-encoded with the building blocks of `taoyao-media`. Filled by the MCU issue; it never
//! formats a signaling message.
