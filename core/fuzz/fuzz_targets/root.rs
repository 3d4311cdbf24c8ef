//! Root files: `decode_root`, the envelope and body decoders, and `verify_root`,
//! `verify_rotation` and `verify_root_chain` from the fixed root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::root::decode_root;
use shoal_core::signed::Document;
use shoal_core::{
    Role, Root, Signed, VerifyError, verify_root, verify_root_chain, verify_rotation,
};
use shoal_core_fuzz::{NOW, body, countersigned, envelope, fixture, signed_by};

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    assert_eq!(
        decode_root(data).is_ok(),
        Root::decode_envelope(data).is_ok()
    );

    if let Some((signed, doc)) = envelope::<Root>(data) {
        if let Some(doc) = &doc {
            let _ = doc.check_structure();
        }
        // Trusted by provisioning: hostile signatures against the hostile root's keys.
        accepted_as_root(verify_root(&signed, NOW), &signed);
        // A rotation step from the fixed root, as sent and countersigned.
        accepted_as_rotation(verify_rotation(&fx.root, &signed), &signed);
        if doc.is_some() {
            let c = countersigned(&signed, fx.signers(Role::Root));
            accepted_as_rotation(verify_rotation(&fx.root, &c), &c);
            let chain = verify_root_chain(&fx.root, std::slice::from_ref(&c), NOW);
            if let Ok(r) = chain {
                assert!(r.expires_at > NOW);
            }
        }
    }

    if let Some(doc) = body::<Root>(data) {
        let _ = doc.check_structure();
        let s = signed_by(&doc, fx.signers(Role::Root));
        accepted_as_rotation(verify_rotation(&fx.root, &s), &s);
        accepted_as_root(verify_root(&s, NOW), &s);
    }
});

fn accepted_as_root(r: Result<Root, VerifyError>, signed: &Signed<Root>) {
    if let Ok(root) = r {
        assert_eq!(Some(&root), signed.decode_unverified().ok().as_ref());
        assert!(root.check_structure().is_ok());
        assert!(root.expires_at > NOW);
        let t = signed.tally(&root, Role::Root);
        assert!(t.valid >= root.root.threshold as usize && t.valid > 0);
    }
}

fn accepted_as_rotation(r: Result<Root, VerifyError>, signed: &Signed<Root>) {
    let fx = fixture();
    if let Ok(root) = r {
        assert_eq!(Some(&root), signed.decode_unverified().ok().as_ref());
        assert_eq!(root.version, fx.root.version + 1);
        assert!(root.check_structure().is_ok());
        assert!(signed.tally(&fx.root, Role::Root).valid >= fx.root.root.threshold as usize);
        assert!(signed.tally(&root, Role::Root).valid >= root.root.threshold as usize);
    }
}
