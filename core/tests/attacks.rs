//! One test per verification rule of DESIGN section 2, each named after the attack it
//! stops. Each test also shows the honest case passing, so a rule that rejected
//! everything would fail here too.

mod common;

use common::*;
use shoal_core::codec::DecodeError;
use shoal_core::frame::{FrameError, FrameReader};
use shoal_core::head::HeadCheck;
use shoal_core::path::PathError;
use shoal_core::release::{RELEASE_BODY_CAP, decode_release};
use shoal_core::root::MAX_ROTATION_STEPS;
use shoal_core::signed::{ENVELOPE_OVERHEAD, MAX_SIGNATURES};
use shoal_core::{
    DocKind, Document, Hash, Head, Release, ReleaseCheck, Role, RoleKeys, Root, SecretKey,
    Signature, Signed, VerifyError, verify_admission, verify_head, verify_release, verify_root,
    verify_root_chain, verify_rotation,
};

fn root() -> Root {
    verify_root(&signed_root(&keys()), NOW).expect("the fixture root is valid")
}

fn check_release(signed: &Signed<Release>) -> Result<Release, VerifyError> {
    verify_release(&root(), signed, &ReleaseCheck::default(), NOW).map(|(r, _)| r)
}

fn threshold_tally(err: VerifyError) -> shoal_core::Tally {
    match err {
        VerifyError::ThresholdNotMet { tally, .. } => tally,
        other => panic!("expected ThresholdNotMet, got {other}"),
    }
}

#[test]
fn honest_release_verifies() {
    let k = keys();
    let rel = check_release(&signed_release(&k)).unwrap();
    assert_eq!(rel, release_doc());
}

// --- malicious software: bytes no release key signed ---

#[test]
fn unsigned_release_is_rejected() {
    let s = sign(&release_doc(), &[]);
    let err = check_release(&s).unwrap_err();
    assert!(matches!(
        err,
        VerifyError::ThresholdNotMet {
            doc: DocKind::Release,
            role: Role::Release,
            threshold: 2,
            ..
        }
    ));
    assert_eq!(threshold_tally(err).valid, 0);
}

#[test]
fn release_signed_by_unknown_keys_is_rejected() {
    let a = SecretKey::from_seed([100; 32]);
    let b = SecretKey::from_seed([101; 32]);
    let t = threshold_tally(check_release(&sign(&release_doc(), &[&a, &b])).unwrap_err());
    assert_eq!((t.valid, t.unknown_key), (0, 2));
}

#[test]
fn release_signed_by_the_online_key_is_rejected() {
    // the seeder holds the online key; it must not be able to stand in for a release key
    let k = keys();
    let t = threshold_tally(
        check_release(&sign(&release_doc(), &[&k.release[0], &k.online])).unwrap_err(),
    );
    assert_eq!((t.valid, t.other_role), (1, 1));
}

#[test]
fn release_signed_by_a_root_key_is_rejected() {
    let k = keys();
    let t = threshold_tally(
        check_release(&sign(&release_doc(), &[&k.release[0], &k.root[0]])).unwrap_err(),
    );
    assert_eq!((t.valid, t.other_role), (1, 1));
}

#[test]
fn release_with_one_of_two_release_signatures_is_rejected() {
    let k = keys();
    let t = threshold_tally(check_release(&sign(&release_doc(), &[&k.release[0]])).unwrap_err());
    assert_eq!(t.valid, 1);
}

#[test]
fn same_key_signing_twice_counts_once() {
    let k = keys();
    let s = sign(&release_doc(), &[&k.release[0], &k.release[0]]);
    let t = threshold_tally(check_release(&s).unwrap_err());
    assert_eq!((t.valid, t.duplicate), (1, 1));
}

#[test]
fn signature_copied_under_another_key_id_does_not_count() {
    // a signature by key A relabelled with key B's id must not count for B
    let k = keys();
    let mut s = sign(&release_doc(), &[&k.release[0]]);
    let copied = Signature {
        key_id: k.release[1].key_id(),
        sig: s.signatures[0].sig,
    };
    s.signatures.push(copied);
    let t = threshold_tally(check_release(&s).unwrap_err());
    assert_eq!((t.valid, t.bad_signature), (1, 1));
}

