//! # HTTP/1.1 as an eavesdropper reads it: heads, bodies, SSE events, then WebSocket frames
//!
//! One [`HttpObserver`] per direction of a plain relay connection. It finds message heads with
//! `httparse` (the parser actix-http itself uses), then follows the framing the head announces
//! — `Content-Length`, `Transfer-Encoding: chunked` (how actix streams SSE), `101 Switching
//! Protocols` into WebSocket frames ([`super::ws`]) — and reports each message once it is
//! complete, its head and the start of its body as text. A `text/event-stream` response is
//! reported at its head, then one record per event.
//!
//! It only observes: the relay forwards bytes whatever happens here. Nothing is buffered
//! without bound — a head up to [`MAX_HEAD`], excerpts up to [`HEAD_TEXT`]/[`BODY_TEXT`] — and
//! anything it cannot follow (a head too long, bytes that are not HTTP) is reported as `raw`
//! from then on, which is also what an attacker would be left with.

use super::ws::WsDecoder;
use super::{
    excerpt_text, hex, keep, Dir, Kind, Seen, Track, BODY_TEXT, HEAD_TEXT, HEX_BYTES, MAX_HEAD,
};

/// Headers per message httparse may read; browsers send ~20.
const MAX_HEADERS: usize = 64;
/// A chunk-size line longer than this is not HTTP.
const MAX_CHUNK_LINE: usize = 1024;

/// Bytes the observer could not interpret, reported as they are.
pub fn raw_seen(data: &[u8], track: &mut Track, as_text: bool) -> Seen {
    let start = track.pos;
    track.pos += data.len() as u64;
    let shown = &data[..data.len().min(BODY_TEXT)];
    Seen {
        kind: Kind::Raw,
        bytes: data.len() as u64,
        text: as_text.then(|| excerpt_text(shown, data.len() as u64)),
        hex: hex(&data[..data.len().min(HEX_BYTES)]),
        tls: None,
        tampered: track.tampered(start, track.pos),
    }
}

/// A message whose head is read and whose body is still arriving.
#[derive(Debug, Clone)]
struct Message {
    kind: Kind,
    start: u64,
    head: Vec<u8>,
    head_len: u64,
    body: Vec<u8>,
    body_len: u64,
    wire: Vec<u8>,
}

impl Message {
    fn finish(self, track: &mut Track) -> Seen {
        let mut text = excerpt_text(&self.head, self.head_len);
        if self.body_len > 0 {
            text.push_str(&excerpt_text(&self.body, self.body_len));
        }
        let end = track.pos;
        Seen {
            kind: self.kind,
            bytes: end - self.start,
            text: Some(text),
            hex: hex(&self.wire),
            tls: None,
            tampered: track.tampered(self.start, end),
        }
    }

    fn body(&mut self, data: &[u8]) {
        keep(&mut self.body, BODY_TEXT, data);
        keep(&mut self.wire, HEX_BYTES, data);
        self.body_len += data.len() as u64;
    }
}

/// Where a chunked body is (RFC 9112 §7.1).
#[derive(Debug, Clone)]
enum Chunk {
    /// Reading the hex size line.
    Size(Vec<u8>),
    /// Inside a chunk's data, this many bytes left.
    Data(u64),
    /// The CRLF after a chunk's data: this many of its two bytes left.
    DataEnd(u8),
    /// After the last (zero) chunk: trailer lines until an empty one.
    Trailer(Vec<u8>),
}

/// What a dechunked body feeds.
#[derive(Debug, Clone)]
enum Sink {
    /// The message's excerpt; the message is reported when the body ends.
    Message(Message),
    /// An SSE stream: one record per event.
    Sse(SseLines),
}

#[derive(Debug, Clone)]
enum State {
    Head(Vec<u8>),
    Body(Message, u64),
    Chunked(Sink, Chunk),
    /// A body that ends when the connection does.
    UntilClose(Sink),
    WebSocket(WsDecoder),
    Raw,
}

