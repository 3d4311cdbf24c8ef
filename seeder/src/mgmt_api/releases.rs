//! Publishing: upload a signed release, its chunks, then publish it.

use super::{ApiError, AppState, Done, blocking, parse_hash};
use axum::Json;
use axum::body::Bytes;
use axum::extract::{Path, State};
use serde_json::{Value, json};
use shoal_core::{Hash, ReleaseCheck, verify_release};
use std::sync::Arc;

/// Verifies the release against the root (the seeder refuses anything the release keys
/// did not sign) and stores it as uploading.
pub async fn upload(State(state): State<Arc<AppState>>, body: Bytes) -> Result<Done, ApiError> {
    blocking(move || {
        let signed = shoal_core::release::decode_release(&body)
            .map_err(|e| ApiError::bad_request(format!("not a release: {e}")))?;
        let now = crate::time::now();
        let (release, id) = verify_release(&state.root, &signed, &ReleaseCheck::default(), now)
            .map_err(|e| ApiError::bad_request(format!("refused: {e}")))?;
        let record = state.store.add_release(&body, &release, id, now)?;
        let missing: Vec<String> = state
            .store
            .missing_chunks(id)?
            .iter()
            .map(Hash::to_hex)
            .collect();
        let note = format!(
            "uploaded release {}@{} (id {id}), {} chunk(s) missing",
            record.name,
            record.version,
            missing.len()
        );
        Ok(Done::new(
            note,
            json!({ "release": record, "missing": missing }),
        ))
    })
    .await
}

/// Stores one chunk, after checking it is named by the release with this length and
/// that its bytes hash to its name.
pub async fn put_chunk(
    State(state): State<Arc<AppState>>,
    Path((id, hash)): Path<(String, String)>,
    body: Bytes,
) -> Result<Json<Value>, ApiError> {
    let id = parse_hash("release id", &id)?;
    let hash = parse_hash("chunk hash", &hash)?;
    blocking(move || {
        let Some(len) = state.store.chunk_len_in(id, hash)? else {
            return Err(ApiError::bad_request(format!(
                "release {id} names no chunk {hash}"
            )));
        };
        if body.len() != len as usize {
            return Err(ApiError::bad_request(format!(
                "chunk {hash}: the manifest says {len} bytes, the upload has {}",
                body.len()
            )));
        }
        state.store.put_chunk(hash, &body)?;
        Ok(Json(json!({ "stored": hash.to_hex() })))
    })
    .await
}

pub async fn publish(
    State(state): State<Arc<AppState>>,
    Path(id): Path<String>,
) -> Result<Done, ApiError> {
    let id = parse_hash("release id", &id)?;
    blocking(move || {
        let r = state.store.publish_release(id)?;
        Ok(Done::new(
            format!("published release {}@{} (id {id})", r.name, r.version),
            json!(r),
        ))
    })
    .await
}

pub async fn list(State(state): State<Arc<AppState>>) -> Result<Json<Value>, ApiError> {
    blocking(move || Ok(Json(json!(state.store.list_releases()?)))).await
}
