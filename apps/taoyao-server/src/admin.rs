//! The admin REST API under `/api/v1`: JSON over HTTP for operators' scripts and the
//! dashboard (`web/admin.html`).
//!
//! Every action is the signal an admin client would send, handled by the same handler and
//! room rules ([`SignalHub::call_as`]): the API adds no rules of its own, only the door.
//! The door: `Authorization: Bearer <token>`, an access token checked exactly as
//! `client::register` checks one, that must carry the `admin` grant. Password logins never
//! work here, and with no `auth.token_secret` (open mode or passwords only) every call is 3401:
//! an API that changes every room must not be open because signaling is.
//!
//! Errors are `{code, message}` with the protocol's codes and a matching HTTP status
//! ([`status_of`]). `/api/v1/openapi.json` is generated from the handlers' annotations
//! (utoipa); `/api/v1/docs` lists the routes from it.

use axum::Router;
use axum::extract::rejection::JsonRejection;
use axum::extract::{DefaultBodyLimit, FromRequest, FromRequestParts, Request, State};
use axum::http::request::Parts as RequestParts;
use axum::http::{StatusCode, header};
use axum::middleware::{self, Next};
use axum::response::{Html, IntoResponse, Response};
use axum::routing::{MethodRouter, delete, get, post, put};
use serde::Deserialize;
use serde::de::DeserializeOwned;
use serde_json::{Value, json};
use std::sync::Arc;
use taoyao_boot::Code;
use taoyao_meeting::Rooms;
use taoyao_signal::{Identity, SignalError, SignalHub};
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::{Modify, OpenApi, ToSchema};

use crate::metrics::Metrics;

/// Where the API lives.
pub const BASE: &str = "/api/v1";

#[derive(Clone)]
struct Api {
    hub: SignalHub,
    rooms: Rooms,
    metrics: Arc<Metrics>,
}

/// The HTTP status that goes with a protocol code.
pub fn status_of(code: Code) -> StatusCode {
    match code {
        Code::Success => StatusCode::OK,
        Code::BadMessage | Code::BadRequest => StatusCode::BAD_REQUEST,
        Code::SignatureFailed | Code::Unauthorized => StatusCode::UNAUTHORIZED,
        Code::Forbidden => StatusCode::FORBIDDEN,
        Code::NotFound | Code::UnknownInterface | Code::UnsupportedSignal => StatusCode::NOT_FOUND,
        Code::Timeout => StatusCode::GATEWAY_TIMEOUT,
        Code::PreviousRequestNotFinished => StatusCode::CONFLICT,
        _ => StatusCode::INTERNAL_SERVER_ERROR,
    }
}

/// An error answer: `{code, message}`.
#[derive(Debug, serde::Serialize, ToSchema)]
pub struct ApiErrorBody {
    /// The protocol code (docs/protocol.md), e.g. "3404".
    code: String,
    message: String,
}

#[derive(Debug)]
struct ApiError {
    status: StatusCode,
    code: Code,
    message: String,
}

impl ApiError {
    fn new(code: Code, message: impl Into<String>) -> ApiError {
        ApiError {
            status: status_of(code),
            code,
            message: message.into(),
        }
    }
}

impl From<SignalError> for ApiError {
    fn from(e: SignalError) -> Self {
        ApiError::new(e.code, e.message)
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        let body = json!({"code": self.code.as_str(), "message": self.message});
        (self.status, axum::Json(body)).into_response()
    }
}

type ApiResult = Result<axum::Json<Value>, ApiError>;

/// The caller, once its token carried the admin grant.
struct Admin(Identity);

impl FromRequestParts<Api> for Admin {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut RequestParts, api: &Api) -> Result<Self, ApiError> {
        let token = parts
            .headers
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim)
            .filter(|t| !t.is_empty())
            .ok_or_else(|| {
                ApiError::new(
                    Code::Unauthorized,
                    "an admin access token is required: Authorization: Bearer <token>",
                )
            })?;
        let who = api.hub.authenticate_token(token)?;
        if !who.grants.admin {
            return Err(ApiError::new(
                Code::Forbidden,
                "not granted: admin (the token lacks the admin grant)",
            ));
        }
        Ok(Admin(who))
    }
}

