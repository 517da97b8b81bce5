//! # Mallory: the relay that changes what it forwards (tamper mode)
//!
//! Cryptography's cast has Eve, who listens, and Mallory, who changes messages in flight. With
//! tamper mode on, the relays play Mallory on the client → server direction:
//!
//! * [`JoinRewriter`] (plain relay): holds each `POST /api/join` until its body is complete,
//!   replaces the player's name with `Mallory-<name>`, fixes `Content-Length`, and sends it on.
//!   The server cannot tell; the page shows the changed name. Plain HTTP has no integrity.
//! * [`RecordFlipper`] (TLS relay): flips one bit in the first application-data record of a
//!   connection. It cannot read or rewrite anything — but the record's authentication tag no
//!   longer matches, the server answers with an alert and the connection dies at once. TLS
//!   protects integrity, not only secrecy.
//!
//! Both are pure: bytes in, bytes out (plus the stream offsets they changed, so the feed can
//! mark those records as tampered). Heads are held at most [`MAX_HEAD`] bytes and join bodies
//! at most [`MAX_TAMPERED_BODY`]; anything else passes through untouched.

use super::MAX_HEAD;

/// Join bodies are tiny JSON objects (the server accepts 1 KiB); a larger one passes untouched.
pub const MAX_TAMPERED_BODY: u64 = 4096;
/// What Mallory puts in front of the name.
pub const MALLORY_PREFIX: &str = "Mallory-";
/// The game's name limit (`game::MAX_NAME_CHARS`), so the rewritten join is still accepted.
const NAME_CHARS: usize = crate::game::MAX_NAME_CHARS;

/// The name the server will see instead of `name`.
pub fn tampered_name(name: &str) -> String {
    format!("{MALLORY_PREFIX}{}", name.trim())
        .chars()
        .take(NAME_CHARS)
        .collect()
}

#[derive(Debug, Clone)]
enum State {
    /// Holding the bytes of a request head until it is complete.
    Head,
    /// Passing a body through, this many bytes left.
    Body(u64),
    /// Holding a join request until its body is complete.
    Held { head: usize, body: u64 },
    /// Not HTTP we can follow any more (a WebSocket, a chunked body): pass everything.
    Through,
}

/// Rewrites the name in `POST /api/join` when asked to; passes everything else as it came.
#[derive(Debug, Clone)]
pub struct JoinRewriter {
    buf: Vec<u8>,
    state: State,
    /// Bytes emitted so far (the offset in the stream the server receives).
    out_pos: u64,
}

impl Default for JoinRewriter {
    fn default() -> Self {
        JoinRewriter::new()
    }
}

/// What to forward, and where in the forwarded stream a rewritten request starts.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Forward {
    pub bytes: Vec<u8>,
    pub tampered_at: Vec<u64>,
}

impl JoinRewriter {
    pub fn new() -> JoinRewriter {
        JoinRewriter {
            buf: Vec::new(),
            state: State::Head,
            out_pos: 0,
        }
    }

