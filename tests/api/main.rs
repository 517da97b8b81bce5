//! One integration-test binary: the real server on a real loopback socket (port 0), driven by
//! real HTTP, SSE and WebSocket clients.

mod bad_input;
mod bad_input_table;
mod classroom;
mod cli;
mod clients;
mod cluster;
mod credentials;
mod heartbeat;
mod helpers;
mod http2;
mod joins;
mod lab;
mod lecturer;
mod limits;
mod path_spellings;
mod reaction;
mod readme;
mod recovery;
mod rounds;
mod security;
mod slow_clients;
mod state_file;
mod tickets;
mod tls;
mod tls_visible;
mod transports;
mod wire_bytes;
mod write_path;
mod ws_close;

/// A real `redis-server` per test, shared with the cluster layer's own tests.
#[path = "../../src/cluster/test_redis.rs"]
mod test_redis;
