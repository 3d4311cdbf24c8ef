//! The `Release` document: what to install, cut into chunks, signed by the offline
//! release keys.
//!
//! Everything that affects installation is in the signed body: the files with their
//! sizes and hashes, the chunk list of each file, the chunking profile, and the install
//! model with its parameters. A release is named by its id, BLAKE3 of the body bytes,
//! so adding a signature does not change it (see `docs/decisions/0002-release-id.md`).

use crate::error::VerifyError;
use crate::hash::Hash;
use crate::path::check_path;
use crate::root::{Role, Root, malformed};
use crate::signed::{DocKind, Signed, document};
use serde::{Deserialize, Serialize};
use std::collections::BTreeSet;

/// The largest encoded Release body: room for about 1.5 million chunks, some 100 GiB
/// at the default profile.
pub const RELEASE_BODY_CAP: usize = 64 * 1024 * 1024;
/// At most this many files in one release.
pub const MAX_FILES: usize = 100_000;
/// At most this many device types in one release.
pub const MAX_DEVICE_TYPES: usize = 64;
/// The longest name, version, device type or install argument, in bytes.
pub const MAX_LABEL_LEN: usize = 256;
/// At most this many arguments for a `command` install.
pub const MAX_INSTALL_ARGS: usize = 64;
/// No chunk is ever larger than this, whatever the profile says.
pub const MAX_CHUNK_LEN: u32 = 4 * 1024 * 1024;

/// The content-defined chunking profile a release was cut with (FastCDC v2020).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkingProfile {
    pub min: u32,
    pub avg: u32,
    pub max: u32,
}

impl ChunkingProfile {
    /// 16 / 64 / 256 KiB.
    pub const DEFAULT: ChunkingProfile = ChunkingProfile {
        min: 16 * 1024,
        avg: 64 * 1024,
        max: 256 * 1024,
    };

    /// The bounds FastCDC v2020 accepts, tightened by [`MAX_CHUNK_LEN`]; sizes even.
    pub fn check(&self) -> Result<(), String> {
        use fastcdc::v2020::{AVERAGE_MAX, AVERAGE_MIN, MAXIMUM_MIN, MINIMUM_MAX, MINIMUM_MIN};
        let (min, avg, max) = (self.min as usize, self.avg as usize, self.max as usize);
        let ok = (MINIMUM_MIN..=MINIMUM_MAX).contains(&min)
            && (AVERAGE_MIN..=AVERAGE_MAX).contains(&avg)
            && (MAXIMUM_MIN..=MAX_CHUNK_LEN as usize).contains(&max)
            && min <= avg
            && avg <= max
            && min % 2 == 0
            && avg % 2 == 0
            && max % 2 == 0;
        if ok {
            Ok(())
        } else {
            Err(format!(
                "chunking profile {}/{}/{} is outside min {MINIMUM_MIN}..={MINIMUM_MAX}, avg {AVERAGE_MIN}..={AVERAGE_MAX}, max {MAXIMUM_MIN}..={MAX_CHUNK_LEN}, min <= avg <= max, all even",
                self.min, self.avg, self.max
            ))
        }
    }
}

/// How a device installs the release. Tags are stable: a retired variant stays.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Install {
    /// Tag 0. Atomically replace the files below the device's target directory; the
    /// previous version is kept for one rollback.
    File,
    /// Tag 1. The release's one file is a slot image: write the inactive slot, switch,
    /// commit after the device's health check, otherwise roll back.
    AbSlot,
    /// Tag 2. Hand the verified files to the device's configured update executable,
    /// with these arguments; its exit status decides.
    Command { args: Vec<String> },
}

impl Install {
    /// The name used on the command line and in JSON.
    pub fn name(&self) -> &'static str {
        match self {
            Install::File => "file",
            Install::AbSlot => "ab-slot",
            Install::Command { .. } => "command",
        }
    }
}

