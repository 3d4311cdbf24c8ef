//! One release rolled out over the site and measured: counters before, deploy, wait
//! until every device installed it, counters after, each device's figures and its
//! installed image checked against the manifest.

use super::counters::{self, Counters};
use super::netns::{DEVICE_IF, Topology, WAN_IF, device_ip};
use super::report::{NodeReport, RoundReport};
use crate::bins::Bins;
use crate::manifest;
use crate::node::{self, NodeSpec};
use crate::proc::Proc;
use crate::seeder::Seeder;
use crate::watch::{Watched, until_installed};
use anyhow::Result;
use shoal_core::Release;
use std::time::{Duration, Instant};

/// The running site.
pub struct Site<'a> {
    pub bins: &'a Bins,
    pub topology: &'a Topology,
    pub seeder: &'a Seeder,
    pub specs: &'a [NodeSpec],
    pub procs: &'a mut [Proc],
    pub wan_mbit: u64,
    pub bars: bool,
}

impl Site<'_> {
    /// Deploys `release` (already published) and measures its rollout; `unique_bytes`
    /// is what one device needs of it.
    pub fn roll_out(
        &mut self,
        release: &Release,
        unique_bytes: u64,
        timeout: Duration,
    ) -> Result<RoundReport> {
        let wan_before = counters::read(&self.topology.router, WAN_IF)?;
        let devices_before = self.device_counters()?;
        let t0 = Instant::now();
        self.seeder.deploy(&release.version)?;
        let mut watched = Watched::all(self.procs, self.specs);
        let times = until_installed(&mut watched, release.counter, t0, timeout, self.bars)?;
        let completion = times.iter().max().copied().unwrap_or_default();
        let wan = counters::read(&self.topology.router, WAN_IF)?.since(wan_before);
        let devices_after = self.device_counters()?;
        let mut nodes = Vec::with_capacity(self.specs.len());
        for (i, s) in self.specs.iter().enumerate() {
            let status = node::status(self.bins, &s.data)?;
            let wrong = manifest::check_installed(release, &s.target());
            for w in &wrong {
                eprintln!("shoal-sim: {}: {w}", s.name);
            }
            let iface = devices_after[i].since(devices_before[i]);
            nodes.push(NodeReport {
                name: s.name.clone(),
                address: device_ip(i).to_string(),
                installed_s: round3(times[i].as_secs_f64()),
                bytes_wan: status.bytes_wan,
                bytes_lan: status.bytes_lan,
                bytes_local: status.bytes_local,
                iface_rx_bytes: iface.rx,
                iface_tx_bytes: iface.tx,
                wan_chunks: status.fetch_wan_chunks,
                takeovers: status.fetch_takeovers,
                verified: wrong.is_empty(),
            });
        }
        Ok(RoundReport::new(
            release.version.clone(),
            (wan.rx, wan.tx),
            unique_bytes,
            round3(completion.as_secs_f64()),
            self.wan_mbit,
            nodes,
        ))
    }

    fn device_counters(&self) -> Result<Vec<Counters>> {
        self.topology
            .devices
            .iter()
            .map(|ns| counters::read(ns, DEVICE_IF))
            .collect()
    }
}

fn round3(x: f64) -> f64 {
    (x * 1e3).round() / 1e3
}
