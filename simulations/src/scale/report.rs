//! The scale simulation's summary and its JSON form (written by hand: a fixed field
//! order and Rust's shortest round-trip float format keep it byte-identical per seed).

use super::Params;
use super::site::{NodeResult, SiteResult};
use shoal_core::sched::ChunkInfo;
use std::fmt::Write;

/// One node in the report.
#[derive(Debug, Clone, PartialEq)]
pub struct NodeLine {
    pub site: u32,
    pub node: u32,
    pub result: NodeResult,
}

#[derive(Debug, Clone, PartialEq)]
pub struct Report {
    pub devices: u64,
    pub sites: u32,
    pub seed: u64,
    pub chunks: usize,
    pub unique_bytes: u64,
    pub wan_bytes: u64,
    pub wan_amplification: f64,
    /// The slowest site's completion; `None` if some live honest node never completed.
    pub completion_s: Option<f64>,
    pub lower_bound_s: f64,
    pub completion_ratio: Option<f64>,
    pub all_verified: bool,
    pub takeovers: u64,
    pub bans: u64,
    pub drops: u64,
    pub dead: u64,
    pub hostile: u64,
    pub nodes: Vec<NodeLine>,
}

impl Report {
    pub fn new(p: &Params, chunks: &[ChunkInfo], sites: &[SiteResult]) -> Report {
        let unique_bytes: u64 = chunks.iter().map(|c| u64::from(c.len)).sum();
        let wan_bytes = sites.iter().map(|s| s.wan_bytes).sum();
        let nodes: Vec<NodeLine> = sites
            .iter()
            .enumerate()
            .flat_map(|(s, r)| {
                r.nodes.iter().enumerate().map(move |(n, res)| NodeLine {
                    site: s as u32,
                    node: n as u32,
                    result: res.clone(),
                })
            })
            .collect();
        let all_verified = sites.iter().all(|s| s.all_verified);
        let completion_s = if all_verified {
            Some(
                sites
                    .iter()
                    .filter_map(|s| s.completion_s)
                    .fold(0.0f64, f64::max),
            )
        } else {
            None
        };
        let lower_bound_s = p.lower_bound_s(chunks);
        let sum = |f: fn(&NodeResult) -> u64| nodes.iter().map(|n| f(&n.result)).sum::<u64>();
        Report {
            devices: u64::from(p.sites) * u64::from(p.devices_per_site),
            sites: p.sites,
            seed: p.seed,
            chunks: chunks.len(),
            unique_bytes,
            wan_bytes,
            wan_amplification: wan_bytes as f64 / (unique_bytes as f64 * f64::from(p.sites)),
            completion_s,
            lower_bound_s,
            completion_ratio: completion_s.map(|c| c / lower_bound_s),
            all_verified,
            takeovers: sum(|n| n.takeovers),
            bans: sum(|n| n.bans),
            drops: sum(|n| n.drops),
            dead: sum(|n| u64::from(n.dead)),
            hostile: sum(|n| u64::from(n.hostile)),
            nodes,
        }
    }

    /// One JSON object, fields in a fixed order, one node per line.
    pub fn to_json(&self) -> String {
        let mut o = String::new();
        o.push_str("{\n");
        let mut field = |name: &str, value: String| {
            let _ = writeln!(o, "  \"{name}\": {value},");
        };
        field("devices", self.devices.to_string());
        field("sites", self.sites.to_string());
        field("seed", self.seed.to_string());
        field("chunks", self.chunks.to_string());
        field("unique_bytes", self.unique_bytes.to_string());
        field("wan_bytes", self.wan_bytes.to_string());
        field("wan_amplification", num(Some(self.wan_amplification)));
        field("completion_s", num(self.completion_s));
        field("lower_bound_s", num(Some(self.lower_bound_s)));
        field("completion_ratio", num(self.completion_ratio));
        field("all_verified", self.all_verified.to_string());
        field("takeovers", self.takeovers.to_string());
        field("bans", self.bans.to_string());
        field("drops", self.drops.to_string());
        field("dead", self.dead.to_string());
        field("hostile", self.hostile.to_string());
        o.push_str("  \"nodes\": [\n");
        for (i, n) in self.nodes.iter().enumerate() {
            let r = &n.result;
            let _ = write!(
                o,
                "    {{\"site\": {}, \"node\": {}, \"bytes_wan\": {}, \"bytes_lan\": {}, \
                 \"bytes_local\": {}, \"complete\": {}, \"done_s\": {}, \"hostile\": {}, \
                 \"dead\": {}, \"takeovers\": {}, \"bans\": {}, \"drops\": {}}}",
                n.site,
                n.node,
                r.bytes_wan,
                r.bytes_lan,
                r.bytes_local,
                r.complete,
                num(r.done_s),
                r.hostile,
                r.dead,
                r.takeovers,
                r.bans,
                r.drops
            );
            o.push_str(if i + 1 < self.nodes.len() {
                ",\n"
            } else {
                "\n"
            });
        }
        o.push_str("  ]\n}\n");
        o
    }
}

/// A JSON number, or `null` for none (and for what JSON cannot hold).
fn num(x: Option<f64>) -> String {
    match x {
        Some(v) if v.is_finite() => format!("{v}"),
        _ => "null".to_string(),
    }
}
