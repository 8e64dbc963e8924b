//! The WebSocket route: `GET /websocket.signal` upgrades to a WebSocket (refused with 503 at
//! `signal.max_connections`) and hands the socket's two halves to [`SignalHub::serve`].

use std::net::SocketAddr;
use std::sync::atomic::Ordering;

use axum::Router;
use axum::extract::ConnectInfo;
use axum::extract::ws::WebSocketUpgrade;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use futures_util::StreamExt;

use super::SignalHub;

/// The WebSocket path of the signaling endpoint.
pub const WEBSOCKET_PATH: &str = "/websocket.signal";

impl SignalHub {
    /// The axum routes of the signaling endpoint. Serve them with
    /// `into_make_service_with_connect_info::<SocketAddr>()`.
    pub fn router(&self) -> Router {
        let hub = self.clone();
        Router::new().route(
            WEBSOCKET_PATH,
            get(
                move |ws: WebSocketUpgrade, ConnectInfo(remote): ConnectInfo<SocketAddr>| {
                    let hub = hub.clone();
                    async move { hub.upgrade(ws, remote) }
                },
            ),
        )
    }

    fn upgrade(&self, ws: WebSocketUpgrade, remote: SocketAddr) -> Response {
        let open = self.inner.open_connections.load(Ordering::Relaxed);
        if open >= self.inner.config.max_connections {
            tracing::warn!(open, "refusing a WebSocket: signal.max_connections reached");
            self.observe_connection_refused();
            return (
                axum::http::StatusCode::SERVICE_UNAVAILABLE,
                "too many connections",
            )
                .into_response();
        }
        // The WebSocket layer reads up to 4x the limit so that a moderately oversized message is
        // consumed whole and refused cleanly (error, then close 1009); stopping at the frame
        // header would leave its payload unread, and closing a socket with unread data resets
        // it before the client sees why. Larger ones are cut off at the header.
        let hard = self.inner.config.max_message_bytes.saturating_mul(4);
        let hub = self.clone();
        ws.max_message_size(hard)
            .max_frame_size(hard)
            .read_buffer_size(self.inner.config.ws_read_buffer_bytes)
            .on_upgrade(move |socket| async move {
                let (sink, stream) = socket.split();
                hub.serve(sink, stream, remote).await
            })
            .into_response()
    }
}
