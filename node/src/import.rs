//! `shoal-node import --data DIR rel.shoal FILE...`: install from a release file and its
//! payload files (a USB stick, a folder), with no network and the same checks as an
//! update from the seeder: the release against the root (signatures, device type,
//! anti-rollback), every chunk against the manifest before it is written, every file
//! against its BLAKE3 before it is installed.

use crate::agent::Agent;
use crate::assemble::Assembly;
use crate::config::DataDir;
use crate::error::NodeError;
use shoal_core::{ReleaseCheck, verify_release};
use std::os::unix::fs::FileExt;
use std::path::PathBuf;

/// What an import did.
#[derive(Debug, Clone)]
pub struct Imported {
    pub name: String,
    pub version: String,
    pub counter: u64,
    pub bytes: u64,
}

pub fn import(
    dir: DataDir,
    release_file: &std::path::Path,
    files: &[PathBuf],
) -> Result<Imported, NodeError> {
    let agent = Agent::new(dir, Default::default())?;
    let bytes = std::fs::read(release_file).map_err(NodeError::io(release_file))?;
    let signed =
        shoal_core::release::decode_release(&bytes).map_err(|source| NodeError::Verify {
            what: "the release",
            source,
        })?;
    let installed = agent.store().installed()?;
    let check = ReleaseCheck {
        device_type: Some(agent.device_type()),
        min_counter: installed.as_ref().map(|i| i.counter),
        head: None,
    };
    let now = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    let (release, id) =
        verify_release(agent.root(), &signed, &check, now).map_err(|source| NodeError::Verify {
            what: "the release",
            source,
        })?;
    // Each file of the release comes from the FILE argument with its name.
    let mut sources = Vec::new();
    for entry in &release.files {
        let name = entry.path.rsplit('/').next().unwrap_or(&entry.path);
        let Some(src) = files
            .iter()
            .find(|f| f.file_name().and_then(|n| n.to_str()) == Some(name))
        else {
            return Err(NodeError::Config(format!(
                "the release names '{}' but no FILE given is called '{name}'; nothing was installed",
                entry.path
            )));
        };
        sources.push(std::fs::File::open(src).map_err(NodeError::io(src))?);
    }
    let mut asm = Assembly::open(&agent.dir().staging(), &release, id, agent.store())?;
    for i in asm.missing() {
        let needed = asm.plan.chunks[i].clone();
        let first = needed.placements[0];
        let mut buf = vec![0u8; needed.len as usize];
        sources[first.file]
            .read_exact_at(&mut buf, first.offset)
            .map_err(|e| {
                NodeError::Config(format!(
                    "a payload file is shorter than the release says: {e}"
                ))
            })?;
        asm.write_chunk(i, &buf)?;
    }
    asm.commit(agent.store())?;
    asm.verify_files(&release)?;
    agent.install_assembled(&release, &asm, &bytes, id)?;
    let _ = std::fs::remove_dir_all(asm.dir());
    Ok(Imported {
        name: release.name.clone(),
        version: release.version.clone(),
        counter: release.counter,
        bytes: release.total_size(),
    })
}
