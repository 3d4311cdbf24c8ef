//! The site's network, built from namespaces that this run creates and names after its
//! pid (`sh<pid-hex>-…`), so that two runs coexist:
//!
//! ```text
//!  cloud (seeder)              router                        device i
//!  wan 10.66.0.1/30 ==WAN== wan 10.66.0.2/30
//!                           br0 10.67.0.1/16 -- d<i> ~~~ eth0 10.67.x.y/16
//! ```
//!
//! The WAN is one veth pair between the cloud and the router namespace (shaped by
//! `shape`); the site LAN is a bridge in the router namespace with one veth per
//! device. Devices route to the cloud through the router. Interface names live inside
//! the namespaces (each veth is created straight into its two namespaces), so they never
//! meet another run's. Every address is inside these namespaces.

use crate::cleanup;
use anyhow::{Context, Result, bail};
use std::net::Ipv4Addr;
use std::process::Command;

/// The addresses and names of one run's site.
#[derive(Debug, Clone)]
pub struct Topology {
    pub cloud: String,
    pub router: String,
    pub devices: Vec<String>,
}

/// The seeder's address, in the cloud namespace.
pub const SEEDER_IP: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 1);
const ROUTER_WAN_IP: Ipv4Addr = Ipv4Addr::new(10, 66, 0, 2);
const ROUTER_LAN_IP: Ipv4Addr = Ipv4Addr::new(10, 67, 0, 1);
/// The WAN interface's name, at both ends.
pub const WAN_IF: &str = "wan";
/// A device's interface to the site LAN.
pub const DEVICE_IF: &str = "eth0";
/// Bridge ports per bridge are limited (1024 in Linux); this keeps well inside.
pub const MAX_DEVICES: usize = 1000;

/// Device `i`'s address on the site LAN (10.67.0.10 onwards).
pub fn device_ip(i: usize) -> Ipv4Addr {
    let h = i as u32 + 10;
    Ipv4Addr::new(10, 67, (h >> 8) as u8, (h & 0xff) as u8)
}

/// This run's namespace names start with `sh<pid-hex>-` (`-` is no hex digit, so no
/// other run's prefix is a prefix of it).
pub fn prefix() -> String {
    format!("sh{:x}-", std::process::id())
}

impl Topology {
    /// The names for a run with `devices` devices, prefixed by [`prefix`].
    pub fn named(devices: usize) -> Topology {
        let p = prefix();
        Topology {
            cloud: format!("{p}c"),
            router: format!("{p}r"),
            devices: (0..devices).map(|i| format!("{p}d{i}")).collect(),
        }
    }

    /// Creates the namespaces, links, addresses and routes. Each namespace is created
    /// and registered for removal at once (`cleanup::netns`).
    pub fn build(&self) -> Result<()> {
        if self.devices.len() > MAX_DEVICES {
            bail!(
                "expected at most {MAX_DEVICES} devices on one site bridge, found {}",
                self.devices.len()
            );
        }
        for ns in self.all() {
            cleanup::netns(ns, || ip(&["netns", "add", ns]))?;
            ip(&["-n", ns, "link", "set", "lo", "up"])?;
        }
        let (c, r) = (self.cloud.as_str(), self.router.as_str());
        // the WAN
        ip(&[
            "link", "add", WAN_IF, "netns", c, "type", "veth", "peer", "name", WAN_IF, "netns", r,
        ])?;
        addr_up(c, WAN_IF, &format!("{SEEDER_IP}/30"))?;
        addr_up(r, WAN_IF, &format!("{ROUTER_WAN_IP}/30"))?;
        ip(&[
            "-n",
            c,
            "route",
            "add",
            "10.67.0.0/16",
            "via",
            &ROUTER_WAN_IP.to_string(),
        ])?;
        // the site LAN
        ip(&["-n", r, "link", "add", "br0", "type", "bridge"])?;
        addr_up(r, "br0", &format!("{ROUTER_LAN_IP}/16"))?;
        forward(r)?;
        for (i, d) in self.devices.iter().enumerate() {
            let port = format!("d{i}");
            ip(&[
                "link", "add", &port, "netns", r, "type", "veth", "peer", "name", DEVICE_IF,
                "netns", d,
            ])?;
            ip(&["-n", r, "link", "set", &port, "master", "br0", "up"])?;
            addr_up(d, DEVICE_IF, &format!("{}/16", device_ip(i)))?;
            ip(&[
                "-n",
                d,
                "route",
                "add",
                "default",
                "via",
                &ROUTER_LAN_IP.to_string(),
            ])?;
        }
        Ok(())
    }

    /// Every namespace of this run, in creation order.
    pub fn all(&self) -> impl Iterator<Item = &String> {
        [&self.cloud, &self.router].into_iter().chain(&self.devices)
    }
}

fn addr_up(ns: &str, dev: &str, cidr: &str) -> Result<()> {
    ip(&["-n", ns, "addr", "add", cidr, "dev", dev])?;
    ip(&["-n", ns, "link", "set", dev, "up"])
}

/// Turns on IPv4 forwarding in `ns` (a per-namespace setting, written from inside it;
/// no `sysctl` binary needed).
fn forward(ns: &str) -> Result<()> {
    run(
        "ip",
        &[
            "netns",
            "exec",
            ns,
            "sh",
            "-c",
            "echo 1 > /proc/sys/net/ipv4/ip_forward",
        ],
    )
}

/// `ip ARGS`, failing with its message.
pub fn ip(args: &[&str]) -> Result<()> {
    run("ip", args)
}

/// Runs `program args`, failing with what it printed on stderr.
pub fn run(program: &str, args: &[&str]) -> Result<()> {
    let out = Command::new(program)
        .args(args)
        .output()
        .with_context(|| format!("cannot run `{program}` (is iproute2 installed?)"))?;
    if !out.status.success() {
        bail!(
            "`{program} {}` failed: {}",
            args.join(" "),
            String::from_utf8_lossy(&out.stderr).trim()
        );
    }
    Ok(())
}

/// The namespaces whose names start with `prefix` (`ip netns list`).
pub fn existing(prefix: &str) -> Result<Vec<String>> {
    let out = Command::new("ip")
        .args(["netns", "list"])
        .output()
        .context("cannot run `ip netns list`")?;
    Ok(String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(prefix))
        .map(str::to_string)
        .collect())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn device_addresses_are_distinct_and_inside_the_site_range() {
        let ips: std::collections::BTreeSet<_> = (0..MAX_DEVICES).map(device_ip).collect();
        assert_eq!(ips.len(), MAX_DEVICES);
        for ip in &ips {
            let o = ip.octets();
            assert_eq!((o[0], o[1]), (10, 67));
            assert!(*ip != ROUTER_LAN_IP && *ip != Ipv4Addr::new(10, 67, 0, 0));
            assert!(
                *ip != Ipv4Addr::new(10, 67, 255, 255),
                "the broadcast address"
            );
        }
    }

    #[test]
    fn names_carry_the_run_and_fit_in_an_interface_name() {
        let t = Topology::named(MAX_DEVICES);
        let p = prefix();
        for n in t.all() {
            assert!(n.starts_with(&p) && n.len() <= 15, "{n}");
        }
        // the largest pid Linux hands out (pid_max's ceiling, 2^22)
        let worst = format!("sh{:x}-d{}", 1u32 << 22, MAX_DEVICES - 1);
        assert!(worst.len() <= 15, "{worst}");
    }
}
