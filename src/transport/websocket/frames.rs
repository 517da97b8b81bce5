//! # WebSocket frames: what RFC 6455 says, apart from what the game says
//!
//! Everything here is about frames, not about the game: the size guard that refuses an
//! oversized message by its header alone ([`FrameSizeGuard`], fuzzed by
//! `fuzz/fuzz_targets/ws_frame_guard.rs`), and the mapping from what actix-http's frame codec
//! refused to the close code RFC 6455 assigns (`1009` too big, `1002` any other violation).
//! The socket (`socket.rs`) and the game (`mod.rs`) only use it.

use std::pin::Pin;
use std::task::{Context, Poll};

use actix_http::ws::{CloseCode, CloseReason, ProtocolError};
use actix_web::error::PayloadError;
use actix_web::{dev, web, web::Bytes};
use futures_util::Stream;

use crate::lab::{Defence, Lab, LiftedSocket, LIFTED_WS_MAX_MESSAGE};

/// A close frame with `code` and a human `description`.
pub fn close(code: CloseCode, description: &str) -> Option<CloseReason> {
    Some(CloseReason {
        code,
        description: Some(description.to_string()),
    })
}

/// The close frame for a frame actix-http's codec refused: `1009` for a frame over the size
/// limit, `1002` for anything else RFC 6455 forbids (reserved bits or opcodes, an unmasked
/// frame, a continuation out of place, a bad close payload, an oversized control frame).
/// Invalid UTF-8 is the socket's own check (`1007`), made as fragments arrive.
pub fn protocol_error_close(e: &ProtocolError) -> Option<CloseReason> {
    match e {
        ProtocolError::Overflow => close(CloseCode::Size, "message too large"),
        other => {
            tracing::debug!(error = %other, "websocket protocol error");
            close(CloseCode::Protocol, "protocol error")
        }
    }
}

/// Puts a [`FrameSizeGuard`] between the connection and the socket's frame decoder. With
/// `lab` (`--lab`), the limit follows its `input` switch: while that is off, a message may be
/// up to [`LIFTED_WS_MAX_MESSAGE`] — on at most [`crate::lab::LIFTED_SOCKETS`] sockets at once,
/// so the ceiling holds for the whole process — and the socket's decoder must then allow that
/// much too.
pub fn guard_frames(body: web::Payload, max: usize, lab: Option<Lab>) -> GuardedPayload {
    GuardedPayload {
        inner: body.into_inner(),
        guard: FrameSizeGuard::new(max),
        max,
        lab,
        lifted: None,
        refused: false,
    }
}

/// Refuses a message that is too large as soon as a frame header announces it.
///
/// actix-http's codec compares a frame's length with `max_frame_size` only once the *whole*
/// frame has arrived: a client announcing a 1 GiB frame made the server buffer it all first
/// (measured before this guard: 200 MiB streamed into one socket of the 4 KiB game endpoint
/// grew the server by 200 MiB). This follows the frame boundaries in the raw byte stream and
/// reads only the lengths: a frame longer than the limit, or a fragmented message whose
/// fragments add up to more, is refused when its header is in. Everything else (masking,
/// opcodes, UTF-8, close payloads) is left to actix's codec.
#[derive(Debug, Clone)]
pub struct FrameSizeGuard {
    max: u64,
    /// The header of the next frame, as far as it has arrived (at most 14 bytes).
    header: [u8; 14],
    have: usize,
    /// Payload bytes of the current frame still to come.
    payload_left: u64,
    /// Payload bytes of the data message in progress, over all its fragments.
    message: u64,
}

/// A frame header announced more than the limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TooLarge;

impl FrameSizeGuard {
    pub fn new(max: usize) -> FrameSizeGuard {
        FrameSizeGuard {
            max: u64::try_from(max).unwrap_or(u64::MAX),
            header: [0; 14],
            have: 0,
            payload_left: 0,
            message: 0,
        }
    }

    /// Changes the limit for the frames whose headers come from now on.
    pub fn set_max(&mut self, max: usize) {
        self.max = u64::try_from(max).unwrap_or(u64::MAX);
    }

    /// Follows the next bytes of the stream; chunk boundaries may fall anywhere.
    pub fn scan(&mut self, mut bytes: &[u8]) -> Result<(), TooLarge> {
        while let Some((&first, rest)) = bytes.split_first() {
            if self.payload_left > 0 {
                let n = usize::try_from(self.payload_left)
                    .map_or(bytes.len(), |left| left.min(bytes.len()));
                bytes = &bytes[n..];
                self.payload_left -= n as u64;
                continue;
            }
            if let Some(slot) = self.header.get_mut(self.have) {
                *slot = first;
                self.have += 1;
            }
            bytes = rest;
            if let Some(len) = self.header_complete() {
                self.frame(len)?;
            }
        }
        Ok(())
    }

    /// The payload length, once the whole header (lengths and mask key) is in.
    fn header_complete(&self) -> Option<u64> {
        if self.have < 2 {
            return None;
        }
        let b1 = self.header[1];
        let (extended, len7) = match b1 & 0x7f {
            126 => (2, None),
            127 => (8, None),
            n => (0, Some(u64::from(n))),
        };
        let mask = if b1 & 0x80 != 0 { 4 } else { 0 };
        if self.have < 2 + extended + mask {
            return None;
        }
        Some(len7.unwrap_or_else(|| {
            self.header[2..2 + extended]
                .iter()
                .fold(0u64, |n, &b| (n << 8) | u64::from(b))
        }))
    }

