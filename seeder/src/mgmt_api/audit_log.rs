//! `GET /audit`: the log's entries, for the dashboard and tools. Checking the chain is
//! `shoal-seeder audit verify`'s job, offline, on the file.

use super::{ApiError, AppState, blocking};
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use serde_json::{Value, json};
use std::sync::Arc;

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let entries = crate::audit::read_entries(state.audit.dir())
            .map_err(|e| ApiError::new(StatusCode::INTERNAL_SERVER_ERROR, e.to_string()))?;
        Ok(Json(json!(entries)))
    })
    .await
}