/// One chunk of a file: its BLAKE3 and length. Its offset is the sum of the lengths
/// before it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct ChunkRef {
    pub hash: Hash,
    pub len: u32,
}

/// One file of a release.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct FileEntry {
    /// Relative, `/`-separated, checked by [`check_path`].
    pub path: String,
    /// Unix permission bits (at most 0o777: no setuid, setgid or sticky bit).
    pub mode: u32,
    pub size: u64,
    /// BLAKE3 of the whole file.
    pub blake3: Hash,
    pub chunks: Vec<ChunkRef>,
}

/// A signed release manifest.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Release {
    /// The product, e.g. `pump-firmware`.
    pub name: String,
    /// Free text for people, e.g. `2.4.1`.
    pub version: String,
    /// Strictly increasing per product; the anti-rollback counter.
    pub counter: u64,
    /// The device types that may install this release.
    pub device_types: Vec<String>,
    /// Unix seconds.
    pub created_at: u64,
    pub chunking: ChunkingProfile,
    pub install: Install,
    pub files: Vec<FileEntry>,
}

document!(
    Release,
    DocKind::Release,
    b"shoal/release/v1",
    RELEASE_BODY_CAP
);

/// A release's id: BLAKE3 of its signed body.
pub type ReleaseId = Hash;

impl Release {
    /// The bytes all files add up to.
    pub fn total_size(&self) -> u64 {
        self.files.iter().map(|f| f.size).sum()
    }

    /// How many chunks all files hold (a chunk that repeats counts each time).
    pub fn chunk_count(&self) -> usize {
        self.files.iter().map(|f| f.chunks.len()).sum()
    }

    /// The distinct chunk hashes and the bytes they add up to: what a device without
    /// any of them would fetch.
    pub fn unique_chunks(&self) -> (usize, u64) {
        let mut seen = BTreeSet::new();
        let mut bytes = 0u64;
        for c in self.files.iter().flat_map(|f| &f.chunks) {
            if seen.insert(c.hash) {
                bytes += u64::from(c.len);
            }
        }
        (seen.len(), bytes)
    }

    /// The rules of the body itself, whoever signed it: labels present and short,
    /// paths safe and distinct, every chunk within the profile, chunk lengths adding up
    /// to the file size.
    pub fn check_structure(&self) -> Result<(), VerifyError> {
        let bad = |s: String| Err(VerifyError::BadManifest(s));
        check_label("name", &self.name)?;
        check_label("version", &self.version)?;
        if self.device_types.is_empty() {
            return bad("the release names no device type".into());
        }
        if self.device_types.len() > MAX_DEVICE_TYPES {
            return bad(format!(
                "{} device types, at most {MAX_DEVICE_TYPES}",
                self.device_types.len()
            ));
        }
        for t in &self.device_types {
            check_label("device type", t)?;
        }
        if let Err(e) = self.chunking.check() {
            return bad(e);
        }
        if let Install::Command { args } = &self.install {
            if args.len() > MAX_INSTALL_ARGS {
                return bad(format!(
                    "{} install arguments, at most {MAX_INSTALL_ARGS}",
                    args.len()
                ));
            }
            for a in args {
                if a.len() > MAX_LABEL_LEN || a.contains('\0') {
                    return bad(format!(
                        "an install argument is longer than {MAX_LABEL_LEN} bytes or has a NUL"
                    ));
                }
            }
        }
        if self.install == Install::AbSlot && self.files.len() != 1 {
            return bad(format!(
                "an ab-slot release holds exactly one file (the slot image), this one holds {}",
                self.files.len()
            ));
        }
        if self.files.is_empty() {
            return bad("the release has no file".into());
        }
        if self.files.len() > MAX_FILES {
            return bad(format!("{} files, at most {MAX_FILES}", self.files.len()));
        }
        let mut paths = BTreeSet::new();
        for f in &self.files {
            check_path(&f.path).map_err(|reason| VerifyError::BadPath {
                path: f.path.clone(),
                reason,
            })?;
            if !paths.insert(f.path.as_str()) {
                return bad(format!("file '{}' is listed twice", f.path));
            }
            if f.mode & !0o777 != 0 {
                return bad(format!(
                    "file '{}' has mode {:o}; only permission bits (0o777) are allowed",
                    f.path, f.mode
                ));
            }
            let mut sum = 0u64;
            for c in &f.chunks {
                if c.len == 0 || c.len > self.chunking.max {
                    return bad(format!(
                        "file '{}' has a chunk of {} bytes; chunks are 1..={} bytes",
                        f.path, c.len, self.chunking.max
                    ));
                }
                sum += u64::from(c.len);
            }
            if sum != f.size {
                return bad(format!(
                    "file '{}' is {} bytes but its chunks add up to {sum}",
                    f.path, f.size
                ));
            }
        }
        // Directories are made from file paths, so a file may not also be a directory.
        for p in &paths {
            let mut prefix = String::new();
            for component in p.split('/') {
                if !prefix.is_empty() && paths.contains(prefix.as_str()) {
                    return bad(format!("'{prefix}' is both a file and a directory"));
                }
                if !prefix.is_empty() {
                    prefix.push('/');
                }
                prefix.push_str(component);
            }
        }
        Ok(())
    }
}

