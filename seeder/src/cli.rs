//! The command line (DESIGN section 9): flag parsing and dispatch, nothing else.

use crate::admin::audit::AuditCommand;
use crate::admin::deploy::{DeployCommand, RolloutFlags};
use crate::admin::tokens::TokensCommand;
use crate::admin::{self, ApiFlags, devices::DevicesCommand};
use crate::offline::{self, release_create::CreateArgs, root::RoleFlags};
use crate::service::ServeArgs;
use anyhow::Result;
use clap::{Parser, Subcommand};
use std::path::PathBuf;

#[derive(Debug, Parser)]
#[command(
    name = "shoal-seeder",
    version,
    about = "shoal's seeder: offline key, root and release tools, and the seeder service"
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Generate an ed25519 key pair: PATH (secret, mode 0600) and PATH.pub.
    Keygen {
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Create or rotate the root of trust (offline).
    #[command(subcommand)]
    Root(RootCommand),
    /// Create, sign, verify and inspect releases (offline).
    #[command(subcommand)]
    Release(ReleaseCommand),
    /// Run the seeder: the device API (QUIC) and the management API (HTTP).
    Serve(ServeArgs),
    /// Upload a signed release and its chunks to a seeder, and publish it.
    Publish {
        #[command(flatten)]
        api: ApiFlags,
        /// The signed release file.
        #[arg(value_name = "REL")]
        release: PathBuf,
        /// The files the release was made from.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
        #[arg(long)]
        json: bool,
    },
    /// List and admit devices.
    Devices {
        #[command(flatten)]
        api: ApiFlags,
        #[command(subcommand)]
        command: DevicesCommand,
    },
    /// Deploy a release to a group (`--release NAME@VERSION --group G`, in phases with
    /// `--phases`), or list, show, pause, resume and abort deployments.
    Deploy {
        #[command(flatten)]
        api: ApiFlags,
        #[arg(long, value_name = "NAME@VERSION", requires = "group")]
        release: Option<String>,
        #[arg(long, value_name = "G", requires = "release")]
        group: Option<String>,
        #[command(flatten)]
        rollout: RolloutFlags,
        #[arg(long)]
        json: bool,
        #[command(subcommand)]
        command: Option<DeployCommand>,
    },
    /// Make, list and revoke management API tokens (admin).
    Tokens {
        #[command(flatten)]
        api: ApiFlags,
        #[command(subcommand)]
        command: TokensCommand,
    },
    /// Show or verify the audit log, offline, from the data folder.
    #[command(subcommand)]
    Audit(AuditCommand),
}

#[derive(Debug, Subcommand)]
pub enum RootCommand {
    /// Create root v1, signed by every --root-key given.
    Create {
        #[command(flatten)]
        roles: RoleFlags,
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
    /// Create the next root version, signed by the current root keys (--sign-key) and
    /// by the new ones (--root-key).
    Rotate {
        /// The root devices trust now.
        #[arg(long, value_name = "PATH")]
        current: PathBuf,
        /// A current root secret key (repeat until its threshold is met).
        #[arg(long = "sign-key", required = true, value_name = "K")]
        sign_keys: Vec<PathBuf>,
        #[command(flatten)]
        roles: RoleFlags,
        #[arg(long, value_name = "PATH")]
        out: PathBuf,
    },
}

#[derive(Debug, Subcommand)]
pub enum ReleaseCommand {
    /// Cut files into chunks and write an unsigned release manifest.
    Create(CreateArgs),
    /// Add one signature to a release file, in place.
    Sign {
        #[arg(long, value_name = "K")]
        key: PathBuf,
        #[arg(value_name = "REL")]
        file: PathBuf,
    },
    /// Check a release as a device would; exit 0 only when it is valid.
    Verify {
        #[arg(long, value_name = "PATH")]
        root: PathBuf,
        #[arg(value_name = "REL")]
        file: PathBuf,
        /// Also require this device type.
        #[arg(long, value_name = "T")]
        device_type: Option<String>,
        /// Also require a counter of at least C (the installed one).
        #[arg(long, value_name = "C")]
        min_counter: Option<u64>,
    },
    /// Show what a release holds (nothing is verified).
    Inspect {
        #[arg(value_name = "REL")]
        file: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// Runs one parsed command.
pub fn run(cli: Cli) -> Result<()> {
    let now = crate::time::now();
    match cli.command {
        Command::Keygen { out } => offline::keygen::run(&out),
        Command::Root(RootCommand::Create { roles, out }) => {
            offline::root::create(&roles, &out, now)
        }
        Command::Root(RootCommand::Rotate {
            current,
            sign_keys,
            roles,
            out,
        }) => offline::root::rotate(&current, &sign_keys, &roles, &out, now),
        Command::Release(ReleaseCommand::Create(args)) => offline::release_create::run(&args, now),
        Command::Release(ReleaseCommand::Sign { key, file }) => {
            offline::release_sign::run(&key, &file)
        }
        Command::Release(ReleaseCommand::Verify {
            root,
            file,
            device_type,
            min_counter,
        }) => offline::release_verify::run(&root, &file, device_type.as_deref(), min_counter, now),
        Command::Release(ReleaseCommand::Inspect { file, json }) => {
            offline::release_inspect::run(&file, json)
        }
        Command::Serve(args) => crate::service::run(args),
        Command::Publish {
            api,
            release,
            files,
            json,
        } => admin::publish::run(&admin::Api::new(&api)?, &release, &files, json),
        Command::Devices { api, command } => admin::devices::run(&admin::Api::new(&api)?, command),
        Command::Deploy {
            api,
            release,
            group,
            rollout,
            json,
            command,
        } => {
            let client = admin::Api::new(&api)?;
            match (command, release, group) {
                (Some(c), None, None) => admin::deploy::run(&client, c),
                (None, Some(r), Some(g)) => admin::deploy::create(&client, &r, &g, &rollout, json),
                _ => anyhow::bail!(
                    "give either --release NAME@VERSION --group G, or one of: list, show ID, pause ID, resume ID, abort ID"
                ),
            }
        }
        Command::Tokens { api, command } => admin::tokens::run(&admin::Api::new(&api)?, command),
        Command::Audit(command) => admin::audit::run(command),
    }
}