    /// Feeds bytes from the client; returns what to send to the server now.
    ///
    /// Request heads are always held until complete (a server cannot act on half a head, so
    /// this costs nothing); a join body only while `tamper` is on.
    pub fn push(&mut self, input: &[u8], tamper: bool) -> Forward {
        let mut fwd = Forward::default();
        let mut input = input.to_vec();
        loop {
            match self.state {
                State::Through => {
                    self.emit(&mut fwd, &input);
                    break;
                }
                State::Body(left) => {
                    let take = usize::try_from(left).unwrap_or(usize::MAX).min(input.len());
                    let rest = input.split_off(take);
                    self.emit(&mut fwd, &input);
                    let left = left - take as u64;
                    self.state = if left == 0 {
                        State::Head
                    } else {
                        State::Body(left)
                    };
                    if rest.is_empty() {
                        break;
                    }
                    input = rest;
                }
                State::Held { head, body } => {
                    self.buf.extend_from_slice(&input);
                    let whole = head + usize::try_from(body).unwrap_or(usize::MAX);
                    if self.buf.len() < whole {
                        break;
                    }
                    let rest = self.buf.split_off(whole);
                    let request = std::mem::take(&mut self.buf);
                    match rewrite_join(&request[..head], &request[head..]) {
                        Some(changed) => {
                            fwd.tampered_at.push(self.out_pos);
                            self.emit(&mut fwd, &changed);
                        }
                        None => self.emit(&mut fwd, &request),
                    }
                    self.state = State::Head;
                    if rest.is_empty() {
                        break;
                    }
                    input = rest;
                }
                State::Head => {
                    self.buf.extend_from_slice(&input);
                    let mut headers = [httparse::EMPTY_HEADER; 64];
                    let mut req = httparse::Request::new(&mut headers);
                    let parsed = req.parse(&self.buf);
                    let len = match parsed {
                        Ok(httparse::Status::Partial) if self.buf.len() <= MAX_HEAD => break,
                        Ok(httparse::Status::Complete(len)) => len,
                        // Too long or not HTTP: stop interpreting, let the server judge it.
                        _ => {
                            let all = std::mem::take(&mut self.buf);
                            self.emit(&mut fwd, &all);
                            self.state = State::Through;
                            break;
                        }
                    };
                    let find = |name: &str| {
                        req.headers
                            .iter()
                            .find(|h| h.name.eq_ignore_ascii_case(name))
                            .and_then(|h| std::str::from_utf8(h.value).ok())
                            .map(|v| v.trim().to_ascii_lowercase())
                    };
                    let upgrade = find("upgrade").is_some_and(|v| v.contains("websocket"));
                    let chunked = find("transfer-encoding").is_some_and(|v| v.contains("chunked"));
                    let length = find("content-length").map(|v| v.parse::<u64>());
                    let is_join = req.method == Some("POST")
                        && req
                            .path
                            .is_some_and(|p| p.split('?').next() == Some("/api/join"));
                    let mut rest = self.buf.split_off(len);
                    let head = std::mem::take(&mut self.buf);
                    let next = match length {
                        _ if upgrade || chunked => State::Through,
                        Some(Err(_)) => State::Through,
                        Some(Ok(n)) if tamper && is_join && n <= MAX_TAMPERED_BODY => {
                            State::Held { head: len, body: n }
                        }
                        Some(Ok(0)) | None => State::Head,
                        Some(Ok(n)) => State::Body(n),
                    };
                    if let State::Held { .. } = next {
                        // Keep holding: head and what came of the body go round again as the
                        // Held state's input.
                        let mut held = head;
                        held.append(&mut rest);
                        self.state = next;
                        input = held;
                        continue;
                    }
                    self.state = next;
                    self.emit(&mut fwd, &head);
                    if rest.is_empty() {
                        break;
                    }
                    input = rest;
                }
            }
        }
        fwd
    }

    /// The client closed: whatever is still held goes to the server as it is.
    pub fn finish(&mut self) -> Vec<u8> {
        self.state = State::Through;
        let held = std::mem::take(&mut self.buf);
        self.out_pos += held.len() as u64;
        held
    }

    fn emit(&mut self, fwd: &mut Forward, bytes: &[u8]) {
        fwd.bytes.extend_from_slice(bytes);
        self.out_pos += bytes.len() as u64;
    }
}

/// The join request with Mallory's name and a corrected `Content-Length`, or `None` when the
/// body is not a JSON object with a string `name` (then it passes unchanged).
pub fn rewrite_join(head: &[u8], body: &[u8]) -> Option<Vec<u8>> {
    let mut json: serde_json::Value = serde_json::from_slice(body).ok()?;
    let name = json.get("name")?.as_str()?;
    let changed = tampered_name(name);
    *json.get_mut("name")? = serde_json::Value::String(changed);
    let new_body = serde_json::to_vec(&json).ok()?;
    let head = std::str::from_utf8(head).ok()?;
    let mut out = String::with_capacity(head.len() + 8);
    for line in head.split_inclusive("\r\n") {
        let is_length = line
            .split_once(':')
            .is_some_and(|(k, _)| k.trim().eq_ignore_ascii_case("content-length"));
        if is_length {
            out.push_str(&format!("Content-Length: {}\r\n", new_body.len()));
        } else {
            out.push_str(line);
        }
    }
    let mut bytes = out.into_bytes();
    bytes.extend_from_slice(&new_body);
    Some(bytes)
}

/// Flips one bit in the first application-data record the client sends while tamper is on.
#[derive(Debug, Clone, Default)]
pub struct RecordFlipper {
    header: [u8; 5],
    have: usize,
    /// Payload bytes left in the current record, and whether it is application data.
    left: u64,
    app_data: bool,
    at_payload_start: bool,
    pos: u64,
    done: bool,
    broken: bool,
}

impl RecordFlipper {
    pub fn new() -> RecordFlipper {
        RecordFlipper::default()
    }

