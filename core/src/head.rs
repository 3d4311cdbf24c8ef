//! The `Head` document: "this device should run this release now", signed by the
//! online key, short-lived.
//!
//! The seeder issues a fresh head on every request (a new `expires_at`), and raises
//! `seq` whenever the target changes. A device acts on a head only while it is
//! unexpired and only if its `seq` is above the last one it accepted, so a replayed or
//! withheld head shows up as a stale one instead of a silent freeze.

use crate::error::VerifyError;
use crate::keys::DeviceId;
use crate::release::ReleaseId;
use crate::root::{Role, Root, check_expiry, malformed};
use crate::signed::{DocKind, Signed, document};
use serde::{Deserialize, Serialize};

/// The largest encoded Head body.
pub const HEAD_BODY_CAP: usize = 4096;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Head {
    pub device_id: DeviceId,
    /// Strictly increasing per device.
    pub seq: u64,
    /// The id of the release to run (BLAKE3 of its signed body).
    pub release: ReleaseId,
    /// That release's counter, so a rollback is refused before anything is fetched.
    pub counter: u64,
    pub issued_at: u64,
    pub expires_at: u64,
}

document!(Head, DocKind::Head, b"shoal/head/v1", HEAD_BODY_CAP);

/// What a device knows when it checks a head.
#[derive(Debug, Clone, Copy)]
pub struct HeadCheck {
    pub device_id: DeviceId,
    /// The seq of the last head this device accepted, if any.
    pub last_seq: Option<u64>,
    /// The counter of the installed release, if any.
    pub installed_counter: Option<u64>,
}

/// Verifies a head for this device at `now`: an unexpired root, a threshold of online
/// keys, this device, a seq above the last accepted one, not expired, and a counter not
/// below the installed one.
pub fn verify_head(
    root: &Root,
    signed: &Signed<Head>,
    check: &HeadCheck,
    now: u64,
) -> Result<Head, VerifyError> {
    root.check_fresh(now)?;
    root.check_signatures(signed, Role::Online)?;
    let head = signed
        .decode_unverified()
        .map_err(malformed(DocKind::Head))?;
    if head.device_id != check.device_id {
        return Err(VerifyError::WrongDevice {
            doc: DocKind::Head,
            expected: check.device_id,
            found: head.device_id,
        });
    }
    check_expiry(DocKind::Head, head.expires_at, now)?;
    if let Some(last) = check.last_seq
        && head.seq <= last
    {
        return Err(VerifyError::Replay {
            found: head.seq,
            last,
        });
    }
    if let Some(installed) = check.installed_counter
        && head.counter < installed
    {
        return Err(VerifyError::Rollback {
            doc: DocKind::Head,
            found: head.counter,
            installed,
        });
    }
    Ok(head)
}
