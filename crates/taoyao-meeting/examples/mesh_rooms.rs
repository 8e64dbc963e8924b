//! A room service on the mesh backend alone: taoyao's `room::` / `media::` signals over
//! WebSocket at `ws://ADDR/websocket.signal`, open login (no token), peer-to-peer media (the
//! server relays negotiation only, so no webrtc-rs is built). Any taoyao client works against
//! it, e.g. two browser tabs of the web client pointed at it, or:
//!
//! ```text
//! cargo run -p taoyao-meeting --example mesh_rooms -- 127.0.0.1:8888
//! ```
//!
//! Ctrl-C stops it (rooms end in order: members told, room finished).

use std::net::SocketAddr;
use std::sync::Arc;

use taoyao_boot::{IdGenerator, Shutdown};
use taoyao_live::LiveConfig;
use taoyao_meeting::{RecordingConfig, Rooms, RoomsConfig};
use taoyao_signal::{AuthConfig, SignalConfig, SignalHub, WEBSOCKET_PATH};
use taoyao_webrtc_mesh::Mesh;

#[tokio::main]
async fn main() -> Result<(), Box<dyn std::error::Error>> {
    let addr: SocketAddr = std::env::args()
        .nth(1)
        .unwrap_or_else(|| "127.0.0.1:8888".into())
        .parse()?;
    let shutdown = Shutdown::new();
    let ids = Arc::new(IdGenerator::new());
    // Every room is mesh (the default architecture), the only backend this service runs.
    let rooms = Rooms::new(
        RoomsConfig::default(),
        LiveConfig::default(),
        RecordingConfig::default(),
        vec![Arc::new(Mesh)],
        ids.clone(),
        shutdown.clone(),
    )?;
    // No users and no token secret: an open server, anyone registers under any id.
    let open = AuthConfig {
        users: Vec::new(),
        ..AuthConfig::default()
    };
    let hub = SignalHub::builder(SignalConfig::default(), open, shutdown.clone())
        .ids(ids)
        .handler(Arc::new(rooms))
        .build()
        .map_err(|d| format!("signal {} is handled twice", d.0))?;
    let listener = tokio::net::TcpListener::bind(addr).await?;
    println!("rooms on ws://{}{WEBSOCKET_PATH}", listener.local_addr()?);
    let stop = shutdown.clone();
    axum::serve(
        listener,
        hub.router()
            .into_make_service_with_connect_info::<SocketAddr>(),
    )
    .with_graceful_shutdown(async move {
        let _ = tokio::signal::ctrl_c().await;
        stop.trigger();
    })
    .await?;
    Ok(())
}