/// Observes one direction of a plain HTTP/1.1 connection.
#[derive(Debug, Clone)]
pub struct HttpObserver {
    dir: Dir,
    track: Track,
    state: State,
}

/// What the head says about the body that follows.
enum Framing {
    None,
    Length(u64),
    Chunked,
    UntilClose,
    WebSocket,
    Sse { chunked: bool },
}

impl HttpObserver {
    pub fn new(dir: Dir) -> HttpObserver {
        HttpObserver {
            dir,
            track: Track::default(),
            state: State::Head(Vec::new()),
        }
    }

    /// Notes that the relay changed the byte at stream offset `at` (see [`super::tamper`]).
    pub fn mark_tampered(&mut self, at: u64) {
        self.track.mark(at);
    }

    /// Feeds the next bytes of this direction; returns the units they completed.
    pub fn push(&mut self, mut data: &[u8]) -> Vec<Seen> {
        let mut out = Vec::new();
        while !data.is_empty() {
            let state = std::mem::replace(&mut self.state, State::Raw);
            let (next, used) = self.step(state, data, &mut out);
            self.state = next;
            data = &data[used..];
        }
        out
    }

    /// The connection ended: reports a message still waiting for its end.
    pub fn finish(&mut self) -> Vec<Seen> {
        let mut out = Vec::new();
        match std::mem::replace(&mut self.state, State::Raw) {
            State::Body(m, _) | State::Chunked(Sink::Message(m), _) => {
                out.push(m.finish(&mut self.track))
            }
            State::UntilClose(Sink::Message(m)) => out.push(m.finish(&mut self.track)),
            State::UntilClose(Sink::Sse(mut lines)) | State::Chunked(Sink::Sse(mut lines), _) => {
                out.extend(lines.flush(&mut self.track))
            }
            State::Head(buf) if !buf.is_empty() => {
                self.track.pos -= buf.len() as u64;
                out.push(raw_seen(&buf, &mut self.track, true));
            }
            _ => {}
        }
        out
    }

