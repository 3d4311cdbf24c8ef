//! Heads: the envelope and body decoders and `verify_head` against the fixed root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::{Head, HeadCheck, Role, Signed, VerifyError, verify_head};
use shoal_core_fuzz::{NOW, body, countersigned, envelope, fixture, signed_by};

const LAST_SEQ: u64 = 5;
const INSTALLED_COUNTER: u64 = 3;

fn check() -> HeadCheck {
    HeadCheck {
        device_id: fixture().device.key_id(),
        last_seq: Some(LAST_SEQ),
        installed_counter: Some(INSTALLED_COUNTER),
    }
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    if let Some((signed, doc)) = envelope::<Head>(data) {
        accepted(verify_head(&fx.root, &signed, &check(), NOW), &signed);
        if doc.is_some() {
            let c = countersigned(&signed, fx.signers(Role::Online));
            accepted(verify_head(&fx.root, &c, &check(), NOW), &c);
        }
    }
    if let Some(doc) = body::<Head>(data) {
        let s = signed_by(&doc, fx.signers(Role::Online));
        accepted(verify_head(&fx.root, &s, &check(), NOW), &s);
        let wrong = signed_by(&doc, fx.signers(Role::Release));
        assert!(verify_head(&fx.root, &wrong, &check(), NOW).is_err());
    }
});

fn accepted(r: Result<Head, VerifyError>, signed: &Signed<Head>) {
    let fx = fixture();
    if let Ok(head) = r {
        assert_eq!(Some(&head), signed.decode_unverified().ok().as_ref());
        assert_eq!(head.device_id, fx.device.key_id());
        assert!(head.seq > LAST_SEQ);
        assert!(head.counter >= INSTALLED_COUNTER);
        assert!(head.expires_at > NOW);
        let t = signed.tally(&fx.root, Role::Online);
        assert!(t.valid >= fx.root.online.threshold as usize);
    }
}
