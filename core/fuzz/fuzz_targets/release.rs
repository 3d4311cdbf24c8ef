//! Release files: `decode_release`, the envelope and body decoders, `check_structure`
//! and `verify_release` against the fixed root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::release::decode_release;
use shoal_core::signed::Document;
use shoal_core::{Hash, ReleaseId};
use shoal_core::{Release, ReleaseCheck, Role, Signed, VerifyError, verify_release};
use shoal_core_fuzz::{DEVICE_TYPE, NOW, body, countersigned, envelope, fixture, signed_by};

const MIN_COUNTER: u64 = 1;

fn check() -> ReleaseCheck<'static> {
    ReleaseCheck {
        device_type: Some(DEVICE_TYPE),
        min_counter: Some(MIN_COUNTER),
        head: None,
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    assert_eq!(
        decode_release(data).is_ok(),
        Release::decode_envelope(data).is_ok()
    );

    if let Some((signed, doc)) = envelope::<Release>(data) {
        if let Some(doc) = &doc {
            structure(doc);
        }
        accepted(verify_release(&fx.root, &signed, &check(), NOW), &signed);
        if doc.is_some() {
            let c = countersigned(&signed, fx.signers(Role::Release));
            accepted(verify_release(&fx.root, &c, &check(), NOW), &c);
        }
    }

    if let Some(doc) = body::<Release>(data) {
        structure(&doc);
        let s = signed_by(&doc, fx.signers(Role::Release));
        let plain = verify_release(&fx.root, &s, &check(), NOW);
        accepted(plain.clone(), &s);
        // Naming the release the head names changes nothing.
        let with_head = ReleaseCheck {
            head: Some((Hash::of(data), doc.counter)),
            ..check()
        };
        assert_eq!(plain, verify_release(&fx.root, &s, &with_head, NOW));
        // Signed by keys of the wrong roles, it never verifies.
        let wrong = signed_by(&doc, fx.signers(Role::Online));
        assert!(verify_release(&fx.root, &wrong, &check(), NOW).is_err());
    }
});

fn structure(doc: &Release) {
    if doc.check_structure().is_ok() {
        // Only sane once the structure holds (sizes are chunk sums then).
        let _ = (doc.total_size(), doc.chunk_count(), doc.unique_chunks());
    }
}

fn accepted(r: Result<(Release, ReleaseId), VerifyError>, signed: &Signed<Release>) {
    let fx = fixture();
    if let Ok((release, id)) = r {
        assert_eq!(Some(&release), signed.decode_unverified().ok().as_ref());
        assert_eq!(id, signed.body_hash());
        assert!(release.check_structure().is_ok());
        assert!(release.counter >= MIN_COUNTER);
        assert!(release.device_types.iter().any(|t| t == DEVICE_TYPE));
        let t = signed.tally(&fx.root, Role::Release);
        assert!(t.valid >= fx.root.release.threshold as usize);
    }
}
