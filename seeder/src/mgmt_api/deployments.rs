//! Deployments: a published release to a group.

use super::{ApiError, AppState, blocking};
use axum::Json;
use axum::extract::{Path, State};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// `NAME@VERSION`.
    pub release: String,
    pub group: String,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Json(body): Json<CreateBody>,
) -> Result<Json<Value>, ApiError> {
    let Some((name, version)) = body.release.split_once('@') else {
        return Err(ApiError::bad_request(format!(
            "release '{}': expected NAME@VERSION",
            body.release
        )));
    };
    if body.group.is_empty() {
        return Err(ApiError::bad_request("the group is empty"));
    }
    let (name, version) = (name.to_string(), version.to_string());
    blocking(move || {
        let Some(release) = state.store.release_by_name(&name, &version)? else {
            return Err(ApiError::not_found(format!("no release {name}@{version}")));
        };
        let d = state
            .store
            .create_deployment(release.id, &body.group, crate::time::now())?;
        Ok(Json(json!(d)))
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.store.list_deployments()?)))).await
}

/// A deployment with every device of its group: state and last status.
pub async fn show(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Json<Value>, ApiError> {
    blocking(move || {
        let Some(d) = state.store.deployment(id)? else {
            return Err(ApiError::not_found(format!("no deployment {id}")));
        };
        let mut devices = Vec::new();
        for dev in state.store.list_devices()? {
            if dev.group.as_deref() != Some(d.group.as_str()) {
                continue;
            }
            let status = state.store.status(dev.id)?;
            let current = state
                .store
                .target(dev.id)?
                .is_some_and(|(t, _)| t.id == d.id);
            devices.push(json!({ "device": dev, "status": status, "current_target": current }));
        }
        Ok(Json(json!({ "deployment": d, "devices": devices })))
    })
    .await
}
