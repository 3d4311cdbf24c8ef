//! Every offline command given a truncated, oversized or random-bytes file, or the
//! wrong key, exits non-zero with one line on stderr naming the file and what was
//! wrong; none panics, and none leaves a partial output file behind.

mod common;

use common::{Work, bytes as pseudo_random, ok, run};
use std::fs;
use std::path::{Path, PathBuf};
use std::process::Output;

/// The failure contract: exit 1 (not a panic's 101), one stderr line, naming `file`.
fn assert_clean_failure(o: &Output, file: &str, what: &str) {
    let stderr = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(1), "{what}: {stderr}");
    assert_eq!(stderr.lines().count(), 1, "{what}: not one line: {stderr}");
    assert!(!stderr.contains("panicked"), "{what}: {stderr}");
    assert!(
        stderr.contains(file),
        "{what}: does not name {file}: {stderr}"
    );
}

/// `root create` into `new-root.shoal` with the given root key, release public key and
/// release threshold (root threshold 1, the online key of the setup).
fn root_create(d: &Path, root_key: &str, release_pub: &str, release_threshold: &str) -> Output {
    run(
        d,
        &[
            "root",
            "create",
            "--root-key",
            root_key,
            "--root-threshold",
            "1",
            "--release-pub",
            release_pub,
            "--release-threshold",
            release_threshold,
            "--online-pub",
            "online.key.pub",
            "--out",
            "new-root.shoal",
        ],
    )
}

/// Only these names (and no temporary files) may be in `dir`.
fn assert_files(dir: &Path, expected: &[&str]) {
    let mut names: Vec<String> = fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().into_string().unwrap())
        .collect();
    names.sort();
    let mut want: Vec<String> = expected.iter().map(|s| s.to_string()).collect();
    want.sort();
    assert_eq!(names, want, "unexpected files left behind");
}

struct Setup {
    work: Work,
}

impl Setup {
    /// The shared keys and root (`common::Work`), and a signed release of a small file.
    fn new() -> Setup {
        let work = Work::new();
        let d = work.dir.path();
        fs::write(d.join("app.bin"), pseudo_random(300_000, 1)).unwrap();
        ok(
            d,
            &[
                "release",
                "create",
                "--name",
                "app",
                "--version",
                "1",
                "--counter",
                "1",
                "--device-type",
                "pump",
                "--out",
                "rel.shoal",
                "app.bin",
            ],
        );
        ok(d, &["release", "sign", "--key", "release.key", "rel.shoal"]);
        ok(
            d,
            &["release", "verify", "--root", "root.shoal", "rel.shoal"],
        );
        Setup { work }
    }

    fn dir(&self) -> &Path {
        self.work.dir.path()
    }

    fn path(&self, name: &str) -> PathBuf {
        self.work.path(name)
    }

    /// Writes the bad variants of `good` and returns their names.
    fn bad_variants(&self, good: &str, cap: u64) -> Vec<(String, &'static str)> {
        let bytes = fs::read(self.path(good)).unwrap();
        let truncated = format!("truncated-{good}");
        fs::write(self.path(&truncated), &bytes[..bytes.len() / 2]).unwrap();
        let random = format!("random-{good}");
        fs::write(self.path(&random), pseudo_random(bytes.len().max(200), 7)).unwrap();
        let empty = format!("empty-{good}");
        fs::write(self.path(&empty), b"").unwrap();
        let oversized = format!("oversized-{good}");
        // sparse: the size is checked before anything is read
        fs::File::create(self.path(&oversized))
            .unwrap()
            .set_len(cap + 1)
            .unwrap();
        vec![
            (truncated, "truncated"),
            (random, "random bytes"),
            (empty, "empty"),
            (oversized, "oversized"),
        ]
    }

    fn remove(&self, names: &[(String, &str)]) {
        for (n, _) in names {
            fs::remove_file(self.path(n)).unwrap();
        }
    }
}

const BASE_FILES: &[&str] = &[
    "root.key",
    "root.key.pub",
    "release.key",
    "release.key.pub",
    "online.key",
    "online.key.pub",
    "stranger.key",
    "stranger.key.pub",
    "root.shoal",
    "app.bin",
    "rel.shoal",
];

