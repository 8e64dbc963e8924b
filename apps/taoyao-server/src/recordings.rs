//! `GET /recordings/<roomId>/<file>?token=...`: downloads a recorded file. The token is the one
//! `record::list` put in the file's `url` (taoyao-meeting `DownloadLinks`: HMAC-signed, per
//! process, short-lived, for that one file); names are checked and the path is canonicalized
//! under `recording.dir` before anything is opened. tower-http's `ServeFile` serves it (Range,
//! conditional requests).

use std::collections::HashMap;

use axum::Router;
use axum::extract::{Path, Query, Request, State};
use axum::http::{HeaderValue, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use taoyao_meeting::{DownloadError, Rooms};
use tower::ServiceExt;
use tower_http::services::ServeFile;

pub fn router(rooms: Rooms) -> Router {
    Router::new()
        .route("/recordings/{room}/{file}", get(download))
        .with_state(rooms)
}

async fn download(
    State(rooms): State<Rooms>,
    Path((room, file)): Path<(String, String)>,
    Query(query): Query<HashMap<String, String>>,
    req: Request,
) -> Response {
    let path = match rooms.recording_file(&room, &file, query.get("token").map(String::as_str)) {
        Ok(p) => p,
        Err(e) => {
            let status = match e {
                DownloadError::BadPath(_) => StatusCode::BAD_REQUEST,
                DownloadError::NoToken | DownloadError::Expired => StatusCode::UNAUTHORIZED,
                DownloadError::Forged => StatusCode::FORBIDDEN,
                _ => StatusCode::NOT_FOUND,
            };
            return (status, e.to_string()).into_response();
        }
    };
    let webm: mime_guess::mime::Mime = "video/webm".parse().expect("a mime type");
    let mut res = match ServeFile::new_with_mime(&path, &webm).oneshot(req).await {
        Ok(r) => r.into_response(),
        Err(e) => return (StatusCode::INTERNAL_SERVER_ERROR, e.to_string()).into_response(),
    };
    // `file` passed check_names: letters, digits, '-', '_', ".webm" - safe in a quoted value.
    if let Ok(v) = HeaderValue::from_str(&format!("attachment; filename=\"{file}\"")) {
        res.headers_mut().insert(header::CONTENT_DISPOSITION, v);
    }
    res.headers_mut().insert(
        header::CACHE_CONTROL,
        HeaderValue::from_static("private, no-store"),
    );
    res
}
