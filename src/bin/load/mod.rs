//! The load tool's parts. The latency bench (`benches/transport_latency.rs`) includes this
//! module too, for the same clients and the same TCP floor.

pub mod client;
pub mod cluster;
pub mod floor;
pub mod net;
pub mod peer;
pub mod scenario;
pub mod server;
pub mod sys;
