//! The seeder service end to end: a real `shoal-seeder serve` process, the operator
//! commands, and device clients over QUIC.

mod common;

use common::*;
use shoal_core::head::HeadCheck;
use shoal_core::wan::Enrolment;
use shoal_core::{Hash, ReleaseCheck, Signed, verify_admission, verify_head, verify_release};
use shoal_node::wan::WanError;

fn refused(r: Result<impl std::fmt::Debug, WanError>) -> Option<Enrolment> {
    match r {
        Err(WanError::Refused(state)) => state,
        other => panic!("expected a refusal, got {other:?}"),
    }
}

/// Asserts that every request but enrolment is refused for this device.
async fn assert_gets_nothing(dev: &shoal_node::wan::WanClient, expect: Option<Enrolment>) {
    assert_eq!(refused(dev.admission().await), expect, "admission");
    assert_eq!(refused(dev.head().await), expect, "head");
    assert_eq!(refused(dev.release(Hash([1; 32])).await), expect, "release");
    assert_eq!(
        refused(dev.chunks(&[Hash([2; 32])]).await),
        expect,
        "chunks"
    );
}

#[tokio::test]
async fn enrolment_is_pending_until_accepted() {
    let work = Work::new();
    let data = work.path("data");
    let seeder = Seeder::start(&work, &data, &[]);
    let key = device_key(1);
    let dev = seeder.device(&key).await;
    assert_eq!(
        dev.enrol("pump", "plant-7", vec![]).await.unwrap(),
        Enrolment::Pending
    );
    assert_gets_nothing(&dev, Some(Enrolment::Pending)).await;

    let listed = seeder.cli_json(&["devices", "list"]);
    assert_eq!(listed[0]["device"]["id"], key.key_id().to_hex());
    assert_eq!(listed[0]["device"]["state"], "Pending");

    seeder.cli_ok(&[
        "devices",
        "accept",
        &key.key_id().to_hex(),
        "--group",
        "line-a",
    ]);
    let adm = dev.admission().await.unwrap();
    let signed = shoal_core::Admission::decode_envelope_checked(&adm);
    let a = verify_admission(
        &work.root(),
        &signed,
        Some("plant-7"),
        Some(key.key_id()),
        shoal_seeder::time::now(),
    )
    .expect("the admission verifies against the root");
    assert_eq!(a.groups, vec!["line-a".to_string()]);
    // accepted, in no deployment yet
    assert_eq!(dev.head().await.unwrap(), None);
}

#[tokio::test]
async fn a_preauthorized_key_is_accepted_at_once() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let key = device_key(2);
    let pubfile = write_pub(&work, &key, "node.pub");
    seeder.cli_ok(&[
        "devices",
        "preauthorize",
        "--pub",
        pubfile.to_str().unwrap(),
        "--group",
        "g",
    ]);
    let dev = seeder.device(&key).await;
    assert_eq!(
        dev.enrol("pump", "plant-7", vec![]).await.unwrap(),
        Enrolment::Accepted
    );
    assert!(dev.admission().await.is_ok());
}

#[tokio::test]
async fn unknown_and_rejected_devices_get_nothing() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    // never enrolled
    let unknown = seeder.device(&device_key(3)).await;
    assert_gets_nothing(&unknown, None).await;
    // enrolled, then rejected
    let key = device_key(4);
    let dev = seeder.device(&key).await;
    dev.enrol("pump", "plant-7", vec![]).await.unwrap();
    seeder.cli_ok(&["devices", "reject", &key.key_id().to_hex()]);
    assert_gets_nothing(&dev, Some(Enrolment::Rejected)).await;
    // accepted, then decommissioned
    let key = device_key(5);
    let dev = seeder.device(&key).await;
    dev.enrol("pump", "plant-7", vec![]).await.unwrap();
    seeder.cli_ok(&["devices", "accept", &key.key_id().to_hex(), "--group", "g"]);
    assert!(dev.admission().await.is_ok());
    seeder.cli_ok(&["devices", "decommission", &key.key_id().to_hex()]);
    assert_gets_nothing(&dev, Some(Enrolment::Rejected)).await;
}

