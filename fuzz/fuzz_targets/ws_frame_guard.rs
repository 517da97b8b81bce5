//! `FrameSizeGuard`, which follows WebSocket frame headers in the raw byte stream to refuse an
//! oversize message before it is buffered. Its verdict must not depend on how the stream is cut
//! into reads, and must match a plain whole-buffer reading of the same frames.
#![no_main]

use clickgame::transport::websocket::frames::{FrameSizeGuard, TooLarge};
use libfuzzer_sys::fuzz_target;

const MAX: usize = 300;

/// A straightforward reading of the frames in `bytes`: `Err` at the first header that makes a
/// frame or a fragmented data message longer than `MAX`; `Ok` if none (a trailing partial
/// frame is fine).
fn reference(bytes: &[u8]) -> Result<(), TooLarge> {
    let mut at = 0usize;
    let mut message = 0u64;
    loop {
        let (Some(&b0), Some(&b1)) = (bytes.get(at), bytes.get(at + 1)) else {
            return Ok(());
        };
        let ext = match b1 & 0x7f {
            126 => 2,
            127 => 8,
            _ => 0,
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        let Some(extended) = bytes.get(at + 2..at + 2 + ext) else {
            return Ok(());
        };
        if bytes.len() < at + 2 + ext + mask {
            return Ok(());
        }
        let len = match b1 & 0x7f {
            126 | 127 => extended.iter().fold(0u64, |n, &b| (n << 8) | u64::from(b)),
            n => u64::from(n),
        };
        match b0 & 0x0f {
            0 => message = message.saturating_add(len),
            1 | 2 => message = len,
            _ => {
                if len > MAX as u64 {
                    return Err(TooLarge);
                }
                at = match (at + 2 + ext + mask).checked_add(len as usize) {
                    Some(next) if len <= usize::MAX as u64 => next,
                    _ => return Ok(()),
                };
                continue;
            }
        }
        if message > MAX as u64 {
            return Err(TooLarge);
        }
        if b0 & 0x80 != 0 {
            message = 0;
        }
        at = at + 2 + ext + mask + len as usize;
    }
}

fuzz_target!(|data: &[u8]| {
    // The first byte picks the read sizes, the rest is the stream.
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut whole = FrameSizeGuard::new(MAX);
    let verdict = whole.scan(stream);
    assert_eq!(verdict, reference(stream), "whole buffer");

    let mut cut = FrameSizeGuard::new(MAX);
    let mut rest = stream;
    let mut size = usize::from(seed % 17) + 1;
    let mut chunked = Ok(());
    while !rest.is_empty() && chunked.is_ok() {
        let (chunk, tail) = rest.split_at(size.min(rest.len()));
        chunked = cut.scan(chunk);
        rest = tail;
        size = size * 7 % 23 + 1;
    }
    assert_eq!(chunked, verdict, "cut into reads");
});