fn check_label(what: &str, value: &str) -> Result<(), VerifyError> {
    if value.is_empty() || value.len() > MAX_LABEL_LEN || value.chars().any(char::is_control) {
        return Err(VerifyError::BadManifest(format!(
            "the {what} must be 1..={MAX_LABEL_LEN} bytes without control characters"
        )));
    }
    Ok(())
}

/// What a device (or `release verify`) requires of a release beyond its signatures.
#[derive(Debug, Clone, Default)]
pub struct ReleaseCheck<'a> {
    /// This device's type; `None` skips the check (a seeder accepting an upload).
    pub device_type: Option<&'a str>,
    /// The installed counter; the release's may not be below it.
    pub min_counter: Option<u64>,
    /// The release id and counter the accepted head names.
    pub head: Option<(ReleaseId, u64)>,
}

/// Verifies a signed release against `root` at `now`: the root is unexpired, a
/// threshold of release keys signed the body, the body is well-formed, and the checks
/// in `check` pass. Returns the release and its id.
pub fn verify_release(
    root: &Root,
    signed: &Signed<Release>,
    check: &ReleaseCheck,
    now: u64,
) -> Result<(Release, ReleaseId), VerifyError> {
    root.check_fresh(now)?;
    root.check_signatures(signed, Role::Release)?;
    let release = signed
        .decode_unverified()
        .map_err(malformed(DocKind::Release))?;
    release.check_structure()?;
    let id = signed.body_hash();
    if let Some((expected, counter)) = check.head {
        if id != expected {
            return Err(VerifyError::ReleaseMismatch {
                expected,
                found: id,
            });
        }
        if release.counter != counter {
            return Err(VerifyError::CounterMismatch {
                expected: counter,
                found: release.counter,
            });
        }
    }
    if let Some(installed) = check.min_counter
        && release.counter < installed
    {
        return Err(VerifyError::Rollback {
            doc: DocKind::Release,
            found: release.counter,
            installed,
        });
    }
    if let Some(t) = check.device_type
        && !release.device_types.iter().any(|d| d == t)
    {
        return Err(VerifyError::WrongDeviceType {
            device_type: t.to_string(),
            allowed: release.device_types.clone(),
        });
    }
    Ok((release, id))
}

/// Decodes a release file's bytes.
pub fn decode_release(bytes: &[u8]) -> Result<Signed<Release>, VerifyError> {
    use crate::signed::Document;
    Release::decode_envelope(bytes).map_err(malformed(DocKind::Release))
}