#[tokio::test]
async fn publish_refuses_what_the_root_does_not_trust() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let data = bytes(300_000, 1);
    let unsigned = work.release("a.bin", &data, "app", "1", 1, None);
    let o = seeder.cli(&["publish", unsigned.to_str().unwrap(), "a.bin"]);
    assert!(!o.status.success());
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("rule 'threshold'"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );

    let by_online = work.release("a.bin", &data, "app", "2", 2, Some("online.key"));
    let o = seeder.cli(&["publish", by_online.to_str().unwrap(), "a.bin"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 by keys of another role"));

    let by_stranger = work.release("a.bin", &data, "app", "3", 3, Some("stranger.key"));
    let o = seeder.cli(&["publish", by_stranger.to_str().unwrap(), "a.bin"]);
    assert!(!o.status.success());
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 by unknown keys"));

    assert_eq!(seeder.cli_json(&["deploy", "list"]), serde_json::json!([]));
    let releases = http_get(&seeder, "/releases");
    assert_eq!(releases, serde_json::json!([]), "nothing was published");
}

#[tokio::test]
async fn an_upload_whose_chunk_does_not_match_is_refused() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let data = bytes(300_000, 2);
    let rel = work.release("b.bin", &data, "app", "1", 1, Some("release.key"));
    // the file changes after `release create`: publish refuses before storing it
    let mut changed = data.clone();
    changed[1000] ^= 1;
    std::fs::write(work.path("b.bin"), &changed).unwrap();
    let o = seeder.cli(&["publish", rel.to_str().unwrap(), "b.bin"]);
    assert!(!o.status.success());
    // and the API itself refuses a chunk whose bytes do not match its name
    let signed_bytes = std::fs::read(&rel).unwrap();
    let signed = shoal_core::release::decode_release(&signed_bytes).unwrap();
    let release = signed.decode_unverified().unwrap();
    let first = release.files[0].chunks[0];
    let id = signed.body_hash();
    let wrong = vec![0u8; first.len as usize];
    let (status, body) = http_put(
        &seeder,
        &format!("/releases/{id}/chunks/{}", first.hash),
        &wrong,
    );
    assert_eq!(status, 400, "{body}");
    assert!(body.contains("not stored"), "{body}");
    // a chunk longer than its entry
    let (status, _) = http_put(
        &seeder,
        &format!("/releases/{id}/chunks/{}", first.hash),
        &vec![0u8; first.len as usize + 1],
    );
    assert_eq!(status, 400);
    // not published, and the bad bytes were not stored
    let (status, body) = http_post(&seeder, &format!("/releases/{id}/publish"));
    assert_eq!(status, 409, "{body}");
    assert_eq!(http_get(&seeder, "/releases"), serde_json::json!([]));
}

