//! Who may do what. The one table of permissions. The router names the permission of
//! each route (`super::router`), and [`needs`] checks it before the route's handler
//! reads anything of the request (a caller that may not call a route learns nothing
//! from it, not even whether its body would parse); deployment handlers then hold a
//! deployer to its groups with [`Principal::require_group`].
//!
//! | permission | admin | release-manager | deployer | viewer |
//! |---|---|---|---|---|
//! | read (lists, stats, audit, metrics, dashboard) | yes | yes | yes | yes |
//! | publish (upload releases and chunks, publish) | yes | yes | | |
//! | deploy (create, pause, resume, abort) | yes | | its groups | |
//! | admit devices (accept, reject, decommission, preauthorize) | yes | | | |
//! | manage tokens (create, list, revoke) | yes | | | |

use super::ApiError;
use crate::store::Role;
use axum::extract::{Request, State};
use axum::http::StatusCode;
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Permission {
    Read,
    Publish,
    Deploy,
    AdmitDevices,
    ManageTokens,
}

impl Permission {
    fn describe(self) -> &'static str {
        match self {
            Permission::Read => "read",
            Permission::Publish => "publish releases (release-manager or admin)",
            Permission::Deploy => "deploy (deployer or admin)",
            Permission::AdmitDevices => "admit devices (admin)",
            Permission::ManageTokens => "manage tokens (admin)",
        }
    }
}

/// Whether `role` has `permission` (groups aside).
pub fn allows(role: Role, permission: Permission) -> bool {
    matches!(
        (role, permission),
        (Role::Admin, _)
            | (_, Permission::Read)
            | (Role::ReleaseManager, Permission::Publish)
            | (Role::Deployer, Permission::Deploy)
    )
}

/// The authenticated caller of one request.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Principal {
    /// 0 for the bootstrap admin token (`DIR/admin.token`).
    pub token_id: u64,
    pub role: Role,
    pub groups: Vec<String>,
}

impl Principal {
    /// How the audit log names it: `token 3 (deployer)`.
    pub fn name(&self) -> String {
        format!("token {} ({})", self.token_id, self.role)
    }

    pub fn require(&self, permission: Permission) -> Result<(), ApiError> {
        if allows(self.role, permission) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may not {}; expected a token with that role",
                    self.name(),
                    permission.describe()
                ),
            ))
        }
    }

    /// Deploy permission for `group`: admins anywhere, deployers in their groups.
    pub fn require_group(&self, group: &str) -> Result<(), ApiError> {
        self.require(Permission::Deploy)?;
        if self.role == Role::Admin || self.groups.iter().any(|g| g == group) {
            Ok(())
        } else {
            Err(ApiError::new(
                StatusCode::FORBIDDEN,
                format!(
                    "{} may deploy to groups [{}]; expected group '{group}' among them",
                    self.name(),
                    self.groups.join(", ")
                ),
            ))
        }
    }
}

/// Route middleware: answers 403 unless the request's principal (put there by the
/// gate) has `permission`; only then does the handler run and parse the request.
pub async fn needs(State(permission): State<Permission>, request: Request, next: Next) -> Response {
    let checked = request
        .extensions()
        .get::<Principal>()
        .map(|p| p.require(permission));
    match checked {
        Some(Ok(())) => next.run(request).await,
        Some(Err(refused)) => refused.into_response(),
        None => ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal error: a route was reached without passing the gate",
        )
        .into_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_table() {
        use Permission::*;
        let yes = |r, p| allows(r, p);
        for r in Role::ALL {
            assert!(yes(r, Read));
            assert_eq!(
                yes(r, Publish),
                matches!(r, Role::Admin | Role::ReleaseManager)
            );
            assert_eq!(yes(r, Deploy), matches!(r, Role::Admin | Role::Deployer));
            assert_eq!(yes(r, AdmitDevices), r == Role::Admin);
            assert_eq!(yes(r, ManageTokens), r == Role::Admin);
        }
    }

    #[test]
    fn deployers_are_held_to_their_groups() {
        let p = Principal {
            token_id: 4,
            role: Role::Deployer,
            groups: vec!["a".into()],
        };
        assert!(p.require_group("a").is_ok());
        let e = p.require_group("b").unwrap_err();
        assert_eq!(e.status(), StatusCode::FORBIDDEN);
        let admin = Principal {
            token_id: 0,
            role: Role::Admin,
            groups: vec![],
        };
        assert!(admin.require_group("b").is_ok());
        let viewer = Principal {
            role: Role::Viewer,
            ..p
        };
        assert!(viewer.require_group("a").is_err());
    }
}
