//! shoal-node: the device agent. `wan` is the device side of `shoal-wan/1`; `agent` is
//! the one event loop (`run`); `assemble`, `install` and `store` are the fetch path,
//! the install models and the device's state; `init` and `status` are the other
//! commands.

pub mod agent;
pub mod assemble;
pub mod chunk_buf;
pub mod cli;
pub mod config;
pub mod error;
pub mod fetch;
pub mod import;
pub mod init;
pub mod install;
pub mod lan;
pub mod metrics;
pub mod status;
pub mod store;
pub mod wan;
pub mod window;