#[tokio::test]
async fn a_deployment_gives_every_accepted_device_in_the_group_a_signed_head() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let data = bytes(1_000_000, 3);
    let rel = work.release("fw.bin", &data, "fw", "1.0", 4, Some("release.key"));
    let out = seeder.cli_ok(&["publish", rel.to_str().unwrap(), "fw.bin"]);
    assert!(out.contains("published fw@1.0"), "{out}");

    let mut group_a = Vec::new();
    for seed in [10u8, 11, 12] {
        let key = device_key(seed);
        let dev = seeder.device(&key).await;
        dev.enrol("pump", "plant-7", vec![]).await.unwrap();
        seeder.cli_ok(&["devices", "accept", &key.key_id().to_hex(), "--group", "a"]);
        group_a.push((key, dev));
    }
    let other_key = device_key(13);
    let other = seeder.device(&other_key).await;
    other.enrol("pump", "plant-7", vec![]).await.unwrap();
    seeder.cli_ok(&[
        "devices",
        "accept",
        &other_key.key_id().to_hex(),
        "--group",
        "b",
    ]);
    let pending = seeder.device(&device_key(14)).await;
    pending.enrol("pump", "plant-7", vec![]).await.unwrap();

    let d = seeder.cli_json(&["deploy", "--release", "fw@1.0", "--group", "a"]);
    assert_eq!(d["group"], "a");
    let root = work.root();
    let now = shoal_seeder::time::now();
    for (key, dev) in &group_a {
        let head_bytes = dev.head().await.unwrap().expect("a head for group a");
        let signed = shoal_core::Head::decode_envelope_checked(&head_bytes);
        let check = HeadCheck {
            device_id: key.key_id(),
            last_seq: None,
            installed_counter: Some(3),
        };
        let head =
            verify_head(&root, &signed, &check, now).expect("the head verifies against the root");
        assert_eq!(head.counter, 4);
        // the same target: the seq stays; the head is fresh
        let again = shoal_core::Head::decode_envelope_checked(&dev.head().await.unwrap().unwrap());
        assert_eq!(again.decode_unverified().unwrap().seq, head.seq);
        // the release it names verifies and matches
        let rel_bytes = dev
            .release(head.release)
            .await
            .unwrap()
            .expect("the release");
        let signed_rel = shoal_core::release::decode_release(&rel_bytes).unwrap();
        let check = ReleaseCheck {
            device_type: Some("pump"),
            min_counter: Some(3),
            head: Some((head.release, head.counter)),
        };
        let (release, _) =
            verify_release(&root, &signed_rel, &check, now).expect("the release verifies");
        // every chunk comes back with the bytes the manifest names
        let hashes: Vec<Hash> = release.files[0].chunks.iter().map(|c| c.hash).collect();
        let got = dev.chunks(&hashes).await.unwrap();
        let mut assembled = Vec::new();
        for ((h, bytes), c) in got.iter().zip(&release.files[0].chunks) {
            let bytes = bytes.as_ref().expect("the seeder has every chunk");
            assert_eq!(*h, c.hash);
            assert_eq!(Hash::of(bytes), c.hash);
            assembled.extend_from_slice(bytes);
        }
        assert_eq!(assembled, data);
        // an unknown chunk is a clean not-found
        let missing = dev.chunks(&[Hash([9; 32])]).await.unwrap();
        assert_eq!(missing, vec![(Hash([9; 32]), None)]);
    }
    assert_eq!(
        other.head().await.unwrap(),
        None,
        "group b has no deployment"
    );
    assert_eq!(refused(pending.head().await), Some(Enrolment::Pending));

    // a new deployment to the group raises the seq
    let rel2 = work.release(
        "fw.bin",
        &bytes(1_000_000, 4),
        "fw",
        "1.1",
        5,
        Some("release.key"),
    );
    seeder.cli_ok(&["publish", rel2.to_str().unwrap(), "fw.bin"]);
    seeder.cli_ok(&["deploy", "--release", "fw@1.1", "--group", "a"]);
    let (key, dev) = &group_a[0];
    let h2 = shoal_core::Head::decode_envelope_checked(&dev.head().await.unwrap().unwrap());
    let h2 = verify_head(
        &root,
        &h2,
        &HeadCheck {
            device_id: key.key_id(),
            last_seq: Some(1),
            installed_counter: Some(4),
        },
        now,
    )
    .unwrap();
    assert_eq!((h2.seq, h2.counter), (2, 5));
}

#[tokio::test]
async fn status_reports_are_stored_and_listed() {
    use shoal_core::wan::{BytesBySource, DeviceState, StatusReport};
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let key = device_key(20);
    let dev = seeder.device(&key).await;
    dev.enrol("pump", "plant-7", vec![("fw".into(), "0.9".into())])
        .await
        .unwrap();
    let report = StatusReport {
        state: DeviceState::Downloading,
        release: Some(Hash([3; 32])),
        done_bytes: 123,
        total_bytes: 456,
        bytes: BytesBySource {
            local: 1,
            wan: 2,
            lan: 3,
        },
        error: None,
        head_expires_at: Some(99),
        inventory: vec![],
    };
    // a pending device's report is refused
    assert_eq!(
        refused(dev.report(report.clone()).await),
        Some(Enrolment::Pending)
    );
    seeder.cli_ok(&["devices", "accept", &key.key_id().to_hex(), "--group", "g"]);
    dev.report(report).await.unwrap();
    let listed = seeder.cli_json(&["devices", "list"]);
    let s = &listed[0]["status"];
    assert_eq!(s["state"], "Downloading");
    assert_eq!(s["done_bytes"], 123);
    assert_eq!(s["bytes_wan"], 2);
    let human = seeder.cli_ok(&["devices", "list"]);
    assert!(human.contains("downloading"), "{human}");
}

