//! `shoal-sim scale`: the real core scheduler for thousands of nodes over many sites,
//! on a flow-level network model, deterministic from a seed (DESIGN section 8).
//!
//! # Model
//!
//! - **Release:** a synthetic image of `--image-mib` MiB cut into chunks of about
//!   64 KiB (16..256 KiB), sizes and hashes drawn from `--seed` (`release`).
//! - **Sites:** `--sites` sites of `--devices-per-site` nodes. Every node runs a
//!   `shoal_core::sched::Scheduler`, starts empty, reaches the seeder, and knows the
//!   other nodes of its site from time zero. Sites share nothing, so each is simulated
//!   alone from time zero, on as many threads as the machine has cores, and the results
//!   are merged in site order (the output does not depend on the thread count); the
//!   fleet's completion is the slowest site's.
//! - **Network** (`net`): per site one WAN link of `--wan-mbit` (default 100 Mbit/s)
//!   shared equally by the site's WAN flows; per node a LAN uplink and downlink of
//!   `--lan-mbit` (default 1000 Mbit/s) each, shared equally by that node's flows; a
//!   flow runs at the smallest share on its path. LAN requests start after
//!   `--lan-latency-us` (500 µs), WAN requests after `--wan-rtt-ms` (20 ms). The
//!   seeder has unlimited capacity. Time advances in ticks of `--tick-us` (1 ms)
//!   while anything flows, and jumps to the next event otherwise.
//! - **Announcements:** a node that lands a chunk tells every peer of its site that
//!   it still talks to, at once.
//! - **Faults:** `--hostile P`: in each site, round(P × N) nodes (a seeded choice)
//!   serve bad chunks (they fetch honestly; whoever gets a chunk from one is told by the
//!   model that it failed its hash, as a real node would find, and bans the sender).
//!   `--churn P`: round(P × N) of the other nodes die, each at a time uniform in
//!   `[0, lower bound)` (their peers get `handle_peer_gone`; bytes a dead node was
//!   pulling over the WAN count as crossed).
//!
//! # Output
//!
//! One JSON object (see [`Report::to_json`]): `wan_amplification` is
//! `wan_bytes / (unique_bytes × sites)`, `lower_bound_s` is `unique_bytes / WAN rate`
//! of one site, `completion_ratio` is `completion_s / lower_bound_s`, `all_verified`
//! says every live honest node's scheduler holds every chunk. No bytes exist in the
//! model and none is hashed: a chunk is held once a flow of its length was delivered
//! from the seeder or an honest peer (a hostile peer's is refused, as the hash check
//! would), so `all_verified` counts chunks held, where `shoal-sim site` hashes each
//! device's installed image. The same arguments print the same bytes: no wall clock,
//! no hash-map order.

mod net;
pub mod release;
mod report;
mod site;

pub use report::{NodeLine, Report};
pub use site::{NodeResult, SiteResult};

use std::fmt;

/// The simulation's knobs; [`Params::default`] is the command line's defaults.
#[derive(Debug, Clone, PartialEq)]
pub struct Params {
    pub sites: u32,
    pub devices_per_site: u32,
    pub seed: u64,
    pub image_mib: u64,
    pub wan_mbit: f64,
    pub lan_mbit: f64,
    /// Share of nodes that die.
    pub churn: f64,
    /// Share of nodes that serve bad chunks.
    pub hostile: f64,
    pub tick_us: u64,
    pub lan_latency_us: u64,
    pub wan_rtt_us: u64,
    /// The scheduler's `wan_in_flight`.
    pub wan_in_flight: usize,
    /// The scheduler's `lan_total`.
    pub lan_in_flight: usize,
}

impl Default for Params {
    fn default() -> Params {
        Params {
            sites: 1,
            devices_per_site: 10,
            seed: 1,
            image_mib: 64,
            wan_mbit: 100.0,
            lan_mbit: 1000.0,
            churn: 0.0,
            hostile: 0.0,
            tick_us: 1_000,
            lan_latency_us: 500,
            wan_rtt_us: 20_000,
            wan_in_flight: 2,
            lan_in_flight: 16,
        }
    }
}

/// Parameters the simulation cannot run with.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub enum ScaleError {
    /// A count that must be at least one.
    Zero { what: &'static str },
    /// A share outside `[0, 1]`.
    Share { what: &'static str, found: f64 },
    /// A rate that must be positive and finite.
    Rate { what: &'static str, found: f64 },
}

impl fmt::Display for ScaleError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            ScaleError::Zero { what } => write!(f, "{what} must be at least 1, found 0"),
            ScaleError::Share { what, found } => {
                write!(f, "{what} must be a share between 0 and 1, found {found}")
            }
            ScaleError::Rate { what, found } => {
                write!(f, "{what} must be a positive rate, found {found}")
            }
        }
    }
}

impl std::error::Error for ScaleError {}

impl Params {
    pub fn check(&self) -> Result<(), ScaleError> {
        for (what, n) in [
            ("--sites", u64::from(self.sites)),
            ("--devices-per-site", u64::from(self.devices_per_site)),
            ("--image-mib", self.image_mib),
            ("--wan-in-flight", self.wan_in_flight as u64),
            ("--lan-in-flight", self.lan_in_flight as u64),
        ] {
            if n == 0 {
                return Err(ScaleError::Zero { what });
            }
        }
        for (what, found) in [("--churn", self.churn), ("--hostile", self.hostile)] {
            if !(0.0..=1.0).contains(&found) {
                return Err(ScaleError::Share { what, found });
            }
        }
        for (what, found) in [("--wan-mbit", self.wan_mbit), ("--lan-mbit", self.lan_mbit)] {
            if !(found.is_finite() && found > 0.0) {
                return Err(ScaleError::Rate { what, found });
            }
        }
        Ok(())
    }

    pub fn wan_bytes_per_s(&self) -> f64 {
        self.wan_mbit * 125_000.0
    }

    pub fn lan_bytes_per_s(&self) -> f64 {
        self.lan_mbit * 125_000.0
    }

    /// One site's unique bytes over its WAN link: no site can finish sooner.
    pub fn lower_bound_s(&self, chunks: &[shoal_core::sched::ChunkInfo]) -> f64 {
        let unique: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
        unique as f64 / self.wan_bytes_per_s()
    }
}

/// Runs every site and sums up.
pub fn run(p: &Params) -> Result<Report, ScaleError> {
    p.check()?;
    let chunks = release::chunks(p.seed, p.image_mib << 20);
    // Sites are independent: split them over threads, merge in site order.
    let threads = std::thread::available_parallelism()
        .map_or(1, |n| n.get())
        .clamp(1, p.sites as usize);
    let mut sites: Vec<Option<SiteResult>> = vec![None; p.sites as usize];
    std::thread::scope(|scope| {
        let chunks = &chunks;
        let handles: Vec<_> = (0..threads)
            .map(|t| {
                scope.spawn(move || {
                    (0..p.sites)
                        .filter(|s| *s as usize % threads == t)
                        .map(|s| (s, site::run(p, s, chunks)))
                        .collect::<Vec<_>>()
                })
            })
            .collect();
        for h in handles {
            // A site thread only panics on a bug; pass the panic on rather than hide it.
            for (s, r) in h.join().unwrap_or_else(|e| std::panic::resume_unwind(e)) {
                sites[s as usize] = Some(r);
            }
        }
    });
    let sites: Vec<SiteResult> = sites.into_iter().flatten().collect();
    Ok(Report::new(p, &chunks, &sites))
}