#[test]
fn duplicate_key_in_root_counts_once() {
    // a root listing the same release key twice must not let that key meet 2-of-n alone
    let k = keys();
    let mut doc = root_doc(&k);
    doc.release = RoleKeys {
        keys: vec![
            k.release[0].public(),
            k.release[0].public(),
            k.release[1].public(),
        ],
        threshold: 2,
    };
    let r = verify_root(&sign(&doc, &[&k.root[0], &k.root[1]]), NOW).unwrap();
    let s = sign(&release_doc(), &[&k.release[0], &k.release[0]]);
    let err = verify_release(&r, &s, &ReleaseCheck::default(), NOW).unwrap_err();
    assert_eq!(threshold_tally(err).valid, 1);
    // and a root whose only distinct key cannot meet its threshold is refused outright
    doc.release.keys = vec![k.release[0].public(), k.release[0].public()];
    let err = verify_root(&sign(&doc, &[&k.root[0], &k.root[1]]), NOW).unwrap_err();
    assert_eq!(
        err,
        VerifyError::UnsatisfiableThreshold {
            role: Role::Release,
            threshold: 2,
            distinct_keys: 1
        }
    );
}

#[test]
fn zero_threshold_is_rejected() {
    // threshold 0 would accept a release with no signature at all
    let k = keys();
    for role in [Role::Root, Role::Release, Role::Online] {
        let mut doc = root_doc(&k);
        match role {
            Role::Root => doc.root.threshold = 0,
            Role::Release => doc.release.threshold = 0,
            Role::Online => doc.online.threshold = 0,
        }
        let err = verify_root(&sign(&doc, &[&k.root[0], &k.root[1]]), NOW).unwrap_err();
        assert_eq!(err, VerifyError::ZeroThreshold { role });
    }
    // also when such a root is used directly, not loaded through verify_root
    let mut doc = root_doc(&k);
    doc.release.threshold = 0;
    let err = verify_release(
        &doc,
        &sign(&release_doc(), &[]),
        &ReleaseCheck::default(),
        NOW,
    )
    .unwrap_err();
    assert_eq!(
        err,
        VerifyError::ZeroThreshold {
            role: Role::Release
        }
    );
}

