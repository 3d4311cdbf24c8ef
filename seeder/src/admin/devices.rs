//! `shoal-seeder devices list | accept | reject | decommission | preauthorize`.

use super::{Api, print_json};
use crate::offline::load;
use anyhow::Result;
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum DevicesCommand {
    /// List devices with their state and last status.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Admit a device (by its id, as `shoal-node init` printed it).
    Accept {
        id: String,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
    /// Refuse a device.
    Reject {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Revoke a device for good.
    Decommission {
        id: String,
        #[arg(long)]
        json: bool,
    },
    /// Admit a device key before the device first connects.
    Preauthorize {
        /// The device's public key file (`shoal-node init` writes DIR/node.pub).
        #[arg(long = "pub", value_name = "PATH")]
        public: PathBuf,
        #[arg(long)]
        group: Option<String>,
        #[arg(long)]
        json: bool,
    },
}

fn text(v: &Value, key: &str) -> String {
    match &v[key] {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

fn one_line(d: &Value) -> String {
    format!(
        "device {} {} group {} type {} site {}",
        text(d, "id"),
        text(d, "state").to_lowercase(),
        text(d, "group"),
        text(d, "device_type"),
        text(d, "site")
    )
}

pub fn run(api: &Api, command: DevicesCommand) -> Result<()> {
    let (answer, json) = match command {
        DevicesCommand::List { json } => {
            let all = api.get("/devices")?;
            if !json {
                println!(
                    "{:<16} {:<9} {:<10} {:<10} {:<10} {:<12} PROGRESS",
                    "DEVICE", "STATE", "GROUP", "TYPE", "SITE", "STATUS"
                );
                for e in all.as_array().into_iter().flatten() {
                    let d = &e["device"];
                    let s = &e["status"];
                    let progress = if s.is_null() {
                        "-".to_string()
                    } else {
                        format!("{}/{} bytes", s["done_bytes"], s["total_bytes"])
                    };
                    println!(
                        "{:<16} {:<9} {:<10} {:<10} {:<10} {:<12} {}",
                        text(d, "id").chars().take(16).collect::<String>(),
                        text(d, "state").to_lowercase(),
                        text(d, "group"),
                        text(d, "device_type"),
                        text(d, "site"),
                        if s.is_null() {
                            "-".into()
                        } else {
                            text(s, "state").to_lowercase()
                        },
                        progress
                    );
                }
                return Ok(());
            }
            (all, true)
        }
        DevicesCommand::Accept { id, group, json } => (
            api.post_json(&format!("/devices/{id}/accept"), &json!({ "group": group }))?,
            json,
        ),
        DevicesCommand::Reject { id, json } => (
            api.post_json(&format!("/devices/{id}/reject"), &json!({}))?,
            json,
        ),
        DevicesCommand::Decommission { id, json } => (
            api.post_json(&format!("/devices/{id}/decommission"), &json!({}))?,
            json,
        ),
        DevicesCommand::Preauthorize {
            public,
            group,
            json,
        } => {
            let key = load::public_key(&public)?;
            (
                api.post_json(
                    "/devices/preauthorize",
                    &json!({ "public_key": key.to_text(), "group": group }),
                )?,
                json,
            )
        }
    };
    if json {
        print_json(&answer)
    } else {
        println!("{}", one_line(&answer));
        Ok(())
    }
}
