//! The flags of `shoal-node run`, shared by the binary and the test binaries that run
//! the same agent.

use crate::agent::{LanOptions, RunOptions};
use std::path::PathBuf;

#[derive(Debug, clap::Args)]
pub struct RunArgs {
    #[arg(long, value_name = "DIR")]
    pub data: PathBuf,
    #[command(flatten)]
    pub lan: LanArgs,
    /// WAN bytes per second.
    #[arg(long, value_name = "BYTES/s")]
    pub wan_rate: Option<u64>,
    /// Exit 0 once the assigned release is installed; non-zero on a definite failure.
    #[arg(long)]
    pub exit_after_install: bool,
    /// Serve Prometheus metrics over HTTP on this address (e.g. 127.0.0.1:9100).
    #[arg(long, value_name = "ADDR")]
    pub metrics: Option<std::net::SocketAddr>,
}

impl RunArgs {
    pub fn into_options(self) -> RunOptions {
        RunOptions {
            wan_rate: self.wan_rate,
            exit_after_install: self.exit_after_install,
            lan: self.lan.into_options(),
            metrics: self.metrics,
        }
    }
}

/// The LAN swarm's flags.
#[derive(Debug, clap::Args)]
pub struct LanArgs {
    /// Where the LAN swarm's xfer endpoint listens (UDP, QUIC). Default: 0.0.0.0 on a
    /// free port; mDNS discovery listens on the same IP.
    #[arg(long, value_name = "ADDR")]
    pub listen: Option<std::net::SocketAddr>,
    /// A peer's xfer address to dial on the LAN (for networks that block multicast);
    /// repeatable.
    #[arg(long, value_name = "ADDR")]
    pub peer: Vec<std::net::SocketAddr>,
    /// Turn the LAN swarm off: fetch everything from the seeder.
    #[arg(long)]
    pub no_lan: bool,
    /// Fetch from peers but serve them nothing.
    #[arg(long)]
    pub no_serve: bool,
    /// Do not look for peers with mDNS (use only `--peer`).
    #[arg(long)]
    pub no_mdns: bool,
    /// LAN bytes per second (sent and received), if limited.
    #[arg(long, value_name = "BYTES/s")]
    pub lan_rate: Option<u64>,
}

impl LanArgs {
    pub fn into_options(self) -> LanOptions {
        LanOptions {
            enabled: !self.no_lan,
            listen: self.listen,
            peers: self.peer,
            serve: !self.no_serve,
            rate: self.lan_rate,
            mdns: !self.no_mdns,
        }
    }
}
