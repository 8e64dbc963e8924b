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

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            level: "info".into(),
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

/// Installs the global subscriber (once per process; a second call is a no-op that returns
/// false). The binary calls this; library users install their own subscriber.
pub fn init(cfg: &LogConfig) -> bool {
    let filter = std::env::var("RUST_LOG")
        .ok()
        .and_then(|v| EnvFilter::try_new(v).ok())
        .unwrap_or_else(|| EnvFilter::new(&cfg.level));
    let builder = tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr);
    match cfg.format {
        LogFormat::Text => builder.try_init().is_ok(),
        LogFormat::Json => builder.json().try_init().is_ok(),
    }
}