    /// One step of the state machine: consumes a prefix of `data`, returns the next state and
    /// how much it used (always > 0 for non-empty `data`).
    fn step(&mut self, state: State, data: &[u8], out: &mut Vec<Seen>) -> (State, usize) {
        match state {
            State::Raw => {
                out.push(raw_seen(data, &mut self.track, true));
                (State::Raw, data.len())
            }
            State::WebSocket(mut ws) => {
                out.extend(ws.push(data, &mut self.track));
                (State::WebSocket(ws), data.len())
            }
            State::Body(mut m, left) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                m.body(&data[..take]);
                self.track.pos += take as u64;
                let left = left - take as u64;
                if left == 0 {
                    out.push(m.finish(&mut self.track));
                    (State::Head(Vec::new()), take)
                } else {
                    (State::Body(m, left), take)
                }
            }
            State::UntilClose(mut sink) => {
                self.track.pos += data.len() as u64;
                self.sink(&mut sink, data, out);
                (State::UntilClose(sink), data.len())
            }
            State::Chunked(sink, chunk) => self.chunked(sink, chunk, data, out),
            State::Head(buf) => self.head(buf, data, out),
        }
    }

    fn sink(&mut self, sink: &mut Sink, data: &[u8], out: &mut Vec<Seen>) {
        match sink {
            Sink::Message(m) => m.body(data),
            Sink::Sse(lines) => out.extend(lines.push(data, &mut self.track)),
        }
    }

    fn chunked(
        &mut self,
        mut sink: Sink,
        chunk: Chunk,
        data: &[u8],
        out: &mut Vec<Seen>,
    ) -> (State, usize) {
        match chunk {
            Chunk::Size(mut line) => {
                let nl = data.iter().position(|b| *b == b'\n');
                let used = nl.map_or(data.len(), |i| i + 1);
                line.extend_from_slice(&data[..used]);
                self.track.pos += used as u64;
                if line.len() > MAX_CHUNK_LINE {
                    return (self.give_up(sink, out), used);
                }
                if nl.is_none() {
                    return (State::Chunked(sink, Chunk::Size(line)), used);
                }
                let text = String::from_utf8_lossy(&line);
                let digits = text.split(';').next().unwrap_or("").trim();
                match u64::from_str_radix(digits, 16) {
                    Ok(0) => (State::Chunked(sink, Chunk::Trailer(Vec::new())), used),
                    Ok(n) => (State::Chunked(sink, Chunk::Data(n)), used),
                    Err(_) => (self.give_up(sink, out), used),
                }
            }
            Chunk::Data(left) => {
                let take = usize::try_from(left).unwrap_or(usize::MAX).min(data.len());
                self.track.pos += take as u64;
                self.sink(&mut sink, &data[..take], out);
                let left = left - take as u64;
                let next = if left == 0 {
                    Chunk::DataEnd(2)
                } else {
                    Chunk::Data(left)
                };
                (State::Chunked(sink, next), take)
            }
            Chunk::DataEnd(left) => {
                let take = usize::from(left).min(data.len());
                self.track.pos += take as u64;
                let left = left - take as u8;
                let next = if left == 0 {
                    Chunk::Size(Vec::new())
                } else {
                    Chunk::DataEnd(left)
                };
                (State::Chunked(sink, next), take)
            }
            Chunk::Trailer(mut line) => {
                let nl = data.iter().position(|b| *b == b'\n');
                let used = nl.map_or(data.len(), |i| i + 1);
                line.extend_from_slice(&data[..used]);
                self.track.pos += used as u64;
                if line.len() > MAX_CHUNK_LINE {
                    return (self.give_up(sink, out), used);
                }
                if nl.is_none() {
                    return (State::Chunked(sink, Chunk::Trailer(line)), used);
                }
                if line.iter().all(|b| *b == b'\r' || *b == b'\n') {
                    match sink {
                        Sink::Message(m) => out.push(m.finish(&mut self.track)),
                        Sink::Sse(mut lines) => out.extend(lines.flush(&mut self.track)),
                    }
                    (State::Head(Vec::new()), used)
                } else {
                    (State::Chunked(sink, Chunk::Trailer(Vec::new())), used)
                }
            }
        }
    }

    /// Framing we cannot follow: report what we have and show the rest as raw bytes.
    fn give_up(&mut self, sink: Sink, out: &mut Vec<Seen>) -> State {
        match sink {
            Sink::Message(m) => out.push(m.finish(&mut self.track)),
            Sink::Sse(mut lines) => out.extend(lines.flush(&mut self.track)),
        }
        State::Raw
    }

    fn head(&mut self, mut buf: Vec<u8>, data: &[u8], out: &mut Vec<Seen>) -> (State, usize) {
        // Blank lines between messages are allowed (RFC 9112 §2.2) and carry nothing.
        if buf.is_empty() {
            let blank = data
                .iter()
                .take_while(|b| matches!(b, b'\r' | b'\n'))
                .count();
            if blank > 0 {
                self.track.pos += blank as u64;
                return (State::Head(buf), blank);
            }
        }
        let before = buf.len();
        let take = data.len().min(MAX_HEAD + 1 - before.min(MAX_HEAD));
        buf.extend_from_slice(&data[..take]);
        let parsed = match self.dir {
            Dir::ClientToServer => parse_request(&buf),
            Dir::ServerToClient => parse_response(&buf),
        };
        match parsed {
            Parsed::Partial if buf.len() > MAX_HEAD => {
                // The earlier part of `buf` was counted when it arrived; report it all at once.
                self.track.pos -= before as u64;
                out.push(raw_seen(&buf, &mut self.track, true));
                (State::Raw, take)
            }
            Parsed::Partial => {
                self.track.pos += take as u64;
                (State::Head(buf), take)
            }
            Parsed::Invalid => {
                self.track.pos -= before as u64;
                out.push(raw_seen(&buf, &mut self.track, true));
                (State::Raw, take)
            }
            Parsed::Complete { len, kind, framing } => {
                let used = len - before;
                let start = self.track.pos - before as u64;
                self.track.pos += used as u64;
                let head = &buf[..len];
                let m = Message {
                    kind,
                    start,
                    head: head[..head.len().min(HEAD_TEXT)].to_vec(),
                    head_len: len as u64,
                    body: Vec::new(),
                    body_len: 0,
                    wire: head[..head.len().min(HEX_BYTES)].to_vec(),
                };
                let next = match framing {
                    Framing::None | Framing::Length(0) => {
                        out.push(m.finish(&mut self.track));
                        State::Head(Vec::new())
                    }
                    Framing::Length(n) => State::Body(m, n),
                    Framing::Chunked => State::Chunked(Sink::Message(m), Chunk::Size(Vec::new())),
                    Framing::UntilClose => State::UntilClose(Sink::Message(m)),
                    Framing::WebSocket => {
                        out.push(m.finish(&mut self.track));
                        State::WebSocket(WsDecoder::new())
                    }
                    Framing::Sse { chunked } => {
                        out.push(m.finish(&mut self.track));
                        let lines = SseLines::new(self.track.pos);
                        if chunked {
                            State::Chunked(Sink::Sse(lines), Chunk::Size(Vec::new()))
                        } else {
                            State::UntilClose(Sink::Sse(lines))
                        }
                    }
                };
                (next, used)
            }
        }
    }
}

