//! `shoal-seeder root create` and `root rotate`: the root of trust, signed offline.

use super::load;
use crate::files::{PUBLIC_MODE, write_atomic};
use crate::time::fmt_utc;
use anyhow::{Context, Result, bail};
use shoal_core::{RoleKeys, Root, SecretKey, Signed, verify_root, verify_rotation};
use std::collections::BTreeSet;
use std::path::{Path, PathBuf};

/// The keys and thresholds of every role, as given on the command line.
#[derive(Debug, Clone, clap::Args)]
pub struct RoleFlags {
    /// A root secret key (repeat for k-of-n); every one given signs the new root.
    #[arg(long = "root-key", required = true, value_name = "K")]
    pub root_keys: Vec<PathBuf>,
    /// How many root keys must sign a root.
    #[arg(long, value_name = "N")]
    pub root_threshold: u32,
    /// A release public key (repeat for k-of-n).
    #[arg(long = "release-pub", required = true, value_name = "P")]
    pub release_pubs: Vec<PathBuf>,
    /// How many release keys must sign a release.
    #[arg(long, value_name = "N")]
    pub release_threshold: u32,
    /// An online public key: the key the seeder signs heads and admissions with.
    #[arg(long = "online-pub", required = true, value_name = "P")]
    pub online_pubs: Vec<PathBuf>,
    /// How many online keys must sign a head or admission.
    #[arg(long, value_name = "N", default_value_t = 1)]
    pub online_threshold: u32,
    /// Days until the root expires; devices refuse everything under an expired root.
    #[arg(long, value_name = "D", default_value_t = 365)]
    pub expires_days: u64,
}

impl RoleFlags {
    fn build(&self, version: u64, now: u64) -> Result<(Root, Vec<SecretKey>)> {
        let root_keys = self
            .root_keys
            .iter()
            .map(|p| load::secret_key(p))
            .collect::<Result<Vec<_>>>()?;
        let pubs = |paths: &[PathBuf]| -> Result<Vec<_>> {
            paths.iter().map(|p| load::public_key(p)).collect()
        };
        if self.expires_days == 0 {
            bail!("--expires-days must be at least 1");
        }
        let root = Root {
            version,
            expires_at: now.saturating_add(self.expires_days.saturating_mul(86_400)),
            root: RoleKeys {
                keys: root_keys.iter().map(SecretKey::public).collect(),
                threshold: self.root_threshold,
            },
            release: RoleKeys {
                keys: pubs(&self.release_pubs)?,
                threshold: self.release_threshold,
            },
            online: RoleKeys {
                keys: pubs(&self.online_pubs)?,
                threshold: self.online_threshold,
            },
        };
        // Catch a bad threshold or a key in two roles before anything is signed.
        root.check_structure()?;
        Ok((root, root_keys))
    }
}

/// Signs with each distinct key once.
fn sign_all(signed: &mut Signed<Root>, keys: &[&SecretKey]) {
    let mut done = BTreeSet::new();
    for k in keys {
        if done.insert(k.key_id()) {
            signed.sign(k);
        }
    }
}

fn describe(root: &Root) -> String {
    format!(
        "root v{}, expires {}, root {}-of-{}, release {}-of-{}, online {}-of-{}",
        root.version,
        fmt_utc(root.expires_at),
        root.root.threshold,
        root.root.keys.len(),
        root.release.threshold,
        root.release.keys.len(),
        root.online.threshold,
        root.online.keys.len()
    )
}

pub fn create(roles: &RoleFlags, out: &Path, now: u64) -> Result<()> {
    let (root, root_keys) = roles.build(1, now).context("nothing was written")?;
    let mut signed = Signed::new(&root)?;
    sign_all(&mut signed, &root_keys.iter().collect::<Vec<_>>());
    verify_root(&signed, now).context("the new root does not verify; nothing was written")?;
    write_atomic(out, &signed.to_bytes()?, PUBLIC_MODE, true).context("nothing was written")?;
    println!("wrote {}: {}", out.display(), describe(&root));
    Ok(())
}

pub fn rotate(
    current: &Path,
    sign_keys: &[PathBuf],
    roles: &RoleFlags,
    out: &Path,
    now: u64,
) -> Result<()> {
    let current_signed = load::signed_root(current)?;
    let current_root = current_signed
        .decode_unverified()
        .with_context(|| format!("{}: not a shoal root file", current.display()))?;
    // The current root must be genuine (self-signed), though it may have expired:
    // rotating is how an expired root is replaced.
    current_root
        .check_structure()
        .and_then(|()| current_root.check_signatures(&current_signed, shoal_core::Role::Root))
        .with_context(|| format!("{}: not a valid root", current.display()))?;
    let (next, new_keys) = roles
        .build(current_root.version + 1, now)
        .context("nothing was written")?;
    let old_keys = sign_keys
        .iter()
        .map(|p| load::secret_key(p))
        .collect::<Result<Vec<_>>>()?;
    let mut signed = Signed::new(&next)?;
    let all: Vec<&SecretKey> = old_keys.iter().chain(new_keys.iter()).collect();
    sign_all(&mut signed, &all);
    verify_rotation(&current_root, &signed)
        .context("the rotation would not verify on devices; nothing was written")?;
    write_atomic(out, &signed.to_bytes()?, PUBLIC_MODE, true).context("nothing was written")?;
    println!("wrote {}: {}", out.display(), describe(&next));
    Ok(())
}
