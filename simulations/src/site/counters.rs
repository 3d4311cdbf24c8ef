//! Interface counters, read inside the namespace that holds the interface
//! (`ip netns exec NS cat /sys/class/net/IF/statistics/{rx,tx}_bytes`): what crossed a
//! link, headers and retransmissions included, whatever the programs say about
//! themselves.

use anyhow::{Context, Result, bail};
use std::process::Command;

/// Bytes received and sent by one interface at one moment.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Counters {
    pub rx: u64,
    pub tx: u64,
}

impl Counters {
    /// What moved since `before`.
    pub fn since(self, before: Counters) -> Counters {
        Counters {
            rx: self.rx.saturating_sub(before.rx),
            tx: self.tx.saturating_sub(before.tx),
        }
    }
}

/// Reads `dev`'s counters inside namespace `ns`.
pub fn read(ns: &str, dev: &str) -> Result<Counters> {
    let rx = format!("/sys/class/net/{dev}/statistics/rx_bytes");
    let tx = format!("/sys/class/net/{dev}/statistics/tx_bytes");
    let out = Command::new("ip")
        .args(["netns", "exec", ns, "cat", &rx, &tx])
        .output()
        .context("cannot run `ip netns exec … cat`")?;
    let text = String::from_utf8_lossy(&out.stdout);
    let numbers: Vec<u64> = text
        .split_whitespace()
        .filter_map(|w| w.parse().ok())
        .collect();
    match (out.status.success(), numbers.as_slice()) {
        (true, [rx, tx]) => Ok(Counters { rx: *rx, tx: *tx }),
        _ => bail!(
            "expected two byte counters for {dev} in namespace {ns}, found `{}` ({})",
            text.trim(),
            String::from_utf8_lossy(&out.stderr).trim()
        ),
    }
}
