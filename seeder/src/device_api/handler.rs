//! What the seeder answers to each request, given the device's key. Blocking (it uses
//! the store); the connection runs it on the blocking pool.

use super::{DeviceApi, Misbehave};
use crate::store::StoreError;
use shoal_core::wan::{Request, Response};
use shoal_core::{Admission, Head, KeyId, PublicKey, Signed};
use tracing::warn;

/// `Ok` if the device may be served; otherwise the `Refused` to send.
pub fn admitted(api: &DeviceApi, id: KeyId) -> Result<crate::store::DeviceRecord, Response> {
    match api.store.device(id) {
        Ok(Some(d)) if d.is_admitted() => Ok(d),
        Ok(Some(d)) => Err(Response::Refused {
            state: Some(d.state),
        }),
        Ok(None) => Err(Response::Refused { state: None }),
        Err(e) => Err(internal(e)),
    }
}

fn internal(e: StoreError) -> Response {
    warn!("store error: {e}");
    Response::Error {
        message: format!("seeder store error: {e}"),
    }
}

fn sign<T: shoal_core::Document>(api: &DeviceApi, doc: &T) -> Response {
    let mut signed = match Signed::new(doc) {
        Ok(s) => s,
        Err(e) => {
            return Response::Error {
                message: e.to_string(),
            };
        }
    };
    signed.sign(&api.online_key);
    match signed.to_bytes() {
        Ok(bytes) => match T::KIND {
            shoal_core::DocKind::Head => Response::Head(bytes),
            _ => Response::Admission(bytes),
        },
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

/// The release a device should run: its group's newest deployment (the oldest when
/// misbehaving with `OldHead`).
fn target(
    api: &DeviceApi,
    id: KeyId,
    group: Option<&str>,
) -> Result<Option<crate::store::ReleaseRecord>, StoreError> {
    if api.misbehave == Some(Misbehave::OldHead) {
        let oldest = api
            .store
            .list_deployments()?
            .into_iter()
            .filter(|d| Some(d.group.as_str()) == group)
            .min_by_key(|d| d.id);
        return match oldest {
            Some(d) => api.store.release(d.release),
            None => Ok(None),
        };
    }
    Ok(api.store.target(id)?.map(|(_, r)| r))
}

/// The release's body re-signed by the online key alone (hostile tests only).
fn online_signed(api: &DeviceApi, bytes: &[u8]) -> Response {
    match shoal_core::release::decode_release(bytes) {
        Ok(signed) => {
            let mut forged: Signed<shoal_core::Release> = Signed::from_parts(signed.body, vec![]);
            forged.sign(&api.online_key);
            match forged.to_bytes() {
                Ok(b) => Response::Release(b),
                Err(e) => Response::Error {
                    message: e.to_string(),
                },
            }
        }
        Err(e) => Response::Error {
            message: e.to_string(),
        },
    }
}

/// A fresh signed head for device `id` in `group`.
fn head(api: &DeviceApi, id: KeyId, group: Option<&str>, now: u64) -> Response {
    match target(api, id, group) {
        Err(e) => internal(e),
        Ok(None) => Response::NoDeployment,
        Ok(Some(release)) => {
            let rid = release.id;
            match api.store.next_head_seq(id, rid) {
                Err(e) => internal(e),
                Ok(seq) => {
                    let expires_at = if api.misbehave == Some(Misbehave::ExpiredHead) {
                        now.saturating_sub(3600)
                    } else {
                        now + api.limits.head_ttl_secs
                    };
                    sign(
                        api,
                        &Head {
                            device_id: id,
                            seq: if api.misbehave == Some(Misbehave::MaxSeqHead) {
                                u64::MAX
                            } else {
                                seq
                            },
                            release: rid,
                            counter: release.counter,
                            issued_at: now.min(expires_at),
                            expires_at,
                        },
                    )
                }
            }
        }
    }
}

/// Logs deployments a report moved (next phase, paused, complete): changes made by the
/// seeder itself, named as such, with the device whose report did it.
fn audit_rollouts(
    api: &DeviceApi,
    device: KeyId,
    changes: &[crate::store::RolloutChange],
    now: u64,
) {
    let Some(log) = &api.audit else { return };
    for c in changes {
        let record = crate::audit::Record {
            time: now,
            actor: "seeder (rollout thresholds)".into(),
            from: format!("report of device {device}"),
            action: format!("rollout of deployment {}", c.after.id),
            outcome: "ok".into(),
            status: 200,
            detail: c.describe(),
        };
        if let Err(e) = log.append(record) {
            warn!("cannot write the audit log: {e}");
        }
    }
}

/// Answers every request but `GetChunks` (which streams; see `connection`).
pub fn handle(api: &DeviceApi, key: PublicKey, request: Request, now: u64) -> Vec<Response> {
    let id = key.key_id();
    let _ = api.store.touch(id, now);
    let one = match request {
        Request::Enrol {
            device_type,
            site,
            inventory,
        } => match api.store.enrol(key, &device_type, &site, &inventory, now) {
            Ok(d) => Response::Enrolled(d.state),
            Err(e) => internal(e),
        },
        Request::GetAdmission => match admitted(api, id) {
            Err(r) => r,
            Ok(device) => sign(
                api,
                &Admission {
                    device_id: id,
                    device_key: key,
                    site: device.site.clone(),
                    groups: device.group.iter().cloned().collect(),
                    expires_at: now + api.limits.admission_ttl_secs,
                },
            ),
        },
        Request::GetHead => match admitted(api, id) {
            Err(r) => r,
            Ok(device) => head(api, id, device.group.as_deref(), now),
        },
        // the LAN relay: a peer of the same site asks for a device that cannot reach us
        Request::GetHeadFor { device: other } => match admitted(api, id) {
            Err(r) => r,
            Ok(asker) => match admitted(api, other) {
                Ok(device) if device.site == asker.site => {
                    head(api, other, device.group.as_deref(), now)
                }
                Ok(_) => Response::Refused { state: None },
                Err(r) => r,
            },
        },
        Request::GetRelease { id: release } => match admitted(api, id) {
            Err(r) => r,
            Ok(_) => match api.store.release_bytes(release) {
                Ok(Some(bytes)) if api.misbehave == Some(Misbehave::OnlineSignedRelease) => {
                    online_signed(api, &bytes)
                }
                Ok(Some(bytes)) => Response::Release(bytes),
                Ok(None) => Response::NotFound { hash: release },
                Err(e) => internal(e),
            },
        },
        Request::ReportStatus(report) => match admitted(api, id) {
            Err(r) => r,
            Ok(_) => match api.store.put_status(id, &report, now) {
                Ok(changes) => {
                    audit_rollouts(api, id, &changes, now);
                    Response::Ack
                }
                Err(e) => internal(e),
            },
        },
        Request::GetChunks { .. } => Response::Error {
            message: "chunks are served by the connection".into(),
        },
        Request::GetRoots { after } => match admitted(api, id) {
            Err(r) => r,
            Ok(_) => match api
                .store
                .roots_after(after, shoal_core::wan::MAX_ROOTS_PER_ANSWER)
            {
                Ok(roots) => Response::Roots(
                    roots
                        .into_iter()
                        .map(shoal_core::wan::SignedBytes)
                        .collect(),
                ),
                Err(e) => internal(e),
            },
        },
    };
    vec![one]
}
