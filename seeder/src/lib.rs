//! shoal-seeder: the offline release tools (keys, roots, releases) and, later, the
//! seeder service. The binary (`main.rs`) only parses flags and calls [`cli::run`].

pub mod cli;
pub mod files;
pub mod offline;
pub mod time;
