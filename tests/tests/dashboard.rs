//! The dashboard in a real browser: a seeder, two real nodes that install a release,
//! then headless Chromium loads `/dashboard?token=<viewer token>` (the page trades the
//! token for a cookie and redirects) and the rendered DOM must hold the devices, the
//! release, the deployment with its phase, the bytes by site and the audit log. A
//! screenshot is kept in `target/test-artifacts/dashboard.png`. The page comes over
//! HTTPS: Chromium trusts the seeder's own certificate by its public key pin
//! (`--ignore-certificate-errors-spki-list`), as an operator's browser would once told.
//!
//! Skipped, saying so, when no `chromium` is installed; under `SHOAL_CI` that fails
//! instead (`.ci/run` installs it).

use shoal_tests::*;
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const MIB: usize = 1024 * 1024;

fn chromium() -> Option<PathBuf> {
    for name in ["chromium", "chromium-browser"] {
        let found = Command::new("sh")
            .arg("-c")
            .arg(format!("command -v {name}"))
            .output()
            .ok()?;
        if found.status.success() {
            let p = String::from_utf8_lossy(&found.stdout).trim().to_string();
            if !p.is_empty() {
                return Some(PathBuf::from(p));
            }
        }
    }
    None
}

/// Runs headless Chromium with `args` then `url`, trusting the certificate whose
/// public key pin is `pin`; its stdout. Killed after 90 s.
fn browse(chrome: &Path, profile: &Path, pin: &str, args: &[&str], url: &str) -> String {
    let mut child = Command::new(chrome)
        .args([
            "--headless",
            "--no-sandbox",
            "--disable-gpu",
            "--no-first-run",
            "--disable-dev-shm-usage",
            &format!("--user-data-dir={}", profile.display()),
            // honoured only with --user-data-dir
            &format!("--ignore-certificate-errors-spki-list={pin}"),
        ])
        .args(args)
        .arg(url)
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("chromium starts");
    let mut stdout = child.stdout.take().unwrap();
    let reader = std::thread::spawn(move || {
        let mut s = String::new();
        let _ = std::io::Read::read_to_string(&mut stdout, &mut s);
        s
    });
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            break;
        }
        if start.elapsed() > Duration::from_secs(90) {
            let _ = child.kill();
            panic!("chromium did not finish within 90 s");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
    reader.join().unwrap()
}

/// A node in `dir/name` on `site`, preauthorized into group g; returns its folder and
/// device id.
fn device(dir: &Path, seeder: &SeederProcess, name: &str, site: &str) -> (PathBuf, String) {
    let d = dir.join(name);
    std::fs::create_dir(&d).unwrap();
    std::fs::copy(dir.join("root.shoal"), d.join("root.shoal")).unwrap();
    let id = init_node_on(&d, "node", seeder, site, "installed", &[]);
    preauthorize(seeder, &format!("{name}/node"));
    (d, id)
}

#[test]
fn the_dashboard_shows_real_fleet_data_in_a_browser() {
    let Some(chrome) = chromium() else {
        return skip(
            "the_dashboard_shows_real_fleet_data_in_a_browser",
            "no chromium on PATH (apt-get install -y chromium; .ci/run installs it)",
        );
    };
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    let seeder = SeederProcess::start(dir);
    let devices = [
        device(dir, &seeder, "north", "depot-north"),
        device(dir, &seeder, "south", "depot-south"),
    ];
    ship(dir, &seeder, &bytes(MIB, 7), "1", 1, &[]);
    for (d, _) in &devices {
        assert!(run_node(d).success());
    }
    seeder.admin(&[
        "tokens",
        "create",
        "--role",
        "viewer",
        "--out",
        "viewer.token",
    ]);
    let viewer = std::fs::read_to_string(dir.join("viewer.token")).unwrap();
    let url = format!("{}/dashboard?token={}", seeder.http, viewer.trim());
    assert!(url.starts_with("https://"), "{url}");
    let cert = shoal_seeder::device_api::tls::read_cert_pem(&seeder.cert()).unwrap();
    let pin = shoal_seeder::device_api::tls::spki_pin(&cert).unwrap();

    let profile = tempfile::tempdir().unwrap();
    let dom = browse(&chrome, profile.path(), &pin, &["--dump-dom"], &url);
    for (_, id) in &devices {
        assert!(dom.contains(&id[..16]), "device {id} in the page:\n{dom}");
    }
    for needle in [
        "<h1>shoal seeder</h1>",
        "viewed with token 1 (viewer)",
        "fw@1",
        "deployment 1: fw@1 to group g",
        "depot-north",
        "depot-south",
        ">success<",
        "POST /api/v1/deployments",
        "POST /api/v1/tokens",
    ] {
        assert!(dom.contains(needle), "'{needle}' in the page:\n{dom}");
    }
    // the redirect took the token out of the address bar: the page never echoes it
    assert!(!dom.contains(viewer.trim()), "the token is not in the page");
    // each device fetched the whole 1 MiB image over the WAN: the site rows say so
    assert!(
        dom.contains("<td>depot-north</td><td>1</td><td>1.0 MiB</td>"),
        "{dom}"
    );

    // without a token the page shows nothing of the fleet
    let denied = browse(
        &chrome,
        tempfile::tempdir().unwrap().path(),
        &pin,
        &["--dump-dom"],
        &format!("{}/dashboard", seeder.http),
    );
    assert!(denied.contains("missing or wrong bearer token"), "{denied}");
    assert!(!denied.contains(&devices[0].1[..16]));

    // a screenshot for people to look at
    let target = std::env::current_exe()
        .unwrap()
        .parent()
        .and_then(Path::parent)
        .and_then(Path::parent)
        .unwrap()
        .to_path_buf();
    let artifacts = target.join("test-artifacts");
    std::fs::create_dir_all(&artifacts).unwrap();
    let shot = artifacts.join("dashboard.png");
    let _ = std::fs::remove_file(&shot);
    browse(
        &chrome,
        profile.path(),
        &pin,
        &[
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,1400",
        ],
        &url,
    );
    let png = std::fs::read(&shot).expect("chromium wrote the screenshot");
    assert!(png.starts_with(b"\x89PNG"), "a PNG");
    assert!(
        png.len() > 10_000,
        "a screenshot of a page, {} bytes",
        png.len()
    );
    println!(
        "dashboard screenshot: {} ({} bytes)",
        shot.display(),
        png.len()
    );
    seeder.stop();
}