#[test]
fn bad_release_files_are_refused_by_every_command() {
    let s = Setup::new();
    let d = s.dir();
    let cap = (shoal_core_caps::RELEASE) as u64;
    let variants = s.bad_variants("rel.shoal", cap);
    for (name, what) in &variants {
        let before = fs::read(s.path(name)).ok();
        let o = run(d, &["release", "verify", "--root", "root.shoal", name]);
        assert_clean_failure(&o, name, &format!("verify {what}"));
        let o = run(d, &["release", "inspect", name]);
        assert_clean_failure(&o, name, &format!("inspect {what}"));
        let o = run(d, &["release", "inspect", "--json", name]);
        assert_clean_failure(&o, name, &format!("inspect --json {what}"));
        let o = run(d, &["release", "sign", "--key", "release.key", name]);
        assert_clean_failure(&o, name, &format!("sign {what}"));
        assert!(String::from_utf8_lossy(&o.stderr).contains("unchanged"));
        // sign left the bad file exactly as it was
        if *what != "oversized" {
            assert_eq!(fs::read(s.path(name)).ok(), before, "sign changed {name}");
        }
    }
    s.remove(&variants);
    assert_files(d, BASE_FILES);
}

#[test]
fn bad_root_files_are_refused() {
    let s = Setup::new();
    let d = s.dir();
    let variants = s.bad_variants("root.shoal", shoal_core_caps::ROOT as u64);
    for (name, what) in &variants {
        let o = run(d, &["release", "verify", "--root", name, "rel.shoal"]);
        assert_clean_failure(&o, name, &format!("verify --root {what}"));
        let o = run(
            d,
            &[
                "root",
                "rotate",
                "--current",
                name,
                "--sign-key",
                "root.key",
                "--root-key",
                "root.key",
                "--root-threshold",
                "1",
                "--release-pub",
                "release.key.pub",
                "--release-threshold",
                "1",
                "--online-pub",
                "online.key.pub",
                "--out",
                "root-v2.shoal",
            ],
        );
        assert_clean_failure(&o, name, &format!("rotate {what}"));
    }
    // a release file is not a root, nor the other way round
    let o = run(
        d,
        &["release", "verify", "--root", "rel.shoal", "rel.shoal"],
    );
    assert_clean_failure(&o, "rel.shoal", "release as root");
    let o = run(
        d,
        &["release", "verify", "--root", "root.shoal", "root.shoal"],
    );
    assert_clean_failure(&o, "root.shoal", "root as release");
    s.remove(&variants);
    assert_files(d, BASE_FILES);
}

#[test]
fn bad_and_wrong_keys_are_refused() {
    let s = Setup::new();
    let d = s.dir();
    let rel_before = fs::read(s.path("rel.shoal")).unwrap();
    let variants = s.bad_variants("release.key", 1024);
    for (name, what) in &variants {
        let o = run(d, &["release", "sign", "--key", name, "rel.shoal"]);
        assert_clean_failure(&o, name, &format!("sign with {what} key"));
        let o = root_create(d, "root.key", name, "1");
        assert_clean_failure(&o, name, &format!("root create with {what} pub"));
    }
    // a public key where a secret one belongs, and the other way round
    let o = run(
        d,
        &["release", "sign", "--key", "release.key.pub", "rel.shoal"],
    );
    assert_clean_failure(&o, "release.key.pub", "public key as signing key");
    let o = root_create(d, "root.key.pub", "release.key.pub", "1");
    assert_clean_failure(&o, "root.key.pub", "public key as root key");
    let o = root_create(d, "root.key", "release.key", "1");
    assert_clean_failure(&o, "release.key", "secret key as public key");
    // the online key listed as a release key: refused before anything is signed
    let o = root_create(d, "root.key", "online.key.pub", "1");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rule 'roles'"));
    // threshold 0 and an unreachable threshold
    for t in ["0", "2"] {
        let o = root_create(d, "root.key", "release.key.pub", t);
        assert_eq!(o.status.code(), Some(1), "threshold {t}");
        assert!(String::from_utf8_lossy(&o.stderr).contains("rule 'threshold'"));
    }
    assert_eq!(fs::read(s.path("rel.shoal")).unwrap(), rel_before);
    s.remove(&variants);
    assert_files(d, BASE_FILES);
}

