//! `shoal-seeder publish rel.shoal FILE...`: upload a signed release and the chunks the
//! seeder lacks, read from the files it was made from, then publish it. The seeder
//! refuses a release its root does not trust and any chunk that does not match.

use super::{Api, print_json};
use crate::offline::build::collect_inputs;
use crate::offline::load;
use anyhow::{Context, Result, bail};
use serde_json::Value;
use shoal_core::Hash;
use std::collections::BTreeSet;
use std::fs::File;
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

pub fn run(api: &Api, release_file: &Path, files: &[PathBuf], json: bool) -> Result<()> {
    let signed = load::signed_release(release_file)?;
    let release = signed
        .decode_unverified()
        .with_context(|| format!("{}: not a shoal release file", release_file.display()))?;
    let id = signed.body_hash();
    // Match the files to the manifest first, so nothing is uploaded for a wrong set.
    let inputs = collect_inputs(files)?;
    let mut sources = Vec::new();
    for entry in &release.files {
        let Some(input) = inputs.iter().find(|i| i.release_path == entry.path) else {
            bail!(
                "the release names '{}' but no FILE given is called that; nothing was uploaded",
                entry.path
            );
        };
        let size = std::fs::metadata(&input.source)
            .with_context(|| format!("{}: cannot stat", input.source.display()))?
            .len();
        if size != entry.size {
            bail!(
                "{}: {size} bytes, the release says {} for '{}'; nothing was uploaded",
                input.source.display(),
                entry.size,
                entry.path
            );
        }
        sources.push((entry, input.source.clone()));
    }

    let answer = api.post_bytes("/releases", &signed.to_bytes()?)?;
    let missing: BTreeSet<Hash> = answer["missing"]
        .as_array()
        .map(|a| {
            a.iter()
                .filter_map(|h| h.as_str())
                .filter_map(|h| Hash::from_hex(h).ok())
                .collect()
        })
        .unwrap_or_default();
    let mut uploaded = BTreeSet::new();
    let mut bytes = 0u64;
    for (entry, path) in &sources {
        let file = File::open(path).with_context(|| format!("{}: cannot open", path.display()))?;
        let mut offset = 0u64;
        for c in &entry.chunks {
            if missing.contains(&c.hash) && !uploaded.contains(&c.hash) {
                let mut buf = vec![0u8; c.len as usize];
                file.read_exact_at(&mut buf, offset)
                    .with_context(|| format!("{}: read failed", path.display()))?;
                if Hash::of(&buf) != c.hash {
                    bail!(
                        "{}: the bytes at offset {offset} do not match the release (was the file changed after `release create`?); the release stays unpublished",
                        path.display()
                    );
                }
                api.put_bytes(&format!("/releases/{id}/chunks/{}", c.hash), &buf)?;
                uploaded.insert(c.hash);
                bytes += u64::from(c.len);
            }
            offset += u64::from(c.len);
        }
    }
    let record: Value = api.post_json(&format!("/releases/{id}/publish"), &Value::Null)?;
    if json {
        return print_json(&serde_json::json!({
            "release": record,
            "uploaded_chunks": uploaded.len(),
            "uploaded_bytes": bytes,
        }));
    }
    println!(
        "published {}@{} (id {id}): uploaded {} chunks, {bytes} bytes; {} chunks were already on the seeder",
        release.name,
        release.version,
        uploaded.len(),
        release.unique_chunks().0 - uploaded.len()
    );
    Ok(())
}
