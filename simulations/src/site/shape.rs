//! The WAN's rate: a token bucket (`tc qdisc … tbf`) on the WAN veth at both ends, so
//! seeder → site and site → seeder are each limited to `--wan-mbit` (tc's `mbit` is
//! 10^6 bit/s). tbf, not netem: it is what a shaping router or a thin line does, and
//! netem is not available everywhere.

use super::netns::{WAN_IF, run};
use anyhow::Result;

/// tbf's bucket: at least one timer tick's worth of bytes at the rate (HZ can be 100),
/// and at least a few full-size packets.
pub fn burst_bytes(mbit: u64) -> u64 {
    (mbit * 1_000_000 / 8 / 100).max(16 * 1024)
}

/// Limits egress of the WAN interface in each of `namespaces` to `mbit`.
pub fn limit_wan(namespaces: &[&str], mbit: u64) -> Result<()> {
    let rate = format!("{mbit}mbit");
    let burst = burst_bytes(mbit).to_string();
    for ns in namespaces {
        // 50 ms of queue at the rate: enough for a congestion controller to keep the
        // link full without turning the queue into the bottleneck's delay.
        run(
            "tc",
            &[
                "-n", ns, "qdisc", "add", "dev", WAN_IF, "root", "tbf", "rate", &rate, "burst",
                &burst, "latency", "50ms",
            ],
        )?;
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_bucket_covers_a_tick_and_some_packets() {
        assert_eq!(burst_bytes(1), 16 * 1024);
        assert_eq!(burst_bytes(20), 25_000);
        assert_eq!(burst_bytes(1000), 1_250_000);
    }
}
