//! `[webrtc]`: settings shared by every media architecture.

use std::net::{IpAddr, Ipv4Addr};

use serde::{Deserialize, Serialize};
use taoyao_boot::{Invalid, Validate};

/// A STUN or TURN server handed to clients (in `client::config`) and used by the server's own
/// peer connections.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "camelCase")]
pub struct IceServer {
    /// `stun:host:port`, `turn:host:port?transport=udp` ...
    pub urls: Vec<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub username: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub credential: Option<String>,
}

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebrtcConfig {
    /// Empty by default: on a LAN or localhost host candidates suffice, and the server reaches
    /// no outside service unless told to.
    pub ice_servers: Vec<IceServer>,
    /// The address the server's own peer connections (sfu, mcu) bind: one UDP socket each.
    /// `0.0.0.0` binds every non-loopback interface.
    pub bind_ip: IpAddr,
    /// The UDP ports they use, inclusive; both 0: any free port.
    pub udp_port_min: u16,
    pub udp_port_max: u16,
    /// The address clients should send media to when the server is behind a 1:1 NAT: it
    /// replaces `bind_ip` in the candidates the server hands out.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub announced_ip: Option<IpAddr>,
    /// Keyframe requests (PLI) to a publisher are sent at most this often per stream.
    pub keyframe_request_interval_ms: u64,
    /// How long the server waits for its ICE candidates before answering or offering.
    pub gather_timeout_ms: u64,
    /// sfu and mcu rooms: members are told the room's audio levels and active speaker
    /// (`media::audio::volume`) this often while anyone speaks; 0 turns it off.
    pub audio_level_interval_ms: u64,
    /// After a subscribe connection is connected, forwarding to it starts this much later: the
    /// server (the DTLS server there) is connected one flight before the subscriber has its
    /// SRTP keys, and packets sent in between are dropped by the subscriber.
    pub attach_delay_ms: u64,
    /// sfu and mcu rooms: a subscribe offer the member has not answered after this long is
    /// given up: the member is told (`media::subscribe::timeout`), the subscribe connection is
    /// closed and the member's subscriptions wait for its `media::restart`.
    pub subscribe_answer_timeout_ms: u64,
}

impl Default for WebrtcConfig {
    fn default() -> Self {
        WebrtcConfig {
            ice_servers: Vec::new(),
            bind_ip: IpAddr::V4(Ipv4Addr::LOCALHOST),
            udp_port_min: 40000,
            udp_port_max: 49999,
            announced_ip: None,
            keyframe_request_interval_ms: 500,
            gather_timeout_ms: 2000,
            audio_level_interval_ms: 500,
            attach_delay_ms: 50,
            subscribe_answer_timeout_ms: 10_000,
        }
    }
}

impl Validate for WebrtcConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.udp_port_min > self.udp_port_max {
            return Err(Invalid::new(
                "webrtc.udp_port_min",
                "must not be above webrtc.udp_port_max",
            ));
        }
        if (self.udp_port_min == 0) != (self.udp_port_max == 0) {
            return Err(Invalid::new(
                "webrtc.udp_port_min",
                "set both ends of the port range, or neither (0)",
            ));
        }
        if self.keyframe_request_interval_ms == 0 {
            return Err(Invalid::new(
                "webrtc.keyframe_request_interval_ms",
                "must be greater than 0",
            ));
        }
        if self.audio_level_interval_ms != 0 && self.audio_level_interval_ms < 20 {
            return Err(Invalid::new(
                "webrtc.audio_level_interval_ms",
                "must be 0 (off) or at least 20 (one mixing tick)",
            ));
        }
        if self.subscribe_answer_timeout_ms == 0 {
            return Err(Invalid::new(
                "webrtc.subscribe_answer_timeout_ms",
                "must be greater than 0",
            ));
        }
        if self.gather_timeout_ms == 0 {
            return Err(Invalid::new(
                "webrtc.gather_timeout_ms",
                "must be greater than 0",
            ));
        }
        for (i, s) in self.ice_servers.iter().enumerate() {
            let key = format!("webrtc.ice_servers[{i}].urls");
            if s.urls.is_empty() {
                return Err(Invalid::new(key, "needs at least one url"));
            }
            for u in &s.urls {
                if !["stun:", "stuns:", "turn:", "turns:"]
                    .iter()
                    .any(|p| u.starts_with(p))
                {
                    return Err(Invalid::new(
                        key,
                        format!("`{u}` is not a stun:, stuns:, turn: or turns: url"),
                    ));
                }
            }
            if u_is_turn(&s.urls) && (s.username.is_none() || s.credential.is_none()) {
                return Err(Invalid::new(
                    format!("webrtc.ice_servers[{i}]"),
                    "a TURN server needs a username and a credential",
                ));
            }
        }
        Ok(())
    }
}

fn u_is_turn(urls: &[String]) -> bool {
    urls.iter().any(|u| u.starts_with("turn"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_bad_urls_and_turn_without_credentials() {
        let mut c = WebrtcConfig::default();
        assert!(c.validate().is_ok());
        c.ice_servers.push(IceServer {
            urls: vec!["http://x".into()],
            username: None,
            credential: None,
        });
        assert!(c.validate().unwrap_err().reason.contains("http://x"));
        c.ice_servers[0].urls = vec!["turn:example.org:3478".into()];
        assert!(c.validate().unwrap_err().reason.contains("username"));
        c.ice_servers[0].username = Some("u".into());
        c.ice_servers[0].credential = Some("p".into());
        assert!(c.validate().is_ok());
    }
}
