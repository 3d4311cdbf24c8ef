//! The `Admission` document: the seeder's word that a device belongs to a site, signed
//! by the online key. A device shows it to the seeder and to its LAN peers before it is
//! served anything.

use crate::error::VerifyError;
use crate::keys::{DeviceId, PublicKey};
use crate::root::{Role, Root, check_expiry, malformed};
use crate::signed::{DocKind, Signed, document};
use serde::{Deserialize, Serialize};

/// The largest encoded Admission body.
pub const ADMISSION_BODY_CAP: usize = 16 * 1024;
/// At most this many groups on one admission.
pub const MAX_GROUPS: usize = 64;

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Admission {
    /// The key id of `device_key`.
    pub device_id: DeviceId,
    pub device_key: PublicKey,
    pub site: String,
    pub groups: Vec<String>,
    pub expires_at: u64,
}

document!(
    Admission,
    DocKind::Admission,
    b"shoal/admission/v1",
    ADMISSION_BODY_CAP
);

impl Admission {
    /// Labels present and short, a usable device key.
    pub fn check_structure(&self) -> Result<(), VerifyError> {
        let bad = |s: String| Err(VerifyError::BadManifest(s));
        if !is_label(&self.site) {
            return bad(
                "the admission's site must be 1..=256 bytes without control characters".into(),
            );
        }
        if self.groups.len() > MAX_GROUPS || !self.groups.iter().all(|g| is_label(g)) {
            return bad(format!(
                "the admission's groups must be at most {MAX_GROUPS} labels of 1..=256 bytes"
            ));
        }
        if self.device_key.verifying_key().is_err() {
            return bad("the admission's device key is not a usable ed25519 key".into());
        }
        Ok(())
    }
}

fn is_label(s: &str) -> bool {
    !s.is_empty() && s.len() <= crate::release::MAX_LABEL_LEN && !s.chars().any(char::is_control)
}

/// Verifies an admission at `now`: an unexpired root, a threshold of online keys, a
/// device id that is its key's id, not expired, and (when given) the expected site and
/// device.
pub fn verify_admission(
    root: &Root,
    signed: &Signed<Admission>,
    site: Option<&str>,
    device: Option<DeviceId>,
    now: u64,
) -> Result<Admission, VerifyError> {
    root.check_fresh(now)?;
    root.check_signatures(signed, Role::Online)?;
    let adm = signed
        .decode_unverified()
        .map_err(malformed(DocKind::Admission))?;
    adm.check_structure()?;
    let key_id = adm.device_key.key_id();
    if adm.device_id != key_id {
        return Err(VerifyError::DeviceKeyMismatch {
            expected: key_id,
            found: adm.device_id,
        });
    }
    if let Some(expected) = device
        && adm.device_id != expected
    {
        return Err(VerifyError::WrongDevice {
            doc: DocKind::Admission,
            expected,
            found: adm.device_id,
        });
    }
    check_expiry(DocKind::Admission, adm.expires_at, now)?;
    if let Some(site) = site
        && adm.site != site
    {
        return Err(VerifyError::WrongSite {
            expected: site.to_string(),
            found: adm.site.clone(),
        });
    }
    Ok(adm)
}
