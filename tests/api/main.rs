//! One integration-test binary: the real server on a real loopback socket (port 0), driven by
//! real HTTP, SSE and WebSocket clients.

mod bad_input;
mod bad_input_table;
mod classroom;
mod clients;
mod credentials;
mod heartbeat;
mod helpers;
mod joins;
mod lecturer;
mod limits;
mod path_spellings;
mod recovery;
mod security;
mod slow_clients;
mod state_file;
mod tickets;
mod tls;
mod tls_visible;
mod transports;
mod write_path;
mod ws_close;