/// A JSON body whose rejections are API errors: malformed 1002, wrong fields or types 3400,
/// too large 3400 with HTTP 413.
struct Body<T>(T);

impl<T: DeserializeOwned, S: Send + Sync> FromRequest<S> for Body<T> {
    type Rejection = ApiError;

    async fn from_request(req: Request, state: &S) -> Result<Self, ApiError> {
        match axum::Json::<T>::from_request(req, state).await {
            Ok(axum::Json(v)) => Ok(Body(v)),
            Err(r) => Err(json_rejection(r)),
        }
    }
}

fn json_rejection(r: JsonRejection) -> ApiError {
    let status = r.status();
    let (code, status) = match &r {
        JsonRejection::JsonSyntaxError(_) => (Code::BadMessage, StatusCode::BAD_REQUEST),
        _ if status == StatusCode::PAYLOAD_TOO_LARGE => (Code::BadRequest, status),
        JsonRejection::MissingJsonContentType(_) => (Code::BadRequest, status),
        _ => (Code::BadRequest, StatusCode::BAD_REQUEST),
    };
    let message = if status == StatusCode::PAYLOAD_TOO_LARGE {
        "the body is larger than admin.max_body_bytes".to_owned()
    } else {
        r.body_text()
    };
    ApiError {
        status,
        code,
        message,
    }
}

/// Path parameters whose rejections are API errors.
struct Params<T>(T);

impl<T: DeserializeOwned + Send, S: Send + Sync> FromRequestParts<S> for Params<T> {
    type Rejection = ApiError;

    async fn from_request_parts(parts: &mut RequestParts, state: &S) -> Result<Self, ApiError> {
        axum::extract::Path::<T>::from_request_parts(parts, state)
            .await
            .map(|axum::extract::Path(t)| Params(t))
            .map_err(|e| ApiError::new(Code::BadRequest, e.body_text()))
    }
}

impl Api {
    async fn call(&self, who: &Identity, signal: &str, body: Value) -> ApiResult {
        Ok(axum::Json(self.hub.call_as(who, signal, body).await?))
    }
}

/// Adds `roomId` (from the path) to a body.
fn with_room(room: &str, mut body: Value) -> Value {
    body["roomId"] = json!(room);
    body
}

/// `room::create`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct CreateRoom {
    /// The room's name (1 to 64 characters).
    name: String,
    /// "mesh", "sfu" or "mcu" (default: rooms.default_architecture).
    #[serde(default)]
    architecture: Option<String>,
    /// "meeting", "broadcast" or "intercom" (default: rooms.default_mode).
    #[serde(default)]
    mode: Option<String>,
    #[serde(default)]
    password: Option<String>,
}

/// `room::mute`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct MuteBody {
    /// "audio" or "video"; absent: both.
    #[serde(default)]
    kind: Option<String>,
    /// true (default) mutes, false unmutes.
    #[serde(default)]
    muted: Option<bool>,
}

/// `record::start` / `record::stop`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct RecordBody {
    /// One member; absent: every member.
    #[serde(default)]
    client_id: Option<String>,
    /// The room's mixed audio (mcu rooms) instead of members.
    #[serde(default)]
    mix: Option<bool>,
}

/// `room::mode`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
pub struct ModeBody {
    /// "meeting", "broadcast" or "intercom".
    mode: String,
}

/// `live::start`.
#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields, rename_all = "camelCase")]
pub struct LiveBody {
    /// The member who goes on air as the anchor.
    client_id: String,
}

/// A data message for every member (`room::broadcast`): any JSON object; members get it with
/// `roomId` and `from` (the admin's id) added.
#[derive(Deserialize, ToSchema)]
#[serde(transparent)]
#[schema(value_type = Object)]
pub struct RoomMessage(serde_json::Map<String, Value>);

fn object(b: impl serde::Serialize) -> Value {
    let mut v = serde_json::to_value(b).unwrap_or_else(|_| json!({}));
    // Absent options are absent fields, as a client would send them.
    if let Some(m) = v.as_object_mut() {
        m.retain(|_, x| !x.is_null());
    }
    v
}

