//! The device side of `shoal-wan/1` (spec: `shoal_core::wan`): TLS identity from the
//! device key, a pinned seeder certificate, and one request per QUIC stream.

pub mod client;
pub mod stream;
pub mod tls;

pub use client::{WanClient, WanError};
