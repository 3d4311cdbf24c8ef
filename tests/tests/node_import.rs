//! `shoal-node import`: an offline install from a release file and its payload, with
//! the same checks as an update from the seeder.

use shoal_tests::*;

#[test]
fn import_installs_a_signed_release_and_refuses_what_the_checks_refuse() {
    let tmp = tempfile::tempdir().unwrap();
    let dir = tmp.path();
    make_keys_and_root(dir);
    // init needs a seeder certificate; the seeder itself is not used afterwards
    let seeder = SeederProcess::start(dir);
    init_node(dir, &seeder, "installed", &[]);
    drop(seeder);
    let make = |version: &str, counter: u64, data: &[u8], sign: bool| {
        std::fs::create_dir_all(dir.join(version)).unwrap();
        let image = dir.join(version).join("image.bin");
        std::fs::write(&image, data).unwrap();
        let rel = dir.join(format!("{version}.shoal"));
        ok(
            dir,
            "shoal-seeder",
            &[
                "release",
                "create",
                "--name",
                "fw",
                "--version",
                version,
                "--counter",
                &counter.to_string(),
                "--device-type",
                "pump",
                "--out",
                rel.to_str().unwrap(),
                image.to_str().unwrap(),
            ],
        );
        if sign {
            ok(
                dir,
                "shoal-seeder",
                &[
                    "release",
                    "sign",
                    "--key",
                    "release.key",
                    rel.to_str().unwrap(),
                ],
            );
        }
        (rel, image)
    };
    let v2_data = bytes(1 << 20, 2);
    let (rel2, img2) = make("2", 2, &v2_data, true);
    let out = ok(
        dir,
        "shoal-node",
        &[
            "import",
            "--data",
            "node",
            rel2.to_str().unwrap(),
            img2.to_str().unwrap(),
        ],
    );
    assert!(out.contains("installed fw 2 (counter 2)"), "{out}");
    assert_eq!(
        std::fs::read(dir.join("installed/image.bin")).unwrap(),
        v2_data
    );

    let refused = |rel: &std::path::Path, img: &std::path::Path, why: &str| {
        let o = run(
            dir,
            "shoal-node",
            &[
                "import",
                "--data",
                "node",
                rel.to_str().unwrap(),
                img.to_str().unwrap(),
            ],
        );
        assert!(!o.status.success());
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(err.lines().count(), 1, "{err}");
        assert!(err.contains(why), "'{err}' lacks '{why}'");
        assert_eq!(
            std::fs::read(dir.join("installed/image.bin")).unwrap(),
            v2_data,
            "unchanged"
        );
    };
    // an older counter: rollback
    let (rel1, img1) = make("1", 1, &bytes(1 << 20, 1), true);
    refused(&rel1, &img1, "rule 'anti-rollback'");
    // unsigned
    let (rel3, img3) = make("3", 3, &bytes(1 << 20, 3), false);
    refused(&rel3, &img3, "rule 'threshold'");
    // a payload that does not match the signed manifest
    let (rel4, img4) = make("4", 4, &bytes(1 << 20, 4), true);
    let mut tampered = std::fs::read(&img4).unwrap();
    tampered[12345] ^= 1;
    std::fs::write(&img4, tampered).unwrap();
    refused(&rel4, &img4, "do not match");
}
