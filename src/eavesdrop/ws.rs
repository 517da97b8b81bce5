//! # WebSocket frames as an eavesdropper reads them (RFC 6455 §5.2)
//!
//! After `101 Switching Protocols` the plain relay sees frames: two header bytes (FIN, opcode,
//! MASK bit, a 7-bit length), an optional 16- or 64-bit length, then — from browsers only — a
//! 4-byte masking key, then the payload. Masking exists to stop cache-poisoning attacks on
//! proxies, not to hide anything: the key travels in the same frame, so [`WsDecoder`] simply
//! XORs it back and shows the text. Payloads are streamed, never buffered whole: only the
//! first [`BODY_TEXT`] bytes are kept for the record.

use super::{excerpt_text, hex, keep, Kind, Seen, Track, BODY_TEXT, HEX_BYTES};

/// Streaming decoder of one direction's frames.
#[derive(Debug, Clone)]
pub struct WsDecoder {
    header: [u8; 14],
    have: usize,
    frame: Option<Frame>,
    broken: bool,
}

#[derive(Debug, Clone)]
struct Frame {
    start: u64,
    fin: bool,
    rsv1: bool,
    opcode: u8,
    mask: Option<[u8; 4]>,
    len: u64,
    seen: u64,
    payload: Vec<u8>,
    wire: Vec<u8>,
}

impl Default for WsDecoder {
    fn default() -> Self {
        WsDecoder::new()
    }
}

/// Header length once its first two bytes are known.
fn header_len(b0_b1: [u8; 2]) -> usize {
    let ext = match b0_b1[1] & 0x7f {
        126 => 2,
        127 => 8,
        _ => 0,
    };
    let mask = if b0_b1[1] & 0x80 != 0 { 4 } else { 0 };
    2 + ext + mask
}

impl WsDecoder {
    pub fn new() -> WsDecoder {
        WsDecoder {
            header: [0; 14],
            have: 0,
            frame: None,
            broken: false,
        }
    }

    /// Feeds bytes; returns the frames completed by them. `track.pos` must be the stream offset
    /// of `data[0]`; it is advanced past `data`.
    pub fn push(&mut self, mut data: &[u8], track: &mut Track) -> Vec<Seen> {
        let mut out = Vec::new();
        while !data.is_empty() {
            if self.broken {
                out.push(super::http::raw_seen(data, track, true));
                break;
            }
            if let Some(frame) = &mut self.frame {
                let take = usize::try_from(frame.len - frame.seen)
                    .unwrap_or(usize::MAX)
                    .min(data.len());
                let chunk = &data[..take];
                if frame.payload.len() < BODY_TEXT {
                    let room = (BODY_TEXT - frame.payload.len()).min(chunk.len());
                    for (i, b) in chunk[..room].iter().enumerate() {
                        let k = frame
                            .mask
                            .map_or(0, |m| m[((frame.seen + i as u64) % 4) as usize]);
                        frame.payload.push(b ^ k);
                    }
                }
                keep(&mut frame.wire, HEX_BYTES, chunk);
                frame.seen += take as u64;
                track.pos += take as u64;
                data = &data[take..];
                if frame.seen == frame.len {
                    if let Some(f) = self.frame.take() {
                        out.push(f.finish(track));
                    }
                }
                continue;
            }
            // Reading a header: first two bytes, then as many more as they announce.
            let need = if self.have < 2 {
                2
            } else {
                header_len([self.header[0], self.header[1]])
            };
            let take = (need - self.have).min(data.len());
            self.header[self.have..self.have + take].copy_from_slice(&data[..take]);
            self.have += take;
            track.pos += take as u64;
            data = &data[take..];
            if self.have < 2 || self.have < header_len([self.header[0], self.header[1]]) {
                continue;
            }
            let h = &self.header[..self.have];
            let (len, at) = match h[1] & 0x7f {
                126 => (u64::from(u16::from_be_bytes([h[2], h[3]])), 4),
                127 => {
                    let mut b = [0u8; 8];
                    b.copy_from_slice(&h[2..10]);
                    (u64::from_be_bytes(b), 10)
                }
                n => (u64::from(n), 2),
            };
            if len >> 63 != 0 {
                // Not a frame any endpoint would accept: stop interpreting this direction.
                self.broken = true;
                self.have = 0;
                continue;
            }
            let mask = (h[1] & 0x80 != 0).then(|| [h[at], h[at + 1], h[at + 2], h[at + 3]]);
            let frame = Frame {
                start: track.pos - self.have as u64,
                fin: h[0] & 0x80 != 0,
                rsv1: h[0] & 0x40 != 0,
                opcode: h[0] & 0x0f,
                mask,
                len,
                seen: 0,
                payload: Vec::new(),
                wire: h[..self.have.min(HEX_BYTES)].to_vec(),
            };
            self.have = 0;
            if len == 0 {
                out.push(frame.finish(track));
            } else {
                self.frame = Some(frame);
            }
        }
        out
    }
}

