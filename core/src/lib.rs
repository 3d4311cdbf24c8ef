//! shoal-core: the formats, the trust model, chunking and (later) the transfer
//! scheduler of shoal.
//!
//! **Invariant: this crate does no IO and reads no clock.** Time comes in as `now`
//! (unix seconds), randomness as a seed, bytes as slices. That is what lets the same
//! code run in a device, in a simulation of thousands of devices and in deterministic
//! tests.
//!
//! Map:
//! - [`codec`]: the one bincode configuration, with a cap on every decode.
//! - [`hash`], [`keys`]: BLAKE3 digests, ed25519 keys and key files.
//! - [`signed`]: the `Signed<T>` envelope, domain tags and the counting rule.
//! - [`root`], [`release`], [`head`], [`admission`]: the four documents and how each
//!   is verified; [`error::VerifyError`] names the rule that failed.
//! - [`path`]: checks on file names taken from metadata.
//! - [`chunker`]: FastCDC v2020, fed a block at a time; [`gear`]: its hash, scanned in lanes.
//! - [`plan`]: what a device needs of a release, chunk by chunk, and its progress bitset.
//! - [`frame`]: length-prefixed, capped frames for the wire protocols.
//! - [`wan`]: the device ↔ seeder protocol `shoal-wan/1` (its module doc is the spec).
//! - [`lan`]: the node ↔ node protocol `/shoal/xfer/1` (its module doc is the spec).
//! - [`sched`]: the transfer scheduler: which chunk next, from where (LAN, WAN).

pub mod admission;
pub mod chunker;
pub mod codec;
pub mod error;
pub mod frame;
pub mod gear;
pub mod hash;
pub mod head;
pub mod keys;
pub mod lan;
pub mod path;
pub mod plan;
pub mod release;
pub mod root;
pub mod sched;
pub mod signed;
pub mod wan;

pub use admission::{Admission, verify_admission};
pub use error::VerifyError;
pub use hash::Hash;
pub use head::{Head, HeadCheck, verify_head};
pub use keys::{DeviceId, KeyId, PublicKey, SecretKey};
pub use release::{
    ChunkRef, ChunkingProfile, FileEntry, Install, Release, ReleaseCheck, ReleaseId, verify_release,
};
pub use root::{
    Role, RoleKeys, Root, verify_kept_root, verify_root, verify_root_chain, verify_rotation,
};
pub use signed::{DocKind, Document, Signature, Signed, Tally};
