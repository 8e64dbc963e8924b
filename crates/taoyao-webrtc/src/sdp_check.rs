//! What an SDP offer or answer asks for, read with the `sdp` crate: which media sections send
//! and which receive. Used to hold a member to its grants (publish / subscribe) and to the
//! published-tracks limit, and to refuse SDP that does not parse. Also which connection an SDP
//! comes from ([`SdpIdentity`]): its ICE credentials and DTLS fingerprint.

use std::io::Cursor;

use crate::MediaError;

/// One `m=` section of an SDP.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpMedia {
    /// `audio`, `video`, `application` ...
    pub kind: String,
    pub sends: bool,
    pub receives: bool,
}

/// Parses an SDP and returns its media sections' directions (from the side that wrote it).
pub fn media_sections(sdp: &str) -> Result<Vec<SdpMedia>, MediaError> {
    let desc = sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| MediaError::SdpSyntax(crate::source(e)))?;
    let session_dir = ["sendrecv", "sendonly", "recvonly", "inactive"]
        .into_iter()
        .find(|d| desc.has_attribute(d));
    Ok(desc
        .media_descriptions
        .iter()
        .map(|m| {
            let dir = ["sendrecv", "sendonly", "recvonly", "inactive"]
                .into_iter()
                .find(|d| m.has_attribute(d))
                .or(session_dir)
                .unwrap_or("sendrecv");
            // A rejected section (port 0) carries nothing either way.
            let live = m.media_name.port.value != 0;
            SdpMedia {
                kind: m.media_name.media.clone(),
                sends: live && matches!(dir, "sendrecv" | "sendonly"),
                receives: live && matches!(dir, "sendrecv" | "recvonly"),
            }
        })
        .collect())
}

/// Which peer connection wrote an SDP: its ICE credentials and DTLS fingerprint. A browser
/// keeps all three for the life of an `RTCPeerConnection` (until an ICE restart changes the
/// credentials), so an offer whose identity differs from the one applied before comes from
/// another connection (or restarts ICE on it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SdpIdentity {
    pub ice_ufrag: Option<String>,
    pub ice_pwd: Option<String>,
    /// `a=fingerprint` (hash function and value), lower-cased.
    pub fingerprint: Option<String>,
}

/// Reads an SDP's [`SdpIdentity`]: the first value of each attribute, at session level or in
/// the first media section that has it (BUNDLE: every section carries the same).
pub fn identity(sdp: &str) -> Result<SdpIdentity, MediaError> {
    let desc = sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes()))
        .map_err(|e| MediaError::SdpSyntax(crate::source(e)))?;
    let find = |key: &str| {
        desc.attribute(key)
            .map(String::as_str)
            .or_else(|| {
                desc.media_descriptions
                    .iter()
                    .find_map(|m| m.attribute(key).flatten())
            })
            .map(|v| v.trim().to_owned())
    };
    Ok(SdpIdentity {
        ice_ufrag: find("ice-ufrag"),
        ice_pwd: find("ice-pwd"),
        fingerprint: find("fingerprint").map(|f| f.to_ascii_lowercase()),
    })
}

/// RFC 6464: the sender's audio level, in a one-byte header extension.
pub const AUDIO_LEVEL_URI: &str = "urn:ietf:params:rtp-hdrext:ssrc-audio-level";

/// The id an SDP maps the header extension `uri` to (`a=extmap:<id>[/<direction>] <uri>`), in
/// its first media section of `kind` that maps it.
pub fn extmap_id(sdp: &str, kind: &str, uri: &str) -> Option<u8> {
    let desc = sdp::SessionDescription::unmarshal(&mut Cursor::new(sdp.as_bytes())).ok()?;
    desc.media_descriptions
        .iter()
        .filter(|m| m.media_name.media == kind)
        .flat_map(|m| m.attributes.iter())
        .filter(|a| a.key == "extmap")
        .find_map(|a| {
            let v = a.value.as_deref()?;
            let (id, rest) = v.split_once(' ')?;
            (rest.split_whitespace().next() == Some(uri))
                .then(|| id.split('/').next()?.parse().ok())
                .flatten()
        })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn sdp(sections: &[(&str, &str, u16)]) -> String {
        let mut s = String::from("v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n");
        for (kind, dir, port) in sections {
            s += &format!(
                "m={kind} {port} UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na={dir}\r\n"
            );
        }
        s
    }

    #[test]
    fn directions() {
        let m = media_sections(&sdp(&[
            ("audio", "sendrecv", 9),
            ("video", "recvonly", 9),
            ("video", "sendonly", 0),
        ]))
        .unwrap();
        assert_eq!(
            m[0],
            SdpMedia {
                kind: "audio".into(),
                sends: true,
                receives: true
            }
        );
        assert_eq!((m[1].sends, m[1].receives), (false, true));
        assert_eq!(
            (m[2].sends, m[2].receives),
            (false, false),
            "port 0 is rejected"
        );
    }

    #[test]
    fn garbage_is_refused() {
        for bad in ["", "hello", "v=0\r\nm=audio x\r\n", "\u{0}\u{1}"] {
            assert!(
                matches!(media_sections(bad), Err(MediaError::SdpSyntax(_))),
                "{bad:?}"
            );
        }
    }

    #[test]
    fn extmap_ids_by_kind_and_uri() {
        let s = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=extmap:3 urn:x:other\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\na=extmap:4 urn:x:other\r\n\
            a=extmap:1/sendonly urn:ietf:params:rtp-hdrext:ssrc-audio-level\r\n";
        assert_eq!(extmap_id(s, "audio", AUDIO_LEVEL_URI), Some(1));
        assert_eq!(extmap_id(s, "video", AUDIO_LEVEL_URI), None);
        assert_eq!(extmap_id(s, "video", "urn:x:other"), Some(3));
        assert_eq!(extmap_id("garbage", "audio", AUDIO_LEVEL_URI), None);
    }

    #[test]
    fn identity_reads_session_or_media_level() {
        let session = "v=0\r\no=- 1 2 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n\
            a=fingerprint:sha-256 AB:CD\r\n\
            m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\n\
            a=ice-ufrag:u1\r\na=ice-pwd:p1\r\na=sendonly\r\n";
        let id = identity(session).unwrap();
        assert_eq!(id.ice_ufrag.as_deref(), Some("u1"));
        assert_eq!(id.ice_pwd.as_deref(), Some("p1"));
        assert_eq!(id.fingerprint.as_deref(), Some("sha-256 ab:cd"));
        let other = session.replace("u1", "u2");
        assert_ne!(
            identity(&other).unwrap(),
            id,
            "new credentials, new identity"
        );
        assert_eq!(
            identity(&sdp(&[("audio", "sendrecv", 9)])).unwrap(),
            SdpIdentity {
                ice_ufrag: None,
                ice_pwd: None,
                fingerprint: None
            }
        );
        assert!(identity("garbage").is_err());
    }
}