impl Frame {
    fn finish(self, track: &mut Track) -> Seen {
        let masked = match self.mask {
            Some(m) => format!(" (masked with {}, unmasked here)", hex(&m)),
            None => String::new(),
        };
        let fragment = if self.fin {
            ""
        } else {
            " (fragment, more follow)"
        };
        let compressed = if self.rsv1 { " (compressed)" } else { "" };
        let text = match self.opcode {
            0x1 => format!(
                "text{fragment}{compressed}{masked}: {}",
                excerpt_text(&self.payload, self.len)
            ),
            0x0 => format!(
                "continuation{fragment}{masked}: {}",
                excerpt_text(&self.payload, self.len)
            ),
            0x2 => format!("binary{fragment}{masked}, {} bytes", self.len),
            0x8 => {
                if self.payload.len() >= 2 {
                    let code = u16::from_be_bytes([self.payload[0], self.payload[1]]);
                    format!(
                        "close {code}{masked} {}",
                        excerpt_text(&self.payload[2..], self.len.saturating_sub(2))
                    )
                    .trim_end()
                    .to_string()
                } else {
                    format!("close (no code){masked}")
                }
            }
            0x9 => format!("ping{masked}, {} bytes", self.len),
            0xA => format!("pong{masked}, {} bytes", self.len),
            other => format!("opcode 0x{other:x} (reserved){masked}, {} bytes", self.len),
        };
        let end = track.pos;
        Seen {
            kind: Kind::WsFrame,
            bytes: end - self.start,
            text: Some(text),
            hex: hex(&self.wire),
            tls: None,
            tampered: track.tampered(self.start, end),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn masked_text(payload: &[u8], key: [u8; 4]) -> Vec<u8> {
        let mut f = vec![0x81, 0x80 | payload.len() as u8];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
        f
    }

    #[test]
    fn a_masked_client_frame_is_unmasked_even_when_it_arrives_one_byte_at_a_time() {
        let frame = masked_text(br#"{"type":"click","x":1}"#, [1, 2, 3, 4]);
        let mut d = WsDecoder::new();
        let mut t = Track::default();
        let mut seen = Vec::new();
        for b in &frame {
            seen.extend(d.push(std::slice::from_ref(b), &mut t));
        }
        assert_eq!(seen.len(), 1);
        assert_eq!(
            seen[0].text.as_deref(),
            Some(r#"text (masked with 01020304, unmasked here): {"type":"click","x":1}"#)
        );
        assert_eq!(seen[0].bytes, frame.len() as u64);
        assert!(seen[0].hex.starts_with("8196"));
    }

    #[test]
    fn server_frames_close_codes_and_long_lengths_are_read() {
        let mut stream = vec![0x88, 0x04, 0x03, 0xe9, b'b', b'y'];
        stream.extend([0x82, 126, 0x01, 0x00]);
        stream.extend(vec![0u8; 256]);
        stream.extend([0x89, 0x00]);
        let mut t = Track::default();
        let seen = WsDecoder::new().push(&stream, &mut t);
        let texts: Vec<_> = seen.iter().map(|s| s.text.clone().unwrap()).collect();
        assert_eq!(
            texts,
            vec!["close 1001 by", "binary, 256 bytes", "ping, 0 bytes"]
        );
        assert_eq!(t.pos, stream.len() as u64);
    }

    #[test]
    fn a_length_no_endpoint_accepts_stops_interpretation_without_panicking() {
        let mut stream = vec![0x81, 127, 0x80, 0, 0, 0, 0, 0, 0, 0];
        stream.extend(b"rest");
        let mut t = Track::default();
        let seen = WsDecoder::new().push(&stream, &mut t);
        assert_eq!(seen.last().unwrap().kind, Kind::Raw);
        assert_eq!(t.pos, stream.len() as u64);
    }
}
