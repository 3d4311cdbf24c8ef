//! `shoal-seeder release verify --root root.shoal rel.shoal`: the checks a device makes,
//! offline. Exit 0 when valid; otherwise one line naming the rule that failed.

use super::load;
use anyhow::{Context, Result};
use shoal_core::{ReleaseCheck, Role, verify_release};
use std::path::Path;

pub fn run(
    root: &Path,
    file: &Path,
    device_type: Option<&str>,
    min_counter: Option<u64>,
    now: u64,
) -> Result<()> {
    let trusted = load::trusted_root(root, now)?;
    let signed = load::signed_release(file)?;
    let check = ReleaseCheck {
        device_type,
        min_counter,
        head: None,
    };
    let (release, id) = verify_release(&trusted, &signed, &check, now)
        .with_context(|| format!("{}: invalid", file.display()))?;
    let tally = signed.tally(&trusted, Role::Release);
    println!(
        "{}: valid: {} {} counter {}, id {}; signed by {} distinct release keys (threshold {})",
        file.display(),
        release.name,
        release.version,
        release.counter,
        id,
        tally.valid,
        trusted.release.threshold
    );
    Ok(())
}
