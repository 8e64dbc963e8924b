//! `GET /ready`: whether this server can take work, for a load balancer or an orchestrator
//! (`/health` only says the process answers). 200 with every check true, else 503; the body
//! names each check either way.
//!
//! Checks: the listener (answering at all), the media engine's address (a UDP socket binds on
//! `webrtc.bind_ip`, as every server-side peer connection must), and the recording directory
//! (created if missing and a file written and removed in it: sfu and mcu rooms record there).

use std::net::IpAddr;
use std::path::PathBuf;

use axum::Router;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;

use crate::Config;

#[derive(Clone)]
struct Checks {
    bind_ip: IpAddr,
    /// Checked always: this binary always runs the sfu and mcu backends, which record there.
    recording_dir: PathBuf,
}

pub fn router(cfg: &Config) -> Router {
    Router::new()
        .route("/ready", get(ready))
        .with_state(Checks {
            bind_ip: cfg.webrtc.bind_ip,
            recording_dir: cfg.recording.dir.clone(),
        })
}

async fn ready(State(c): State<Checks>) -> Response {
    let media = std::net::UdpSocket::bind((c.bind_ip, 0))
        .map(|_| ())
        .map_err(|e| format!("cannot bind UDP on webrtc.bind_ip {}: {e}", c.bind_ip));
    let recording = writable(c.recording_dir.clone()).await;
    let ok = media.is_ok() && recording.is_ok();
    let show = |r: &Result<(), String>| match r {
        Ok(()) => json!({"ok": true}),
        Err(e) => json!({"ok": false, "error": e}),
    };
    let body = json!({
        "ready": ok,
        "checks": {
            "listener": {"ok": true},
            "media": show(&media),
            "recordingDir": show(&recording),
        }
    });
    let status = if ok {
        StatusCode::OK
    } else {
        StatusCode::SERVICE_UNAVAILABLE
    };
    (status, axum::Json(body)).into_response()
}

/// Creates `dir` if needed and writes, then removes, a probe file in it.
async fn writable(dir: PathBuf) -> Result<(), String> {
    tokio::task::spawn_blocking(move || {
        std::fs::create_dir_all(&dir).map_err(|e| format!("{}: {e}", dir.display()))?;
        let probe = dir.join(format!(".ready-{}", std::process::id()));
        std::fs::write(&probe, b"ok")
            .map_err(|e| format!("{} is not writable: {e}", dir.display()))?;
        let _ = std::fs::remove_file(&probe);
        Ok(())
    })
    .await
    .map_err(|e| format!("check failed: {e}"))?
}
