//! `shoal-seeder release inspect rel.shoal [--json]`: what a release holds, without
//! trusting it (no root is given, so nothing here says it is valid).

use super::load;
use crate::time::fmt_utc;
use anyhow::{Context, Result};
use serde_json::json;
use shoal_core::Install;
use std::path::Path;

pub fn run(file: &Path, as_json: bool) -> Result<()> {
    let signed = load::signed_release(file)?;
    let r = signed
        .decode_unverified()
        .with_context(|| format!("{}: not a shoal release file", file.display()))?;
    let (unique, unique_bytes) = r.unique_chunks();
    let args = match &r.install {
        Install::Command { args } => args.clone(),
        _ => Vec::new(),
    };
    if as_json {
        let files: Vec<_> = r
            .files
            .iter()
            .map(|f| {
                json!({
                    "path": f.path,
                    "mode": format!("{:o}", f.mode),
                    "size": f.size,
                    "blake3": f.blake3.to_hex(),
                    "chunks": f.chunks.len(),
                })
            })
            .collect();
        let sigs: Vec<_> = signed
            .signatures
            .iter()
            .map(|s| s.key_id.to_hex())
            .collect();
        let v = json!({
            "id": signed.body_hash().to_hex(),
            "name": r.name,
            "version": r.version,
            "counter": r.counter,
            "device_types": r.device_types,
            "created_at": r.created_at,
            "chunking": {"min": r.chunking.min, "avg": r.chunking.avg, "max": r.chunking.max},
            "install": r.install.name(),
            "install_args": args,
            "total_size": r.total_size(),
            "chunks": r.chunk_count(),
            "unique_chunks": unique,
            "unique_bytes": unique_bytes,
            "files": files,
            "signatures": sigs,
            "verified": false,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(());
    }
    println!("release    {} {}", r.name, r.version);
    println!("id         {}", signed.body_hash());
    println!("counter    {}", r.counter);
    println!("devices    {}", r.device_types.join(", "));
    println!("created    {}", fmt_utc(r.created_at));
    println!(
        "chunking   FastCDC v2020 {}/{}/{} bytes",
        r.chunking.min, r.chunking.avg, r.chunking.max
    );
    if args.is_empty() {
        println!("install    {}", r.install.name());
    } else {
        println!("install    {} {}", r.install.name(), args.join(" "));
    }
    println!(
        "content    {} bytes in {} files, {} chunks ({} unique, {} bytes)",
        r.total_size(),
        r.files.len(),
        r.chunk_count(),
        unique,
        unique_bytes
    );
    for f in &r.files {
        println!(
            "  {:o} {:>12} {} {} ({} chunks)",
            f.mode,
            f.size,
            f.blake3,
            f.path,
            f.chunks.len()
        );
    }
    println!(
        "signatures {} (not checked: use `release verify --root`)",
        signed.signatures.len()
    );
    for s in &signed.signatures {
        println!("  by key {}", s.key_id);
    }
    Ok(())
}
