//! taoyao-engine: the server's media plane on webrtc-rs `rtc` (sans-IO), built for issue 14.
//!
//! A [`Shard`] owns many `rtc` peer connections behind one local UDP address: it routes each
//! datagram to its connection (by remote address, else by the server ufrag in a STUN check's
//! USERNAME), keeps STUN checks that arrive before a connection's remote description and
//! replays them once it is set, forwards RTP from a publisher's track to its subscribers'
//! send tracks, and keeps a timer heap so only connections that are due get `handle_timeout`.
//! It does no I/O and never reads the clock: time is passed in, datagrams and events come out,
//! so it is tested on a virtual clock without sockets. [`driver`] runs one shard on one OS
//! thread with one UDP socket (`recvmmsg` in, one egress batch per receive batch out: GSO
//! runs per destination and `sendmmsg`, [`egress`]; asleep in `ppoll` on the socket and an
//! eventfd that command senders signal), commands in over a bounded channel with replies,
//! events out. [`Engine`] runs `shards` of those
//! threads and places each room on the least-loaded one, where all its connections live.
//! With `EngineConfig::tcp_port` it also opens one `TcpListener` for the node and runs the
//! ICE-TCP acceptor ([`tcp`], RFC 6544 passive with RFC 4571 framing): each accepted stream
//! goes to the shard its first check's ufrag names, and that shard thread polls it beside its
//! UDP socket.
//!
//! The per-packet path also feeds recordings and audio levels. A recorder tap
//! ([`Shard::add_tap`], `taoyao_media::tap::Tap`, the queue the sfu's recorder uses too) gets
//! every packet a track delivers, after SRTP and before forwarding rewrites it, by `try_send`
//! (full: dropped and counted, the shard never waits); the tap is dropped with its track.
//! An audio track that negotiated RFC 6464 levels has a `taoyao_media::levels::LevelMeter`
//! the shard feeds from each packet's level byte; the control plane reads it on its own
//! interval ([`Shard::take_audio_levels`], `ShardHandle::audio_levels`).
//!
//! What it must not know: rooms, members, signaling, modes, recordings policy. It deals in
//! connections ([`ConnId`]), tracks ([`TrackRef`]) and SDP strings; the control plane decides
//! who subscribes to what. It is the only server crate meant to touch webrtc-rs once issue 14
//! is done; today it stands beside `taoyao-webrtc-sfu` and nothing in the server uses it yet.
//!
//! Facts about `rtc` 0.21 this depends on (read in its sources, checked by the tests):
//! - The ICE agent rejects non-STUN datagrams whose `TransportContext::local_addr` is not one
//!   of its local candidates, so the announced address is both the candidate and `local_addr`.
//! - A STUN check that arrives before `set_remote_description` fails integrity (no remote
//!   password yet) and is dropped by rtc: the shard keeps a few and replays them.
//! - A webrtc-rs controlling client nominates on its next check tick (200 ms by default)
//!   unless a binding request arrives on a pair that already succeeded; rtc's lite agent does
//!   send binding requests, so answering kept early checks at once lets the client nominate
//!   at once. The responses to those requests carry no USERNAME: the kept checks' source
//!   address is routed to the connection when they are replayed, or the gain is lost.
//! - ICE-lite with `with_ice_credentials` lets the engine pick the ufrag it routes by; a lite
//!   agent is controlled whether it offers or answers (RFC 8445 6.1.1), so server offers work.
//! - `RTCRtpSender::write_rtp` checks the SSRC, the payload type and every header extension id
//!   against what that sender negotiated: forwarding rewrites SSRC and payload type and drops
//!   the publisher's extensions.
//! - After any call into a peer connection, drain `poll_write`, `poll_event`, `poll_read`, then
//!   ask `poll_timeout` again; `handle_timeout` before a deadline is harmless, which lets the
//!   timer heap hold one entry per connection and skip rescheduling to later deadlines.
//! - Inbound RTCP stops at the end of rtc's interceptor chain unless an interceptor marks it
//!   `Attribute::DeliverToApplication`; sender-side feedback (a subscriber's PLI about one of
//!   our send tracks) then surfaces as `RTCMessage::RtcpPacket` tagged with that send track's
//!   id. [`feedback::KeyframeFeedback`] marks PLI / FIR.
//! - `register_default_interceptors` registers no audio level extension (only the simulcast
//!   ones for video, `interceptor_registry.rs:346`, and transport-cc for both, `:568`): RFC
//!   6464 levels are negotiated only if registered (`register_header_extension`,
//!   `media_engine.rs:663`). Registered
//!   `Recvonly`, they match the shard's receiving transceivers and not its send tracks
//!   (`is_matching_direction`, `media_engine.rs:206`). The negotiated id is in the receiver's
//!   `get_parameters().rtp_parameters.header_extensions` (`get_rtp_parameters_by_kind`,
//!   `media_engine.rs:1090`; rtc caches the first result, `rtp_receiver/internal.rs:105`).
//!   Received packets keep their extensions as parsed (`rtp` `Header::extensions`).
//! - Each connection builds its own certificate at `build` (keygen per connection); sharing one
//!   per shard through the configuration is a later optimisation.
//! - ICE-TCP (rtc-ice 0.21.1): a host candidate built with `network: "tcp"` and `TcpType::Passive`
//!   is written `tcptype passive` and gets RFC 6544's lower local preference
//!   (`candidate/mod.rs:479`, direction-pref 4), so a client that can reach both picks UDP.
//!   `find_local_candidate` (`agent/mod.rs:1026`) matches a datagram's `local_addr` only against
//!   local candidates of its `TransportContext::transport_protocol`, so TCP frames carry the
//!   passive candidate's address as `local_addr` and `TransportProtocol::TCP`. The peer-reflexive
//!   remote candidate a check from a client's ephemeral TCP port creates (`agent/mod.rs:1422`) has
//!   no tcptype, so `can_pair_with` (`candidate/mod.rs:441`) refuses it, but the controlled agent's
//!   `handle_binding_request` adds the pair anyway (`agent/agent_selector.rs:527`), which is what
//!   makes a lite server work over TCP. Every write on the selected pair is stamped with the local
//!   candidate's protocol (rtc `peer_connection/handler/ice.rs:116`), which is how a [`Transmit`]
//!   knows UDP from TCP. A client's `tcptype active` candidate is ignored as a remote candidate
//!   (`agent/mod.rs:466`); rtc does no I/O, so framing and sockets are the engine's (rtc's
//!   `shared::tcp_framing` has the constants; its decoder has no size limit, see [`tcp`]).

pub mod driver;
pub mod egress;
pub mod engine;
pub mod error;
pub mod feedback;
pub mod shard;
mod sys;
pub mod tcp;

pub use engine::{Engine, EngineConfig, Placement, ShardPorts};
pub use error::EngineError;
pub use shard::{
    AUDIO_LEVEL_URI, ConnId, Event, OutputId, OutputPacket, OutputWrites, SendLabels, Shard,
    ShardConfig, ShardStats, TapId, TrackCounters, TrackLevel, TrackRef, Transmit,
};