#[utoipa::path(get, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    responses((status = 200, description = "`{rooms: [...]}`, each as room::list gives it"),
              (status = 401, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
async fn list_rooms(State(api): State<Api>, Admin(who): Admin) -> ApiResult {
    api.call(&who, "room::list", json!({})).await
}

#[utoipa::path(post, path = "/api/v1/rooms", tag = "rooms", security(("bearer" = [])),
    request_body = CreateRoom,
    responses((status = 200, description = "The new room (its room::list entry); the admin owns it"),
              (status = 400, body = ApiErrorBody), (status = 403, body = ApiErrorBody)))]
async fn create_room(
    State(api): State<Api>,
    Admin(who): Admin,
    Body(b): Body<CreateRoom>,
) -> ApiResult {
    let body = object(json!({"name": b.name, "architecture": b.architecture,
                             "mode": b.mode, "password": b.password}));
    api.call(&who, "room::create", body).await
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "room::status: members, streams, recordings, mode"),
              (status = 404, body = ApiErrorBody)))]
async fn room_status(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
) -> ApiResult {
    api.call(&who, "room::status", json!({"roomId": room}))
        .await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}", tag = "rooms", security(("bearer" = [])),
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "Closed: members were told (room::close)"),
              (status = 404, body = ApiErrorBody)))]
async fn close_room(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
) -> ApiResult {
    api.call(&who, "room::close", json!({"roomId": room})).await
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/members", tag = "members", security(("bearer" = [])),
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "`{roomId, members: [{clientId, name, ..., streams: [...]}]}`"),
              (status = 404, body = ApiErrorBody)))]
async fn list_members(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
) -> ApiResult {
    let axum::Json(status) = api
        .call(&who, "room::status", json!({"roomId": room}))
        .await?;
    let streams = status["streams"].as_array().cloned().unwrap_or_default();
    let members: Vec<Value> = status["members"]
        .as_array()
        .cloned()
        .unwrap_or_default()
        .into_iter()
        .map(|mut m| {
            let mine: Vec<&Value> = streams
                .iter()
                .filter(|s| s["clientId"] == m["clientId"])
                .collect();
            m["streams"] = json!(mine);
            m
        })
        .collect();
    Ok(axum::Json(json!({"roomId": room, "members": members})))
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/members/{client}", tag = "members",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "room id"), ("client" = String, Path, description = "member's client id")),
    responses((status = 200, description = "Expelled (room::expel): told room::expel, the room room::leave"),
              (status = 404, body = ApiErrorBody)))]
async fn expel_member(
    State(api): State<Api>,
    Admin(who): Admin,
    Params((room, client)): Params<(String, String)>,
) -> ApiResult {
    api.call(
        &who,
        "room::expel",
        json!({"roomId": room, "clientId": client}),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/members/{client}/mute", tag = "members",
    security(("bearer" = [])), request_body = MuteBody,
    params(("room" = String, Path, description = "room id"), ("client" = String, Path, description = "member's client id")),
    responses((status = 200, description = "`{roomId, clientId, audio, video, by}`: what is muted now; the room is told room::mute"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn mute_member(
    State(api): State<Api>,
    Admin(who): Admin,
    Params((room, client)): Params<(String, String)>,
    Body(b): Body<MuteBody>,
) -> ApiResult {
    let body =
        object(json!({"roomId": room, "clientId": client, "kind": b.kind, "muted": b.muted}));
    api.call(&who, "room::mute", body).await
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/recording/start", tag = "recordings",
    security(("bearer" = [])), request_body = RecordBody,
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "record::start's answer: `{recordings, failed}`"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn record_start(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
    Body(b): Body<RecordBody>,
) -> ApiResult {
    let body = object(json!({"clientId": b.client_id, "mix": b.mix}));
    api.call(&who, "record::start", with_room(&room, body))
        .await
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/recording/stop", tag = "recordings",
    security(("bearer" = [])), request_body = RecordBody,
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "record::stop's answer, once the files are finalized"),
              (status = 404, body = ApiErrorBody)))]
async fn record_stop(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
    Body(b): Body<RecordBody>,
) -> ApiResult {
    let body = object(json!({"clientId": b.client_id, "mix": b.mix}));
    api.call(&who, "record::stop", with_room(&room, body)).await
}

#[utoipa::path(get, path = "/api/v1/rooms/{room}/recordings", tag = "recordings",
    security(("bearer" = [])), params(("room" = String, Path, description = "room id (open or closed)")),
    responses((status = 200, description = "`{roomId, files: [{file, bytes, modifiedAt, url}]}`")))]
