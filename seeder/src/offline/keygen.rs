//! `shoal-seeder keygen --out PATH`: a new ed25519 key pair, the secret at PATH (0600)
//! and the public key at PATH.pub.

use crate::files::{PUBLIC_MODE, SECRET_MODE, write_atomic};
use anyhow::{Context, Result};
use shoal_core::SecretKey;
use std::path::{Path, PathBuf};

/// A fresh key from the operating system's random source.
pub fn generate() -> Result<SecretKey> {
    let mut seed = [0u8; 32];
    getrandom::fill(&mut seed).map_err(|e| anyhow::anyhow!("no randomness from the OS: {e}"))?;
    Ok(SecretKey::from_seed(seed))
}

pub fn pub_path(out: &Path) -> PathBuf {
    let mut s = out.as_os_str().to_owned();
    s.push(".pub");
    PathBuf::from(s)
}

pub fn run(out: &Path) -> Result<()> {
    let key = generate()?;
    let public = pub_path(out);
    if public.symlink_metadata().is_ok() {
        anyhow::bail!("{}: already exists; nothing was written", public.display());
    }
    write_atomic(out, key.to_text().as_bytes(), SECRET_MODE, false)
        .context("nothing was written")?;
    if let Err(e) = write_atomic(
        &public,
        key.public().to_text().as_bytes(),
        PUBLIC_MODE,
        false,
    ) {
        // a secret without its public half would only confuse; take it back
        let _ = std::fs::remove_file(out);
        return Err(e.context("nothing was written"));
    }
    println!(
        "wrote {} (secret, mode 0600) and {}; key id {}",
        out.display(),
        public.display(),
        key.key_id()
    );
    Ok(())
}
