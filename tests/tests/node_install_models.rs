//! The `ab-slot` and `command` install models over real processes.

use shoal_tests::*;

const MIB: usize = 1024 * 1024;

#[test]
fn ab_slot_commits_after_a_healthy_switch_and_rolls_back_after_a_failed_one() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    std::fs::write(dir.join("switch.sh"), "echo \"$1\" > boot.txt\n").unwrap();
    std::fs::write(dir.join("health.sh"), "test ! -f unhealthy\n").unwrap();
    let (a, b) = (dir.join("slot-a.img"), dir.join("slot-b.img"));
    let slots = format!("{},{}", a.display(), b.display());
    init_node(
        dir,
        &seeder,
        &slots,
        &[
            "--switch-command",
            "sh switch.sh",
            "--health-command",
            "sh health.sh",
        ],
    );
    let boot = || {
        std::fs::read_to_string(dir.join("boot.txt"))
            .unwrap()
            .trim()
            .to_string()
    };

    let v1 = bytes(3 * MIB, 1);
    ship(dir, &seeder, &v1, "1", 1, &["--install", "ab-slot"]);
    assert!(run_node(dir).success());
    assert_eq!(
        std::fs::read(&b).unwrap(),
        v1,
        "the inactive slot got the image"
    );
    assert_eq!(boot(), b.display().to_string(), "and was switched to");
    assert_eq!(node_status(dir)["installed_counter"], 1);

    // release 2 fails its health check: the device goes back to slot B
    let v2 = bytes(3 * MIB, 2);
    std::fs::write(dir.join("unhealthy"), "").unwrap();
    ship(dir, &seeder, &v2, "2", 2, &["--install", "ab-slot"]);
    assert!(!run_node(dir).success(), "a rollback is a definite failure");
    assert_eq!(std::fs::read(&a).unwrap(), v2, "slot A was written");
    assert_eq!(boot(), b.display().to_string(), "then switched back to B");
    assert_eq!(std::fs::read(&b).unwrap(), v1, "slot B is untouched");
    let status = node_status(dir);
    assert_eq!(status["state"], "rolled-back");
    assert_eq!(status["installed_counter"], 1, "the counter did not move");
    assert!(
        status["error"]
            .as_str()
            .unwrap()
            .contains("health check exited with 1")
    );
    let devices: serde_json::Value =
        serde_json::from_str(&seeder.admin(&["devices", "list", "--json"])).unwrap();
    assert_eq!(devices[0]["status"]["state"], "RolledBack");
    // a restart does not try the rolled-back release again, even once it is healthy
    std::fs::remove_file(dir.join("unhealthy")).unwrap();
    std::fs::write(dir.join("boot.txt"), "untouched\n").unwrap();
    let mut child = std::process::Command::new(bin("shoal-node"))
        .current_dir(dir)
        .args(["run", "--data", "node"])
        .env("RUST_LOG", "error")
        .spawn()
        .unwrap();
    std::thread::sleep(std::time::Duration::from_secs(3));
    let _ = child.kill();
    let _ = child.wait();
    assert_eq!(boot(), "untouched", "no switch was attempted");
    assert_eq!(node_status(dir)["installed_counter"], 1);
}

#[test]
fn command_installs_hand_the_verified_files_over_and_obey_the_exit_status() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    std::fs::write(
        dir.join("handle.sh"),
        "if [ -f fail ]; then exit 3; fi\nmkdir -p received && cp -r \"$1\"/. received/ && shift && echo \"$@\" > args.txt\n",
    )
    .unwrap();
    init_node(
        dir,
        &seeder,
        "unused",
        &["--install-command", "sh handle.sh"],
    );

    let v1 = bytes(2 * MIB, 3);
    ship(
        dir,
        &seeder,
        &v1,
        "1",
        1,
        &["--install", "command", "--install-arg", "--reboot-after"],
    );
    assert!(run_node(dir).success());
    assert_eq!(std::fs::read(dir.join("received/image.bin")).unwrap(), v1);
    assert_eq!(
        std::fs::read_to_string(dir.join("args.txt"))
            .unwrap()
            .trim(),
        "--reboot-after"
    );

    std::fs::write(dir.join("fail"), "").unwrap();
    ship(
        dir,
        &seeder,
        &bytes(2 * MIB, 4),
        "2",
        2,
        &["--install", "command"],
    );
    assert!(!run_node(dir).success());
    let status = node_status(dir);
    assert_eq!(status["state"], "failure");
    assert!(
        status["error"].as_str().unwrap().contains("exited with 3"),
        "{status}"
    );
    assert_eq!(status["installed_counter"], 1);
    assert_eq!(std::fs::read(dir.join("received/image.bin")).unwrap(), v1);
}
