//! What a release asks of a device, read from its signed manifest: the bytes a device
//! must fetch (its distinct chunks, less those an installed release already holds), and
//! whether an installed folder holds exactly the release's files (length and BLAKE3 of
//! each file against the manifest).

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

/// Checks that `target` holds every file of `release` with the manifest's length and
/// BLAKE3. Returns what differs, one line per file, empty when the install is exact.
pub fn check_installed(release: &Release, target: &Path) -> Vec<String> {
    let mut wrong = Vec::new();
    for f in &release.files {
        let path = target.join(&f.path);
        let found = std::fs::File::open(&path).and_then(|file| {
            let len = file.metadata()?.len();
            if len != f.size {
                return Ok(Err(len));
            }
            let mut h = blake3::Hasher::new();
            h.update_reader(file)?;
            Ok(Ok(Hash::from(h.finalize())))
        });
        match found {
            Ok(Ok(h)) if h == f.blake3 => {}
            Ok(Ok(h)) => wrong.push(format!(
                "{}: BLAKE3 {} where the release says {}",
                path.display(),
                h.short(),
                f.blake3.short()
            )),
            Ok(Err(len)) => wrong.push(format!(
                "{}: {len} bytes where the release says {}",
                path.display(),
                f.size
            )),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => wrong.push(format!(
                "{}: missing, where the release says {} bytes",
                path.display(),
                f.size
            )),
            Err(e) => wrong.push(format!("{}: {e}", path.display())),
        }
    }
    wrong
}

#[cfg(test)]
mod tests {
    use super::*;
    use shoal_core::chunker::chunk_bytes;
    use shoal_core::release::{ChunkingProfile, FileEntry, Install};

    fn release(files: &[(&str, &[u8])]) -> Release {
        Release {
            name: "pump-firmware".into(),
            version: "1".into(),
            counter: 1,
            device_types: vec!["pump".into()],
            created_at: 0,
            chunking: ChunkingProfile::DEFAULT,
            install: Install::File,
            files: files
                .iter()
                .map(|(path, data)| {
                    let (blake3, chunks) =
                        chunk_bytes(ChunkingProfile::DEFAULT, data).expect("the default profile");
                    FileEntry {
                        path: path.to_string(),
                        mode: 0o644,
                        size: data.len() as u64,
                        blake3,
                        chunks,
                    }
                })
                .collect(),
        }
    }

    // guards: a device whose installed image differs from the release counted as
    // verified in the demo and site reports
    #[test]
    fn an_exact_install_passes_and_each_kind_of_difference_is_reported() {
        let data = crate::image::image(100_000, 3);
        let rel = release(&[
            ("same.img", &data),
            ("flipped.img", &data),
            ("short.img", &data),
            ("missing.img", &data),
        ]);
        let dir = tempfile::tempdir().unwrap();
        let write =
            |name: &str, bytes: &[u8]| std::fs::write(dir.path().join(name), bytes).unwrap();
        for f in ["same.img", "flipped.img", "short.img", "missing.img"] {
            write(f, &data);
        }
        assert_eq!(check_installed(&rel, dir.path()), Vec::<String>::new());

        let mut flipped = data.clone();
        flipped[50_000] ^= 1;
        write("flipped.img", &flipped);
        write("short.img", &data[..99_999]);
        std::fs::remove_file(dir.path().join("missing.img")).unwrap();
        let wrong = check_installed(&rel, dir.path());
        assert_eq!(wrong.len(), 3, "{wrong:#?}");
        let line = |name: &str| {
            wrong
                .iter()
                .find(|l| l.contains(name))
                .unwrap_or_else(|| panic!("{name} not reported: {wrong:#?}"))
        };
        assert!(line("flipped.img").contains("BLAKE3"), "{wrong:#?}");
        assert!(
            line("short.img").contains("99999 bytes where the release says 100000"),
            "{wrong:#?}"
        );
        assert!(line("missing.img").contains("missing"), "{wrong:#?}");
    }
}
