//! shoal-node: the device agent. The node agent issue fills this crate; for now it only
//! proves that the workspace builds with the node depending on core.

pub use shoal_core as core;
