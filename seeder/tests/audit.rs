//! `audit verify` and `audit show` on a real seeder's log: intact, it verifies (also
//! while the seeder runs); after one entry is edited, removed, or swapped with
//! another, `audit verify` exits non-zero with one line naming the entry, and the
//! seeder refuses to start on it.

mod common;

use common::{Seeder, Work, run};

fn lines(data: &std::path::Path) -> Vec<String> {
    std::fs::read_to_string(data.join("audit.log"))
        .unwrap()
        .lines()
        .map(str::to_string)
        .collect()
}

#[test]
fn audit_verify_finds_an_edited_removed_or_swapped_entry() {
    let work = Work::new();
    let data = work.path("data");
    let mut seeder = Seeder::start(&work, &data, &[]);
    for i in 0..4 {
        seeder.cli_ok(&[
            "devices",
            "preauthorize",
            "--pub",
            "stranger.key.pub",
            "--group",
            &format!("line-{i}"),
        ]);
    }
    // a refusal is an entry too
    std::fs::write(work.path("bad.token"), "0".repeat(64)).unwrap();
    let o = run(
        work.dir.path(),
        &[
            "devices",
            "list",
            "--url",
            &seeder.http,
            "--token-file",
            "bad.token",
            "--cert",
            seeder.cert_pem.to_str().unwrap(),
        ],
    );
    assert!(!o.status.success());
    let d = data.to_str().unwrap();
    // while the seeder runs
    let o = run(work.dir.path(), &["audit", "verify", "--data", d]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let out = String::from_utf8_lossy(&o.stdout).to_string();
    assert!(out.starts_with("audit log intact: 5 entries"), "{out}");
    let shown =
        String::from_utf8_lossy(&run(work.dir.path(), &["audit", "show", "--data", d]).stdout)
            .to_string();
    assert!(
        shown.contains("POST /api/v1/devices/preauthorize -> ok (200)"),
        "{shown}"
    );
    assert!(shown.contains("unauthenticated"), "{shown}");
    // the same entries as JSON, for tools: each one whole, linked to the one before
    let o = run(work.dir.path(), &["audit", "show", "--data", d, "--json"]);
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let json: serde_json::Value = serde_json::from_slice(&o.stdout).expect("audit show --json");
    let entries = json.as_array().expect("an array of entries");
    assert_eq!(entries.len(), 5, "{json}");
    for (i, e) in entries.iter().enumerate() {
        assert_eq!(e["seq"], i as u64 + 1, "{e}");
        assert_eq!(e["hash"].as_str().map(str::len), Some(64), "{e}");
        assert!(e["time"].as_u64().is_some_and(|t| t > 0), "{e}");
        if i > 0 {
            assert_eq!(
                e["prev"],
                entries[i - 1]["hash"],
                "entry {} links back",
                i + 1
            );
        }
    }
    assert_eq!(entries[0]["action"], "POST /api/v1/devices/preauthorize");
    assert_eq!(
        (&entries[0]["outcome"], &entries[0]["status"]),
        (&"ok".into(), &200.into())
    );
    assert_eq!(entries[0]["actor"], "token 0 (admin)");
    assert!(
        entries[0]["detail"]
            .as_str()
            .is_some_and(|d| d.contains("preauthorize (group line-0)")),
        "{}",
        entries[0]
    );
    assert_eq!(entries[4]["action"], "GET /api/v1/devices");
    assert_eq!(
        (
            &entries[4]["outcome"],
            &entries[4]["status"],
            &entries[4]["actor"]
        ),
        (&"refused".into(), &401.into(), &"unauthenticated".into())
    );
    assert!(seeder.terminate());
    let original = lines(&data);
    assert_eq!(original.len(), 5);

    type Tamper = fn(&mut Vec<String>);
    let tampers: [(&str, Tamper); 5] = [
        ("edit the first entry", |l| {
            l[0] = l[0].replace("line-0", "line-9")
        }),
        ("edit an outcome", |l| {
            l[4] = l[4].replace("\"refused\"", "\"ok\"")
        }),
        ("remove an entry", |l| {
            l.remove(2);
        }),
        ("remove the last entry", |l| {
            l.pop();
        }),
        ("swap two entries", |l| l.swap(1, 2)),
    ];
    for (what, tamper) in tampers {
        let mut l = original.clone();
        tamper(&mut l);
        assert_ne!(l, original, "{what} changed something");
        std::fs::write(data.join("audit.log"), l.join("\n") + "\n").unwrap();
        let o = run(work.dir.path(), &["audit", "verify", "--data", d]);
        let err = String::from_utf8_lossy(&o.stderr).to_string();
        assert!(!o.status.success(), "{what}: verify passed");
        assert_eq!(err.trim().lines().count(), 1, "{what}: one line: {err}");
        assert!(err.contains("does NOT verify"), "{what}: {err}");
        // nor does the seeder start on it
        let o = run(
            work.dir.path(),
            &[
                "serve",
                "--data",
                d,
                "--root",
                "root.shoal",
                "--online-key",
                "online.key",
                "--listen",
                "127.0.0.1:0",
                "--http",
                "127.0.0.1:0",
            ],
        );
        assert!(!o.status.success(), "{what}: the seeder started");
        assert!(
            String::from_utf8_lossy(&o.stderr).contains("audit log"),
            "{what}: {}",
            String::from_utf8_lossy(&o.stderr)
        );
    }
    // a mistyped folder is an error, not an empty (valid) log
    let o = run(
        work.dir.path(),
        &["audit", "verify", "--data", "no-such-folder"],
    );
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("not a folder"));
    // put back, it verifies again
    std::fs::write(data.join("audit.log"), original.join("\n") + "\n").unwrap();
    assert!(
        run(work.dir.path(), &["audit", "verify", "--data", d])
            .status
            .success()
    );
}
