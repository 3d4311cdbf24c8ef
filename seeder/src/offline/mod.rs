//! The offline half of shoal-seeder: keys, roots and releases, with no network and no
//! seeder. Release and root secret keys are only ever read here, never by the service.

pub mod build;
pub mod keygen;
pub mod load;
pub mod release_create;
pub mod release_inspect;
pub mod release_sign;
pub mod release_verify;
pub mod root;
