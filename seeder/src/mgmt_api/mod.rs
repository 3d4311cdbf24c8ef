//! The management API: HTTP and JSON for operators and their tools, on `--http`.
//!
//! Every request carries `Authorization: Bearer <token>`; the admin token is made on
//! first start and written to `DIR/admin.token` (mode 0600). Routes, all under
//! `/api/v1`:
//!
//! | method and path | what |
//! |---|---|
//! | `POST /releases` (body: the `Signed<Release>` bytes) | verify against the root, store as uploading; answers the release and the chunk hashes still missing |
//! | `PUT /releases/{id}/chunks/{hash}` (body: the chunk) | store one chunk of that release, after checking its length and BLAKE3 against the manifest |
//! | `POST /releases/{id}/publish` | list the release, once every chunk is stored |
//! | `GET /releases` | published releases |
//! | `GET /devices` | devices with their last status |
//! | `POST /devices/{id}/accept`, `/reject`, `/decommission` (JSON `{"group": ...}` for accept) | admission |
//! | `POST /devices/preauthorize` (JSON `{"public_key": "<key file text>", "group": ...}`) | accept a key before the device connects |
//! | `POST /deployments` (JSON `{"release": "NAME@VERSION", "group": ...}`) | deploy |
//! | `GET /deployments`, `GET /deployments/{id}` | deployments; one with each device's state |
//! | `GET /stats` | counters of the device API |
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad input), 401 (no or wrong token),
//! 404, 409 (conflict: incomplete release, name taken) or 500.

mod deployments;
mod devices;
mod releases;

use crate::device_api::Counters;
use crate::store::{Store, StoreError};
use axum::extract::{DefaultBodyLimit, Request, State};
use axum::http::StatusCode;
use axum::middleware::{self, Next};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post, put};
use axum::{Json, Router};
use shoal_core::Root;
use std::sync::Arc;

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<Store>,
    pub root: Root,
    pub token: String,
    pub counters: Arc<Counters>,
}

/// The router, with authentication on every route.
pub fn router(state: Arc<AppState>) -> Router {
    let release_cap = shoal_core::release::RELEASE_BODY_CAP + shoal_core::signed::ENVELOPE_OVERHEAD;
    let chunk_cap = shoal_core::release::MAX_CHUNK_LEN as usize;
    Router::new()
        .route(
            "/api/v1/releases",
            post(releases::upload)
                .get(releases::list)
                .layer(DefaultBodyLimit::max(release_cap)),
        )
        .route(
            "/api/v1/releases/{id}/chunks/{hash}",
            put(releases::put_chunk).layer(DefaultBodyLimit::max(chunk_cap)),
        )
        .route("/api/v1/releases/{id}/publish", post(releases::publish))
        .route("/api/v1/devices", get(devices::list))
        .route("/api/v1/devices/preauthorize", post(devices::preauthorize))
        .route("/api/v1/devices/{id}/{action}", post(devices::act))
        .route(
            "/api/v1/deployments",
            post(deployments::create).get(deployments::list),
        )
        .route("/api/v1/deployments/{id}", get(deployments::show))
        .route("/api/v1/stats", get(stats))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            authenticate,
        ))
        .with_state(state)
}

async fn authenticate(
    State(state): State<Arc<AppState>>,
    request: Request,
    next: Next,
) -> Response {
    let presented = request
        .headers()
        .get(axum::http::header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
        .unwrap_or("");
    if !constant_time_eq(presented.as_bytes(), state.token.as_bytes()) {
        return ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token")
            .into_response();
    }
    next.run(request).await
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

async fn stats(State(state): State<Arc<AppState>>) -> Json<serde_json::Value> {
    let (bytes, chunks, cut) = state.counters.snapshot();
    Json(serde_json::json!({
        "chunk_bytes_served": bytes,
        "chunks_served": chunks,
        "connections_cut": cut,
    }))
}

/// An error answer: a status and one line of JSON.
#[derive(Debug)]
pub struct ApiError {
    status: StatusCode,
    message: String,
}

impl ApiError {
    pub fn new(status: StatusCode, message: impl Into<String>) -> ApiError {
        ApiError {
            status,
            message: message.into(),
        }
    }

    pub fn bad_request(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::BAD_REQUEST, message)
    }

    pub fn not_found(message: impl Into<String>) -> ApiError {
        ApiError::new(StatusCode::NOT_FOUND, message)
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::UnknownRelease(_)
            | StoreError::UnknownDevice(_)
            | StoreError::UnknownDeployment(_) => StatusCode::NOT_FOUND,
            StoreError::ReleaseIncomplete { .. }
            | StoreError::NameTaken { .. }
            | StoreError::NotPublished(_) => StatusCode::CONFLICT,
            StoreError::ChunkMismatch { .. }
            | StoreError::ChunkTooLarge { .. }
            | StoreError::NotAccepted(_)
            | StoreError::BadRelease(_)
            | StoreError::ReleaseIdMismatch { .. } => StatusCode::BAD_REQUEST,
            _ => StatusCode::INTERNAL_SERVER_ERROR,
        };
        ApiError::new(status, e.to_string())
    }
}

impl IntoResponse for ApiError {
    fn into_response(self) -> Response {
        (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response()
    }
}

/// Runs blocking store work off the async threads.
pub async fn blocking<T: Send + 'static>(
    f: impl FnOnce() -> Result<T, ApiError> + Send + 'static,
) -> Result<T, ApiError> {
    tokio::task::spawn_blocking(f).await.map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("internal error: {e}"),
        )
    })?
}

/// A 64-hex-digit path parameter.
pub fn parse_hash(what: &str, text: &str) -> Result<shoal_core::Hash, ApiError> {
    shoal_core::Hash::from_hex(text)
        .map_err(|e| ApiError::bad_request(format!("{what} '{text}': {e}")))
}
