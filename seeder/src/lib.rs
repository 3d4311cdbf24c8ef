//! shoal-seeder: the offline release tools (keys, roots, releases), the seeder service
//! (device API over QUIC, management API over HTTP, store) and the operator commands.
//! The binary (`main.rs`) only parses flags and calls [`cli::run`].

pub mod admin;
pub mod audit;
pub mod cli;
pub mod device_api;
pub mod files;
pub mod mgmt_api;
pub mod offline;
pub mod rollout;
pub mod root_chain;
pub mod service;
pub mod store;
pub mod time;
