//! The taoyao-rs server: reads the config, builds every crate's piece from its section, and
//! serves HTTP (health, readiness, metrics, the admin API, the web client) and the signaling
//! WebSocket on one listener (metrics optionally on their own).
//! This is the only crate that knows every other one; it should read like a wiring diagram.

pub mod admin;
pub mod config;
pub mod metrics;
pub mod ready;
pub mod recordings;
pub mod web;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::routing::get;
use serde_json::json;
use taoyao_boot::{IdGenerator, Shutdown};
use taoyao_meeting::{Calls, Rooms};
use taoyao_signal::SignalHub;
use taoyao_webrtc_mesh::Mesh;
use taoyao_webrtc_sfu::Sfu;
use tokio::task::JoinHandle;

pub use config::Config;
use metrics::Metrics;
use webhooks::Webhooks;

#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum ServerError {
    #[error("cannot listen on {addr}: {source}")]
    Bind {
        addr: SocketAddr,
        source: std::io::Error,
    },
    #[error("server wiring: {0}")]
    Wiring(String),
    #[error("server failed: {0}")]
    Serve(std::io::Error),
    #[error(transparent)]
    Tls(#[from] taoyao_boot::tls::TlsError),
}

/// A server that is accepting connections.
pub struct Running {
    pub local_addr: SocketAddr,
    /// Where `/metrics` listens when `metrics.listen` is set.
    pub metrics_addr: Option<SocketAddr>,
    pub parts: Parts,
    task: JoinHandle<Result<(), ServerError>>,
}

/// The pieces of a server, wired together (handles: clones share the same state).
#[derive(Clone)]
pub struct Parts {
    pub hub: SignalHub,
    pub rooms: Rooms,
    pub calls: Arc<Calls>,
    pub sfu: Arc<Sfu>,
    pub mcu: Arc<taoyao_webrtc_mcu::Mcu>,
    pub metrics: Arc<Metrics>,
    /// The webhook senders, when `webhooks.urls` is set (drained at shutdown).
    pub webhooks: Option<Arc<Webhooks>>,
}

/// What watches the rooms: the metrics count each event, the webhooks queue it.
struct RoomWatch {
    metrics: Arc<Metrics>,
    webhooks: Option<Arc<Webhooks>>,
}

impl taoyao_meeting::RoomObserver for RoomWatch {
    fn event(&self, e: taoyao_meeting::RoomEvent) {
        self.metrics.room_event(&e);
        if let Some(w) = &self.webhooks {
            w.send(&e);
        }
    }
}

impl Running {
    /// Resolves when the server has stopped (after the shutdown was triggered and drained).
    pub async fn wait(self) -> Result<(), ServerError> {
        self.task
            .await
            .map_err(|e| ServerError::Wiring(format!("server task: {e}")))?
    }
}

/// Builds every part and wires each signal group into the hub.
pub fn build(cfg: &Config, shutdown: &Shutdown) -> Result<Parts, ServerError> {
    let ids = Arc::new(IdGenerator::new());
    let factory = Arc::new(taoyao_webrtc_sfu::peer::PeerFactory::new(
        cfg.webrtc.clone(),
    ));
    let sfu = Arc::new(Sfu::with_factory(factory.clone()));
    let mcu = Arc::new(taoyao_webrtc_mcu::Mcu::new(factory, cfg.mcu.clone()));
    let rooms = Rooms::new(
        cfg.rooms.clone(),
        cfg.live.clone(),
        cfg.recording.clone(),
        vec![Arc::new(Mesh), sfu.clone(), mcu.clone()],
        ids.clone(),
        shutdown.clone(),
    )
    .map_err(ServerError::Wiring)?;
    let metrics = Arc::new(Metrics::new());
    let webhooks = Webhooks::start(&cfg.webhooks, ids.clone(), metrics.clone())
        .map_err(ServerError::Wiring)?
        .map(Arc::new);
    rooms.observe(Arc::new(RoomWatch {
        metrics: metrics.clone(),
        webhooks: webhooks.clone(),
    }));
    let calls = Arc::new(Calls::new(cfg.calls.clone(), ids.clone()));
    let hub = SignalHub::builder(cfg.signal.clone(), cfg.auth.clone(), shutdown.clone())
        .ids(ids)
        .observer(metrics.clone())
        .handler(Arc::new(rooms.clone()))
        .presence_scope(Arc::new(rooms.clone()))
        .handler(calls.clone())
        .client_config("iceServers", json!(cfg.webrtc.ice_servers))
        .build()
        .map_err(|e| ServerError::Wiring(e.to_string()))?;
    Ok(Parts {
        hub,
        rooms,
        calls,
        sfu,
        mcu,
        metrics,
        webhooks,
    })
}