#[tokio::test]
async fn the_management_api_wants_the_token() {
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let agent = seeder.agent();
    for auth in [None, Some("Bearer nope")] {
        let mut req = agent.get(format!("{}/api/v1/devices", seeder.http));
        if let Some(a) = auth {
            req = req.header("Authorization", a);
        }
        assert_eq!(req.call().unwrap().status(), 401);
    }
    std::fs::write(work.path("bad.token"), "wrong\n").unwrap();
    let o = std::process::Command::new(bin())
        .args(["devices", "list", "--url", &seeder.http, "--token-file"])
        .arg(work.path("bad.token"))
        .arg("--cert")
        .arg(&seeder.cert_pem)
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(err.lines().count(), 1);
    assert!(err.contains("401"), "{err}");
}

#[tokio::test]
async fn the_seeder_refuses_to_run_with_a_release_key() {
    let work = Work::new();
    let o = run(
        work.dir.path(),
        &[
            "serve",
            "--data",
            "d",
            "--root",
            "root.shoal",
            "--online-key",
            "release.key",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("never holds root or release keys"), "{err}");
    let o = run(
        work.dir.path(),
        &[
            "serve",
            "--data",
            "d",
            "--root",
            "root.shoal",
            "--online-key",
            "stranger.key",
            "--listen",
            "127.0.0.1:0",
            "--http",
            "127.0.0.1:0",
        ],
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(String::from_utf8_lossy(&o.stderr).contains("not an online key"));
}

// --- small HTTP helpers for what the CLI does not expose ---

fn token(seeder: &Seeder) -> String {
    format!(
        "Bearer {}",
        std::fs::read_to_string(seeder.token_file()).unwrap().trim()
    )
}

fn http_get(seeder: &Seeder, path: &str) -> serde_json::Value {
    seeder
        .agent()
        .get(format!("{}/api/v1{path}", seeder.http))
        .header("Authorization", token(seeder))
        .call()
        .unwrap()
        .body_mut()
        .read_json()
        .unwrap()
}

fn http_put(seeder: &Seeder, path: &str, body: &[u8]) -> (u16, String) {
    let mut r = seeder
        .agent()
        .put(format!("{}/api/v1{path}", seeder.http))
        .header("Authorization", token(seeder))
        .send(body)
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

fn http_post(seeder: &Seeder, path: &str) -> (u16, String) {
    let mut r = seeder
        .agent()
        .post(format!("{}/api/v1{path}", seeder.http))
        .header("Authorization", token(seeder))
        .send_empty()
        .unwrap();
    (r.status().as_u16(), r.body_mut().read_to_string().unwrap())
}

/// Decoding helpers the tests share.
trait DecodeChecked: shoal_core::Document {
    fn decode_envelope_checked(bytes: &[u8]) -> Signed<Self> {
        Self::decode_envelope(bytes).expect("a well-formed envelope")
    }
}
impl<T: shoal_core::Document> DecodeChecked for T {}

#[tokio::test]
async fn a_given_certificate_is_used_instead_of_a_generated_one() {
    let work = Work::new();
    let generated = rcgen::generate_simple_self_signed(vec!["seeder.example".into()]).unwrap();
    std::fs::write(work.path("given.pem"), generated.cert.pem()).unwrap();
    std::fs::write(
        work.path("given.key"),
        generated.signing_key.serialize_pem(),
    )
    .unwrap();
    let data = work.path("data");
    let mut seeder = Seeder::start(&work, &data, &["--cert", "given.pem", "--key", "given.key"]);
    assert!(
        !data.join("tls/cert.pem").exists(),
        "no certificate was generated"
    );
    let given = rustls::pki_types::CertificateDer::from(generated.cert.der().to_vec());
    seeder.cert = given;
    let dev = seeder.device(&device_key(40)).await;
    assert_eq!(
        dev.enrol("pump", "s", vec![]).await.unwrap(),
        Enrolment::Pending
    );
    // the management API shows the given certificate too: the commands pinned to it
    // reach it
    seeder.cli_ok(&["devices", "list"]);
    // a device pinned to another certificate refuses to talk to this seeder
    let other = rcgen::generate_simple_self_signed(vec!["x".into()]).unwrap();
    let wrong = rustls::pki_types::CertificateDer::from(other.cert.der().to_vec());
    assert!(
        shoal_node::wan::WanClient::connect(seeder.device_addr, &device_key(41), wrong)
            .await
            .is_err()
    );
}

/// `tokens create --role admin` against `url`, pinning `cert` (none: neither
/// `--cert` nor `SHOAL_CERT`), writing the secret to `out`.
fn create_token(
    work: &Work,
    seeder: &Seeder,
    url: &str,
    cert: Option<&std::path::Path>,
    out: &str,
) -> std::process::Output {
    let mut cmd = std::process::Command::new(bin());
    cmd.current_dir(work.dir.path())
        .args(["tokens", "create", "--role", "admin", "--out", out])
        .args(["--url", url, "--token-file"])
        .arg(seeder.token_file())
        .env_remove("SHOAL_CERT");
    if let Some(c) = cert {
        cmd.arg("--cert").arg(c);
    }
    cmd.output().unwrap()
}

// guards: a bearer token crossing the network readable (plain HTTP) or handed to a
// seeder that is not the pinned one
#[test]
fn the_management_api_speaks_https_to_the_pinned_seeder_only() {
    use std::io::{Read, Write};
    let work = Work::new();
    let seeder = Seeder::start(&work, &work.path("data"), &[]);
    let entries = || {
        shoal_seeder::audit::read_entries(&seeder.data)
            .unwrap()
            .len()
    };
    let before = entries();
    let admin = std::fs::read_to_string(seeder.token_file()).unwrap();
    let stderr = |o: &std::process::Output| String::from_utf8_lossy(&o.stderr).to_string();

    // the operator commands refuse http:// before they connect: a listener standing in
    // for the seeder sees no connection at all
    let stand_in = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    stand_in.set_nonblocking(true).unwrap();
    let plain = format!("http://{}", stand_in.local_addr().unwrap());
    let o = create_token(&work, &seeder, &plain, Some(&seeder.cert_pem), "t1.token");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("HTTPS only"), "{}", stderr(&o));
    assert!(
        matches!(stand_in.accept(), Err(e) if e.kind() == std::io::ErrorKind::WouldBlock),
        "the command connected to a plain-HTTP address"
    );

    // a plain-HTTP request on the seeder's port is not read: no HTTP answer, nothing
    // done with the admin token it carries
    let addr = seeder.http.strip_prefix("https://").unwrap();
    let mut tcp = std::net::TcpStream::connect(addr).unwrap();
    tcp.set_read_timeout(Some(std::time::Duration::from_secs(15)))
        .unwrap();
    let body = r#"{"role":"admin"}"#;
    // the seeder may close the connection before the request is all written (a broken
    // pipe here): that too is a refusal
    let _ = write!(
        tcp,
        "POST /api/v1/tokens HTTP/1.1\r\nHost: {addr}\r\nAuthorization: Bearer {}\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
        admin.trim(),
        body.len()
    );
    let mut answer = Vec::new();
    let _ = tcp.read_to_end(&mut answer);
    assert!(
        !answer.starts_with(b"HTTP/"),
        "plain HTTP was answered: {}",
        String::from_utf8_lossy(&answer)
    );

    // a client pinned to another certificate stops in the handshake, before the
    // request (and its token) is written
    let other = rcgen::generate_simple_self_signed(vec!["localhost".into()]).unwrap();
    std::fs::write(work.path("other.pem"), other.cert.pem()).unwrap();
    let o = create_token(
        &work,
        &seeder,
        &seeder.http,
        Some(&work.path("other.pem")),
        "t2.token",
    );
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("not the pinned one"), "{}", stderr(&o));
    // without a pin the system's roots do not know the seeder's own certificate
    let o = create_token(&work, &seeder, &seeder.http, None, "t3.token");
    assert_eq!(o.status.code(), Some(1));
    assert!(stderr(&o).contains("pass --cert"), "{}", stderr(&o));

    // none of it reached the seeder: no entry, no token
    assert_eq!(entries(), before, "the seeder acted on a request");
    for t in ["t1.token", "t2.token", "t3.token"] {
        assert!(!work.path(t).exists(), "{t} was written");
    }
    assert_eq!(seeder.cli_json(&["tokens", "list"]), serde_json::json!([]));
    // and the pinned client works (an `ok` entry: the control that makes the counts
    // above mean something)
    let o = create_token(
        &work,
        &seeder,
        &seeder.http,
        Some(&seeder.cert_pem),
        "t4.token",
    );
    assert!(o.status.success(), "{}", stderr(&o));
    assert_eq!(entries(), before + 1);
}
