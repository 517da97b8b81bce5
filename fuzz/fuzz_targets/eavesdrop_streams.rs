//! The eavesdropper's parsers (`src/eavesdrop/`): HTTP/1.1 heads and bodies, SSE, WebSocket
//! frames, TLS records and hellos, and Mallory's rewriter and bit flipper, over any bytes cut
//! at any points (the first byte picks the chunk size). The promises checked are listed in
//! `clickgame::eavesdrop::check`: no panic, tamper-off forwards byte for byte, at most one bit
//! flipped, reported sizes and excerpts bounded.
#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    clickgame::eavesdrop::check::check_streams(data);
});