/// Every HTTP route: health, readiness, metrics (unless on their own listener), the admin API,
/// signaling, recording downloads, the web client.
pub fn router(cfg: &Config, parts: &Parts) -> Router {
    let mut r = Router::new()
        .route("/health", get(|| async { "ok" }))
        .merge(ready::router(cfg));
    if cfg.metrics.enabled && cfg.metrics.listen.is_none() {
        r = r.merge(metrics::router(parts.metrics.clone(), parts.clone()));
    }
    if cfg.admin.enabled {
        r = r.merge(admin::router(
            parts.hub.clone(),
            parts.rooms.clone(),
            parts.metrics.clone(),
            cfg.admin.max_body_bytes,
        ));
    }
    r.merge(parts.hub.router())
        .merge(recordings::router(parts.rooms.clone()))
        .merge(web::router(cfg.server.web_dir.as_deref()))
}

/// Binds the listener and starts serving (https/wss when `server.tls` is set); returns once
/// connections are accepted.
pub async fn start(cfg: Config, shutdown: Shutdown) -> Result<Running, ServerError> {
    // A missing or unreadable certificate is an error at start, before anything listens.
    let tls = match (&cfg.server.tls.cert, &cfg.server.tls.key) {
        (Some(cert), Some(key)) => Some(taoyao_boot::tls::server_config(cert, key)?),
        _ => None,
    };
    let parts = build(&cfg, &shutdown)?;
    let metrics_addr = match cfg.metrics.listen.filter(|_| cfg.metrics.enabled) {
        Some(addr) => Some(serve_metrics(addr, &parts, &shutdown).await?),
        None => None,
    };
    let app = router(&cfg, &parts).into_make_service_with_connect_info::<SocketAddr>();
    let addr = cfg.server.listen;
    let bind_err = |source| ServerError::Bind { addr, source };
    let listener = std::net::TcpListener::bind(addr).map_err(bind_err)?;
    listener.set_nonblocking(true).map_err(bind_err)?;
    let local_addr = listener.local_addr().map_err(bind_err)?;
    let grace = Duration::from_millis(cfg.server.shutdown_grace_ms);
    let handle = axum_server::Handle::new();
    let stop = shutdown.clone();
    let stopper = handle.clone();
    tokio::spawn(async move {
        stop.triggered().await;
        // Stop accepting; requests in flight get the grace period. WebSocket sessions close
        // themselves on the same signal and are awaited below.
        stopper.graceful_shutdown(Some(grace));
    });
    let tls_metrics = parts.metrics.clone();
    let webhooks = parts.webhooks.clone();
    let task = tokio::spawn(async move {
        let served = match tls {
            Some(tls) => {
                let tls = axum_server::tls_rustls::RustlsConfig::from_config(tls);
                let acceptor = metrics::CountFailures::new(
                    axum_server::tls_rustls::RustlsAcceptor::new(tls),
                    tls_metrics,
                );
                axum_server::from_tcp(listener)
                    .map_err(ServerError::Serve)?
                    .acceptor(acceptor)
                    .handle(handle)
                    .serve(app)
                    .await
            }
            None => {
                axum_server::from_tcp(listener)
                    .map_err(ServerError::Serve)?
                    .handle(handle)
                    .serve(app)
                    .await
            }
        };
        served.map_err(ServerError::Serve)?;
        // Sessions tell their clients and close on the same signal; wait for them.
        if !shutdown.drained(grace).await {
            tracing::warn!("some connections did not close within {grace:?}");
        }
        // The rooms have ended (room tasks are tracked by the shutdown): their last events
        // are queued; deliver them.
        if let Some(w) = webhooks {
            w.finish().await;
        }
        Ok(())
    });
    Ok(Running {
        local_addr,
        metrics_addr,
        parts,
        task,
    })
}

/// `metrics.listen`: `/metrics` alone on its own plain-HTTP listener, until shutdown.
async fn serve_metrics(
    addr: SocketAddr,
    parts: &Parts,
    shutdown: &Shutdown,
) -> Result<SocketAddr, ServerError> {
    let bind_err = |source| ServerError::Bind { addr, source };
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .map_err(bind_err)?;
    let local = listener.local_addr().map_err(bind_err)?;
    let app = metrics::router(parts.metrics.clone(), parts.clone());
    let stop = shutdown.clone();
    shutdown.spawn(async move {
        let served = axum::serve(listener, app)
            .with_graceful_shutdown(async move { stop.triggered().await })
            .await;
        if let Err(e) = served {
            tracing::error!("metrics listener: {e}");
        }
    });
    Ok(local)
}
