//! CI's site run: `shoal-sim site` with 5 devices, a 20 Mbit/s WAN and a 16 MiB image,
//! as real processes in network namespaces (needs root: says "skipped" on stderr
//! otherwise, and fails instead when `SHOAL_CI` is set).
//! It asserts that every device holds the exact signed image, that the WAN carried at
//! most `MAX_WAN_AMPLIFICATION` x the unique bytes, and that no namespace of the run
//! is left behind. A second run of 3 devices gives them no `--peer` lists, so that
//! they must find each other by mDNS.

mod run_dir;

use run_dir::RunDir;
use std::process::Command;

const DEVICES: u64 = 5;

/// WAN bytes / unique bytes, the bound. Interface counters see whole frames
/// (Ethernet, IP, UDP and QUIC headers: about 5.4% over the payload on a 1500-byte MTU,
/// measured), so one copy of the image already counts about 1.054; the LAN swarm keeps
/// the rest to duplicates of a few chunks (without it, 5 devices measured 5.27).
const MAX_WAN_AMPLIFICATION: f64 = 1.10;

/// Time until every device installed / (unique bytes / WAN rate).
const MAX_COMPLETION_RATIO: f64 = 1.5;

/// Each device fetches at least the unique bytes from somewhere: the site as a whole
/// cannot have carried less than one copy over the WAN.
const MIN_WAN_AMPLIFICATION: f64 = 1.0;

fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Whether `test` can run here (it needs root for network namespaces). When it cannot,
/// it says so on stderr; under CI (`SHOAL_CI` set, as `.ci/run` does) a skip is a
/// failure, so that a CI that lost its root does not pass without running the site.
fn root_or_skip(test: &str) -> bool {
    if is_root() {
        return true;
    }
    let why = format!("{test}: skipped: needs root (network namespaces)");
    if std::env::var_os("SHOAL_CI").is_some() {
        panic!("{why}; SHOAL_CI is set, so a skip is a failure");
    }
    eprintln!("{why}");
    false
}

fn sim() -> Command {
    Command::new(env!("CARGO_BIN_EXE_shoal-sim"))
}

fn our_namespaces(pid: u32) -> Vec<String> {
    let out = Command::new("ip").args(["netns", "list"]).output().unwrap();
    String::from_utf8_lossy(&out.stdout)
        .lines()
        .filter_map(|l| l.split_whitespace().next())
        .filter(|n| n.starts_with(&format!("sh{pid:x}-")))
        .map(str::to_string)
        .collect()
}

#[test]
fn a_site_of_five_installs_the_exact_image_within_the_wan_bounds() {
    if !root_or_skip("a_site_of_five_installs_the_exact_image_within_the_wan_bounds") {
        return;
    }
    let r = site(&[
        "--devices",
        &DEVICES.to_string(),
        "--wan-mbit",
        "20",
        "--image-mib",
        "16",
    ]);
    println!("{r:#}");
    assert_eq!(r["devices"], DEVICES);
    assert_eq!(r["all_verified"], true);
    let nodes = r["nodes"].as_array().expect("nodes");
    assert_eq!(nodes.len() as u64, DEVICES);
    let unique = r["unique_bytes"].as_u64().unwrap();
    assert!(
        unique >= 16 * 1024 * 1024,
        "random data does not repeat: {unique}"
    );
    for n in nodes {
        assert_eq!(n["verified"], true, "{n}");
        let sum = ["bytes_wan", "bytes_lan", "bytes_local"]
            .iter()
            .map(|f| n[f].as_u64().unwrap())
            .sum::<u64>();
        assert_eq!(
            sum, unique,
            "a fresh device gets every unique byte once: {n}"
        );
        assert!(
            n["iface_rx_bytes"].as_u64().unwrap() >= unique,
            "its interface saw the image: {n}"
        );
    }
    let amp = r["wan_amplification"].as_f64().unwrap();
    assert!(
        (MIN_WAN_AMPLIFICATION..=MAX_WAN_AMPLIFICATION).contains(&amp),
        "WAN amplification {amp}, expected {MIN_WAN_AMPLIFICATION}..={MAX_WAN_AMPLIFICATION}"
    );
    // Headers are about 5.5% of a full packet; a device's interface also receives the
    // ACKs for what it serves its peers and the have-map traffic (8 to 11% in all,
    // measured on 16 MiB).
    let overhead = r["wire_overhead"].as_f64().unwrap();
    assert!(
        (0.0..0.15).contains(&overhead),
        "headers on the wire: {overhead}"
    );
    let wan = r["wan_bytes"].as_u64().unwrap() as f64;
    assert!((wan / unique as f64 - amp).abs() < 1e-3);
    // nothing moves faster than the WAN's rate
    let (completion, lower) = (
        r["completion_s"].as_f64().unwrap(),
        r["lower_bound_s"].as_f64().unwrap(),
    );
    assert!(
        lower > 0.0 && completion >= lower * 0.95,
        "{completion} s vs {lower} s"
    );
    assert!(
        completion <= lower * MAX_COMPLETION_RATIO,
        "completion {completion} s, over {MAX_COMPLETION_RATIO} x the lower bound {lower} s"
    );
}

