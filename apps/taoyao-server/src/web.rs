//! The web client: embedded in the binary (one binary is a complete deploy), or served from a
//! directory while developing (`server.web_dir`).

use std::path::Path;

use axum::Router;
use axum::http::{StatusCode, Uri, header};
use axum::response::{IntoResponse, Response};
use rust_embed::RustEmbed;
use tower_http::services::ServeDir;

/// The SDK's unit tests (`node --test web/js/sdk/test/`) are not part of the client.
#[derive(RustEmbed)]
#[folder = "../../web/"]
#[exclude = "js/sdk/test/*"]
struct Embedded;

/// Routes for `/` and every web client file.
pub fn router(dir: Option<&Path>) -> Router {
    match dir {
        Some(dir) => Router::new().fallback_service(ServeDir::new(dir)),
        None => Router::new().fallback(embedded),
    }
}

async fn embedded(uri: Uri) -> Response {
    let path = uri.path().trim_start_matches('/');
    let path = if path.is_empty() || path.ends_with('/') {
        format!("{path}index.html")
    } else {
        path.to_owned()
    };
    match Embedded::get(&path) {
        Some(file) => {
            let mime = mime_guess::from_path(&path).first_or_octet_stream();
            (
                [(header::CONTENT_TYPE, mime.as_ref().to_owned())],
                file.data.into_owned(),
            )
                .into_response()
        }
        None => (StatusCode::NOT_FOUND, "not found").into_response(),
    }
}
