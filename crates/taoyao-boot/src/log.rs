//! Tracing initialisation.

use serde::{Deserialize, Serialize};
use tracing_subscriber::EnvFilter;

use crate::config::{Invalid, Validate};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line, for log collectors.
    Json,
}

/// `[log]`: what is logged and how. `RUST_LOG`, when set, replaces `level`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct LogConfig {
    /// A tracing filter, e.g. `info` or `info,taoyao_signal=debug`.
    pub level: String,
    pub format: LogFormat,
}

/// The default filter: info, with webrtc-rs's chatty start-up warnings (ICE checks before the
/// remote credentials, RTP before DTLS finishes) kept to errors.
pub const DEFAULT_LEVEL: &str =
    "info,rtc=error,rtc_ice=error,rtc_dtls=error,rtc_srtp=error,webrtc=error";

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: DEFAULT_LEVEL.into(),
            format: LogFormat::Text,
        }
    }
}

impl Validate for LogConfig {
    fn validate(&self) -> Result<(), Invalid> {
        EnvFilter::try_new(&self.level)
            .map(|_| ())
            .map_err(|e| Invalid::new("log.level", e.to_string()))
    }
}

/// Libraries that log whole messages (passwords, tokens, SDP) at debug or trace level; they are
/// capped at info whatever the configured level, so secrets never reach a log line.
const MESSAGE_LOGGERS: [&str; 4] = ["tungstenite", "tokio_tungstenite", "hyper", "rustls"];

/// The filter for `directives` (e.g. `info` or `debug,taoyao_signal=trace`), with the
/// message-logging libraries capped at info.
pub fn filter(directives: &str) -> EnvFilter {
    let capped: Vec<String> = MESSAGE_LOGGERS
        .iter()
        .map(|t| format!("{t}=info"))
        .collect();
    let base = if directives.trim().is_empty() {
        "info"
    } else {
        directives
    };
    EnvFilter::try_new(format!("{base},{}", capped.join(",")))
        .unwrap_or_else(|_| EnvFilter::new(format!("info,{}", capped.join(","))))
}

/// Installs the global subscriber (once per process; a second call is a no-op that returns
/// false). The binary calls this; library users install their own subscriber.
pub fn init(cfg: &LogConfig) -> bool {
    let directives = std::env::var("RUST_LOG")
        .ok()
        .filter(|v| EnvFilter::try_new(v).is_ok())
        .unwrap_or_else(|| cfg.level.clone());
    let filter = filter(&directives);
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder.json().try_init().is_ok(),
    }
}
