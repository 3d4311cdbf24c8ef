//! `shoal-seeder tokens create --role ROLE [--group G ...] --out FILE | list | revoke ID`.

use super::{Api, print_json};
use crate::files::{SECRET_MODE, write_atomic};
use anyhow::{Context, Result, bail};
use serde_json::{Value, json};
use std::path::PathBuf;

#[derive(Debug, clap::Subcommand)]
pub enum TokensCommand {
    /// Make a token; its secret goes to --out (mode 0600) and nowhere else.
    Create {
        /// admin, release-manager, deployer or viewer.
        #[arg(long)]
        role: String,
        /// For a deployer: a group it may deploy to (repeatable; at least one).
        #[arg(long = "group", value_name = "G")]
        groups: Vec<String>,
        /// Where to write the secret (must not exist yet).
        #[arg(long, value_name = "FILE")]
        out: PathBuf,
        #[arg(long)]
        json: bool,
    },
    /// List tokens (never their secrets).
    List {
        #[arg(long)]
        json: bool,
    },
    /// Revoke a token by id: it lets nobody in from now on.
    Revoke {
        id: u64,
        #[arg(long)]
        json: bool,
    },
}

fn describe(t: &Value) -> String {
    let groups: Vec<&str> = t["groups"]
        .as_array()
        .into_iter()
        .flatten()
        .filter_map(Value::as_str)
        .collect();
    format!(
        "token {} {}{}{}",
        t["id"],
        t["role"].as_str().unwrap_or("?"),
        if groups.is_empty() {
            String::new()
        } else {
            format!(" groups {}", groups.join(","))
        },
        if t["revoked_at"].is_null() {
            ""
        } else {
            " (revoked)"
        }
    )
}

pub fn run(api: &Api, command: TokensCommand) -> Result<()> {
    match command {
        TokensCommand::Create {
            role,
            groups,
            out,
            json,
        } => {
            if out.exists() {
                bail!(
                    "{}: already exists; expected a new file for the secret (nothing was created)",
                    out.display()
                );
            }
            let answer = api.post_json("/tokens", &json!({ "role": role, "groups": groups }))?;
            let Some(secret) = answer["secret"].as_str() else {
                bail!("the seeder answered without a secret; expected one for a new token");
            };
            write_atomic(&out, format!("{secret}\n").as_bytes(), SECRET_MODE, false).with_context(
                || {
                    format!(
                        "token {} was made but its secret could not be written; revoke it (tokens revoke {})",
                        answer["token"]["id"], answer["token"]["id"]
                    )
                },
            )?;
            if json {
                return print_json(&answer["token"]);
            }
            println!(
                "{}; secret in {}",
                describe(&answer["token"]),
                out.display()
            );
            Ok(())
        }
        TokensCommand::List { json } => {
            let all = api.get("/tokens")?;
            if json {
                return print_json(&all);
            }
            println!("token 0 admin (bootstrap: DIR/admin.token)");
            for t in all.as_array().into_iter().flatten() {
                println!("{}", describe(t));
            }
            Ok(())
        }
        TokensCommand::Revoke { id, json } => {
            let t = api.post_json(&format!("/tokens/{id}/revoke"), &json!({}))?;
            if json {
                return print_json(&t);
            }
            println!("{}", describe(&t));
            Ok(())
        }
    }
}
