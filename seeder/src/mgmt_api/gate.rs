//! Every request passes here: the token is looked up (a [`Principal`] goes into the
//! request for the handler), and once the answer is known, every change and every
//! refusal goes into the audit log.
//!
//! Credentials: `Authorization: Bearer <token>`; for `GET /dashboard` only, also the
//! `shoal_token` cookie the dashboard sets (a cookie is never accepted for anything
//! that changes state, so another site cannot make a browser change anything).
//!
//! Audited: every request but a successful read (`GET`), and but a successful chunk
//! upload (content-addressed and checked against a release already audited; a 64 MiB
//! release is a thousand of them). Refusals (401, 403) are audited whatever the method.

use super::listener::Client;
use super::roles::Principal;
use super::{ApiError, AppState};
use crate::audit::Record;
use crate::store::Role;
use axum::extract::{ConnectInfo, Request, State};
use axum::http::{Method, StatusCode, header};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use shoal_core::Hash;
use std::sync::Arc;
use std::sync::atomic::Ordering;

/// What the audit entry says about an answer; handlers and `ApiError` attach it.
#[derive(Debug, Clone)]
pub struct AuditNote(pub String);

/// The name of the dashboard's cookie.
pub const COOKIE: &str = "shoal_token";

/// The token a request presents, if any.
fn presented(request: &Request) -> Option<String> {
    let headers = request.headers();
    if let Some(t) = headers
        .get(header::AUTHORIZATION)
        .and_then(|v| v.to_str().ok())
        .and_then(|v| v.strip_prefix("Bearer "))
    {
        return Some(t.trim().to_string());
    }
    if request.method() != Method::GET || request.uri().path() != "/dashboard" {
        return None;
    }
    // the dashboard's first visit carries ?token=..., which it trades for the cookie
    if let Some(q) = request.uri().query()
        && let Some(t) = q.split('&').find_map(|kv| kv.strip_prefix("token="))
    {
        return Some(t.to_string());
    }
    headers
        .get_all(header::COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .flat_map(|v| v.split(';'))
        .find_map(|c| {
            c.trim()
                .strip_prefix(&format!("{COOKIE}="))
                .map(str::to_string)
        })
}

fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    a.len() == b.len() && a.iter().zip(b).fold(0u8, |acc, (x, y)| acc | (x ^ y)) == 0
}

/// Who the token belongs to.
async fn authenticate(state: &Arc<AppState>, token: Option<String>) -> Result<Principal, ApiError> {
    let unauthorized = || ApiError::new(StatusCode::UNAUTHORIZED, "missing or wrong bearer token");
    let token = token.filter(|t| !t.is_empty()).ok_or_else(unauthorized)?;
    let hash = Hash::of(token.as_bytes());
    if constant_time_eq(&hash.0, &state.admin_token_hash.0) {
        return Ok(Principal {
            token_id: 0,
            role: Role::Admin,
            groups: Vec::new(),
        });
    }
    let store = Arc::clone(&state.store);
    let record = super::blocking(move || Ok(store.token(hash)?)).await?;
    let record = record.ok_or_else(unauthorized)?;
    Ok(Principal {
        token_id: record.id,
        role: record.role,
        groups: record.groups,
    })
}

/// The middleware.
pub async fn gate(
    State(state): State<Arc<AppState>>,
    mut request: Request,
    next: Next,
) -> Response {
    let method = request.method().clone();
    let path = request.uri().path().to_string();
    let from = request
        .extensions()
        .get::<ConnectInfo<Client>>()
        .map_or_else(|| "-".to_string(), |c| c.0.0.to_string());
    let principal = authenticate(&state, presented(&request)).await;
    let actor = principal
        .as_ref()
        .map_or_else(|_| "unauthenticated".to_string(), Principal::name);
    let response = match principal {
        Err(e) => e.into_response(),
        Ok(p) => {
            request.extensions_mut().insert(p);
            next.run(request).await
        }
    };
    let status = response.status();
    let refused = status == StatusCode::UNAUTHORIZED || status == StatusCode::FORBIDDEN;
    if refused {
        state.refusals.fetch_add(1, Ordering::Relaxed);
    }
    let read = method == Method::GET || method == Method::HEAD;
    let chunk = method == Method::PUT && path.contains("/chunks/");
    if (read || chunk) && !refused {
        return response;
    }
    let record = Record {
        time: crate::time::now(),
        actor,
        from,
        action: format!("{method} {path}"),
        outcome: if status.is_success() {
            "ok"
        } else if refused {
            "refused"
        } else {
            "failed"
        }
        .to_string(),
        status: status.as_u16(),
        detail: response
            .extensions()
            .get::<AuditNote>()
            .map(|n| n.0.clone())
            .unwrap_or_default(),
    };
    let audit = Arc::clone(&state.audit);
    match tokio::task::spawn_blocking(move || audit.append(record)).await {
        Ok(Ok(_)) => response,
        Ok(Err(e)) => audit_failed(status, e.to_string()),
        Err(e) => audit_failed(status, e.to_string()),
    }
}

/// The request was handled but its audit entry could not be written: say so rather
/// than answer as if all were well.
fn audit_failed(status: StatusCode, error: String) -> Response {
    tracing::error!("cannot write the audit log: {error}");
    ApiError::new(
        StatusCode::INTERNAL_SERVER_ERROR,
        format!(
            "the request was answered {status} but its audit entry could not be written: {error}"
        ),
    )
    .into_response()
}