async fn list_recordings(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
) -> ApiResult {
    api.call(&who, "record::list", json!({"roomId": room}))
        .await
}

#[utoipa::path(delete, path = "/api/v1/rooms/{room}/recordings/{file}", tag = "recordings",
    security(("bearer" = [])),
    params(("room" = String, Path, description = "room id"), ("file" = String, Path, description = "file name, as in record::list after the room's directory")),
    responses((status = 200, description = "Deleted"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn delete_recording(
    State(api): State<Api>,
    Admin(_who): Admin,
    Params((room, file)): Params<(String, String)>,
) -> ApiResult {
    api.rooms.delete_recording(&room, &file).await?;
    Ok(axum::Json(json!({"roomId": room, "deleted": file})))
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/messages", tag = "rooms", security(("bearer" = [])),
    request_body = RoomMessage, params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "`{delivered}`: members told room::broadcast"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn send_message(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
    Body(RoomMessage(m)): Body<RoomMessage>,
) -> ApiResult {
    api.call(&who, "room::broadcast", with_room(&room, Value::Object(m)))
        .await
}

#[utoipa::path(put, path = "/api/v1/rooms/{room}/mode", tag = "rooms", security(("bearer" = [])),
    request_body = ModeBody, params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "The mode, presenters and floor (room::mode)"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn set_mode(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
    Body(b): Body<ModeBody>,
) -> ApiResult {
    api.call(&who, "room::mode", json!({"roomId": room, "mode": b.mode}))
        .await
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/live/start", tag = "live", security(("bearer" = [])),
    request_body = LiveBody, params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "The live (live::start): the member is its anchor"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn live_start(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
    Body(b): Body<LiveBody>,
) -> ApiResult {
    api.call(
        &who,
        "live::start",
        json!({"roomId": room, "clientId": b.client_id}),
    )
    .await
}

#[utoipa::path(post, path = "/api/v1/rooms/{room}/live/stop", tag = "live", security(("bearer" = [])),
    params(("room" = String, Path, description = "room id")),
    responses((status = 200, description = "Stopped (live::stop): members told live::stop"),
              (status = 400, body = ApiErrorBody), (status = 404, body = ApiErrorBody)))]
async fn live_stop(
    State(api): State<Api>,
    Admin(who): Admin,
    Params(room): Params<String>,
) -> ApiResult {
    api.call(&who, "live::stop", json!({"roomId": room})).await
}

struct BearerAuth;

impl Modify for BearerAuth {
    fn modify(&self, openapi: &mut utoipa::openapi::OpenApi) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            "bearer",
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .bearer_format("JWT")
                    .description(Some(
                        "An access token (taoyao-server token --admin) with the admin grant",
                    ))
                    .build(),
            ),
        );
    }
}

#[derive(OpenApi)]
#[openapi(
    info(title = "taoyao-rs admin API", description = "Rooms, members, recordings and lives of one taoyao-rs server. Every route needs an access token with the admin grant."),
    paths(list_rooms, create_room, room_status, close_room, list_members, expel_member,
          mute_member, record_start, record_stop, list_recordings, delete_recording,
          send_message, set_mode, live_start, live_stop),
    components(schemas(ApiErrorBody, CreateRoom, MuteBody, RecordBody, ModeBody, LiveBody, RoomMessage)),
    modifiers(&BearerAuth)
)]
struct ApiDoc;

/// The OpenAPI 3 document of the API.
pub fn openapi() -> utoipa::openapi::OpenApi {
    ApiDoc::openapi()
}

