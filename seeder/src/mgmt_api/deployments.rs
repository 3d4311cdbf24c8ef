//! Deployments: a published release to a group, in phases; pause, resume, abort.

use super::roles::Principal;
use super::{ApiError, AppState, Done, blocking};
use crate::rollout::{Amount, parse_phases};
use crate::store::{Control, Plan};
use axum::extract::{Path, State};
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// `NAME@VERSION`.
    pub release: String,
    pub group: String,
    /// `20%,100%` or `2,10`; one phase of every device when absent.
    #[serde(default)]
    pub phases: Option<String>,
    /// `100%` when absent.
    #[serde(default)]
    pub success_threshold: Option<String>,
    /// Never pause when absent.
    #[serde(default)]
    pub failure_threshold: Option<String>,
}

fn plan(body: &CreateBody) -> Result<Plan, ApiError> {
    let bad = |e: crate::rollout::RolloutError| ApiError::bad_request(e.to_string());
    let mut plan = Plan::default();
    if let Some(p) = &body.phases {
        plan.phases = parse_phases(p).map_err(bad)?;
    }
    if let Some(s) = &body.success_threshold {
        plan.success_threshold = Amount::parse(s).map_err(bad)?;
    }
    if let Some(f) = &body.failure_threshold {
        plan.failure_threshold = Some(Amount::parse(f).map_err(bad)?);
    }
    Ok(plan)
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CreateBody>,
) -> Result<Done, ApiError> {
    who.require_group(&body.group)?;
    let Some((name, version)) = body.release.split_once('@') else {
        return Err(ApiError::bad_request(format!(
            "release '{}': expected NAME@VERSION",
            body.release
        )));
    };
    if body.group.is_empty() {
        return Err(ApiError::bad_request("the group is empty"));
    }
    let plan = plan(&body)?;
    let (name, version) = (name.to_string(), version.to_string());
    blocking(move || {
        let Some(release) = state.store.release_by_name(&name, &version)? else {
            return Err(ApiError::not_found(format!("no release {name}@{version}")));
        };
        let d = state
            .store
            .create_phased(release.id, &body.group, &plan, crate::time::now())?;
        let note = format!(
            "deployment {}: {name}@{version} to group {} in phases {} ({} devices)",
            d.id,
            d.group,
            d.phases
                .iter()
                .map(Amount::to_string)
                .collect::<Vec<_>>()
                .join(","),
            d.members
        );
        Ok(Done::new(note, json!(d)))
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.store.list_deployments()?)))).await
}

/// A deployment with every device of its group (state and last status) and each
/// phase's progress.
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
        let phases = state.store.deployment_progress(id)?;
        Ok(Json(
            json!({ "deployment": d, "devices": devices, "phases": phases }),
        ))
    })
    .await
}

/// `pause`, `resume` or `abort`.
pub async fn control(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Path((id, action)): Path<(u64, String)>,
) -> Result<Done, ApiError> {
    let control = match action.as_str() {
        "pause" => Control::Pause,
        "resume" => Control::Resume,
        "abort" => Control::Abort,
        other => {
            return Err(ApiError::not_found(format!(
                "no deployment action '{other}' (pause, resume, abort)"
            )));
        }
    };
    blocking(move || {
        let Some(d) = state.store.deployment(id)? else {
            return Err(ApiError::not_found(format!("no deployment {id}")));
        };
        who.require_group(&d.group)?;
        let d = state
            .store
            .control_deployment(id, control, crate::time::now())?;
        let note = format!(
            "deployment {id} ({}@{} to group {}): {action}; now {:?}, phase {} of {}",
            d.release_name,
            d.release_version,
            d.group,
            d.state,
            d.phase + 1,
            d.phase_sizes.len().max(1)
        );
        Ok(Done::new(note, json!(d)))
    })
    .await
}
