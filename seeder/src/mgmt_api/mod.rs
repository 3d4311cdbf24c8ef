//! The management API: HTTP and JSON for operators and their tools, on `--http`.
//!
//! Every request carries `Authorization: Bearer <token>` (see `gate`); the bootstrap
//! admin token is made on first start and written to `DIR/admin.token` (mode 0600),
//! others are made with `POST /tokens`. Each route needs a permission (`roles`), checked
//! before its handler reads the request. Every change and every refusal is written to
//! the audit log (`crate::audit`). Routes, all under `/api/v1` but the last three:
//!
//! | method and path | needs | what |
//! |---|---|---|
//! | `POST /releases` (body: the `Signed<Release>` bytes) | publish | verify against the root, store as uploading; answers the release and the chunk hashes still missing |
//! | `PUT /releases/{id}/chunks/{hash}` (body: the chunk) | publish | store one chunk of that release, after checking its length and BLAKE3 against the manifest |
//! | `POST /releases/{id}/publish` | publish | list the release, once every chunk is stored |
//! | `GET /releases` | read | published releases |
//! | `GET /devices` | read | devices with their last status |
//! | `POST /devices/{id}/accept`, `/reject`, `/decommission` (JSON `{"group": ...}` for accept) | admit | admission |
//! | `POST /devices/preauthorize` (JSON `{"public_key": "<key file text>", "group": ...}`) | admit | accept a key before the device connects |
//! | `POST /deployments` (JSON `{"release": "NAME@VERSION", "group": ..., "phases": "20%,100%", "success_threshold": "100%", "failure_threshold": "1"}`, the last three optional) | deploy, to that group | deploy |
//! | `GET /deployments`, `GET /deployments/{id}` | read | deployments; one with each device's state and each phase's progress |
//! | `POST /deployments/{id}/pause`, `/resume`, `/abort` | deploy, to its group | control a rollout |
//! | `POST /tokens` (JSON `{"role": "deployer", "groups": ["line-a"]}`), `GET /tokens`, `POST /tokens/{id}/revoke` | manage tokens | tokens (the secret is in the answer to `POST` only) |
//! | `GET /stats` | read | counters of the device API |
//! | `GET /audit` | read | the audit log's entries, oldest first |
//! | `GET /metrics` | read | Prometheus text |
//! | `GET /dashboard` | read | the dashboard (HTML) |
//!
//! The API speaks HTTPS only (`listener`), with the seeder's certificate.
//!
//! Errors are JSON `{"error": "..."}` with 400 (bad input), 401 (no or wrong token),
//! 403 (the token's role or groups do not allow it), 404, 409 (conflict: incomplete
//! release, name taken, a deployment in the wrong state) or 500.

mod audit_log;
mod dashboard;
mod deployments;
mod devices;
pub mod gate;
pub mod listener;
mod metrics;
mod releases;
pub mod roles;
mod tokens;

use crate::audit::AuditLog;
use crate::device_api::Counters;
use crate::store::{Store, StoreError};
use axum::extract::{DefaultBodyLimit, State};
use axum::http::StatusCode;
use axum::middleware;
use axum::response::{IntoResponse, Response};
use axum::routing::{MethodRouter, get, post, put};
use axum::{Json, Router};
use gate::AuditNote;
use roles::Permission;
use shoal_core::{Hash, Root};
use std::sync::Arc;
use std::sync::atomic::AtomicU64;

/// `2026-11-27 21:05:09Z` from unix seconds (the dashboard's and `audit show`'s form).
pub fn dashboard_time(secs: u64) -> String {
    dashboard::utc(secs)
}

/// What every handler can reach.
pub struct AppState {
    pub store: Arc<Store>,
    pub root: Root,
    /// BLAKE3 of the bootstrap admin token (`DIR/admin.token`).
    pub admin_token_hash: Hash,
    pub counters: Arc<Counters>,
    pub audit: Arc<AuditLog>,
    /// Requests refused with 401 or 403.
    pub refusals: AtomicU64,
}