/// Every route the router serves, as (method, path under `/api/v1`): the one table both the
/// router and [`routes`] are made from.
fn table() -> Vec<(&'static str, &'static str, MethodRouter<Api>)> {
    vec![
        ("get", "/rooms", get(list_rooms)),
        ("post", "/rooms", post(create_room)),
        ("get", "/rooms/{room}", get(room_status)),
        ("delete", "/rooms/{room}", delete(close_room)),
        ("get", "/rooms/{room}/members", get(list_members)),
        (
            "delete",
            "/rooms/{room}/members/{client}",
            delete(expel_member),
        ),
        (
            "post",
            "/rooms/{room}/members/{client}/mute",
            post(mute_member),
        ),
        ("post", "/rooms/{room}/recording/start", post(record_start)),
        ("post", "/rooms/{room}/recording/stop", post(record_stop)),
        ("get", "/rooms/{room}/recordings", get(list_recordings)),
        (
            "delete",
            "/rooms/{room}/recordings/{file}",
            delete(delete_recording),
        ),
        ("post", "/rooms/{room}/messages", post(send_message)),
        ("put", "/rooms/{room}/mode", put(set_mode)),
        ("post", "/rooms/{room}/live/start", post(live_start)),
        ("post", "/rooms/{room}/live/stop", post(live_stop)),
    ]
}

/// The routes the router serves, as (method, full path), for tests and the docs page.
pub fn routes() -> Vec<(&'static str, String)> {
    table()
        .into_iter()
        .map(|(m, p, _)| (m, format!("{BASE}{p}")))
        .collect()
}

/// `/api/v1/...`: the API, its OpenAPI document and its docs page.
pub fn router(hub: SignalHub, rooms: Rooms, metrics: Arc<Metrics>, max_body: usize) -> Router {
    let api = Api {
        hub,
        rooms,
        metrics,
    };
    let mut r: Router<Api> = Router::new();
    for (_, path, method) in table() {
        r = r.route(path, method);
    }
    let r = r
        .route("/openapi.json", get(|| async { axum::Json(openapi()) }))
        .route("/docs", get(docs_page))
        .fallback(|| async { ApiError::new(Code::NotFound, "no such API route") })
        .layer(DefaultBodyLimit::max(max_body))
        .layer(middleware::from_fn_with_state(api.clone(), count))
        .with_state(api);
    Router::new().nest(BASE, r)
}

/// Counts every API request by outcome.
async fn count(State(api): State<Api>, req: Request, next: Next) -> Response {
    let res = next.run(req).await;
    let s = res.status();
    api.metrics.admin_request(if s.is_success() {
        "ok"
    } else if s == StatusCode::UNAUTHORIZED || s == StatusCode::FORBIDDEN {
        "refused"
    } else {
        "error"
    });
    res
}

/// A plain page listing the routes, made from the OpenAPI document.
async fn docs_page() -> Html<String> {
    let doc = openapi();
    let esc = |s: &str| {
        s.replace('&', "&amp;")
            .replace('<', "&lt;")
            .replace('>', "&gt;")
    };
    let mut rows = String::new();
    for (path, item) in &doc.paths.paths {
        let ops = [
            ("GET", &item.get),
            ("POST", &item.post),
            ("PUT", &item.put),
            ("DELETE", &item.delete),
        ];
        for (m, op) in ops {
            if let Some(op) = op {
                let what = op
                    .responses
                    .responses
                    .get("200")
                    .and_then(|r| match r {
                        utoipa::openapi::RefOr::T(r) => Some(r.description.clone()),
                        _ => None,
                    })
                    .unwrap_or_default();
                rows.push_str(&format!(
                    "<tr><td>{m}</td><td><code>{}</code></td><td>{}</td></tr>\n",
                    esc(path),
                    esc(&what)
                ));
            }
        }
    }
    Html(format!(
        "<!doctype html><meta charset=utf-8><title>taoyao-rs admin API</title>\
         <h1>taoyao-rs admin API</h1><p>Every route takes <code>Authorization: Bearer &lt;token&gt;</code> \
         with the admin grant; errors are <code>{{code, message}}</code>. Machine-readable: \
         <a href=\"openapi.json\">openapi.json</a>. Operations guide: docs/operations.md.</p>\
         <table border=1 cellpadding=4><tr><th>method</th><th>path</th><th>answer</th></tr>\n{rows}</table>"
    ))
}