    /// Walks the records in `chunk` (changing it in place when it flips); returns the stream
    /// offset of the flipped byte.
    pub fn push(&mut self, chunk: &mut [u8], tamper: bool) -> Option<u64> {
        let mut flipped = None;
        let mut i = 0;
        while i < chunk.len() && !self.broken {
            if self.left > 0 {
                if self.at_payload_start && self.app_data && tamper && !self.done {
                    // The first byte of the ciphertext: the receiver's AEAD tag check fails.
                    chunk[i] ^= 0x01;
                    self.done = true;
                    flipped = Some(self.pos + i as u64);
                }
                self.at_payload_start = false;
                let take = usize::try_from(self.left)
                    .unwrap_or(usize::MAX)
                    .min(chunk.len() - i);
                self.left -= take as u64;
                i += take;
                continue;
            }
            self.header[self.have] = chunk[i];
            self.have += 1;
            i += 1;
            if self.have == 5 {
                self.have = 0;
                if !(20..=24).contains(&self.header[0]) || self.header[1] != 3 {
                    self.broken = true;
                }
                self.app_data = self.header[0] == 23;
                self.left = u64::from(u16::from_be_bytes([self.header[3], self.header[4]]));
                self.at_payload_start = true;
            }
        }
        self.pos += chunk.len() as u64;
        flipped
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const JOIN: &[u8] = b"POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 14\r\n\r\n{\"name\":\"Ada\"}";

    #[test]
    fn with_tamper_on_the_join_name_is_rewritten_and_the_length_fixed_however_it_arrives() {
        for step in [1, 5, JOIN.len()] {
            let mut rw = JoinRewriter::new();
            let mut out = Forward::default();
            for c in JOIN.chunks(step) {
                let f = rw.push(c, true);
                out.bytes.extend(f.bytes);
                out.tampered_at.extend(f.tampered_at);
            }
            let text = String::from_utf8(out.bytes).unwrap();
            assert!(
                text.ends_with("\r\n\r\n{\"name\":\"Mallory-Ada\"}"),
                "{text}"
            );
            assert!(text.contains("Content-Length: 22\r\n"), "{text}");
            assert_eq!(out.tampered_at, vec![0]);
        }
    }

    #[test]
    fn with_tamper_off_or_other_requests_the_bytes_pass_unchanged() {
        let mut stream = JOIN.to_vec();
        stream.extend(b"POST /api/click HTTP/1.1\r\nContent-Length: 2\r\n\r\n{}");
        let mut rw = JoinRewriter::new();
        let mut out = Vec::new();
        for c in stream.chunks(3) {
            let f = rw.push(c, false);
            assert!(f.tampered_at.is_empty());
            out.extend(f.bytes);
        }
        assert_eq!(out, stream);
        let mut rw = JoinRewriter::new();
        let f = rw.push(&stream[JOIN.len()..], true);
        assert_eq!(f.bytes, &stream[JOIN.len()..]);
    }

    #[test]
    fn a_second_join_after_the_first_is_rewritten_at_its_own_offset() {
        let mut two = JOIN.to_vec();
        two.extend(JOIN);
        let f = JoinRewriter::new().push(&two, true);
        let first_len = f.bytes.len() / 2;
        assert_eq!(f.tampered_at, vec![0, first_len as u64]);
    }

    #[test]
    fn the_rewritten_name_obeys_the_games_name_rules() {
        assert_eq!(tampered_name(" Ada "), "Mallory-Ada");
        assert_eq!(
            tampered_name("Grace Hopper Longname").chars().count(),
            NAME_CHARS
        );
        assert!(rewrite_join(b"POST / HTTP/1.1\r\n\r\n", b"[1]").is_none());
    }

    #[test]
    fn the_flipper_changes_one_bit_of_the_first_application_data_record_only() {
        let mut stream = vec![22, 3, 1, 0, 2, 1, 2, 20, 3, 3, 0, 1, 1];
        let app_at = stream.len() + 5;
        stream.extend([23, 3, 3, 0, 3, 0xaa, 0xbb, 0xcc, 23, 3, 3, 0, 1, 0xdd]);
        let original = stream.clone();
        let mut f = RecordFlipper::new();
        let mut flips = Vec::new();
        for c in stream.chunks_mut(2) {
            flips.extend(f.push(c, true));
        }
        assert_eq!(flips, vec![app_at as u64]);
        let diff: Vec<usize> = (0..stream.len())
            .filter(|i| stream[*i] != original[*i])
            .collect();
        assert_eq!(diff, vec![app_at]);
        assert_eq!(stream[app_at], 0xab);
    }
}
