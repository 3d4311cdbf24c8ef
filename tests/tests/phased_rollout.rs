//! Rollouts over real processes: a seeder and `shoal-node run` processes on loopback
//! (`--no-lan`), ab-slot installs with a health check that the test can hold.
//!
//! - 10 devices; release 2 goes out in phases 20%,100% with a failure threshold of 1;
//!   one device of phase 1 fails its health check and rolls back, so the seeder pauses
//!   the rollout by itself and the 8 devices of phase 2 stay on release 1;
//!   `deploy resume` releases them.
//! - 4 devices; `deploy abort` while two of them are mid-install (health check held)
//!   and two are offline: the two finish and report, the two that come back never
//!   fetch release 2 and stay on release 1.

use serde_json::Value;
use shoal_tests::*;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;
const DEVICES: usize = 10;

/// A device: its folder and its running agent.
struct Device {
    dir: PathBuf,
    id: String,
    child: Child,
}

impl Drop for Device {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_agent(dir: &Path, extra: &[&str]) -> Child {
    Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args(["run", "--data", "node", "--no-lan"])
        .args(extra)
        .env("RUST_LOG", "error")
        .stdout(if extra.is_empty() {
            Stdio::null()
        } else {
            Stdio::piped()
        })
        .spawn()
        .expect("the node starts")
}

fn status(dir: &Path) -> Value {
    node_status(dir)
}

fn deployment(seeder: &SeederProcess, id: u64) -> Value {
    serde_json::from_str(&seeder.admin(&["deploy", "show", &id.to_string(), "--json"]))
        .expect("deploy show JSON")
}

/// Polls `check` every 200 ms for up to `secs`; panics with `what` if it never holds.
fn wait_for(secs: u64, what: &str, mut check: impl FnMut() -> bool) -> Duration {
    let start = Instant::now();
    while start.elapsed() < Duration::from_secs(secs) {
        if check() {
            return start.elapsed();
        }
        std::thread::sleep(Duration::from_millis(200));
    }
    panic!("{what}: not within {secs} s");
}

/// `None` also before the agent wrote its first status.
fn installed_counter(d: &Device) -> Option<u64> {
    let out = run(
        &d.dir,
        "shoal-node",
        &["status", "--data", "node", "--json"],
    );
    let v: Value = serde_json::from_slice(&out.stdout).ok()?;
    v["installed_counter"].as_u64()
}

/// Device `i` in `dir/dev{i}`: `shoal-node init` with ab-slots and a health check,
/// preauthorized into group g; its folder and device id. The health check says it
/// started (`./checking`), waits while `../hold` exists, then fails if `./unhealthy`
/// does.
fn setup(dir: &Path, seeder: &SeederProcess, i: usize) -> (PathBuf, String) {
    let d = dir.join(format!("dev{i}"));
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(dir.join("root.shoal"), d.join("root.shoal")).unwrap();
    std::fs::write(d.join("switch.sh"), "echo \"$1\" > boot.txt\n").unwrap();
    std::fs::write(
        d.join("health.sh"),
        "touch checking\nwhile [ -f ../hold ]; do sleep 0.1; done\ntest ! -f unhealthy\n",
    )
    .unwrap();
    let slots = format!(
        "{},{}",
        d.join("a.img").display(),
        d.join("b.img").display()
    );
    let flags = [
        "--switch-command",
        "sh switch.sh",
        "--health-command",
        "sh health.sh",
    ];
    let id = init_node_on(&d, "node", seeder, "depot", &slots, &flags);
    preauthorize(seeder, &format!("dev{i}/node"));
    (d, id)
}

#[test]
fn a_failure_in_phase_one_pauses_the_rollout_and_resume_goes_on() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let devices: Vec<(PathBuf, String)> = (0..DEVICES).map(|i| setup(dir, &seeder, i)).collect();

    // release 1 to every device, the way before phases
    let v1 = bytes(2 * MIB, 1);
    ship(dir, &seeder, &v1, "1", 1, &["--install", "ab-slot"]);
    let mut devices: Vec<Device> = devices
        .into_iter()
        .enumerate()
        .map(|(i, (d, id))| {
            // the first device also serves its metrics
            let extra: &[&str] = if i == 0 {
                &["--metrics", "127.0.0.1:0"]
            } else {
                &[]
            };
            Device {
                child: start_agent(&d, extra),
                dir: d,
                id,
            }
        })
        .collect();
    let metrics_addr = {
        let stdout = devices[0].child.stdout.take().unwrap();
        let mut line = String::new();
        BufReader::new(stdout).read_line(&mut line).unwrap();
        line.trim()
            .strip_prefix("metrics on ")
            .unwrap_or_else(|| panic!("the metrics line, got '{line}'"))
            .to_string()
    };
    let t = wait_for(90, "every device on release 1", || {
        devices.iter().all(|d| installed_counter(d) == Some(1))
    });
    println!("release 1 on {DEVICES} devices in {:.1} s", t.as_secs_f64());
    for d in &devices {
        std::fs::remove_file(d.dir.join("checking")).unwrap();
    }