#[test]
fn release_create_leaves_nothing_behind_on_bad_input() {
    let s = Setup::new();
    let d = s.dir();
    let create = |files: &[&str], extra: &[&str]| {
        let mut args = vec![
            "release",
            "create",
            "--name",
            "x",
            "--version",
            "1",
            "--counter",
            "2",
            "--device-type",
            "pump",
            "--out",
            "new.shoal",
        ];
        args.extend_from_slice(extra);
        args.extend_from_slice(files);
        run(d, &args)
    };
    let o = create(&["missing.bin"], &[]);
    assert_clean_failure(&o, "missing.bin", "missing input");
    let o = create(&["app.bin", "app.bin"], &[]);
    assert_clean_failure(&o, "app.bin", "duplicate input");
    let o = create(&["app.bin"], &["--chunking", "1/2/3"]);
    assert_eq!(o.status.code(), Some(2), "a bad flag is a usage error");
    let o = create(&["app.bin"], &["--install-arg", "-x"]);
    assert_eq!(o.status.code(), Some(1));
    std::os::unix::fs::symlink("app.bin", s.path("link.bin")).unwrap();
    let o = create(&["link.bin"], &[]);
    assert_clean_failure(&o, "link.bin", "symlink input");
    fs::remove_file(s.path("link.bin")).unwrap();
    // keygen never overwrites a key
    let before = fs::read(s.path("root.key")).unwrap();
    let o = run(d, &["keygen", "--out", "root.key"]);
    assert_clean_failure(&o, "root.key", "keygen over an existing key");
    assert_eq!(fs::read(s.path("root.key")).unwrap(), before);
    assert_files(d, BASE_FILES);
}

#[test]
fn rotation_needs_old_and_new_root_keys() {
    let s = Setup::new();
    let d = s.dir();
    ok(d, &["keygen", "--out", "root2.key"]);
    let rotate = |sign: &str, out: &str| {
        run(
            d,
            &[
                "root",
                "rotate",
                "--current",
                "root.shoal",
                "--sign-key",
                sign,
                "--root-key",
                "root2.key",
                "--root-threshold",
                "1",
                "--release-pub",
                "release.key.pub",
                "--release-threshold",
                "1",
                "--online-pub",
                "online.key.pub",
                "--out",
                out,
            ],
        )
    };
    // signed by the new key only (the --sign-key is not a current root key)
    let o = rotate("root2.key", "bad.shoal");
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("rule 'threshold'"));
    assert!(!s.path("bad.shoal").exists());
    // signed by the old and the new key
    let o = rotate("root.key", "root-v2.shoal");
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    assert!(String::from_utf8_lossy(&o.stdout).contains("root v2"));
}

#[test]
fn min_counter_refuses_a_rollback() {
    let s = Setup::new();
    let d = s.dir();
    ok(
        d,
        &[
            "release",
            "verify",
            "--root",
            "root.shoal",
            "rel.shoal",
            "--min-counter",
            "1",
        ],
    );
    let o = run(
        d,
        &[
            "release",
            "verify",
            "--root",
            "root.shoal",
            "rel.shoal",
            "--min-counter",
            "2",
        ],
    );
    assert_clean_failure(&o, "rel.shoal", "rollback");
    assert!(String::from_utf8_lossy(&o.stderr).contains("rule 'anti-rollback'"));
}

#[test]
fn inspect_json_describes_the_release() {
    let s = Setup::new();
    let o = run(s.dir(), &["release", "inspect", "--json", "rel.shoal"]);
    assert!(o.status.success());
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["name"], "app");
    assert_eq!(v["counter"], 1);
    assert_eq!(v["total_size"], 300_000);
    assert_eq!(v["files"][0]["path"], "app.bin");
    assert_eq!(v["signatures"].as_array().unwrap().len(), 1);
    assert_eq!(v["verified"], false);
}

/// The file caps, named once.
mod shoal_core_caps {
    use shoal_core::signed::ENVELOPE_OVERHEAD;
    pub const RELEASE: usize = shoal_core::release::RELEASE_BODY_CAP + ENVELOPE_OVERHEAD;
    pub const ROOT: usize = shoal_core::root::ROOT_BODY_CAP + ENVELOPE_OVERHEAD;
}
