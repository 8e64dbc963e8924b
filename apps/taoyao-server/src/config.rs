//! The server's config tree: each crate's section under its name. The commented sample file
//! `apps/taoyao-server/taoyao.sample.toml` holds exactly these defaults (a test keeps it so).

use std::net::SocketAddr;
use std::path::PathBuf;

use serde::{Deserialize, Serialize};
use taoyao_boot::config::{ConfigError, Sources};
use taoyao_boot::log::LogConfig;
use taoyao_boot::tls::TlsConfig;
use taoyao_boot::{Invalid, Validate};
use taoyao_live::LiveConfig;
use taoyao_meeting::{CallsConfig, RecordingConfig, RoomsConfig};
use taoyao_signal::{AuthConfig, SignalConfig};
use taoyao_webrtc::WebrtcConfig;

/// The sample config, embedded so `check-config` and the docs can point at it.
pub const SAMPLE: &str = include_str!("../taoyao.sample.toml");

#[derive(Debug, Clone, PartialEq, Eq, Default, Serialize, Deserialize)]
#[serde(default)]
pub struct Config {
    pub server: ServerConfig,
    pub log: LogConfig,
    pub signal: SignalConfig,
    pub auth: AuthConfig,
    pub rooms: RoomsConfig,
    pub calls: CallsConfig,
    pub live: LiveConfig,
    pub webrtc: WebrtcConfig,
    pub recording: RecordingConfig,
}

/// `[server]`: listener, web client, shutdown.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ServerConfig {
    /// Address of the HTTP / WebSocket listener.
    pub listen: SocketAddr,
    /// Serve the web client from this directory instead of the copy embedded in the binary
    /// (for working on `web/` without rebuilding).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub web_dir: Option<PathBuf>,
    /// On shutdown, how long to wait for connections to close before exiting anyway.
    pub shutdown_grace_ms: u64,
    /// https / wss when a certificate and key are set.
    pub tls: TlsConfig,
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8888)),
            web_dir: None,
            shutdown_grace_ms: 5_000,
            tls: TlsConfig::default(),
        }
    }
}

impl Validate for ServerConfig {
    fn validate(&self) -> Result<(), Invalid> {
        self.tls.validate()?;
        if let Some(dir) = &self.web_dir
            && !dir.is_dir()
        {
            return Err(Invalid::new(
                "server.web_dir",
                format!("{} is not a directory", dir.display()),
            ));
        }
        Ok(())
    }
}

impl Validate for Config {
    fn validate(&self) -> Result<(), Invalid> {
        self.server.validate()?;
        self.log.validate()?;
        self.signal.validate()?;
        self.auth.validate()?;
        self.rooms.validate()?;
        self.calls.validate()?;
        self.live.validate()?;
        self.recording.validate()?;
        self.webrtc.validate()
    }
}

impl Config {
    /// Defaults, then `file`, then `TAOYAO__*` environment variables.
    pub fn load(file: Option<PathBuf>) -> Result<Config, ConfigError> {
        taoyao_boot::config::load(&Sources::from_process(file))
    }

    /// The effective config as TOML, with every secret replaced.
    pub fn to_redacted_toml(&self) -> String {
        let mut value = toml::Value::try_from(self).expect("config serializes to TOML");
        redact(&mut value);
        toml::to_string_pretty(&value).expect("TOML value prints")
    }
}

/// Keys whose values are secrets (a TLS `key` is a path, not a secret).
fn is_secret(key: &str) -> bool {
    ["password", "secret", "credential"]
        .iter()
        .any(|s| key.contains(s))
}

fn redact(v: &mut toml::Value) {
    match v {
        toml::Value::Table(t) => {
            for (k, val) in t.iter_mut() {
                if is_secret(k) && val.is_str() {
                    *val = toml::Value::String("<redacted>".into());
                } else {
                    redact(val);
                }
            }
        }
        toml::Value::Array(a) => a.iter_mut().for_each(redact),
        _ => {}
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sample_file_is_exactly_the_defaults() {
        let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("taoyao.sample.toml");
        let loaded: Config = taoyao_boot::config::load(&Sources {
            file: Some(path),
            env: Default::default(),
        })
        .unwrap();
        assert_eq!(loaded, Config::default());
    }

    #[test]
    fn redacted_output_hides_passwords() {
        let mut c = Config::default();
        c.auth.token_secret = Some("x".repeat(40));
        let out = c.to_redacted_toml();
        assert!(!out.contains("xxxx"), "{out}");
        assert!(out.contains("username = \"taoyao\""), "{out}");
        assert!(!out.contains("password = \"taoyao\""), "{out}");
        assert!(out.contains("<redacted>"));
    }
}
