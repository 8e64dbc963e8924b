//! `[signal]` and `[auth]`: the signaling limits and the password login.

use serde::{Deserialize, Serialize};
use taoyao_boot::{Invalid, Validate};

pub use crate::presence::PresenceMode;

/// `[signal]`: limits and timing of the WebSocket signaling. Every limit is here, none is
/// hard-coded.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct SignalConfig {
    /// Largest text frame accepted; a larger one is answered with an error and the connection
    /// is closed with WebSocket code 1009.
    pub max_message_bytes: usize,
    /// A registered client that sends nothing for this long is closed and cleaned up.
    pub heartbeat_timeout_ms: u64,
    /// A connection that has not sent `client::register` within this time is closed.
    pub register_timeout_ms: u64,
    /// How long the server waits for a client to answer a server-to-client request (then 2001).
    pub request_timeout_ms: u64,
    /// Messages queued for one client before it is considered stuck and closed.
    pub outbound_queue: usize,
    /// Registered clients per server.
    pub max_clients: usize,
    /// Server-to-client requests awaiting an answer, per client.
    pub max_pending_requests: usize,
    /// Open WebSocket connections (registered or not); more are refused with HTTP 503.
    pub max_connections: usize,
    /// Messages per second one connection may send on average (a token bucket) ...
    pub rate_per_sec: u32,
    /// ... and in a burst. A message over the rate is answered with 3403 and not handled.
    pub rate_burst: u32,
    /// A connection that sends this many messages over the rate in a row is closed (1008).
    pub rate_close_after: u32,
    /// Read buffer each WebSocket allocates up front (it grows for a larger message). The
    /// WebSocket library's default, 128 KiB, made 10,000 idle clients cost 1.3 GB.
    pub ws_read_buffer_bytes: usize,
    /// Who hears `client::online` / `client::offline`: `all`, `rooms` or `none` (see
    /// [`PresenceMode`]). `rooms` by default: with `all`, N clients registering cost N^2
    /// notifications (10,000 clients, 50 million).
    pub presence: PresenceMode,
    /// How long a connection closed for a frame far over `max_message_bytes` (refused at its
    /// header, payload unread) stays open after its close frame, so the client reads the
    /// 1009 before the socket is reset.
    pub oversize_linger_ms: u64,
}

impl Default for SignalConfig {
    fn default() -> Self {
        SignalConfig {
            max_message_bytes: 64 * 1024,
            heartbeat_timeout_ms: 60_000,
            register_timeout_ms: 10_000,
            request_timeout_ms: 5_000,
            outbound_queue: 1024,
            max_clients: 10_000,
            max_pending_requests: 64,
            max_connections: 12_000,
            rate_per_sec: 50,
            rate_burst: 200,
            rate_close_after: 100,
            ws_read_buffer_bytes: 4096,
            presence: PresenceMode::Rooms,
            oversize_linger_ms: 1000,
        }
    }
}

impl Validate for SignalConfig {
    fn validate(&self) -> Result<(), Invalid> {
        let positive = [
            (
                "signal.heartbeat_timeout_ms",
                self.heartbeat_timeout_ms as usize,
            ),
            (
                "signal.register_timeout_ms",
                self.register_timeout_ms as usize,
            ),
            (
                "signal.request_timeout_ms",
                self.request_timeout_ms as usize,
            ),
            ("signal.outbound_queue", self.outbound_queue),
            ("signal.max_clients", self.max_clients),
            ("signal.max_pending_requests", self.max_pending_requests),
            ("signal.max_connections", self.max_connections),
            ("signal.rate_per_sec", self.rate_per_sec as usize),
            ("signal.rate_burst", self.rate_burst as usize),
            ("signal.rate_close_after", self.rate_close_after as usize),
            ("signal.ws_read_buffer_bytes", self.ws_read_buffer_bytes),
            (
                "signal.oversize_linger_ms",
                self.oversize_linger_ms as usize,
            ),
        ];
        for (key, v) in positive {
            if v == 0 {
                return Err(Invalid::new(key, "must be greater than 0"));
            }
        }
        if self.max_message_bytes < 1024 {
            return Err(Invalid::new(
                "signal.max_message_bytes",
                "must be at least 1024 (a register or SDP message does not fit in less)",
            ));
        }
        Ok(())
    }
}

/// `[auth]`: who may register. Tokens (when `token_secret` is set) and password logins (when
/// `users` is not empty) may both be on; with neither, anyone may register under any id.
#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AuthConfig {
    /// Username/password logins checked at `client::register` (taoyao compatibility).
    pub users: Vec<UserConfig>,
    /// HS256 secret for access tokens (at least 32 bytes); best given by environment variable
    /// `TAOYAO__AUTH__TOKEN_SECRET`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub token_secret: Option<String>,
    /// Clock skew allowed when checking a token's expiry, in seconds.
    pub token_leeway_s: u64,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            users: vec![UserConfig {
                username: "taoyao".into(),
                password: "taoyao".into(),
                admin: false,
            }],
            token_secret: None,
            token_leeway_s: 30,
        }
    }
}

// Secrets never reach a log line.
impl std::fmt::Debug for AuthConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuthConfig")
            .field("users", &self.users)
            .field(
                "token_secret",
                &self.token_secret.as_ref().map(|_| "<redacted>"),
            )
            .field("token_leeway_s", &self.token_leeway_s)
            .finish()
    }
}

impl Validate for AuthConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.token_secret.as_ref().is_some_and(|s| s.len() < 32) {
            return Err(Invalid::new(
                "auth.token_secret",
                "must be at least 32 bytes",
            ));
        }
        for (i, u) in self.users.iter().enumerate() {
            if u.username.is_empty() {
                return Err(Invalid::new(
                    format!("auth.users[{i}].username"),
                    "must not be empty",
                ));
            }
            if u.password.is_empty() {
                return Err(Invalid::new(
                    format!("auth.users[{i}].password"),
                    "must not be empty",
                ));
            }
        }
        Ok(())
    }
}

impl AuthConfig {
    /// The shipped development login is active (the server warns about it at start).
    pub fn has_development_user(&self) -> bool {
        self.users
            .iter()
            .any(|u| u.username == "taoyao" && u.password == "taoyao")
    }
}

#[derive(Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserConfig {
    pub username: String,
    pub password: String,
    /// An admin may close, expel and invite in every room, not only in rooms it owns.
    #[serde(default)]
    pub admin: bool,
}

// Passwords never reach a log line.
impl std::fmt::Debug for UserConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UserConfig")
            .field("username", &self.username)
            .field("password", &"<redacted>")
            .field("admin", &self.admin)
            .finish()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn defaults_are_valid_and_zero_limits_are_not() {
        assert!(SignalConfig::default().validate().is_ok());
        let c = SignalConfig {
            max_clients: 0,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "signal.max_clients");
        let c = SignalConfig {
            max_message_bytes: 10,
            ..Default::default()
        };
        assert_eq!(c.validate().unwrap_err().key, "signal.max_message_bytes");
    }

    #[test]
    fn password_is_not_in_debug_output() {
        let mut a = AuthConfig {
            token_secret: Some("s".repeat(40)),
            ..Default::default()
        };
        assert!(a.has_development_user());
        assert!(!format!("{a:?}").contains("password: \"taoyao\""));
        assert!(!format!("{a:?}").contains("sss"));
        a.token_secret = Some("short".into());
        assert_eq!(a.validate().unwrap_err().key, "auth.token_secret");
    }
}
