//! shoal-sim's library: the demo and the site simulation (real processes), and the
//! pieces they share.

pub mod bins;
pub mod cleanup;
pub mod demo;
pub mod image;
pub mod manifest;
pub mod node;
pub mod proc;
pub mod scale;
pub mod seeder;
pub mod site;
pub mod watch;