/// The router: the gate (authentication and audit) on every route, and each route's
/// permission ([`roles::needs`]) checked before its handler reads the request.
pub fn router(state: Arc<AppState>) -> Router {
    use Permission::*;
    let release_cap = shoal_core::release::RELEASE_BODY_CAP + shoal_core::signed::ENVELOPE_OVERHEAD;
    let chunk_cap = shoal_core::release::MAX_CHUNK_LEN as usize;
    Router::new()
        .route(
            "/api/v1/releases",
            needs(Publish, post(releases::upload))
                .merge(needs(Read, get(releases::list)))
                .layer(DefaultBodyLimit::max(release_cap)),
        )
        .route(
            "/api/v1/releases/{id}/chunks/{hash}",
            needs(Publish, put(releases::put_chunk)).layer(DefaultBodyLimit::max(chunk_cap)),
        )
        .route(
            "/api/v1/releases/{id}/publish",
            needs(Publish, post(releases::publish)),
        )
        .route("/api/v1/devices", needs(Read, get(devices::list)))
        .route(
            "/api/v1/devices/preauthorize",
            needs(AdmitDevices, post(devices::preauthorize)),
        )
        .route(
            "/api/v1/devices/{id}/{action}",
            needs(AdmitDevices, post(devices::act)),
        )
        .route(
            "/api/v1/deployments",
            needs(Deploy, post(deployments::create)).merge(needs(Read, get(deployments::list))),
        )
        .route(
            "/api/v1/deployments/{id}",
            needs(Read, get(deployments::show)),
        )
        .route(
            "/api/v1/deployments/{id}/{action}",
            needs(Deploy, post(deployments::control)),
        )
        .route(
            "/api/v1/tokens",
            needs(ManageTokens, post(tokens::create).get(tokens::list)),
        )
        .route(
            "/api/v1/tokens/{id}/revoke",
            needs(ManageTokens, post(tokens::revoke)),
        )
        .route("/api/v1/stats", needs(Read, get(stats)))
        .route("/api/v1/audit", needs(Read, get(audit_log::list)))
        .route("/metrics", needs(Read, get(metrics::render)))
        .route("/dashboard", needs(Read, get(dashboard::page)))
        .layer(middleware::from_fn_with_state(
            Arc::clone(&state),
            gate::gate,
        ))
        .with_state(state)
}

/// `route`, callable only with `permission`.
fn needs(
    permission: Permission,
    route: MethodRouter<Arc<AppState>>,
) -> MethodRouter<Arc<AppState>> {
    route.route_layer(middleware::from_fn_with_state(permission, roles::needs))
}

async fn stats(State(state): State<Arc<AppState>>) -> Result<Json<serde_json::Value>, ApiError> {
    let (bytes, chunks, cut) = state.counters.snapshot();
    Ok(Json(serde_json::json!({
        "chunk_bytes_served": bytes,
        "chunks_served": chunks,
        "connections_cut": cut,
    })))
}

/// A successful change: its JSON answer and what the audit log says about it.
pub struct Done {
    pub note: String,
    pub body: serde_json::Value,
}

impl Done {
    pub fn new(note: impl Into<String>, body: serde_json::Value) -> Done {
        Done {
            note: note.into(),
            body,
        }
    }
}

impl IntoResponse for Done {
    fn into_response(self) -> Response {
        let mut r = Json(self.body).into_response();
        r.extensions_mut().insert(AuditNote(self.note));
        r
    }
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

    pub fn status(&self) -> StatusCode {
        self.status
    }
}

impl From<StoreError> for ApiError {
    fn from(e: StoreError) -> ApiError {
        let status = match &e {
            StoreError::UnknownRelease(_)
            | StoreError::UnknownDevice(_)
            | StoreError::UnknownDeployment(_)
            | StoreError::UnknownToken(_) => StatusCode::NOT_FOUND,
            StoreError::ReleaseIncomplete { .. }
            | StoreError::NameTaken { .. }
            | StoreError::NotPublished(_)
            | StoreError::DeploymentTransition { .. } => StatusCode::CONFLICT,
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
        let mut r = (
            self.status,
            Json(serde_json::json!({ "error": self.message })),
        )
            .into_response();
        r.extensions_mut().insert(AuditNote(self.message));
        r
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
