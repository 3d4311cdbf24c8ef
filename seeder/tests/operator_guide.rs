//! Runs every `sh` block of `docs/operator-guide.md`, in order, as one script in a
//! fresh directory, with this build's shoal-seeder first on PATH. The guide's ports are
//! swapped for free ones so tests can run side by side.

use std::process::Command;

fn free_port(udp: bool) -> u16 {
    if udp {
        std::net::UdpSocket::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    } else {
        std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port()
    }
}

#[test]
fn every_command_in_the_operator_guide_works() {
    let guide = std::fs::read_to_string(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../docs/operator-guide.md"
    ))
    .expect("docs/operator-guide.md");
    // the trap stops the guide's background seeder even when a step fails
    let mut script =
        String::from("set -euo pipefail\ntrap 'kill $(jobs -p) 2>/dev/null || true' EXIT\n");
    let mut in_block = false;
    let mut blocks = 0;
    for line in guide.lines() {
        if line.trim() == "```sh" {
            in_block = true;
            blocks += 1;
        } else if line.trim() == "```" && in_block {
            in_block = false;
        } else if in_block {
            script.push_str(line);
            script.push('\n');
        }
    }
    assert!(blocks >= 8, "the guide has its command blocks ({blocks})");
    let script = script
        .replace("7400", &free_port(true).to_string())
        .replace("7480", &free_port(false).to_string());
    let dir = tempfile::tempdir().unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_shoal-seeder"))
        .parent()
        .unwrap();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env_remove("SHOAL_URL")
        .env_remove("SHOAL_CERT")
        .env_remove("SHOAL_TOKEN_FILE")
        .output()
        .unwrap();
    let log = ["seeder.log", "seeder-v2.log"]
        .map(|f| std::fs::read_to_string(dir.path().join(f)).unwrap_or_default())
        .join("\n");
    assert!(
        out.status.success(),
        "the guide failed\nstdout:\n{}\nstderr:\n{}\nseeder logs:\n{log}",
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.contains("published pump-firmware@1.0"), "{stdout}");
    assert!(
        stdout.contains("deployment 1: pump-firmware@1.0 to group line-a"),
        "{stdout}"
    );
}
