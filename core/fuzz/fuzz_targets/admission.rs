//! Admissions: the envelope and body decoders, `check_structure` and
//! `verify_admission` against the fixed root.
#![no_main]

use libfuzzer_sys::fuzz_target;
use shoal_core::{Admission, Role, Signed, VerifyError, verify_admission};
use shoal_core_fuzz::{NOW, SITE, body, countersigned, envelope, fixture, signed_by};

fn verify(signed: &Signed<Admission>) -> Result<Admission, VerifyError> {
    let fx = fixture();
    verify_admission(&fx.root, signed, Some(SITE), Some(fx.device.key_id()), NOW)
}

fuzz_target!(|data: &[u8]| {
    let fx = fixture();
    if let Some((signed, doc)) = envelope::<Admission>(data) {
        if let Some(doc) = &doc {
            let _ = doc.check_structure();
        }
        accepted(verify(&signed), &signed);
        if doc.is_some() {
            let c = countersigned(&signed, fx.signers(Role::Online));
            accepted(verify(&c), &c);
            // Without a site or device to match, only the document's own rules apply.
            if let Ok(adm) = verify_admission(&fx.root, &c, None, None, NOW) {
                assert_eq!(adm.device_id, adm.device_key.key_id());
            }
        }
    }
    if let Some(doc) = body::<Admission>(data) {
        let _ = doc.check_structure();
        let s = signed_by(&doc, fx.signers(Role::Online));
        accepted(verify(&s), &s);
        let wrong = signed_by(&doc, fx.signers(Role::Root));
        assert!(verify(&wrong).is_err());
    }
});

fn accepted(r: Result<Admission, VerifyError>, signed: &Signed<Admission>) {
    let fx = fixture();
    if let Ok(adm) = r {
        assert_eq!(Some(&adm), signed.decode_unverified().ok().as_ref());
        assert!(adm.check_structure().is_ok());
        assert_eq!(adm.device_id, fx.device.key_id());
        assert_eq!(adm.device_id, adm.device_key.key_id());
        assert_eq!(adm.site, SITE);
        assert!(adm.expires_at > NOW);
        let t = signed.tally(&fx.root, Role::Online);
        assert!(t.valid >= fx.root.online.threshold as usize);
    }
}
