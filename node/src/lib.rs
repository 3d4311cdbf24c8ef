//! shoal-node: the device agent. Today it holds the WAN client (`wan`), which the node
//! agent issue builds the fetch path on; the seeder's tests use it as their test client.

pub mod wan;
