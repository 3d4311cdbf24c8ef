//! `shoal-sim scale` on small fleets: the targets of DESIGN section 8 hold, the same
//! seed prints the same bytes, and faults cost time, not correctness.

use shoal_sim::scale::{Params, Report, ScaleError, run};
use std::process::Command;

fn small(seed: u64) -> Params {
    Params {
        sites: 3,
        devices_per_site: 10,
        seed,
        image_mib: 16,
        ..Params::default()
    }
}

fn seed() -> u64 {
    std::env::var("SHOAL_TEST_SEED")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1)
}

fn run_ok(p: &Params) -> Report {
    let r = run(p).expect("valid parameters");
    eprintln!(
        "seed {}: amplification {}, completion {:?} s, lower bound {} s, takeovers {}, bans {}",
        p.seed, r.wan_amplification, r.completion_s, r.lower_bound_s, r.takeovers, r.bans
    );
    r
}

#[test]
fn a_small_fleet_meets_the_targets() {
    let p = small(seed());
    let r = run_ok(&p);
    assert!(r.all_verified, "seed {}", p.seed);
    assert_eq!(r.devices, 30);
    assert_eq!(r.nodes.len(), 30);
    assert!(r.nodes.iter().all(|n| n.result.complete));
    assert!(
        r.wan_amplification <= 1.05,
        "seed {}: amplification {}",
        p.seed,
        r.wan_amplification
    );
    let ratio = r.completion_ratio.expect("complete");
    assert!(ratio <= 1.3, "seed {}: completion ratio {ratio}", p.seed);
    assert!(ratio >= 1.0, "faster than the WAN link allows: {ratio}");
    // Every node got every byte, from the WAN or the LAN.
    for n in &r.nodes {
        assert_eq!(
            n.result.bytes_wan + n.result.bytes_lan + n.result.bytes_local,
            r.unique_bytes
        );
    }
    // The WAN bytes are the nodes' WAN bytes (nobody died mid-transfer).
    let per_node: u64 = r.nodes.iter().map(|n| n.result.bytes_wan).sum();
    assert_eq!(per_node, r.wan_bytes);
    assert_eq!((r.takeovers, r.bans, r.drops), (0, 0, 0));
}

#[test]
fn the_same_seed_prints_the_same_json_and_another_seed_does_not() {
    let a = run_ok(&small(7)).to_json();
    let b = run_ok(&small(7)).to_json();
    assert_eq!(a, b);
    let c = run_ok(&small(8)).to_json();
    assert_ne!(a, c);
    for field in [
        "\"devices\": 30,",
        "\"sites\": 3,",
        "\"seed\": 7,",
        "\"wan_bytes\":",
        "\"unique_bytes\":",
        "\"wan_amplification\":",
        "\"completion_s\":",
        "\"lower_bound_s\":",
        "\"completion_ratio\":",
        "\"all_verified\": true,",
        "\"takeovers\":",
        "\"bans\":",
        "\"bytes_wan\":",
        "\"bytes_lan\":",
        "\"bytes_local\":",
    ] {
        assert!(a.contains(field), "{field} missing from\n{a}");
    }
}

#[test]
fn churn_and_hostile_peers_cost_time_not_correctness() {
    let p = Params {
        churn: 0.2,
        hostile: 0.1,
        ..small(seed())
    };
    let r = run_ok(&p);
    // round(0.1 × 10) = 1 hostile and round(0.2 × 10) = 2 dead per site.
    assert_eq!((r.hostile, r.dead), (3, 6));
    assert!(
        r.all_verified,
        "seed {}: a live honest node is incomplete",
        p.seed
    );
    for n in r
        .nodes
        .iter()
        .filter(|n| !n.result.dead && !n.result.hostile)
    {
        assert!(n.result.complete, "seed {}: {:?}", p.seed, n);
    }
    assert!(r.bans > 0, "seed {}: nobody met the hostile nodes", p.seed);
    // One hostile node per site: an honest node bans at most it, and drops nobody
    // (the dead are gone, not faulty).
    for n in r.nodes.iter().filter(|n| !n.result.hostile) {
        assert!(n.result.bans <= 1, "seed {}: {:?}", p.seed, n);
        assert_eq!(n.result.drops, 0, "seed {}: {:?}", p.seed, n);
    }
    // Faults cost WAN bytes, but far from one copy per node.
    assert!(
        r.wan_amplification < 1.5,
        "seed {}: {}",
        p.seed,
        r.wan_amplification
    );
}

#[test]
fn bad_parameters_are_refused_with_what_was_found() {
    let e = run(&Params {
        churn: 1.5,
        ..small(1)
    })
    .unwrap_err();
    assert_eq!(
        e,
        ScaleError::Share {
            what: "--churn",
            found: 1.5
        }
    );
    assert!(e.to_string().contains("found 1.5"));
    let e = run(&Params {
        sites: 0,
        ..small(1)
    })
    .unwrap_err();
    assert_eq!(e, ScaleError::Zero { what: "--sites" });
}

#[test]
fn the_command_prints_one_json_object() {
    let args = [
        "scale",
        "--sites",
        "2",
        "--devices-per-site",
        "5",
        "--seed",
        "3",
        "--image-mib",
        "4",
        "--json",
    ];
    let out = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_shoal-sim"))
            .args(args)
            .output()
            .expect("shoal-sim runs")
    };
    let a = out(&args);
    assert!(a.status.success(), "{}", String::from_utf8_lossy(&a.stderr));
    let text = String::from_utf8(a.stdout.clone()).expect("utf-8");
    assert!(text.starts_with('{') && text.trim_end().ends_with('}'));
    assert!(text.contains("\"devices\": 10,"));
    assert_eq!(a.stdout, out(&args).stdout);
    let bad = out(&["scale", "--hostile", "2"]);
    assert!(!bad.status.success());
    let err = String::from_utf8_lossy(&bad.stderr);
    assert!(
        err.contains("--hostile") && err.contains("found 2"),
        "{err}"
    );
}

/// `--wan-rtt-ms` and `--lan-latency-us` reach the model: a request's first byte comes
/// that much later, so the site completes later (model time: no wall clock involved).
#[test]
fn the_latency_flags_delay_the_model() {
    let completion = |flag: &str, value: &str| {
        let out = Command::new(env!("CARGO_BIN_EXE_shoal-sim"))
            .args([
                "scale",
                "--sites",
                "1",
                "--devices-per-site",
                "5",
                "--image-mib",
                "4",
                "--json",
                flag,
                value,
            ])
            .output()
            .expect("shoal-sim runs");
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
        let r: serde_json::Value = serde_json::from_slice(&out.stdout).expect("one JSON object");
        r["completion_s"].as_f64().expect("complete")
    };
    let (near, far) = (
        completion("--wan-rtt-ms", "0"),
        completion("--wan-rtt-ms", "200"),
    );
    // at least one WAN request waits out the round trip before the last chunk lands
    assert!(far >= near + 0.2, "RTT 0: {near} s, RTT 200 ms: {far} s");
    let (near, far) = (
        completion("--lan-latency-us", "0"),
        completion("--lan-latency-us", "20000"),
    );
    assert!(far > near, "LAN latency 0: {near} s, 20 ms: {far} s");
}