/// Runs `shoal-sim site ARGS --json` and checks that no namespace is left; the report.
/// Runs `f` while no other site of this test binary runs: the runs measure time and
/// WAN bytes, and two at once on two cores would measure each other.
fn one_site_at_a_time<T>(f: impl FnOnce() -> T) -> T {
    static ONE_SITE: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let _one = ONE_SITE.lock().unwrap_or_else(|e| e.into_inner());
    f()
}

fn site(args: &[&str]) -> serde_json::Value {
    one_site_at_a_time(|| site_now(args))
}

fn site_now(args: &[&str]) -> serde_json::Value {
    let child = sim()
        .arg("site")
        .args(args)
        .arg("--json")
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .expect("shoal-sim runs");
    let pid = child.id();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8_lossy(&out.stdout);
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        our_namespaces(pid).is_empty(),
        "namespaces left: {:?}",
        our_namespaces(pid)
    );
    assert!(out.status.success(), "{stdout}\n{stderr}");
    serde_json::from_str(&stdout).expect("one JSON object")
}

/// No `--peer` lists: the devices find each other by mDNS on the site's bridge. Had
/// they not, each would fetch the whole image from the WAN (3 x the unique bytes).
#[test]
fn devices_found_by_mdns_alone_share_over_the_lan() {
    if !root_or_skip("devices_found_by_mdns_alone_share_over_the_lan") {
        return;
    }
    let r = site(&[
        "--devices",
        "3",
        "--wan-mbit",
        "20",
        "--image-mib",
        "8",
        "--discovery",
        "mdns",
    ]);
    println!("{r:#}");
    assert_eq!(r["discovery"], "mdns");
    assert_eq!(r["all_verified"], true);
    let nodes = r["nodes"].as_array().expect("nodes");
    let lan: u64 = nodes.iter().map(|n| n["bytes_lan"].as_u64().unwrap()).sum();
    let unique = r["unique_bytes"].as_u64().unwrap();
    assert!(
        lan >= unique,
        "the 3 devices moved {lan} bytes among themselves, expected at least {unique}"
    );
    let amp = r["wan_amplification"].as_f64().unwrap();
    assert!(
        amp <= MAX_WAN_AMPLIFICATION,
        "WAN amplification {amp} with mDNS alone, expected at most {MAX_WAN_AMPLIFICATION}"
    );
}

#[test]
fn site_refuses_nonsense_flags_in_one_line() {
    let out = sim().args(["site", "--devices", "0"]).output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "{stderr}");
    assert!(stderr.contains("--devices"), "{stderr}");
}

/// Starts a site of 3 devices in a folder of its own, sends it SIGINT (Ctrl-C) once
/// `ready(its pid, its folder)` holds, and checks that it says so and leaves nothing
/// behind: no namespace, no process, no file.
fn interrupt_site(test: &str, ready: impl Fn(u32, &RunDir) -> bool) {
    use std::time::{Duration, Instant};
    one_site_at_a_time(|| {
        let run = RunDir::new(test);
        let mut child = run
            .sim(&[
                "site",
                "--devices",
                "3",
                "--wan-mbit",
                "20",
                "--image-mib",
                "16",
                "--json",
            ])
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::piped())
            .spawn()
            .expect("shoal-sim runs");
        let pid = child.id();
        let start = Instant::now();
        while !ready(pid, &run) {
            if let Some(status) = child.try_wait().unwrap() {
                panic!("the site ended ({status}) before it was interrupted");
            }
            assert!(
                start.elapsed() < Duration::from_secs(60),
                "not ready to interrupt after 60 s: namespaces {:?}, processes {:?}",
                our_namespaces(pid),
                run.processes()
            );
            std::thread::sleep(Duration::from_millis(20));
        }
        // SAFETY: kill has no memory preconditions; pid is our unreaped child.
        unsafe { libc::kill(pid as i32, libc::SIGINT) };
        let out = child.wait_with_output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(130), "{stderr}");
        assert!(stderr.contains("interrupted"), "{stderr}");
        assert!(
            our_namespaces(pid).is_empty(),
            "namespaces left: {:?}",
            our_namespaces(pid)
        );
        run.assert_nothing_left();
    });
}

/// Ctrl-C while the namespaces are being made.
// guards: a namespace made after the Ctrl-C handler had removed the registered ones
// was left behind
#[test]
fn a_site_interrupted_while_its_network_is_built_leaves_nothing_behind() {
    if !root_or_skip("a_site_interrupted_while_its_network_is_built_leaves_nothing_behind") {
        return;
    }
    interrupt_site("site-build", |pid, _| !our_namespaces(pid).is_empty());
}

/// Ctrl-C once the seeder and the three nodes run: they are gone with the namespaces
/// and the folder.
#[test]
fn an_interrupted_site_leaves_nothing_behind() {
    if !root_or_skip("an_interrupted_site_leaves_nothing_behind") {
        return;
    }
    interrupt_site("site-nodes", |_, run| {
        run.processes()
            .iter()
            .filter(|p| p.contains(" run --data "))
            .count()
            == 3
    });
}
