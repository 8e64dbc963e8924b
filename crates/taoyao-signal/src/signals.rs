//! The names of the signals this crate answers or sends. Other crates declare their own groups;
//! `docs/protocol.md` lists them all.

/// `header.signal` of errors that cannot be tied to a request's signal (unparsable frames,
/// binary frames, oversize frames, timeouts).
pub const PLATFORM_ERROR: &str = "platform::error";

pub const CLIENT_REGISTER: &str = "client::register";
pub const CLIENT_CONFIG: &str = "client::config";
pub const CLIENT_HEARTBEAT: &str = "client::heartbeat";
pub const CLIENT_ONLINE: &str = "client::online";
pub const CLIENT_OFFLINE: &str = "client::offline";
pub const CLIENT_CLOSE: &str = "client::close";
pub const CLIENT_LIST: &str = "client::list";
pub const CLIENT_STATUS: &str = "client::status";
pub const CLIENT_UNICAST: &str = "client::unicast";
pub const CLIENT_BROADCAST: &str = "client::broadcast";
pub const CLIENT_BROADCAST_ALL: &str = "client::broadcast::all";

/// WebSocket close codes the server uses.
pub mod close {
    /// The client asked (`client::close`).
    pub const NORMAL: u16 = 1000;
    /// Server shutdown.
    pub const GOING_AWAY: u16 = 1001;
    /// Register or heartbeat timeout, or a client too slow to read what it is sent.
    pub const POLICY: u16 = 1008;
    /// A frame over `signal.max_message_bytes`.
    pub const TOO_BIG: u16 = 1009;
    /// Invalid UTF-8 in a text frame.
    pub const INVALID_DATA: u16 = 1007;
    /// Another connection registered the same client id.
    pub const REPLACED: u16 = 4000;
}
