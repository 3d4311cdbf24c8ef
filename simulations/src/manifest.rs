//! What a release asks of a device, read from its signed manifest: the bytes a device
//! must fetch (its distinct chunks, less those an installed release already holds), and
//! whether an installed folder holds exactly the release's files (BLAKE3 of each file
//! against the manifest).

use anyhow::{Context, Result};
use shoal_core::{Hash, Release};
use std::collections::BTreeSet;
use std::path::Path;

/// Decodes `path` without checking signatures: the devices check them; the simulation
/// only reads sizes and hashes.
pub fn load(path: &Path) -> Result<Release> {
    let bytes = std::fs::read(path).with_context(|| format!("{}: cannot read", path.display()))?;
    let signed = shoal_core::release::decode_release(&bytes)
        .with_context(|| format!("{}: not a release", path.display()))?;
    signed
        .decode_unverified()
        .with_context(|| format!("{}: not a release body", path.display()))
}

/// Bytes of the distinct chunks of `next` that `installed` does not hold: what one
/// device (or one site, with LAN sharing) must fetch over the WAN, at least.
pub fn needed_bytes(next: &Release, installed: Option<&Release>) -> (usize, u64) {
    let have: BTreeSet<Hash> = installed
        .into_iter()
        .flat_map(|r| r.files.iter().flat_map(|f| &f.chunks))
        .map(|c| c.hash)
        .collect();
    let mut seen = BTreeSet::new();
    let mut bytes = 0u64;
    for c in next.files.iter().flat_map(|f| &f.chunks) {
        if !have.contains(&c.hash) && seen.insert(c.hash) {
            bytes += u64::from(c.len);
        }
    }
    (seen.len(), bytes)
}

/// Checks that `target` holds every file of `release` with the manifest's BLAKE3.
/// Returns what differs, empty when the install is exact.
pub fn check_installed(release: &Release, target: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for f in &release.files {
        let path = target.join(&f.path);
        let found = std::fs::File::open(&path).and_then(|file| {
            let mut h = blake3::Hasher::new();
            h.update_reader(file)?;
            Ok(Hash::from(h.finalize()))
        });
        match found {
            Ok(h) if h == f.blake3 => {}
            Ok(h) => wrong.push(format!(
                "{}: BLAKE3 {} where the release says {}",
                path.display(),
                h.short(),
                f.blake3.short()
            )),
            Err(e) => wrong.push(format!("{}: {e}", path.display())),
        }
    }
    wrong
}