    /// A whole header is in: check the frame and its message, then pass its payload.
    fn frame(&mut self, len: u64) -> Result<(), TooLarge> {
        let b0 = self.header[0];
        self.have = 0;
        let fin = b0 & 0x80 != 0;
        match b0 & 0x0f {
            // Continuation: adds to the message in progress.
            0x0 => self.message = self.message.saturating_add(len),
            // Text or binary: starts a message.
            0x1 | 0x2 => self.message = len,
            // Control (or reserved) frames stand alone, between fragments too.
            _ if len > self.max => return Err(TooLarge),
            _ => {
                self.payload_left = len;
                return Ok(());
            }
        }
        if self.message > self.max {
            return Err(TooLarge);
        }
        if fin {
            self.message = 0;
        }
        self.payload_left = len;
        Ok(())
    }
}

/// The request body seen through a [`FrameSizeGuard`]: a refusal is a
/// `PayloadError::Overflow`, which the socket answers with close `1009`; what follows is passed
/// on unscanned, for the socket to drop until the client closes.
pub struct GuardedPayload {
    inner: dev::Payload,
    guard: FrameSizeGuard,
    /// The limit while the lab's input defence is on (always, without the lab).
    max: usize,
    lab: Option<Lab>,
    /// This socket's place among the few that may use the lifted limit, once it needed one.
    lifted: Option<LiftedSocket>,
    refused: bool,
}

impl GuardedPayload {
    /// Scans `bytes` against the normal limit; with the lab's input defence off, a message over
    /// it may go on up to the lifted ceiling, if this socket gets (or has) a lifted place.
    fn scan(&mut self, bytes: &[u8]) -> Result<(), TooLarge> {
        let lifted = self.lab.as_ref().filter(|lab| !lab.is_on(Defence::Input));
        let Some(lab) = lifted else {
            self.guard.set_max(self.max);
            return self.guard.scan(bytes);
        };
        let mut normal = self.guard.clone();
        normal.set_max(self.max);
        if normal.scan(bytes).is_ok() {
            self.guard = normal;
            return Ok(());
        }
        if self.lifted.is_none() {
            self.lifted = lab.lift_socket();
        }
        if self.lifted.is_none() {
            return Err(TooLarge);
        }
        self.guard.set_max(LIFTED_WS_MAX_MESSAGE);
        self.guard.scan(bytes)
    }
}

impl Stream for GuardedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        if this.refused {
            // Passed on unscanned: the socket reads and drops it until the client closes.
            return Pin::new(&mut this.inner).poll_next(cx);
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Ready(Some(Ok(bytes))) => {
                if this.scan(&bytes).is_err() {
                    this.refused = true;
                    return Poll::Ready(Some(Err(PayloadError::Overflow)));
                }
                Poll::Ready(Some(Ok(bytes)))
            }
            other => other,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A masked client frame header (payload not included) announcing `len` bytes.
    fn header(first: u8, len: u64) -> Vec<u8> {
        let mut h = vec![first];
        match len {
            0..=125 => h.push(0x80 | len as u8),
            126..=0xffff => {
                h.push(0x80 | 126);
                h.extend_from_slice(&(len as u16).to_be_bytes());
            }
            _ => {
                h.push(0x80 | 127);
                h.extend_from_slice(&len.to_be_bytes());
            }
        }
        h.extend_from_slice(&[1, 2, 3, 4]);
        h
    }

    fn frame(first: u8, len: usize) -> Vec<u8> {
        let mut f = header(first, len as u64);
        f.resize(f.len() + len, b'a');
        f
    }

    #[test]
    fn a_frame_over_the_limit_is_refused_by_its_header_alone() {
        let mut guard = FrameSizeGuard::new(4096);
        assert_eq!(guard.scan(&frame(0x81, 4096)), Ok(()));
        assert_eq!(guard.scan(&header(0x81, 1 << 30)), Err(TooLarge));
        let mut guard = FrameSizeGuard::new(4096);
        assert_eq!(guard.scan(&header(0x82, u64::MAX)), Err(TooLarge));
    }

    #[test]
    fn fragments_add_up_and_control_frames_between_them_do_not_count() {
        let mut guard = FrameSizeGuard::new(100);
        let mut bytes = frame(0x01, 60);
        bytes.extend(frame(0x89, 20)); // a ping between the fragments
        bytes.extend(frame(0x80, 40)); // the last fragment: 100 in all
        bytes.extend(frame(0x81, 100)); // a new message starts from zero
        assert_eq!(guard.scan(&bytes), Ok(()));
        assert_eq!(guard.scan(&frame(0x01, 60)), Ok(()));
        assert_eq!(guard.scan(&frame(0x00, 41)), Err(TooLarge));
    }

    #[test]
    fn chunk_boundaries_do_not_matter() {
        let mut bytes = Vec::new();
        for len in [0, 1, 125, 126, 300, 4096] {
            bytes.extend(frame(0x81, len));
        }
        bytes.extend(header(0x81, 4097));
        for size in [1, 2, 3, 7, 13, 1000] {
            let mut guard = FrameSizeGuard::new(4096);
            let verdict = bytes.chunks(size).try_for_each(|c| guard.scan(c));
            assert_eq!(verdict, Err(TooLarge), "chunks of {size}");
            let mut guard = FrameSizeGuard::new(4096);
            let whole = bytes.len() - header(0x81, 4097).len();
            assert_eq!(
                bytes[..whole].chunks(size).try_for_each(|c| guard.scan(c)),
                Ok(())
            );
        }
    }
}