#[test]
fn online_key_listed_as_release_key_is_rejected() {
    // a root that lets the seeder's key sign releases defeats the offline release keys
    let k = keys();
    let mut doc = root_doc(&k);
    doc.release.keys.push(k.online.public());
    let err = verify_root(&sign(&doc, &[&k.root[0], &k.root[1]]), NOW).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::KeyInTwoRoles {
                first: Role::Release,
                second: Role::Online,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn head_signature_presented_as_release_is_rejected() {
    // wrong domain tag: signatures the release keys made over these very bytes, but as a
    // Head, must not verify as a Release
    let k = keys();
    let body = release_doc().encode_body().unwrap();
    let as_head: Signed<Head> = {
        let mut s = Signed::from_parts(body.clone(), vec![]);
        s.sign(&k.release[0]);
        s.sign(&k.release[1]);
        s
    };
    let presented: Signed<Release> = Signed::from_parts(body, as_head.signatures.clone());
    let t = threshold_tally(check_release(&presented).unwrap_err());
    assert_eq!((t.valid, t.bad_signature), (0, 2));
    // and a real signed head's bytes are not a release
    let head = sign(&head_doc(Hash::of(b"x"), 5, 1), &[&k.online]);
    let bytes = head.to_bytes().unwrap();
    let as_release = decode_release(&bytes).unwrap();
    assert!(check_release(&as_release).is_err());
}

#[test]
fn domain_tags_are_distinct_and_prefix_free() {
    let tags = [
        Root::DOMAIN,
        Release::DOMAIN,
        Head::DOMAIN,
        shoal_core::Admission::DOMAIN,
    ];
    for (i, a) in tags.iter().enumerate() {
        for (j, b) in tags.iter().enumerate() {
            if i != j {
                assert!(!b.starts_with(a), "{:?} is a prefix of {:?}", a, b);
            }
        }
    }
}

#[test]
fn body_changed_after_signing_is_rejected() {
    let k = keys();
    let mut s = signed_release(&k);
    let last = s.body.len() - 1;
    s.body[last] ^= 1;
    let t = threshold_tally(check_release(&s).unwrap_err());
    assert_eq!((t.valid, t.bad_signature), (0, 2));
}

#[test]
fn envelope_with_too_many_signatures_is_rejected() {
    // each signature costs a check; an envelope stuffed with them is refused unchecked
    let k = keys();
    let mut s = signed_release(&k);
    let extra = s.signatures[0].clone();
    s.signatures.resize(MAX_SIGNATURES + 1, extra);
    assert!(matches!(
        check_release(&s).unwrap_err(),
        VerifyError::TooManySignatures { count, .. } if count == MAX_SIGNATURES + 1
    ));
}

// --- indefinite freeze: expiry ---

#[test]
fn expired_root_is_rejected() {
    let k = keys();
    let s = signed_root(&k);
    let expires = root_doc(&k).expires_at;
    assert!(verify_root(&s, expires - 1).is_ok());
    assert_eq!(
        verify_root(&s, expires).unwrap_err(),
        VerifyError::Expired {
            doc: DocKind::Root,
            expires_at: expires,
            now: expires
        }
    );
    // nothing verifies against an expired root
    let r = root();
    let err = verify_release(
        &r,
        &signed_release(&k),
        &ReleaseCheck::default(),
        expires + 1,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        VerifyError::Expired {
            doc: DocKind::Root,
            ..
        }
    ));
}

fn head_check(last_seq: Option<u64>, installed_counter: Option<u64>) -> HeadCheck {
    HeadCheck {
        device_id: device().key_id(),
        last_seq,
        installed_counter,
    }
}

#[test]
fn expired_head_is_rejected() {
    let k = keys();
    let doc = head_doc(Hash::of(b"r"), 5, 1);
    let s = sign(&doc, &[&k.online]);
    assert!(verify_head(&root(), &s, &head_check(None, None), doc.expires_at - 1).is_ok());
    let err = verify_head(&root(), &s, &head_check(None, None), doc.expires_at).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Expired {
                doc: DocKind::Head,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn expired_admission_is_rejected() {
    let k = keys();
    let doc = admission_doc();
    let s = sign(&doc, &[&k.online]);
    assert!(verify_admission(&root(), &s, Some("plant-7"), None, NOW).is_ok());
    let err = verify_admission(&root(), &s, Some("plant-7"), None, doc.expires_at).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::Expired {
                doc: DocKind::Admission,
                ..
            }
        ),
        "{err}"
    );
}

// --- rollback, replay, mix-and-match, wrong software ---

#[test]
fn release_counter_below_installed_is_rollback() {
    let k = keys();
    let s = signed_release(&k);
    let check = |installed| ReleaseCheck {
        min_counter: Some(installed),
        ..Default::default()
    };
    // counter 5: fine over 4 and 5 (a reinstall), refused over 6
    assert!(verify_release(&root(), &s, &check(5), NOW).is_ok());
    assert_eq!(
        verify_release(&root(), &s, &check(6), NOW).unwrap_err(),
        VerifyError::Rollback {
            doc: DocKind::Release,
            found: 5,
            installed: 6
        }
    );
}

#[test]
fn head_for_an_older_counter_is_rollback() {
    let k = keys();
    let s = sign(&head_doc(Hash::of(b"old"), 3, 10), &[&k.online]);
    let err = verify_head(&root(), &s, &head_check(Some(9), Some(4)), NOW).unwrap_err();
    assert_eq!(
        err,
        VerifyError::Rollback {
            doc: DocKind::Head,
            found: 3,
            installed: 4
        }
    );
}

#[test]
fn head_seq_not_above_last_is_replay() {
    let k = keys();
    let s = sign(&head_doc(Hash::of(b"r"), 5, 7), &[&k.online]);
    assert!(verify_head(&root(), &s, &head_check(Some(6), None), NOW).is_ok());
    for last in [7, 8] {
        assert_eq!(
            verify_head(&root(), &s, &head_check(Some(last), None), NOW).unwrap_err(),
            VerifyError::Replay { found: 7, last }
        );
    }
}

#[test]
fn head_for_another_device_is_rejected() {
    let k = keys();
    let mut doc = head_doc(Hash::of(b"r"), 5, 1);
    doc.device_id = SecretKey::from_seed([77; 32]).key_id();
    let err = verify_head(
        &root(),
        &sign(&doc, &[&k.online]),
        &head_check(None, None),
        NOW,
    )
    .unwrap_err();
    assert!(matches!(
        err,
        VerifyError::WrongDevice {
            doc: DocKind::Head,
            ..
        }
    ));
}

#[test]
fn head_signed_by_a_release_key_is_rejected() {
    let k = keys();
    let s = sign(&head_doc(Hash::of(b"r"), 5, 1), &[&k.release[0]]);
    let err = verify_head(&root(), &s, &head_check(None, None), NOW).unwrap_err();
    assert_eq!(threshold_tally(err).other_role, 1);
}

#[test]
fn release_other_than_the_head_names_is_rejected() {
    // mix-and-match: a valid release, but not the one this device was told to run
    let k = keys();
    let s = signed_release(&k);
    let good = ReleaseCheck {
        head: Some((s.body_hash(), 5)),
        ..Default::default()
    };
    assert!(verify_release(&root(), &s, &good, NOW).is_ok());
    let other = ReleaseCheck {
        head: Some((Hash::of(b"another release"), 5)),
        ..Default::default()
    };
    assert!(matches!(
        verify_release(&root(), &s, &other, NOW).unwrap_err(),
        VerifyError::ReleaseMismatch { .. }
    ));
    let wrong_counter = ReleaseCheck {
        head: Some((s.body_hash(), 6)),
        ..Default::default()
    };
    assert_eq!(
        verify_release(&root(), &s, &wrong_counter, NOW).unwrap_err(),
        VerifyError::CounterMismatch {
            expected: 6,
            found: 5
        }
    );
}

#[test]
fn release_for_another_device_type_is_wrong_software() {
    let k = keys();
    let s = signed_release(&k);
    let check = |t| ReleaseCheck {
        device_type: Some(t),
        ..Default::default()
    };
    assert!(verify_release(&root(), &s, &check("pump"), NOW).is_ok());
    assert_eq!(
        verify_release(&root(), &s, &check("fan"), NOW).unwrap_err(),
        VerifyError::WrongDeviceType {
            device_type: "fan".into(),
            allowed: vec!["pump".into()]
        }
    );
}

#[test]
fn admission_for_another_site_is_rejected() {
    let k = keys();
    let s = sign(&admission_doc(), &[&k.online]);
    assert!(matches!(
        verify_admission(&root(), &s, Some("plant-8"), None, NOW).unwrap_err(),
        VerifyError::WrongSite { .. }
    ));
}

#[test]
fn admission_naming_a_key_that_is_not_the_device_is_rejected() {
    // an admission must bind the device id to the key that proves it
    let k = keys();
    let mut doc = admission_doc();
    doc.device_key = SecretKey::from_seed([78; 32]).public();
    let err = verify_admission(&root(), &sign(&doc, &[&k.online]), None, None, NOW).unwrap_err();
    assert!(matches!(err, VerifyError::DeviceKeyMismatch { .. }));
}

// --- key compromise and rotation ---

fn next_root(k: &Keys, new_root_keys: &[SecretKey], version: u64) -> Root {
    let mut doc = root_doc(k);
    doc.version = version;
    doc.root = RoleKeys {
        keys: pubs(new_root_keys),
        threshold: 2,
    };
    doc
}

fn new_root_keys() -> Vec<SecretKey> {
    vec![
        SecretKey::from_seed([11; 32]),
        SecretKey::from_seed([12; 32]),
    ]
}

#[test]
fn rotation_signed_by_old_keys_only_is_rejected() {
    let k = keys();
    let new = new_root_keys();
    let s = sign(&next_root(&k, &new, 2), &[&k.root[0], &k.root[1]]);
    let err = verify_rotation(&root(), &s).unwrap_err();
    assert!(
        matches!(
            err,
            VerifyError::ThresholdNotMet {
                doc: DocKind::Root,
                ..
            }
        ),
        "{err}"
    );
}

#[test]
fn rotation_signed_by_new_keys_only_is_rejected() {
    // a thief of fresh keys cannot rotate the root without the keys devices trust now
    let k = keys();
    let new = new_root_keys();
    let s = sign(&next_root(&k, &new, 2), &[&new[0], &new[1]]);
    let err = verify_rotation(&root(), &s).unwrap_err();
    let t = threshold_tally(err);
    assert_eq!((t.valid, t.unknown_key), (0, 2));
}

#[test]
fn rotation_signed_by_old_and_new_keys_is_accepted() {
    let k = keys();
    let new = new_root_keys();
    let s = sign(
        &next_root(&k, &new, 2),
        &[&k.root[0], &k.root[1], &new[0], &new[1]],
    );
    let r2 = verify_rotation(&root(), &s).unwrap();
    assert_eq!(r2.version, 2);
    assert_eq!(verify_root_chain(&root(), &[s], NOW).unwrap(), r2);
}

#[test]
fn rotation_that_skips_a_version_is_rejected() {
    let k = keys();
    let new = new_root_keys();
    let s = sign(
        &next_root(&k, &new, 3),
        &[&k.root[0], &k.root[1], &new[0], &new[1]],
    );
    assert_eq!(
        verify_rotation(&root(), &s).unwrap_err(),
        VerifyError::RotationVersion {
            expected: 2,
            found: 3
        }
    );
}

// guards: the fast-forward attack. A stolen online key signs a head with seq u64::MAX;
// every later head of the genuine seeder fails as a replay, for good. Rotating the
// root to a new online key changes the online role's epoch, which is what a device
// keys its last seq by: under the new root the seq starts over, and the old key's
// heads verify no more.
#[test]
fn a_fast_forwarded_seq_is_recovered_by_rotating_the_online_key() {
    let k = keys();
    let r1 = root();
    let stolen = sign(&head_doc(Hash::of(b"r"), 5, u64::MAX), &[&k.online]);
    assert!(verify_head(&r1, &stolen, &head_check(None, None), NOW).is_ok());
    let genuine = sign(&head_doc(Hash::of(b"r"), 5, 3), &[&k.online]);
    assert!(matches!(
        verify_head(&r1, &genuine, &head_check(Some(u64::MAX), None), NOW),
        Err(VerifyError::Replay { .. })
    ));

    let new_online = SecretKey::from_seed([42; 32]);
    let mut v2 = root_doc(&k);
    v2.version = 2;
    v2.online = RoleKeys {
        keys: vec![new_online.public()],
        threshold: 1,
    };
    let r2 = verify_root_chain(&r1, &[sign(&v2, &[&k.root[0], &k.root[1]])], NOW).unwrap();
    assert_ne!(r1.role_epoch(Role::Online), r2.role_epoch(Role::Online));
    assert_eq!(r1.role_epoch(Role::Release), r2.role_epoch(Role::Release));
    // the device forgets a seq kept under another epoch: no last seq
    let fresh = sign(&head_doc(Hash::of(b"r"), 5, 1), &[&new_online]);
    assert!(verify_head(&r2, &fresh, &head_check(None, None), NOW).is_ok());
    assert!(matches!(
        verify_head(&r2, &stolen, &head_check(None, None), NOW),
        Err(VerifyError::ThresholdNotMet { .. })
    ));
}

/// A chain of `steps` valid rotations from the fixture root, each to fresh keys.
fn chain(steps: usize) -> Vec<Signed<Root>> {
    let k = keys();
    let mut current = vec![SecretKey::from_seed([1; 32]), SecretKey::from_seed([2; 32])];
    let mut out = Vec::new();
    for v in 0..steps {
        let next = vec![
            SecretKey::from_seed([(20 + 2 * v) as u8; 32]),
            SecretKey::from_seed([(21 + 2 * v) as u8; 32]),
        ];
        let doc = next_root(&k, &next, v as u64 + 2);
        out.push(sign(&doc, &[&current[0], &current[1], &next[0], &next[1]]));
        current = next;
    }
    out
}

#[test]
fn rotation_chain_longer_than_the_bound_is_rejected() {
    let ok = chain(MAX_ROTATION_STEPS);
    assert_eq!(
        verify_root_chain(&root(), &ok, NOW).unwrap().version,
        MAX_ROTATION_STEPS as u64 + 1
    );
    let too_long = chain(MAX_ROTATION_STEPS + 1);
    assert_eq!(
        verify_root_chain(&root(), &too_long, NOW).unwrap_err(),
        VerifyError::RotationChainTooLong {
            steps: MAX_ROTATION_STEPS + 1,
            max: MAX_ROTATION_STEPS
        }
    );
}

#[test]
fn rotation_chain_ending_in_an_expired_root_is_rejected() {
    let c = chain(2);
    let expires = root_doc(&keys()).expires_at;
    assert!(matches!(
        verify_root_chain(&root(), &c, expires).unwrap_err(),
        VerifyError::Expired {
            doc: DocKind::Root,
            ..
        }
    ));
}

// --- names from metadata ---

fn release_with_path(path: &str) -> Signed<Release> {
    let k = keys();
    let mut doc = release_doc();
    doc.files[0].path = path.into();
    sign(&doc, &[&k.release[0], &k.release[1]])
}

#[test]
fn release_with_a_dotdot_path_is_rejected() {
    assert_eq!(
        check_release(&release_with_path("../../etc/shadow")).unwrap_err(),
        VerifyError::BadPath {
            path: "../../etc/shadow".into(),
            reason: PathError::ParentDir
        }
    );
}

#[test]
fn release_with_an_absolute_path_is_rejected() {
    assert_eq!(
        check_release(&release_with_path("/etc/shadow")).unwrap_err(),
        VerifyError::BadPath {
            path: "/etc/shadow".into(),
            reason: PathError::Absolute
        }
    );
}

#[test]
fn release_with_a_nul_in_a_path_is_rejected() {
    assert!(matches!(
        check_release(&release_with_path("a\0b")).unwrap_err(),
        VerifyError::BadPath {
            reason: PathError::Nul,
            ..
        }
    ));
}

#[test]
fn release_whose_chunks_do_not_add_up_is_rejected() {
    // every size comes from signed data: a manifest that lies about a file's size, or
    // holds a chunk over the profile's max, is refused even when properly signed
    let k = keys();
    let mut doc = release_doc();
    doc.files[0].size += 1;
    let err = check_release(&sign(&doc, &[&k.release[0], &k.release[1]])).unwrap_err();
    assert!(matches!(err, VerifyError::BadManifest(_)), "{err}");
    let mut doc = release_doc();
    doc.files[0].chunks.push(chunk(doc.chunking.max + 2));
    doc.files[0].size += u64::from(doc.chunking.max + 2);
    let err = check_release(&sign(&doc, &[&k.release[0], &k.release[1]])).unwrap_err();
    assert!(matches!(err, VerifyError::BadManifest(_)), "{err}");
}

// --- endless data: caps before allocation ---

#[test]
fn manifest_over_its_cap_is_rejected_before_it_is_allocated() {
    // an input one byte over the envelope cap is refused before decoding starts
    let over = vec![0u8; RELEASE_BODY_CAP + ENVELOPE_OVERHEAD + 1];
    assert_eq!(
        Release::decode_envelope(&over).unwrap_err(),
        DecodeError::TooLarge {
            len: over.len(),
            cap: RELEASE_BODY_CAP + ENVELOPE_OVERHEAD
        }
    );
    // a small envelope whose body length claims 2^40 bytes fails without reserving them
    let mut claim = (1u64 << 40).to_le_bytes().to_vec();
    claim.extend_from_slice(&[0u8; 64]);
    assert_eq!(
        Release::decode_envelope(&claim).unwrap_err(),
        DecodeError::LimitExceeded {
            cap: RELEASE_BODY_CAP + ENVELOPE_OVERHEAD
        }
    );
    // inside a body, a file list claiming 2^40 entries fails the same way
    let mut body = release_doc().encode_body().unwrap();
    let files_at = body.len() - release_doc().files_encoded_len();
    body[files_at..files_at + 8].copy_from_slice(&(1u64 << 40).to_le_bytes());
    assert!(matches!(
        Release::decode_body(&body).unwrap_err(),
        DecodeError::LimitExceeded { .. } | DecodeError::Truncated
    ));
}

#[test]
fn frame_over_its_cap_is_rejected_before_it_is_allocated() {
    let mut r = FrameReader::new(16 * 1024 * 1024);
    let err = r.push(&(1u32 << 30).to_le_bytes()).unwrap_err();
    assert_eq!(
        err,
        FrameError::TooLarge {
            len: 1 << 30,
            cap: 16 * 1024 * 1024
        }
    );
    assert!(r.buffered() < 64);
}

/// Where the file list starts, counted from the end of an encoded Release body.
trait FilesLen {
    fn files_encoded_len(&self) -> usize;
}

impl FilesLen for Release {
    fn files_encoded_len(&self) -> usize {
        // the files list is the body's last field: its u64 count, then each entry
        shoal_core::codec::encode::<_, RELEASE_BODY_CAP>(&self.files)
            .unwrap()
            .len()
    }
}

// --- the structure rules of each document, whoever signed it ---

fn signed_root_doc(doc: &Root) -> Signed<Root> {
    let k = keys();
    sign(doc, &[&k.root[0], &k.root[1]])
}

#[test]
fn root_with_too_many_keys_is_rejected() {
    let k = keys();
    let mut doc = root_doc(&k);
    doc.online.keys = (0..=shoal_core::root::MAX_KEYS_PER_ROLE as u8)
        .map(|i| SecretKey::from_seed([200u8.wrapping_add(i); 32]).public())
        .collect();
    assert!(matches!(
        verify_root(&signed_root_doc(&doc), NOW).unwrap_err(),
        VerifyError::TooManyKeys {
            role: Role::Online,
            ..
        }
    ));
}

#[test]
fn root_listing_a_weak_key_is_rejected() {
    // a small-order "key" would verify signatures nobody made
    let k = keys();
    let mut doc = root_doc(&k);
    let mut identity = [0u8; 32];
    identity[0] = 1;
    doc.online.keys = vec![shoal_core::PublicKey(identity)];
    assert!(matches!(
        verify_root(&signed_root_doc(&doc), NOW).unwrap_err(),
        VerifyError::BadKey {
            role: Role::Online,
            ..
        }
    ));
}

#[test]
fn root_key_reused_as_online_key_is_rejected() {
    let k = keys();
    let mut doc = root_doc(&k);
    doc.online.keys.push(k.root[0].public());
    assert!(matches!(
        verify_root(&signed_root_doc(&doc), NOW).unwrap_err(),
        VerifyError::KeyInTwoRoles {
            first: Role::Root,
            second: Role::Online,
            ..
        }
    ));
}

#[test]
fn admission_for_another_device_is_rejected() {
    let k = keys();
    let s = sign(&admission_doc(), &[&k.online]);
    let other = SecretKey::from_seed([79; 32]).key_id();
    assert!(matches!(
        verify_admission(&root(), &s, None, Some(other), NOW).unwrap_err(),
        VerifyError::WrongDevice {
            doc: DocKind::Admission,
            ..
        }
    ));
    assert!(verify_admission(&root(), &s, None, Some(device().key_id()), NOW).is_ok());
}

#[test]
fn admission_with_an_empty_site_is_rejected() {
    let k = keys();
    let mut doc = admission_doc();
    doc.site = String::new();
    let err = verify_admission(&root(), &sign(&doc, &[&k.online]), None, None, NOW).unwrap_err();
    assert!(matches!(err, VerifyError::BadManifest(_)), "{err}");
}

/// Signs a modified fixture release and returns the rule that refused it.
fn refused(change: impl FnOnce(&mut Release)) -> VerifyError {
    let k = keys();
    let mut doc = release_doc();
    change(&mut doc);
    check_release(&sign(&doc, &[&k.release[0], &k.release[1]])).unwrap_err()
}

#[test]
fn release_listing_a_path_twice_is_rejected() {
    // two entries for one path: which one would be installed?
    let err = refused(|r| {
        let again = r.files[0].clone();
        r.files.push(again);
    });
    assert!(
        matches!(&err, VerifyError::BadManifest(m) if m.contains("twice")),
        "{err}"
    );
}

#[test]
fn release_with_a_file_that_is_also_a_directory_is_rejected() {
    let err = refused(|r| {
        let mut inner = r.files[0].clone();
        inner.path = "firmware.bin/payload".into();
        r.files.push(inner);
    });
    assert!(
        matches!(&err, VerifyError::BadManifest(m) if m.contains("directory")),
        "{err}"
    );
}

#[test]
fn release_with_a_setuid_file_is_rejected() {
    let err = refused(|r| r.files[0].mode = 0o4755);
    assert!(
        matches!(&err, VerifyError::BadManifest(m) if m.contains("mode")),
        "{err}"
    );
}

#[test]
fn ab_slot_release_with_two_files_is_rejected() {
    let err = refused(|r| {
        r.install = shoal_core::Install::AbSlot;
        let mut second = r.files[0].clone();
        second.path = "second.img".into();
        r.files.push(second);
    });
    assert!(
        matches!(&err, VerifyError::BadManifest(m) if m.contains("ab-slot")),
        "{err}"
    );
}

#[test]
fn release_with_oversized_or_missing_labels_is_rejected() {
    let long = "x".repeat(shoal_core::release::MAX_LABEL_LEN + 1);
    for change in [
        Box::new(|r: &mut Release| r.name = String::new()) as Box<dyn FnOnce(&mut Release)>,
        Box::new(|r: &mut Release| r.version = long.clone()),
        Box::new(|r: &mut Release| r.device_types = vec![]),
        Box::new(|r: &mut Release| {
            r.device_types = vec!["t".into(); shoal_core::release::MAX_DEVICE_TYPES + 1]
        }),
        Box::new(|r: &mut Release| {
            r.install = shoal_core::Install::Command {
                args: vec!["a".into(); shoal_core::release::MAX_INSTALL_ARGS + 1],
            }
        }),
        Box::new(|r: &mut Release| r.files.clear()),
        Box::new(|r: &mut Release| r.chunking.max = 3),
    ] {
        assert!(matches!(refused(change), VerifyError::BadManifest(_)));
    }
}

#[test]
fn compromised_release_keys_are_retired_by_rotation() {
    // after a rotation that replaces the release keys, releases signed by the old
    // (stolen) keys fail and releases by the new keys pass
    let k = keys();
    let new_release = vec![
        SecretKey::from_seed([30; 32]),
        SecretKey::from_seed([31; 32]),
    ];
    let mut doc = root_doc(&k);
    doc.version = 2;
    doc.release = RoleKeys {
        keys: pubs(&new_release),
        threshold: 2,
    };
    let rotation = sign(&doc, &[&k.root[0], &k.root[1]]);
    let r2 = verify_root_chain(&root(), &[rotation], NOW).unwrap();
    let old = signed_release(&k);
    let t = threshold_tally(verify_release(&r2, &old, &ReleaseCheck::default(), NOW).unwrap_err());
    assert_eq!((t.valid, t.unknown_key), (0, 2));
    let new = sign(&release_doc(), &[&new_release[0], &new_release[1]]);
    assert!(verify_release(&r2, &new, &ReleaseCheck::default(), NOW).is_ok());
}
