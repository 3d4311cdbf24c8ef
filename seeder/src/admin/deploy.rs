//! `shoal-seeder deploy --release NAME@VERSION --group G [--phases 20%,100%]
//! [--success-threshold S] [--failure-threshold F]`, and `deploy list`, `deploy show ID`,
//! `deploy pause | resume | abort ID`.

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
    /// Show one deployment with each phase's progress and each device's state.
    Show {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Hold a rollout: devices already handed the release keep it, no other gets it.
    Pause {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Go on with a paused rollout; the failures seen so far are acknowledged.
    Resume {
        id: u64,
        #[arg(long)]
        json: bool,
    },
    /// Stop a rollout for good: devices that have not started skip it; a device
    /// mid-install finishes and reports.
    Abort {
        id: u64,
        #[arg(long)]
        json: bool,
    },
}

/// How a new deployment rolls out (all optional).
#[derive(Debug, Clone, Default, clap::Args)]
pub struct RolloutFlags {
    /// Phases as cumulative percentages or counts of the group's devices, e.g.
    /// 20%,100% or 2,10 (default: one phase of every device).
    #[arg(long, value_name = "LIST", requires = "release")]
    pub phases: Option<String>,
    /// Successes (count or % of the devices released so far) that release the next
    /// phase (default 100%).
    #[arg(long, value_name = "N|P%", requires = "release")]
    pub success_threshold: Option<String>,
    /// Failures (count or %) that pause the rollout by itself (default: never).
    #[arg(long, value_name = "N|P%", requires = "release")]
    pub failure_threshold: Option<String>,
}

fn s(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        Value::Null => "-".into(),
        other => other.to_string(),
    }
}

/// `deployment 3: fw@1.2 to group line-a (active, phase 1 of 2)`.
fn summary(d: &Value) -> String {
    let phases = d["phase_sizes"].as_array().map_or(1, |a| a.len().max(1));
    let phase = d["phase"].as_u64().unwrap_or(0) + 1;
    format!(
        "deployment {}: {}@{} to group {} ({}, phase {phase} of {phases})",
        s(&d["id"]),
        s(&d["release_name"]),
        s(&d["release_version"]),
        s(&d["group"]),
        s(&d["state"]).to_lowercase()
    )
}

pub fn create(
    api: &Api,
    release: &str,
    group: &str,
    rollout: &RolloutFlags,
    json: bool,
) -> Result<()> {
    if !release.contains('@') {
        bail!("--release '{release}': expected NAME@VERSION");
    }
    // checked here too, so a typo fails before anything is sent
    if let Some(p) = &rollout.phases {
        crate::rollout::parse_phases(p)?;
    }
    for t in [&rollout.success_threshold, &rollout.failure_threshold]
        .into_iter()
        .flatten()
    {
        crate::rollout::Amount::parse(t)?;
    }
    let d = api.post_json(
        "/deployments",
        &json!({
            "release": release,
            "group": group,
            "phases": rollout.phases,
            "success_threshold": rollout.success_threshold,
            "failure_threshold": rollout.failure_threshold,
        }),
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
            if let Some(reason) = v["deployment"]["paused_reason"].as_str() {
                println!("  paused: {reason}");
            }
            for (i, p) in v["phases"].as_array().into_iter().flatten().enumerate() {
                println!(
                    "  phase {}: {} devices, {}; {} succeeded, {} failed, {} in progress",
                    i + 1,
                    p["devices"],
                    if p["released"].as_bool() == Some(true) {
                        "released"
                    } else {
                        "waiting"
                    },
                    p["succeeded"],
                    p["failed"],
                    p["working"]
                );
            }
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
        DeployCommand::Pause { id, json } => control(api, id, "pause", json),
        DeployCommand::Resume { id, json } => control(api, id, "resume", json),
        DeployCommand::Abort { id, json } => control(api, id, "abort", json),
    }
}

fn control(api: &Api, id: u64, action: &str, json: bool) -> Result<()> {
    let d = api.post_json(&format!("/deployments/{id}/{action}"), &json!({}))?;
    if json {
        return print_json(&d);
    }
    println!("{}", summary(&d));
    Ok(())
}
