//! The one error type of verification: which rule failed, for which document and role,
//! and what was expected and found.

use crate::codec::DecodeError;
use crate::hash::Hash;
use crate::keys::KeyId;
use crate::path::PathError;
use crate::root::Role;
use crate::signed::{DocKind, Tally};

/// Why a document was not accepted. Every variant is one rule of DESIGN section 2; the
/// tests in `core/tests/attacks.rs` show each one stopping the attack it is for.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum VerifyError {
    #[error("rule 'well-formed': the {doc} is not a valid encoding: {reason}")]
    Malformed { doc: DocKind, reason: DecodeError },

    #[error("rule 'well-formed': the {doc} carries {count} signatures, at most {max} allowed")]
    TooManySignatures {
        doc: DocKind,
        count: usize,
        max: usize,
    },

    #[error(
        "rule 'threshold': the {doc} needs {threshold} valid signatures by distinct {role} keys, found {}",
        tally
    )]
    ThresholdNotMet {
        doc: DocKind,
        role: Role,
        threshold: u32,
        tally: Tally,
    },

    #[error("rule 'threshold': the root's {role} threshold is 0, which anyone would meet")]
    ZeroThreshold { role: Role },

    #[error(
        "rule 'threshold': the root's {role} threshold is {threshold} but it lists only {distinct_keys} distinct keys"
    )]
    UnsatisfiableThreshold {
        role: Role,
        threshold: u32,
        distinct_keys: usize,
    },

    #[error("rule 'roles': the root lists {count} {role} keys, at most {max} allowed")]
    TooManyKeys {
        role: Role,
        count: usize,
        max: usize,
    },

    #[error(
        "rule 'roles': key {key} is listed for both {first} and {second}; a key serves one role"
    )]
    KeyInTwoRoles {
        key: KeyId,
        first: Role,
        second: Role,
    },

    #[error("rule 'roles': a {role} key in the root is not a usable ed25519 key (id {key})")]
    BadKey { role: Role, key: KeyId },

    #[error("rule 'expiry': the {doc} expired at {expires_at} (unix seconds); it is now {now}")]
    Expired {
        doc: DocKind,
        expires_at: u64,
        now: u64,
    },

    #[error(
        "rule 'anti-rollback': the {doc} is for counter {found}, below the installed counter {installed}"
    )]
    Rollback {
        doc: DocKind,
        found: u64,
        installed: u64,
    },

    #[error("rule 'head-seq': the head has seq {found}, not above the last accepted seq {last}")]
    Replay { found: u64, last: u64 },

    #[error("rule 'device': the {doc} is for device {found}, this device is {expected}")]
    WrongDevice {
        doc: DocKind,
        expected: KeyId,
        found: KeyId,
    },

    #[error(
        "rule 'device-key': the admission's device id {found} is not the id of its key ({expected})"
    )]
    DeviceKeyMismatch { expected: KeyId, found: KeyId },

    #[error("rule 'site': the admission is for site '{found}', expected '{expected}'")]
    WrongSite { expected: String, found: String },

    #[error("rule 'device-type': the release is for device types {allowed:?}, not '{device_type}'")]
    WrongDeviceType {
        device_type: String,
        allowed: Vec<String>,
    },

    #[error("rule 'head-match': the release's hash is {found}, the head names {expected}")]
    ReleaseMismatch { expected: Hash, found: Hash },

    #[error(
        "rule 'head-match': the release has counter {found}, the head names counter {expected}"
    )]
    CounterMismatch { expected: u64, found: u64 },

    #[error("rule 'rotation': expected root version {expected}, found {found}")]
    RotationVersion { expected: u64, found: u64 },

    #[error("rule 'rotation': the chain has {steps} steps, at most {max} are walked")]
    RotationChainTooLong { steps: usize, max: usize },

    #[error("rule 'paths': file '{path}': {reason}")]
    BadPath { path: String, reason: PathError },

    #[error("rule 'manifest': {0}")]
    BadManifest(String),
}

impl VerifyError {
    /// The short name of the rule that failed, as printed by `release verify`.
    pub fn rule(&self) -> &'static str {
        use VerifyError::*;
        match self {
            Malformed { .. } | TooManySignatures { .. } => "well-formed",
            ThresholdNotMet { .. } | ZeroThreshold { .. } | UnsatisfiableThreshold { .. } => {
                "threshold"
            }
            TooManyKeys { .. } | KeyInTwoRoles { .. } | BadKey { .. } => "roles",
            Expired { .. } => "expiry",
            Rollback { .. } => "anti-rollback",
            Replay { .. } => "head-seq",
            WrongDevice { .. } => "device",
            DeviceKeyMismatch { .. } => "device-key",
            WrongSite { .. } => "site",
            WrongDeviceType { .. } => "device-type",
            ReleaseMismatch { .. } | CounterMismatch { .. } => "head-match",
            RotationVersion { .. } | RotationChainTooLong { .. } => "rotation",
            BadPath { .. } => "paths",
            BadManifest(_) => "manifest",
        }
    }
}
