//! The site run's figures: one JSON object for tools and CI (`--json`), or a few lines
//! for people. Field meanings:
//!
//! - `wan_bytes`: bytes that crossed the WAN toward the site (the router's WAN
//!   interface, rx), from deploy until the last device installed; `wan_bytes_up` the
//!   other way.
//! - `unique_bytes`: the distinct chunk bytes a device without them needs (for the
//!   second release: those the first did not hold). The least a site can fetch.
//! - `wan_amplification`: `wan_bytes / unique_bytes`; about 1 when each chunk crosses
//!   the WAN once for the whole site, about `devices` when every device fetches alone.
//! - `completion_s`: deploy to the last device's install; `lower_bound_s`:
//!   `unique_bytes` at the WAN rate; `completion_ratio` the one over the other.
//! - `wire_overhead`: what the devices' interfaces received over what the nodes count
//!   as received (WAN + LAN), less 1: the headers (Ethernet, IP, UDP, QUIC) and
//!   retransmissions. WAN amplification cannot go below 1 + this.
//! - per node: `bytes_wan`, `bytes_lan`, `bytes_local` as the node counts them
//!   (`shoal-node status`), `iface_rx_bytes`/`iface_tx_bytes` from its interface,
//!   `wan_chunks` and `takeovers` from its scheduler.

use serde::Serialize;

#[derive(Debug, Clone, Serialize)]
pub struct NodeReport {
    pub name: String,
    pub address: String,
    pub installed_s: f64,
    pub bytes_wan: u64,
    pub bytes_lan: u64,
    pub bytes_local: u64,
    pub iface_rx_bytes: u64,
    pub iface_tx_bytes: u64,
    /// Chunks the node fetched from the seeder, and how many of those another member
    /// was responsible for (takeovers: each a second WAN copy at worst).
    pub wan_chunks: u64,
    pub takeovers: u64,
    pub verified: bool,
}

/// One release's rollout over the site.
#[derive(Debug, Clone, Serialize)]
pub struct RoundReport {
    pub version: String,
    pub wan_bytes: u64,
    pub wan_bytes_up: u64,
    pub unique_bytes: u64,
    pub wan_amplification: f64,
    pub completion_s: f64,
    pub lower_bound_s: f64,
    pub completion_ratio: f64,
    pub wire_overhead: f64,
    pub all_verified: bool,
    pub nodes: Vec<NodeReport>,
}

/// The update (`--change-pct`): the same figures, and against the bytes changed.
#[derive(Debug, Clone, Serialize)]
pub struct SecondReport {
    pub change_pct: u64,
    pub changed_bytes: u64,
    pub wan_bytes_over_changed: f64,
    #[serde(flatten)]
    pub round: RoundReport,
}

#[derive(Debug, Clone, Serialize)]
pub struct SiteReport {
    pub devices: usize,
    pub wan_mbit: u64,
    pub image_mib: u64,
    /// `lan` (sharing on) or `direct` (`--no-lan`: every device from the seeder).
    pub baseline: &'static str,
    /// `static` (`--peer` lists and mDNS) or `mdns` (mDNS alone).
    pub discovery: &'static str,
    pub seed: u64,
    #[serde(flatten)]
    pub first: RoundReport,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub second: Option<SecondReport>,
}

impl RoundReport {
    pub fn new(
        version: String,
        wan: (u64, u64),
        unique_bytes: u64,
        completion_s: f64,
        wan_mbit: u64,
        nodes: Vec<NodeReport>,
    ) -> RoundReport {
        let rx: u64 = nodes.iter().map(|n| n.iface_rx_bytes).sum();
        let counted: u64 = nodes.iter().map(|n| n.bytes_wan + n.bytes_lan).sum();
        let lower_bound_s =
            (unique_bytes as f64 * 8.0 / (wan_mbit as f64 * 1e6) * 1e3).round() / 1e3;
        RoundReport {
            version,
            wan_bytes: wan.0,
            wan_bytes_up: wan.1,
            unique_bytes,
            wan_amplification: ratio(wan.0 as f64, unique_bytes as f64),
            completion_s,
            lower_bound_s,
            completion_ratio: ratio(completion_s, lower_bound_s),
            wire_overhead: ratio(rx.saturating_sub(counted) as f64, counted as f64),
            all_verified: nodes.iter().all(|n| n.verified),
            nodes,
        }
    }
}

/// `a / b`, 0 when `b` is 0 (nothing was needed), rounded to 4 decimals for reading.
pub fn ratio(a: f64, b: f64) -> f64 {
    if b > 0.0 {
        (a / b * 1e4).round() / 1e4
    } else {
        0.0
    }
}

