//! Device admission: list, accept, reject, decommission, preauthorize.

use super::{ApiError, AppState, Done, blocking, parse_hash};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_core::{KeyId, PublicKey};
use std::sync::Arc;

#[derive(Debug, Default, Deserialize)]
pub struct GroupBody {
    pub group: Option<String>,
}

#[derive(Debug, Deserialize)]
pub struct PreauthorizeBody {
    /// The text of a public key file (`shoal-public-key-v1 <hex>`).
    pub public_key: String,
    pub group: Option<String>,
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let mut out = Vec::new();
        for d in state.store.list_devices()? {
            let status = state.store.status(d.id)?;
            out.push(json!({ "device": d, "status": status }));
        }
        Ok(Json(json!(out)))
    })
    .await
}

pub async fn act(
    State(state): State<Arc<AppState>>,
    Path((id, action)): Path<(String, String)>,
    body: Option<Json<GroupBody>>,
) -> Result<Done, ApiError> {
    let id = KeyId(parse_hash("device id", &id)?.0);
    let group = body.map(|Json(b)| b.group).unwrap_or_default();
    blocking(move || {
        let record = match action.as_str() {
            "accept" => state.store.accept(id, group.as_deref())?,
            "reject" => state.store.reject(id)?,
            "decommission" => state.store.decommission(id)?,
            other => {
                return Err(ApiError::not_found(format!(
                    "no device action '{other}' (accept, reject, decommission)"
                )));
            }
        };
        let note = format!(
            "device {id}: {action}{}",
            record
                .group
                .as_deref()
                .map(|g| format!(" (group {g})"))
                .unwrap_or_default()
        );
        Ok(Done::new(note, json!(record)))
    })
    .await
}

pub async fn preauthorize(
    State(state): State<Arc<AppState>>,
    Json(body): Json<PreauthorizeBody>,
) -> Result<Done, ApiError> {
    let key = PublicKey::from_text(&body.public_key)
        .map_err(|e| ApiError::bad_request(format!("not a public key file: {e}")))?;
    blocking(move || {
        let record = state.store.preauthorize(key, body.group.as_deref())?;
        let note = format!(
            "device {}: preauthorize (group {})",
            record.id,
            record.group.as_deref().unwrap_or("-")
        );
        Ok(Done::new(note, json!(record)))
    })
    .await
}