    // the node's metrics saw that install
    let metrics = scrape(&metrics_addr);
    let sample = |name: &str| sample(&metrics, name);
    assert_eq!(sample("shoal_node_updates_total{outcome=\"success\"}"), 1);
    let wan = sample("shoal_node_chunk_bytes_total{source=\"wan\"}");
    assert!(wan >= (2 * MIB) as u64, "WAN bytes {wan}");
    assert!(sample("shoal_node_chunks_verified_total") > 0);
    assert_eq!(sample("shoal_node_chunks_rejected_total"), 0);
    println!("node metrics after release 1: {wan} WAN bytes");

    // release 2, published, then deployed in phases; health checks held meanwhile
    let v2 = bytes(2 * MIB, 2);
    publish(dir, &seeder, &v2, "2", 2, &["--install", "ab-slot"]);
    std::fs::write(dir.join("hold"), "").unwrap();
    let created = seeder.admin(&[
        "deploy",
        "--release",
        "fw@2",
        "--group",
        "g",
        "--phases",
        "20%,100%",
        "--failure-threshold",
        "1",
    ]);
    assert!(
        created.contains("deployment 2: fw@2 to group g (active, phase 1 of 2)"),
        "{created}"
    );
    let show = deployment(&seeder, 2);
    assert_eq!(
        show["deployment"]["phase_sizes"],
        serde_json::json!([2, 10])
    );
    let first: Vec<String> = show["devices"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|e| e["current_target"] == true)
        .map(|e| e["device"]["id"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(first.len(), 2, "phase 1 is 20% of 10: {show}");
    let failing = devices.iter().find(|d| d.id == first[0]).unwrap();
    let healthy = devices.iter().find(|d| d.id == first[1]).unwrap();
    std::fs::write(failing.dir.join("unhealthy"), "").unwrap();
    // Both phase-1 devices must have been handed release 2 before the failure pauses
    // the rollout: a paused rollout hands it to no one new. Their health checks
    // starting shows they have it installed.
    wait_for(90, "both phase-1 devices checking release 2", || {
        [failing, healthy]
            .iter()
            .all(|d| d.dir.join("checking").exists())
    });
    std::fs::remove_file(dir.join("hold")).unwrap();

    let t = wait_for(90, "the rollout pauses itself", || {
        deployment(&seeder, 2)["deployment"]["state"] == "Paused"
    });
    println!("paused {:.1} s after the deployment", t.as_secs_f64());
    let show = deployment(&seeder, 2);
    let reason = show["deployment"]["paused_reason"].as_str().unwrap();
    assert!(reason.contains("failure threshold 1 reached"), "{reason}");
    assert_eq!(show["phases"][0]["failed"], 1, "{show}");
    // the seeder's own move is in the audit log, with the report that caused it
    let entries = shoal_seeder::audit::read_entries(&seeder.data).unwrap();
    let pause = entries
        .iter()
        .find(|e| e.actor == "seeder (rollout thresholds)" && e.detail.contains("paused"))
        .unwrap_or_else(|| panic!("an audit entry for the pause in {entries:?}"));
    assert!(
        pause.detail.contains("failure threshold 1 reached"),
        "{pause:?}"
    );
    assert!(
        pause.from.contains(&failing.id),
        "the failing device's report: {pause:?}"
    );
    wait_for(30, "the healthy phase-1 device on release 2", || {
        installed_counter(healthy) == Some(2)
    });
    assert_eq!(status(&failing.dir)["state"], "rolled-back");
    assert_eq!(installed_counter(failing), Some(1));

    // the other 8 stay on release 1: several poll intervals later, still
    std::thread::sleep(Duration::from_secs(5));
    let rest: Vec<&Device> = devices.iter().filter(|d| !first.contains(&d.id)).collect();
    assert_eq!(rest.len(), 8);
    for d in &rest {
        assert_eq!(installed_counter(d), Some(1), "{} moved while paused", d.id);
        assert_eq!(std::fs::read(d.dir.join("b.img")).unwrap(), v1);
        assert!(
            !d.dir.join("a.img").exists(),
            "{}: nothing written to the other slot",
            d.id
        );
    }
    assert_eq!(deployment(&seeder, 2)["deployment"]["state"], "Paused");

    // resume: phase 2 goes out; the rolled-back device keeps refusing release 2
    let resumed = seeder.admin(&["deploy", "resume", "2"]);
    assert!(resumed.contains("phase 2 of 2"), "{resumed}");
    let t = wait_for(90, "the other 8 devices on release 2", || {
        rest.iter().all(|d| installed_counter(d) == Some(2))
    });
    println!(
        "8 devices on release 2 {:.1} s after resume",
        t.as_secs_f64()
    );
    for d in &rest {
        assert_eq!(std::fs::read(d.dir.join("a.img")).unwrap(), v2);
    }
    wait_for(30, "the deployment completes", || {
        deployment(&seeder, 2)["deployment"]["state"] == "Complete"
    });
    assert_eq!(installed_counter(failing), Some(1));

    // the seeder's metrics count the outcomes as last reported
    let (status, text) = seeder.get_text("/metrics");
    assert_eq!(status, 200, "{text}");
    assert!(
        text.contains("shoal_seeder_device_reports{state=\"rolledback\"} 1"),
        "{text}"
    );
    assert!(
        text.contains("shoal_seeder_device_reports{state=\"success\"} 9"),
        "{text}"
    );
    assert!(
        text.contains("shoal_seeder_deployments{state=\"complete\"} 2"),
        "{text}"
    );
    drop(devices);
    seeder.stop();
}

#[test]
fn abort_lets_a_device_mid_install_finish_and_keeps_the_rest_off_the_release() {
    const N: usize = 4;
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let setups: Vec<(PathBuf, String)> = (0..N).map(|i| setup(dir, &seeder, i)).collect();
    let v1 = bytes(MIB, 21);
    ship(dir, &seeder, &v1, "1", 1, &["--install", "ab-slot"]);
    let mut devices: Vec<Device> = setups
        .into_iter()
        .map(|(d, id)| Device {
            child: start_agent(&d, &[]),
            dir: d,
            id,
        })
        .collect();
    wait_for(90, "every device on release 1", || {
        devices.iter().all(|d| installed_counter(d) == Some(1))
    });
    for d in &devices {
        std::fs::remove_file(d.dir.join("checking")).unwrap();
    }
    // dev2 and dev3 go offline; dev0 and dev1 will be mid-install at the abort
    for d in &mut devices[2..] {
        let _ = d.child.kill();
        let _ = d.child.wait();
    }
    let v2 = bytes(MIB, 22);
    publish(dir, &seeder, &v2, "2", 2, &["--install", "ab-slot"]);
    std::fs::write(dir.join("hold"), "").unwrap();
    seeder.admin(&["deploy", "--release", "fw@2", "--group", "g"]);
    wait_for(90, "dev0 and dev1 checking release 2", || {
        devices[..2].iter().all(|d| d.dir.join("checking").exists())
    });
    let release2 = deployment(&seeder, 2)["deployment"]["release"]
        .as_str()
        .unwrap()
        .to_string();
    // both have every chunk of release 2 by now: whatever the seeder serves from here
    // on went to a device that should not have it
    let served = seeder.chunk_bytes_served();
    let aborted = seeder.admin(&["deploy", "abort", "2"]);
    assert!(aborted.contains("aborted"), "{aborted}");

    // the offline devices come back: several polls later they are still on release 1,
    // never started release 2, and wrote nothing to their other slot
    for d in &mut devices[2..] {
        d.child = start_agent(&d.dir, &[]);
    }
    let restarted = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap()
        .as_secs();
    wait_for(
        30,
        "dev2 and dev3 idle after a poll since their restart",
        || {
            devices[2..].iter().all(|d| {
                named_status(&d.dir, "node").is_some_and(|s| {
                    s["state"] == "idle" && s["updated_at"].as_u64().unwrap_or(0) >= restarted
                })
            })
        },
    );
    std::thread::sleep(Duration::from_secs(5));
    for d in &devices[2..] {
        let s = status(&d.dir);
        assert_eq!(s["installed_counter"], 1, "{}: {s}", d.id);
        assert_ne!(
            s["release"].as_str(),
            Some(release2.as_str()),
            "{}: {s}",
            d.id
        );
        assert!(
            !d.dir.join("a.img").exists(),
            "{}: nothing in the other slot",
            d.id
        );
        assert_eq!(std::fs::read(d.dir.join("b.img")).unwrap(), v1);
    }

    // the two mid-install finish and report to the seeder
    std::fs::remove_file(dir.join("hold")).unwrap();
    wait_for(60, "dev0 and dev1 on release 2", || {
        devices[..2].iter().all(|d| installed_counter(d) == Some(2))
    });
    for d in &devices[..2] {
        assert_eq!(std::fs::read(d.dir.join("a.img")).unwrap(), v2);
    }
    wait_for(30, "the seeder has both reports of success", || {
        let show = deployment(&seeder, 2);
        let succeeded = show["devices"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|e| {
                devices[..2]
                    .iter()
                    .any(|d| e["device"]["id"] == d.id.as_str())
                    && e["status"]["state"] == "Success"
                    && e["status"]["release"] == release2.as_str()
            })
            .count();
        succeeded == 2
    });
    let show = deployment(&seeder, 2);
    assert_eq!(show["deployment"]["state"], "Aborted", "{show}");
    // and still nothing for the other two, a few polls after the successes
    std::thread::sleep(Duration::from_secs(3));
    for d in &devices[2..] {
        assert_eq!(installed_counter(d), Some(1), "{}", d.id);
    }
    assert_eq!(
        seeder.chunk_bytes_served(),
        served,
        "the seeder served chunks after the abort"
    );
    drop(devices);
    seeder.stop();
}