const MIB: f64 = 1024.0 * 1024.0;

impl SiteReport {
    /// The lines for people.
    pub fn text(&self) -> String {
        let mut s = format!(
            "site: {} devices, WAN {} Mbit/s, {} MiB image, {} (seed {})\n",
            self.devices,
            self.wan_mbit,
            self.image_mib,
            if self.baseline == "direct" {
                "LAN sharing off (--baseline direct)"
            } else {
                "LAN sharing on"
            },
            self.seed
        );
        s += &self.first.text();
        if let Some(second) = &self.second {
            s += &format!(
                "update: {}% changed ({:.1} MiB); WAN bytes / changed bytes {:.2}\n",
                second.change_pct,
                second.changed_bytes as f64 / MIB,
                second.wan_bytes_over_changed
            );
            s += &second.round.text();
        }
        s
    }
}

impl RoundReport {
    fn text(&self) -> String {
        let mut s = format!(
            "release {}: WAN {:.1} MiB for {:.1} MiB unique: amplification {:.2} (headers add {:.1}% on the wire)\n  all installed in {:.1} s, lower bound {:.1} s: ratio {:.2}; {}\n",
            self.version,
            self.wan_bytes as f64 / MIB,
            self.unique_bytes as f64 / MIB,
            self.wan_amplification,
            self.wire_overhead * 100.0,
            self.completion_s,
            self.lower_bound_s,
            self.completion_ratio,
            if self.all_verified {
                "every device's image is the release's"
            } else {
                "SOME IMAGES DIFFER FROM THE RELEASE"
            }
        );
        s += &format!(
            "  {:<6} {:>9} {:>10} {:>10} {:>10} {:>10}  verified\n",
            "node", "installed", "WAN MiB", "LAN MiB", "local MiB", "rx MiB"
        );
        for n in &self.nodes {
            s += &format!(
                "  {:<6} {:>7.1} s {:>10.1} {:>10.1} {:>10.1} {:>10.1}  {}\n",
                n.name,
                n.installed_s,
                n.bytes_wan as f64 / MIB,
                n.bytes_lan as f64 / MIB,
                n.bytes_local as f64 / MIB,
                n.iface_rx_bytes as f64 / MIB,
                if n.verified { "yes" } else { "NO" }
            );
        }
        s
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn figures_follow_from_the_measurements() {
        let r = RoundReport::new("1".into(), (30_000_000, 1_000), 10_000_000, 8.0, 20, vec![]);
        assert_eq!(r.wan_amplification, 3.0);
        assert_eq!(r.lower_bound_s, 4.0);
        assert_eq!(r.completion_ratio, 2.0);
        let empty = RoundReport::new("2".into(), (5, 0), 0, 1.0, 20, vec![]);
        assert_eq!(empty.wan_amplification, 0.0);
        assert_eq!(empty.wire_overhead, 0.0);
    }

    #[test]
    fn the_json_has_the_fields_ci_reads() {
        let node = NodeReport {
            name: "d0".into(),
            address: "10.67.0.10".into(),
            installed_s: 1.0,
            bytes_wan: 1,
            bytes_lan: 2,
            bytes_local: 3,
            iface_rx_bytes: 4,
            iface_tx_bytes: 5,
            wan_chunks: 6,
            takeovers: 7,
            verified: false,
        };
        let round = RoundReport::new("1".into(), (2, 1), 1, 1.0, 1, vec![node]);
        // 4 bytes on the wire for 3 counted (wan 1 + lan 2)
        assert!((round.wire_overhead - 1.0 / 3.0).abs() < 1e-3);
        let report = SiteReport {
            devices: 1,
            wan_mbit: 1,
            image_mib: 1,
            baseline: "lan",
            discovery: "static",
            seed: 1,
            first: round.clone(),
            second: Some(SecondReport {
                change_pct: 10,
                changed_bytes: 1,
                wan_bytes_over_changed: 2.0,
                round,
            }),
        };
        let v = serde_json::to_value(&report).unwrap();
        for f in [
            "devices",
            "wan_bytes",
            "unique_bytes",
            "wan_amplification",
            "completion_s",
            "lower_bound_s",
            "completion_ratio",
            "wire_overhead",
            "all_verified",
        ] {
            assert!(v.get(f).is_some(), "{f} missing");
        }
        assert_eq!(v["all_verified"], false);
        assert_eq!(v["nodes"][0]["bytes_lan"], 2);
        assert_eq!(v["nodes"][0]["takeovers"], 7);
        assert_eq!(v["second"]["changed_bytes"], 1);
        assert_eq!(v["second"]["wan_bytes"], 2);
    }
}