enum Parsed {
    Partial,
    Invalid,
    Complete {
        len: usize,
        kind: Kind,
        framing: Framing,
    },
}

fn header<'a>(headers: &'a [httparse::Header<'a>], name: &str) -> Option<&'a str> {
    headers
        .iter()
        .find(|h| h.name.eq_ignore_ascii_case(name))
        .and_then(|h| std::str::from_utf8(h.value).ok())
        .map(str::trim)
}

fn has_token(value: Option<&str>, token: &str) -> bool {
    value.is_some_and(|v| v.split(',').any(|t| t.trim().eq_ignore_ascii_case(token)))
}

fn body_framing(headers: &[httparse::Header<'_>], request: bool) -> Option<Framing> {
    if has_token(header(headers, "transfer-encoding"), "chunked") {
        return Some(Framing::Chunked);
    }
    match header(headers, "content-length") {
        Some(v) => v.parse::<u64>().ok().map(Framing::Length),
        // A request without either has no body; a response is read until the connection ends.
        None if request => Some(Framing::None),
        None => Some(Framing::UntilClose),
    }
}

fn parse_request(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut req = httparse::Request::new(&mut headers);
    match req.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
        Ok(httparse::Status::Complete(len)) => {
            let framing = if has_token(header(req.headers, "upgrade"), "websocket") {
                Some(Framing::WebSocket)
            } else {
                body_framing(req.headers, true)
            };
            match framing {
                Some(framing) => Parsed::Complete {
                    len,
                    kind: Kind::HttpRequest,
                    framing,
                },
                None => Parsed::Invalid,
            }
        }
    }
}

fn parse_response(buf: &[u8]) -> Parsed {
    let mut headers = [httparse::EMPTY_HEADER; MAX_HEADERS];
    let mut res = httparse::Response::new(&mut headers);
    match res.parse(buf) {
        Ok(httparse::Status::Partial) => Parsed::Partial,
        Err(_) => Parsed::Invalid,
        Ok(httparse::Status::Complete(len)) => {
            let code = res.code.unwrap_or(0);
            let sse = header(res.headers, "content-type")
                .is_some_and(|v| v.to_ascii_lowercase().starts_with("text/event-stream"));
            let framing = match code {
                101 => Some(Framing::WebSocket),
                100..=199 | 204 | 304 => Some(Framing::None),
                _ if sse => Some(Framing::Sse {
                    chunked: has_token(header(res.headers, "transfer-encoding"), "chunked"),
                }),
                _ => body_framing(res.headers, false),
            };
            match framing {
                Some(framing) => Parsed::Complete {
                    len,
                    kind: Kind::HttpResponse,
                    framing,
                },
                None => Parsed::Invalid,
            }
        }
    }
}

/// Splits an SSE body into events: lines up to an empty line (the WHATWG event-stream format).
#[derive(Debug, Clone)]
struct SseLines {
    start: u64,
    text: Vec<u8>,
    len: u64,
    wire: Vec<u8>,
    line_empty: bool,
}

impl SseLines {
    fn new(start: u64) -> SseLines {
        SseLines {
            start,
            text: Vec::new(),
            len: 0,
            wire: Vec::new(),
            line_empty: true,
        }
    }

    /// `track.pos` is already past `data` (the dechunked bytes); events are dated by it.
    fn push(&mut self, data: &[u8], track: &mut Track) -> Vec<Seen> {
        let mut out = Vec::new();
        for &b in data {
            if self.len == 0 && self.wire.is_empty() {
                self.start = track.pos.saturating_sub(data.len() as u64);
            }
            self.len += 1;
            if self.wire.len() < HEX_BYTES {
                self.wire.push(b);
            }
            match b {
                b'\r' => {}
                b'\n' if self.line_empty => {
                    out.extend(self.flush(track));
                }
                b'\n' => {
                    self.line_empty = true;
                    if self.text.len() < BODY_TEXT {
                        self.text.push(b'\n');
                    }
                }
                _ => {
                    self.line_empty = false;
                    if self.text.len() < BODY_TEXT {
                        self.text.push(b);
                    }
                }
            }
        }
        out
    }

    /// Reports the event collected so far, if any.
    fn flush(&mut self, track: &mut Track) -> Option<Seen> {
        let text = String::from_utf8_lossy(&self.text).trim_end().to_string();
        let seen = (!text.is_empty()).then(|| Seen {
            kind: Kind::SseEvent,
            bytes: self.len,
            text: Some(if self.len as usize > BODY_TEXT + 2 {
                format!("{text} … [event of {} bytes]", self.len)
            } else {
                text
            }),
            hex: hex(&self.wire),
            tls: None,
            tampered: track.tampered(self.start, track.pos),
        });
        self.text.clear();
        self.wire.clear();
        self.len = 0;
        self.line_empty = true;
        seen
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn feed_all(dir: Dir, stream: &[u8], step: usize) -> Vec<Seen> {
        let mut o = HttpObserver::new(dir);
        let mut seen = Vec::new();
        for chunk in stream.chunks(step) {
            seen.extend(o.push(chunk));
        }
        seen.extend(o.finish());
        seen
    }

    #[test]
    fn a_join_request_is_read_with_its_body_whatever_the_chunking() {
        let req = b"POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 16\r\n\r\n{\"name\":\"Grace\"}GET /api/snapshot HTTP/1.1\r\nHost: x\r\n\r\n";
        for step in [1, 7, req.len()] {
            let seen = feed_all(Dir::ClientToServer, req, step);
            assert_eq!(seen.len(), 2, "step {step}: {seen:?}");
            assert_eq!(seen[0].kind, Kind::HttpRequest);
            let text = seen[0].text.as_deref().unwrap();
            assert!(text.starts_with("POST /api/join HTTP/1.1\r\n"), "{text}");
            assert!(text.ends_with("{\"name\":\"Grace\"}"), "{text}");
            let second = req.windows(3).position(|w| w == b"GET").unwrap();
            assert_eq!(seen[0].bytes, second as u64);
            assert!(seen[1]
                .text
                .as_deref()
                .unwrap()
                .starts_with("GET /api/snapshot"));
        }
    }

    fn chunk(s: &str) -> String {
        format!("{:x}\r\n{s}\r\n", s.len())
    }

    #[test]
    fn a_chunked_sse_response_becomes_one_record_per_event() {
        let body = format!(
            "HTTP/1.1 200 OK\r\ncontent-type: text/event-stream\r\ntransfer-encoding: chunked\r\n\r\n{}{}{}{}0\r\n\r\n",
            chunk("id: 1\nevent: joined\ndata: {}\n\n"),
            chunk(": heartbeat\r\n\r\nid"),
            chunk(": 2\ndata:\n"),
            chunk("\n"),
        );
        let body = body.as_bytes();
        for step in [1, 5, body.len()] {
            let seen = feed_all(Dir::ServerToClient, body, step);
            let texts: Vec<_> = seen
                .iter()
                .map(|s| (s.kind, s.text.clone().unwrap()))
                .collect();
            assert_eq!(texts.len(), 4, "step {step}: {texts:?}");
            assert_eq!(texts[0].0, Kind::HttpResponse);
            assert_eq!(
                texts[1],
                (Kind::SseEvent, "id: 1\nevent: joined\ndata: {}".into())
            );
            assert_eq!(texts[2], (Kind::SseEvent, ": heartbeat".into()));
            assert_eq!(texts[3], (Kind::SseEvent, "id: 2\ndata:".into()));
        }
    }

    #[test]
    fn an_upgrade_switches_both_directions_to_websocket_frames() {
        let mut up =
            b"GET /api/ws HTTP/1.1\r\nHost: x\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\r\n"
                .to_vec();
        up.extend([0x81, 0x82, 0, 0, 0, 0, b'h', b'i']);
        let seen = feed_all(Dir::ClientToServer, &up, 3);
        assert_eq!(seen.len(), 2);
        assert_eq!(seen[1].kind, Kind::WsFrame);
        assert!(seen[1].text.as_deref().unwrap().ends_with(": hi"));
        let mut down = b"HTTP/1.1 101 Switching Protocols\r\nupgrade: websocket\r\n\r\n".to_vec();
        down.extend([0x81, 0x02, b'o', b'k']);
        let seen = feed_all(Dir::ServerToClient, &down, 100);
        assert_eq!(seen[1].text.as_deref(), Some("text: ok"));
    }

    #[test]
    fn a_response_with_a_long_body_keeps_only_an_excerpt() {
        let mut res = b"HTTP/1.1 200 OK\r\ncontent-length: 5000\r\n\r\n".to_vec();
        res.extend(vec![b'a'; 5000]);
        let seen = feed_all(Dir::ServerToClient, &res, 999);
        assert_eq!(seen.len(), 1);
        assert!(seen[0]
            .text
            .as_deref()
            .unwrap()
            .ends_with(&format!("[{} more bytes]", 5000 - BODY_TEXT)));
        assert_eq!(seen[0].bytes, res.len() as u64);
        assert_eq!(seen[0].hex.len(), HEX_BYTES * 2);
    }

    #[test]
    fn bytes_that_are_not_http_are_reported_raw_and_a_huge_head_is_not_buffered() {
        let seen = feed_all(Dir::ClientToServer, b"\x16\x03\x01\x00\x05hello", 4);
        assert!(seen.iter().all(|s| s.kind == Kind::Raw), "{seen:?}");
        let mut huge = b"GET / HTTP/1.1\r\nX: ".to_vec();
        huge.extend(vec![b'a'; 3 * MAX_HEAD]);
        let mut o = HttpObserver::new(Dir::ClientToServer);
        let mut seen = Vec::new();
        for c in huge.chunks(4096) {
            seen.extend(o.push(c));
        }
        assert!(seen.iter().all(|s| s.kind == Kind::Raw));
        assert_eq!(seen.iter().map(|s| s.bytes).sum::<u64>(), huge.len() as u64);
        assert_eq!(o.track.pos, huge.len() as u64);
    }
}
