use clap::{Parser, Subcommand};
use shoal_node::agent::{LanOptions, RunOptions, run};
use shoal_node::config::DataDir;
use shoal_node::init::{InitArgs, init};
use shoal_node::status::Status;
use std::path::PathBuf;
use std::process::ExitCode;

#[derive(Debug, Parser)]
#[command(name = "shoal-node", version, about = "shoal's device agent")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Set up a device: identity, root, seeder, type, site, target.
    Init(Box<InitArgs>),
    /// Run the agent: poll for the assigned release, fetch, verify, install.
    Run {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[command(flatten)]
        lan: LanArgs,
        /// WAN bytes per second.
        #[arg(long, value_name = "BYTES/s")]
        wan_rate: Option<u64>,
        /// Exit 0 once the assigned release is installed; non-zero on a definite failure.
        #[arg(long)]
        exit_after_install: bool,
        /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9100).
        #[arg(long, value_name = "ADDR")]
        metrics: Option<std::net::SocketAddr>,
    },
    /// Install from a release file and its payload files, offline (same checks).
    Import {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        /// The signed release file.
        #[arg(value_name = "REL")]
        release: PathBuf,
        /// The payload files it was made from.
        #[arg(required = true, value_name = "FILE")]
        files: Vec<PathBuf>,
    },
    /// Show the device's state (works while `run` is running).
    Status {
        #[arg(long, value_name = "DIR")]
        data: PathBuf,
        #[arg(long)]
        json: bool,
    },
}

/// The LAN swarm's flags.
#[derive(Debug, clap::Args)]
struct LanArgs {
    /// Where the LAN swarm listens (UDP, QUIC); repeatable. Default: 0.0.0.0:0.
    #[arg(long, value_name = "ADDR")]
    listen: Vec<std::net::SocketAddr>,
    /// A peer to dial on the LAN (for networks that block multicast); repeatable.
    #[arg(long, value_name = "ADDR")]
    peer: Vec<std::net::SocketAddr>,
    /// Turn the LAN swarm off: fetch everything from the seeder.
    #[arg(long)]
    no_lan: bool,
    /// Fetch from peers but serve them nothing.
    #[arg(long)]
    no_serve: bool,
    /// LAN bytes per second (sent and received), if limited.
    #[arg(long, value_name = "BYTES/s")]
    lan_rate: Option<u64>,
}

impl LanArgs {
    fn into_options(self) -> LanOptions {
        LanOptions {
            enabled: !self.no_lan,
            listen: self.listen,
            peers: self.peer,
            serve: !self.no_serve,
            rate: self.lan_rate,
        }
    }
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info"));
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .init();
    let result: Result<(), String> = match cli.command {
        Command::Init(args) => init(&args)
            .map(|id| {
                println!("device id {id}");
                println!("public key {}", args.data.join("node.pub").display());
            })
            .map_err(|e| e.to_string()),
        Command::Run {
            data,
            lan,
            wan_rate,
            exit_after_install,
            metrics,
        } => match tokio::runtime::Runtime::new() {
            Ok(rt) => rt
                .block_on(run(
                    DataDir(data),
                    RunOptions {
                        wan_rate,
                        exit_after_install,
                        lan: lan.into_options(),
                        metrics,
                    },
                ))
                .map_err(|e| e.to_string()),
            Err(e) => Err(format!("cannot start the async runtime: {e}")),
        },
        Command::Import {
            data,
            release,
            files,
        } => shoal_node::import::import(DataDir(data), &release, &files)
            .map(|i| {
                println!(
                    "installed {} {} (counter {}), {} bytes",
                    i.name, i.version, i.counter, i.bytes
                )
            })
            .map_err(|e| format!("{e}; the previous install is unchanged")),
        Command::Status { data, json } => show_status(&DataDir(data), json),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("shoal-node: {}", e.replace('\n', " "));
            ExitCode::FAILURE
        }
    }
}

fn show_status(dir: &DataDir, json: bool) -> Result<(), String> {
    let s =
        Status::load(&dir.status()).map_err(|e| format!("{e} (has `shoal-node run` started?)"))?;
    if json {
        println!(
            "{}",
            serde_json::to_string_pretty(&s).map_err(|e| e.to_string())?
        );
        return Ok(());
    }
    println!("device    {}", s.device_id);
    println!("state     {}", s.state);
    println!(
        "installed {}",
        s.installed.as_deref().unwrap_or("nothing yet")
    );
    if let Some(r) = &s.release {
        println!("release   {r}");
        println!(
            "progress  {}/{} bytes (local {}, WAN {}, LAN {})",
            s.done_bytes, s.total_bytes, s.bytes_local, s.bytes_wan, s.bytes_lan
        );
    }
    if let Some(t) = s.stale_head_since {
        println!(
            "stale head since {t} (unix seconds): the seeder's word on what to run has expired"
        );
    }
    if let Some(e) = &s.error {
        println!("error     {e}");
    }
    Ok(())
}
