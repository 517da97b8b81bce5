//! # The parsers' promises, checkable on any bytes (for `make fuzz` and the property test)
//!
//! [`check_streams`] feeds arbitrary bytes, cut at arbitrary points, through every parser and
//! Mallory, and asserts what the relay relies on: nothing panics; with tamper mode off the
//! rewriter passes the stream unchanged, byte for byte; the bit flipper changes at most one
//! bit; an observer never reports more bytes than it was given, and its hex excerpts stay
//! capped; the feed caps every record's text. `fuzz/fuzz_targets/eavesdrop_streams.rs` runs it
//! under libFuzzer; a proptest below runs it in `cargo test`.

use std::sync::atomic::AtomicU16;

use super::http::HttpObserver;
use super::tamper::{JoinRewriter, RecordFlipper};
use super::tls_records::TlsObserver;
use super::{Dir, Feed, RelayKind, Seen, HEX_BYTES, MAX_FIELD, MAX_TEXT};

/// Runs every parser over `data` (the first byte picks the chunk size) and checks their
/// promises; panics on a broken one.
pub fn check_streams(data: &[u8]) {
    let Some((&step, bytes)) = data.split_first() else {
        return;
    };
    let step = usize::from(step % 64) + 1;
    let negotiated = AtomicU16::new(0);
    let mut http_up = HttpObserver::new(Dir::ClientToServer);
    let mut http_down = HttpObserver::new(Dir::ServerToClient);
    let mut tls_up = TlsObserver::new(Dir::ClientToServer);
    let mut tls_down = TlsObserver::new(Dir::ServerToClient);
    let (mut quiet, mut mallory) = (JoinRewriter::new(), JoinRewriter::new());
    let (mut passed, mut rewritten, mut tampered) = (Vec::new(), Vec::new(), false);
    let mut seen: [Vec<Seen>; 4] = Default::default();
    for chunk in bytes.chunks(step) {
        seen[0].extend(http_up.push(chunk));
        seen[1].extend(http_down.push(chunk));
        seen[2].extend(tls_up.push(chunk, &negotiated));
        seen[3].extend(tls_down.push(chunk, &negotiated));
        passed.extend(quiet.push(chunk, false).bytes);
        let f = mallory.push(chunk, true);
        tampered |= !f.tampered_at.is_empty();
        rewritten.extend(f.bytes);
    }
    seen[0].extend(http_up.finish());
    seen[1].extend(http_down.finish());
    passed.extend(quiet.finish());
    rewritten.extend(mallory.finish());
    assert_eq!(
        passed, bytes,
        "tamper off must forward the stream unchanged"
    );
    if !tampered {
        assert_eq!(rewritten, bytes, "no rewritten join, so nothing may change");
    }

    let mut flipped = bytes.to_vec();
    let mut flipper = RecordFlipper::new();
    for chunk in flipped.chunks_mut(step) {
        flipper.push(chunk, true);
    }
    let changed_bits: u32 = flipped
        .iter()
        .zip(bytes)
        .map(|(a, b)| (a ^ b).count_ones())
        .sum();
    assert!(changed_bits <= 1, "the flipper changed {changed_bits} bits");

    let mut feed = Feed::new(8);
    for observed in seen {
        let total: u64 = observed.iter().map(|s| s.bytes).sum();
        assert!(
            total <= bytes.len() as u64,
            "{total} bytes reported of {}",
            bytes.len()
        );
        for s in observed {
            assert!(
                s.hex.len() <= 2 * HEX_BYTES,
                "hex excerpt of {} chars",
                s.hex.len()
            );
            feed.push(1, RelayKind::Plain, Dir::ClientToServer, s);
        }
    }
    let (records, _) = feed.since(0, usize::MAX);
    for r in records {
        assert!(r.text.as_ref().is_none_or(|t| t.len() <= MAX_TEXT + 4));
        if let Some(tls) = &r.tls {
            for field in [&tls.handshake_type, &tls.sni].into_iter().flatten() {
                assert!(
                    field.len() <= MAX_FIELD + 4,
                    "a TLS field of {} bytes",
                    field.len()
                );
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Real-looking streams to mutate: a join, an SSE response, a ClientHello, and a record
    /// packed with empty handshake messages (the feed flood of the attack session).
    fn seeds() -> Vec<Vec<u8>> {
        let mut packed = vec![22, 3, 1, 0x10, 0x00];
        packed.extend([0xee, 0, 0, 0].repeat(0x1000 / 4));
        vec![
            b"POST /api/join HTTP/1.1\r\nContent-Length: 14\r\n\r\n{\"name\":\"Ada\"}".to_vec(),
            b"HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n5\r\ndata:\r\n1\r\n\n\r\n0\r\n\r\n".to_vec(),
            b"GET /api/ws HTTP/1.1\r\nUpgrade: websocket\r\n\r\n\x81\x82\x01\x02\x03\x04ij".to_vec(),
            super::super::tls_records::tests::client_hello("localhost"),
            packed,
            super::super::tls_records::tests::client_hello(&"a".repeat(3000)),
        ]
    }

    proptest! {
        #![proptest_config(ProptestConfig { cases: 300, ..ProptestConfig::default() })]

        #[test]
        fn every_parser_keeps_its_promises_on_mutated_streams(
            seed in 0usize..6,
            step in any::<u8>(),
            edits in proptest::collection::vec((any::<u16>(), any::<u8>()), 0..8),
            tail in proptest::collection::vec(any::<u8>(), 0..64),
        ) {
            let mut data = vec![step];
            data.extend(&seeds()[seed]);
            for (at, byte) in edits {
                let i = usize::from(at) % data.len();
                data[i] = byte;
            }
            data.extend(tail);
            check_streams(&data);
        }

        #[test]
        fn every_parser_keeps_its_promises_on_random_bytes(data in proptest::collection::vec(any::<u8>(), 0..600)) {
            check_streams(&data);
        }
    }

    #[test]
    fn the_seeds_themselves_pass() {
        for s in seeds() {
            for step in [0u8, 3, 63] {
                let mut data = vec![step];
                data.extend(&s);
                check_streams(&data);
            }
        }
    }
}
