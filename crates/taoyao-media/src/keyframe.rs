//! Is this RTP packet the start of a keyframe? The SFU waits for one before it starts or resumes
//! forwarding video to a subscriber, so a decoder never starts mid-stream.

use bytes::Bytes;
use rtc::rtp::codec::vp8::Vp8Packet;
use rtc::rtp::packetizer::Depacketizer;

/// Video codecs the keyframe detector knows.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VideoCodec {
    Vp8,
}

impl VideoCodec {
    /// From an RTP mime type such as `video/VP8` (case-insensitive).
    pub fn from_mime(mime: &str) -> Option<VideoCodec> {
        mime.eq_ignore_ascii_case("video/vp8")
            .then_some(VideoCodec::Vp8)
    }
}

/// True when `payload` (an RTP payload) starts a keyframe.
pub fn is_keyframe(codec: VideoCodec, payload: &Bytes) -> bool {
    match codec {
        VideoCodec::Vp8 => {
            let mut p = Vp8Packet::default();
            let Ok(frame) = p.depacketize(payload) else {
                return false;
            };
            // Start of partition 0 of a frame whose header's P bit (inverse keyframe flag) is 0.
            p.s == 1 && p.pid == 0 && frame.first().is_some_and(|b| b & 0x01 == 0)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn vp8_keyframes() {
        // X=0, S=1, PID=0, then a frame header with P=0 (keyframe) or P=1 (interframe).
        let key = Bytes::from_static(&[0x10, 0x10, 0x02, 0x00, 0x9d, 0x01, 0x2a]);
        let inter = Bytes::from_static(&[0x10, 0x11, 0x02, 0x00]);
        let continuation = Bytes::from_static(&[0x00, 0x10, 0x02]);
        // With the extension byte and a 15-bit picture id.
        let key_with_pid = Bytes::from_static(&[0x90, 0x80, 0x81, 0x23, 0x10, 0x02]);
        assert!(is_keyframe(VideoCodec::Vp8, &key));
        assert!(is_keyframe(VideoCodec::Vp8, &key_with_pid));
        assert!(!is_keyframe(VideoCodec::Vp8, &inter));
        assert!(!is_keyframe(VideoCodec::Vp8, &continuation));
        assert!(!is_keyframe(VideoCodec::Vp8, &Bytes::new()));
        assert_eq!(VideoCodec::from_mime("video/VP8"), Some(VideoCodec::Vp8));
        assert_eq!(VideoCodec::from_mime("video/H264"), None);
    }
}
