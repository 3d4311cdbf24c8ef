//! `shoal-seeder release sign --key K rel.shoal`: add one signature, in place,
//! atomically. The body is parsed and checked first: nobody should sign bytes they have
//! not looked at.

use super::load;
use crate::files::{PUBLIC_MODE, write_atomic};
use anyhow::{Context, Result};
use std::path::Path;

pub fn run(key: &Path, file: &Path) -> Result<()> {
    let key = load::secret_key(key).context("the release file is unchanged")?;
    let mut signed = load::signed_release(file).context("the release file is unchanged")?;
    let release = signed.decode_unverified().with_context(|| {
        format!(
            "{}: not a shoal release file; it is unchanged",
            file.display()
        )
    })?;
    release
        .check_structure()
        .with_context(|| format!("{}: refusing to sign; it is unchanged", file.display()))?;
    let again = signed.is_signed_by(&key.public());
    signed.sign(&key);
    write_atomic(file, &signed.to_bytes()?, PUBLIC_MODE, true)
        .context("the release file is unchanged")?;
    if again {
        eprintln!(
            "shoal-seeder: warning: key {} had already signed {}; a second signature by the same key counts once",
            key.key_id(),
            file.display()
        );
    }
    println!(
        "{}: signed by key {}; {} signatures on {} {} (id {})",
        file.display(),
        key.key_id(),
        signed.signatures.len(),
        release.name,
        release.version,
        signed.body_hash()
    );
    Ok(())
}
