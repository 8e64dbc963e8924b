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
use taoyao_webrtc_mcu::McuConfig;

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
    pub mcu: McuConfig,
    pub recording: RecordingConfig,
    pub metrics: MetricsConfig,
    pub admin: AdminConfig,
    pub webhooks: WebhooksConfig,
}

/// `[metrics]`: the Prometheus endpoint.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct MetricsConfig {
    /// Serve `GET /metrics` at all.
    pub enabled: bool,
    /// Serve it on its own listener (e.g. an address only the scraper reaches) instead of the
    /// main one; unset: on `server.listen`.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub listen: Option<SocketAddr>,
}

impl Default for MetricsConfig {
    fn default() -> Self {
        MetricsConfig {
            enabled: true,
            listen: None,
        }
    }
}

impl Validate for MetricsConfig {
    fn validate(&self) -> Result<(), Invalid> {
        Ok(())
    }
}

/// `[admin]`: the admin REST API under `/api/v1`.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct AdminConfig {
    /// Serve the API (it also needs `auth.token_secret`: it takes admin tokens only).
    pub enabled: bool,
    /// Largest request body accepted (larger: 413).
    pub max_body_bytes: usize,
}

impl Default for AdminConfig {
    fn default() -> Self {
        AdminConfig {
            enabled: true,
            max_body_bytes: 65_536,
        }
    }
}

impl Validate for AdminConfig {
    fn validate(&self) -> Result<(), Invalid> {
        if self.max_body_bytes < 1024 {
            return Err(Invalid::new(
                "admin.max_body_bytes",
                "must be at least 1024",
            ));
        }
        Ok(())
    }
}

/// `[webhooks]`: room events POSTed to HTTP receivers.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct WebhooksConfig {
    /// Receivers (http:// or https://); each gets every event, in order.
    pub urls: Vec<String>,
    /// Signs each delivery (HS256 JWT in `Authorization`); required when `urls` is set, at
    /// least 32 bytes.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub secret: Option<String>,
    /// One delivery attempt may take this long.
    pub timeout_ms: u64,
    /// Events waiting per receiver; when full, new events are dropped (and counted).
    pub queue: usize,
    /// Further attempts after a failed one (connection error, timeout, non-2xx answer).
    pub retries: u32,
    /// Wait before the first retry; doubled for each next one.
    pub backoff_ms: u64,
    /// Longest wait between retries.
    pub max_backoff_ms: u64,
    /// A PEM file of certificates trusted for https receivers besides the public roots (a
    /// private CA, a self-signed receiver).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ca_file: Option<std::path::PathBuf>,
    /// At shutdown, after the rooms have ended, how long delivery of the events still queued
    /// (the rooms' last ones among them) may go on before the rest are given up (counted as
    /// dropped).
    pub drain_ms: u64,
}

impl Default for WebhooksConfig {
    fn default() -> Self {
        WebhooksConfig {
            urls: Vec::new(),
            secret: None,
            timeout_ms: 5_000,
            queue: 1_024,
            retries: 5,
            backoff_ms: 500,
            max_backoff_ms: 30_000,
            ca_file: None,
            drain_ms: 5_000,
        }
    }
}

impl Validate for WebhooksConfig {
    fn validate(&self) -> Result<(), Invalid> {
        for (i, u) in self.urls.iter().enumerate() {
            let ok = reqwest::Url::parse(u)
                .is_ok_and(|u| matches!(u.scheme(), "http" | "https") && u.host().is_some());
            if !ok {
                return Err(Invalid::new(
                    format!("webhooks.urls[{i}]"),
                    "must be an http:// or https:// URL",
                ));
            }
        }
        if !self.urls.is_empty() && self.secret.as_ref().is_none_or(|s| s.len() < 32) {
            return Err(Invalid::new(
                "webhooks.secret",
                "must be set, at least 32 bytes, when webhooks.urls is set",
            ));
        }
        for (key, v) in [
            ("webhooks.timeout_ms", self.timeout_ms),
            ("webhooks.queue", self.queue as u64),
            ("webhooks.backoff_ms", self.backoff_ms),
        ] {
            if v == 0 {
                return Err(Invalid::new(key, "must be greater than 0"));
            }
        }
        if self.max_backoff_ms < self.backoff_ms {
            return Err(Invalid::new(
                "webhooks.max_backoff_ms",
                "must be at least webhooks.backoff_ms",
            ));
        }
        Ok(())
    }
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
        self.metrics.validate()?;
        self.admin.validate()?;
        self.webhooks.validate()?;
        self.mcu.validate()?;
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
    fn webhooks_need_a_secret_and_http_urls() {
        let mut c = Config::default();
        c.webhooks.urls = vec!["https://hooks.example.org/x".into()];
        assert_eq!(c.validate().unwrap_err().key, "webhooks.secret");
        c.webhooks.secret = Some("s".repeat(32));
        assert!(c.validate().is_ok());
        c.webhooks.urls.push("ftp://example.org/".into());
        assert_eq!(c.validate().unwrap_err().key, "webhooks.urls[1]");
        c.webhooks.urls.pop();
        c.webhooks.queue = 0;
        assert_eq!(c.validate().unwrap_err().key, "webhooks.queue");
        let out = Config {
            webhooks: WebhooksConfig {
                secret: Some("hook-secret-hook-secret-hook-secret".into()),
                ..Default::default()
            },
            ..Default::default()
        }
        .to_redacted_toml();
        assert!(!out.contains("hook-secret"), "{out}");
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
