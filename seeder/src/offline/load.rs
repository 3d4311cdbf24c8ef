//! Loading the files the offline tools take: keys, roots and releases, each capped and
//! each failure naming the file.

use crate::files::{read_capped, read_text_capped};
use anyhow::{Context, Result};
use shoal_core::keys::KEY_FILE_CAP;
use shoal_core::release::{RELEASE_BODY_CAP, decode_release};
use shoal_core::root::{ROOT_BODY_CAP, decode_root};
use shoal_core::signed::ENVELOPE_OVERHEAD;
use shoal_core::{PublicKey, Release, Root, SecretKey, Signed};
use std::path::Path;

pub fn secret_key(path: &Path) -> Result<SecretKey> {
    let text = read_text_capped(path, KEY_FILE_CAP)?;
    let key = SecretKey::from_text(&text)
        .with_context(|| format!("{}: not a shoal secret key file", path.display()))?;
    warn_if_readable_by_others(path);
    Ok(key)
}

pub fn public_key(path: &Path) -> Result<PublicKey> {
    let text = read_text_capped(path, KEY_FILE_CAP)?;
    PublicKey::from_text(&text)
        .with_context(|| format!("{}: not a shoal public key file", path.display()))
}

pub fn signed_root(path: &Path) -> Result<Signed<Root>> {
    let bytes = read_capped(path, ROOT_BODY_CAP + ENVELOPE_OVERHEAD)?;
    decode_root(&bytes).with_context(|| format!("{}: not a shoal root file", path.display()))
}

pub fn signed_release(path: &Path) -> Result<Signed<Release>> {
    let bytes = read_capped(path, RELEASE_BODY_CAP + ENVELOPE_OVERHEAD)?;
    decode_release(&bytes).with_context(|| format!("{}: not a shoal release file", path.display()))
}

/// A root file, verified as a provisioned root (self-signed by its threshold, unexpired).
pub fn trusted_root(path: &Path, now: u64) -> Result<Root> {
    let signed = signed_root(path)?;
    shoal_core::verify_root(&signed, now)
        .with_context(|| format!("{}: not a valid root", path.display()))
}

/// Like ssh, says so when a secret key file is open to other users (it still works:
/// refusing would strand an operator mid-ceremony).
fn warn_if_readable_by_others(path: &Path) {
    use std::os::unix::fs::PermissionsExt;
    if let Ok(meta) = std::fs::metadata(path)
        && meta.permissions().mode() & 0o077 != 0
    {
        eprintln!(
            "shoal-seeder: warning: {} is accessible by other users (mode {:o}); chmod 600 it",
            path.display(),
            meta.permissions().mode() & 0o777
        );
    }
}
