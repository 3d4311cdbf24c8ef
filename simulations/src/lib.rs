//! shoal-sim's library: the demo now; the site and scale simulations come with the
//! simulations issue.

pub mod demo;
pub mod scale;
