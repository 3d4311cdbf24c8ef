//! Tokens: create (the secret is answered once and never stored), list, revoke.

use super::roles::Principal;
use super::{ApiError, AppState, Done, blocking};
use crate::store::Role;
use axum::extract::{Path, State};
use axum::http::StatusCode;
use axum::{Extension, Json};
use serde::Deserialize;
use serde_json::{Value, json};
use shoal_core::Hash;
use std::sync::Arc;

#[derive(Debug, Deserialize)]
pub struct CreateBody {
    /// `admin`, `release-manager`, `deployer` or `viewer`.
    pub role: String,
    /// For deployers: the groups they may deploy to (at least one).
    #[serde(default)]
    pub groups: Vec<String>,
}

pub async fn create(
    State(state): State<Arc<AppState>>,
    Extension(who): Extension<Principal>,
    Json(body): Json<CreateBody>,
) -> Result<Done, ApiError> {
    let Some(role) = Role::parse(&body.role) else {
        return Err(ApiError::bad_request(format!(
            "role '{}': expected admin, release-manager, deployer or viewer",
            body.role
        )));
    };
    if role == Role::Deployer && body.groups.is_empty() {
        return Err(ApiError::bad_request(
            "a deployer token needs at least one group (--group G)",
        ));
    }
    if role != Role::Deployer && !body.groups.is_empty() {
        return Err(ApiError::bad_request(format!(
            "groups are for deployer tokens; a {role} token takes none"
        )));
    }
    if body.groups.iter().any(|g| g.is_empty()) {
        return Err(ApiError::bad_request("a group name is empty"));
    }
    let mut raw = [0u8; 32];
    getrandom::fill(&mut raw).map_err(|e| {
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            format!("no randomness from the OS: {e}"),
        )
    })?;
    let secret = shoal_core::hash::to_hex(&raw);
    let hash = Hash::of(secret.as_bytes());
    blocking(move || {
        let record =
            state
                .store
                .add_token(hash, role, &body.groups, &who.name(), crate::time::now())?;
        let note = format!(
            "token {} created: {}{}",
            record.id,
            record.role,
            if record.groups.is_empty() {
                String::new()
            } else {
                format!(" for groups [{}]", record.groups.join(", "))
            }
        );
        Ok(Done::new(
            note,
            json!({ "token": record, "secret": secret }),
        ))
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.store.list_tokens()?)))).await
}

pub async fn revoke(
    State(state): State<Arc<AppState>>,
    Path(id): Path<u64>,
) -> Result<Done, ApiError> {
    blocking(move || {
        let record = state.store.revoke_token(id, crate::time::now())?;
        Ok(Done::new(
            format!("token {id} ({}) revoked", record.role),
            json!(record),
        ))
    })
    .await
}
