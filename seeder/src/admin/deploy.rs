//! `shoal-seeder deploy --release NAME@VERSION --group G`, and `deploy list`,
//! `deploy show ID`.

use super::{Api, print_json};
use anyhow::{Result, bail};
use serde_json::{Value, json};

#[derive(Debug, clap::Subcommand)]
pub enum DeployCommand {
    /// List deployments.
    List {
        #[arg(long)]
        json: bool,
    },
    /// Show one deployment with each device's state.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `deployment 3: fw@1.2 to group line-a`.
fn summary(d: &Value) -> String {
    format!(
        "deployment {}: {}@{} to group {}",
        s(&d["id"]),
        s(&d["release_name"]),
        s(&d["release_version"]),
        s(&d["group"])
    )
}

pub fn create(api: &Api, release: &str, group: &str, json: bool) -> Result<()> {
    if !release.contains('@') {
        bail!("--release '{release}': expected NAME@VERSION");
    }
    let d = api.post_json(
        "/deployments",
        &json!({ "release": release, "group": group }),
    )?;
    if json {
        return print_json(&d);
    }
    println!("{}", summary(&d));
    Ok(())
}

pub fn run(api: &Api, command: DeployCommand) -> Result<()> {
    match command {
        DeployCommand::List { json } => {
            let all = api.get("/deployments")?;
            if json {
                return print_json(&all);
            }
            for d in all.as_array().into_iter().flatten() {
                println!("{}", summary(d));
            }
            Ok(())
        }
        DeployCommand::Show { id, json } => {
            let v = api.get(&format!("/deployments/{id}"))?;
            if json {
                return print_json(&v);
            }
            println!("{}", summary(&v["deployment"]));
            for e in v["devices"].as_array().into_iter().flatten() {
                let st = &e["status"];
                println!(
                    "  {} {} {}",
                    s(&e["device"]["id"]).chars().take(16).collect::<String>(),
                    if st.is_null() {
                        "no status yet".into()
                    } else {
                        s(&st["state"]).to_lowercase()
                    },
                    if st.is_null() {
                        String::new()
                    } else {
                        format!("{}/{} bytes", st["done_bytes"], st["total_bytes"])
                    }
                );
            }
            Ok(())
        }
    }
}
