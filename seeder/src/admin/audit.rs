//! `shoal-seeder audit show --data DIR [--json]` and `audit verify --data DIR`.
//!
//! Both read the log file itself, offline (docs/decisions/0009-audit-chain.md): a
//! reviewer checks the file on disk, or a copy of it, without trusting a running
//! seeder to report on its own log. They work beside a running seeder (shared lock).

use anyhow::{Result, bail};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum AuditCommand {
    /// Print the audit log's entries, oldest first.
    Show {
        /// The seeder's data folder (or a copy holding audit.log and audit.head).
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// Check every entry's hash and link, and the last one against audit.head; exit 0
    /// only when the log is intact.
    Verify {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
    },
}

pub fn run(command: AuditCommand) -> Result<()> {
    let (AuditCommand::Show { data, .. } | AuditCommand::Verify { data }) = &command;
    // an empty log is valid, so a mistyped folder must not read as one
    if !data.is_dir() {
        bail!(
            "{}: not a folder; expected the seeder's data folder",
            data.display()
        );
    }
    match command {
        AuditCommand::Show { data, json } => {
            let entries = crate::audit::read_entries(&data)?;
            if json {
                return super::print_json(&serde_json::to_value(&entries)?);
            }
            for e in &entries {
                println!(
                    "{:>5} {} {} from {} {} -> {} ({}){}",
                    e.seq,
                    crate::mgmt_api::dashboard_time(e.time),
                    e.actor,
                    e.from,
                    e.action,
                    e.outcome,
                    e.status,
                    if e.detail.is_empty() {
                        String::new()
                    } else {
                        format!(": {}", e.detail)
                    }
                );
            }
            Ok(())
        }
        AuditCommand::Verify { data } => match crate::audit::verify(&data) {
            Ok(s) => {
                match s.head {
                    Some(h) => println!(
                        "audit log intact: {} entries; head entry {} hash {}",
                        s.entries, h.seq, h.hash
                    ),
                    None => println!("audit log intact: no entries yet"),
                }
                Ok(())
            }
            Err(e) => bail!("audit log in {} does NOT verify: {e}", data.display()),
        },
    }
}
