//! Bad input at scale (issue 6): one table of hostile or broken requests, each with the answer
//! the server must give, all thrown at one server; then a normal player must still join, click
//! and see the win. Every expectation here was observed first, then pinned.

use std::time::{Duration, Instant};

use actix_codec::{Decoder, Encoder, Framed};
use actix_web::web::{Bytes, BytesMut};
use awc::ws;
use futures_util::{SinkExt, StreamExt};
use serde_json::Value;

use crate::clients::{Downstream, Kind};
use crate::helpers::{parse, TestApp};

/// What one row expects.
#[derive(Debug, Clone, Copy, PartialEq)]
enum Want {
    /// An HTTP status with a JSON error body carrying this `error` code.
    Error(u16, &'static str),
    /// An HTTP status; the body is not an API error (a success, or actix's own refusal of a
    /// request head it could not read, which never reaches our code).
    Status(u16),
    /// The WebSocket is closed by the server with this code.
    Close(u16),
    /// The WebSocket stays open and answers with `{"type":"error","error":<code>}`.
    Reply(&'static str),
}

/// What the server did, in the same terms.
#[derive(Debug, Clone, PartialEq)]
enum Answer {
    Error(u16, String),
    Status(u16),
    Close(u16),
    Reply(String),
}

impl Answer {
    fn is(&self, want: Want) -> bool {
        match (self, want) {
            (Answer::Error(s, c), Want::Error(ws, wc)) => *s == ws && c == wc,
            (Answer::Status(s), Want::Status(ws)) => *s == ws,
            (Answer::Close(c), Want::Close(wc)) => *c == wc,
            (Answer::Reply(c), Want::Reply(wc)) => c == wc,
            _ => false,
        }
    }
}

enum Input {
    /// Method, path, extra headers, body; `/api/click` rows are sent as a player.
    Http(&'static str, String, Vec<(&'static str, String)>, Vec<u8>),
    /// Bytes written to a fresh TCP connection, for heads awc refuses to send.
    Raw(Vec<u8>),
    /// Raw bytes after a WebSocket handshake on `/api/ws` (as a spectator).
    Ws(Vec<u8>),
}

struct Case {
    what: &'static str,
    input: Input,
    want: Want,
}

fn http(what: &'static str, path: &str, body: &str, want: Want) -> Case {
    let (method, ct) = if body.is_empty() && !path.starts_with("/api/join") {
        ("GET", None)
    } else {
        (
            "POST",
            Some(("Content-Type", "application/json".to_string())),
        )
    };
    Case {
        what,
        input: Input::Http(
            method,
            path.to_string(),
            ct.into_iter().collect(),
            body.as_bytes().to_vec(),
        ),
        want,
    }
}

fn join(what: &'static str, body: &str, want: Want) -> Case {
    http(what, "/api/join", body, want)
}

fn join_bytes(what: &'static str, body: &[u8], want: Want) -> Case {
    Case {
        what,
        input: Input::Http(
            "POST",
            "/api/join".into(),
            vec![("Content-Type", "application/json".into())],
            body.to_vec(),
        ),
        want,
    }
}

fn poll(what: &'static str, query: &str, want: Want) -> Case {
    http(what, &format!("/api/poll?{query}"), "", want)
}

fn get_with(what: &'static str, path: &str, header: (&'static str, String), want: Want) -> Case {
    Case {
        what,
        input: Input::Http("GET", path.into(), vec![header], Vec::new()),
        want,
    }
}

fn raw(what: &'static str, head: String, want: Want) -> Case {
    Case {
        what,
        input: Input::Raw(head.into_bytes()),
        want,
    }
}

fn ws(what: &'static str, bytes: Vec<u8>, want: Want) -> Case {
    Case {
        what,
        input: Input::Ws(bytes),
        want,
    }
}

/// A client frame: `first` is FIN/RSV/opcode, the payload is masked unless `masked` is false.
fn frame(first: u8, payload: &[u8], masked: bool) -> Vec<u8> {
    let mut f = vec![first];
    let mask_bit = if masked { 0x80 } else { 0 };
    match payload.len() {
        n @ 0..=125 => f.push(mask_bit | n as u8),
        n @ 126..=0xffff => {
            f.push(mask_bit | 126);
            f.extend_from_slice(&(n as u16).to_be_bytes());
        }
        n => {
            f.push(mask_bit | 127);
            f.extend_from_slice(&(n as u64).to_be_bytes());
        }
    }
    if masked {
        let key = [0x37, 0xfa, 0x21, 0x3d];
        f.extend_from_slice(&key);
        f.extend(payload.iter().enumerate().map(|(i, b)| b ^ key[i % 4]));
    } else {
        f.extend_from_slice(payload);
    }
    f
}

fn text(payload: &str) -> Vec<u8> {
    frame(0x81, payload.as_bytes(), true)
}

/// Only the header of a masked text frame announcing `len` bytes (no payload follows).
fn announce(len: u64) -> Vec<u8> {
    let mut f = vec![0x81, 0x80 | 127];
    f.extend_from_slice(&len.to_be_bytes());
    f.extend_from_slice(&[1, 2, 3, 4]);
    f
}

fn cases() -> Vec<Case> {
    use Want::*;
    let name = |n: &str| serde_json::json!({ "name": n }).to_string();
    let mut cases = vec![
        // --- truncated and malformed JSON
        join("truncated object", r#"{"name":"Bo"#, Error(400, "bad_json")),
        join(
            "truncated string escape",
            r#"{"name":"\u00"#,
            Error(400, "bad_json"),
        ),
        join("only an opening brace", "{", Error(400, "bad_json")),
        join("empty body", "", Error(400, "bad_json")),
        join("JSON null", "null", Error(400, "bad_json")),
        join(
            "an array of the fields",
            r#"["Bob"]"#,
            Error(400, "bad_json"),
        ),
        join(
            "trailing garbage",
            r#"{"name":"Bob"} x"#,
            Error(400, "bad_json"),
        ),
        join("single quotes", "{'name':'Bob'}", Error(400, "bad_json")),
        join(
            "a comment",
            r#"{"name":"Bob" /* hi */}"#,
            Error(400, "bad_json"),
        ),
        // --- duplicate keys: refused, never "last one wins"
        join(
            "duplicate key",
            r#"{"name":"Eve","name":"Mallory"}"#,
            Error(400, "bad_json"),
        ),
        // --- deep nesting: over the body limit first; under it, serde_json's recursion limit
        join(
            "10,000 '['",
            &"[".repeat(10_000),
            Error(413, "payload_too_large"),
        ),
        join(
            "1,000 '[' (under 1 KiB)",
            &"[".repeat(1_000),
            Error(400, "bad_json"),
        ),
        join(
            "1,000 '[' as the name's value",
            &format!(r#"{{"name":{}"#, "[".repeat(1_000)),
            Error(400, "bad_json"),
        ),
        // --- invalid UTF-8 bodies
        join_bytes(
            "invalid UTF-8 in a string",
            b"{\"name\":\"\xff\xfe\"}",
            Error(400, "bad_json"),
        ),
        join_bytes(
            "overlong UTF-8 encoding of '/'",
            b"{\"name\":\"a\xc0\xafb\"}",
            Error(400, "bad_json"),
        ),
        join_bytes(
            "UTF-8 encoded surrogate (CESU-8)",
            b"{\"name\":\"\xed\xa0\x80\"}",
            Error(400, "bad_json"),
        ),
        join_bytes("a UTF-16 body", b"\xff\xfe{\0}\0", Error(400, "bad_json")),
        // --- unicode in names: letters of any script are letters; marks, controls and
        //     formatting characters are not
        join("precomposed ë", &name("Zoë"), Status(201)),
        join(
            "combining diaeresis",
            &name("Zoe\u{0308}"),
            Error(400, "invalid_name"),
        ),
        join(
            "RTL override U+202E",
            &name("\u{202E}nimda"),
            Error(400, "invalid_name"),
        ),
        join(
            "zero-width joiner",
            &name("a\u{200D}b"),
            Error(400, "invalid_name"),
        ),
        join(
            "zero-width space",
            &name("a\u{200B}b"),
            Error(400, "invalid_name"),
        ),
        join(
            "NUL via \\u0000",
            r#"{"name":"a\u0000b"}"#,
            Error(400, "invalid_name"),
        ),
        join(
            "lone high surrogate \\ud800",
            r#"{"name":"\ud800"}"#,
            Error(400, "bad_json"),
        ),
        join(
            "lone low surrogate \\udc00",
            r#"{"name":"a\udc00"}"#,
            Error(400, "bad_json"),
        ),
        join(
            "surrogate pair (emoji)",
            r#"{"name":"\ud83d\ude00"}"#,
            Error(400, "invalid_name"),
        ),
        join(
            "20 characters, 40 bytes",
            &name(&"ü".repeat(20)),
            Status(201),
        ),
        join(
            "21 characters",
            &name(&"ü".repeat(21)),
            Error(400, "invalid_name"),
        ),
        join("20 CJK characters", &name(&"日".repeat(20)), Status(201)),
        join(
            "21 CJK characters",
            &name(&"本".repeat(21)),
            Error(400, "invalid_name"),
        ),
        join(
            "20 characters inside spaces (trimmed)",
            &name(&format!("  {}  ", "x".repeat(20))),
            Status(201),
        ),
        join(
            "10 letters + 10 combining marks: 20 chars, 10 graphemes",
            &name(&"e\u{0301}".repeat(10)),
            Error(400, "invalid_name"),
        ),
        join(
            "a name taken in another case",
            &name("ZOË"),
            Error(409, "name_taken"),
        ),
        join("only whitespace", &name(" \t "), Error(400, "invalid_name")),
        join(
            "a newline inside",
            &name("a\nb"),
            Error(400, "invalid_name"),
        ),
        join(
            "name is a number",
            r#"{"name":1e999}"#,
            Error(400, "bad_json"),
        ),
        // --- huge and odd numbers in clicks (sent as a player)
        http(
            "click as an array of the fields",
            "/api/click",
            "[1,500,500]",
            Error(400, "bad_json"),
        ),
        http(
            "round = u64::MAX: a round that has not begun",
            "/api/click",
            r#"{"round":18446744073709551615,"x":1,"y":1}"#,
            Error(409, "round_not_started"),
        ),
        http(
            "x = 1e308: finite, off the board",
            "/api/click",
            r#"{"round":1,"x":1e308,"y":1}"#,
            Error(400, "out_of_board"),
        ),
        http(
            "x = -1e-320 (subnormal, below 0)",
            "/api/click",
            r#"{"round":1,"x":-1e-320,"y":1}"#,
            Error(400, "out_of_board"),
        ),
        http(
            "round = 1.0",
            "/api/click",
            r#"{"round":1.0,"x":1,"y":1}"#,
            Error(400, "bad_json"),
        ),
        http(
            "round above u64::MAX",
            "/api/click",
            r#"{"round":18446744073709551616,"x":1,"y":1}"#,
            Error(400, "bad_json"),
        ),
        http(
            "x = 1e999 (overflows f64)",
            "/api/click",
            r#"{"round":1,"x":1e999,"y":1}"#,
            Error(400, "bad_json"),
        ),
        http(
            "x = NaN",
            "/api/click",
            r#"{"round":1,"x":NaN,"y":1}"#,
            Error(400, "bad_json"),
        ),
        http(
            "x = -Infinity",
            "/api/click",
            r#"{"round":1,"x":-Infinity,"y":1}"#,
            Error(400, "bad_json"),
        ),
        // --- since / epoch on the downstream GETs
        poll("since=-1", "since=-1", Error(400, "bad_query")),
        poll("since=1.5", "since=1.5", Error(400, "bad_query")),
        poll("since=1e3", "since=1e3", Error(400, "bad_query")),
        poll("since=NaN", "since=NaN", Error(400, "bad_query")),
        poll("since=inf", "since=inf", Error(400, "bad_query")),
        poll("since=0x10", "since=0x10", Error(400, "bad_query")),
        poll(
            "since=u64::MAX+1",
            "since=18446744073709551616",
            Error(400, "bad_query"),
        ),
        poll("since= 5 (space)", "since=%205", Error(400, "bad_query")),
        poll("since=%00", "since=%00", Error(400, "bad_query")),
        poll("since empty", "since=", Error(400, "bad_query")),
        poll("since twice", "since=1&since=2", Error(400, "bad_query")),
        poll("unknown key", "since=1&admin=1", Error(400, "bad_query")),
        poll(
            "since=u64::MAX (ahead: snapshot)",
            "since=18446744073709551615",
            Status(200),
        ),
        poll(
            "since=+5 (Rust's u64 parse allows '+')",
            "since=%2B5",
            Status(200),
        ),
        poll(
            "epoch of invalid UTF-8 (%FF)",
            "since=0&epoch=%FF",
            Status(200),
        ),
        poll(
            "a 4 KiB epoch",
            &format!("since=0&epoch={}", "e".repeat(4096)),
            Status(200),
        ),
        http(
            "longpoll since=-1",
            "/api/longpoll?since=-1",
            "",
            Error(400, "bad_query"),
        ),
        http(
            "sse since=NaN",
            "/api/sse?since=NaN",
            "",
            Error(400, "bad_query"),
        ),
        http(
            "ws since=1.0",
            "/api/ws?since=1.0",
            "",
            Error(400, "bad_query"),
        ),
        get_with(
            "Last-Event-ID: -1",
            "/api/sse",
            ("Last-Event-ID", "-1".into()),
            Error(400, "bad_last_event_id"),
        ),
        get_with(
            "Last-Event-ID: 1.5",
            "/api/sse",
            ("Last-Event-ID", "1.5".into()),
            Error(400, "bad_last_event_id"),
        ),
        get_with(
            "Last-Event-ID: u64::MAX+1",
            "/api/sse",
            ("Last-Event-ID", "18446744073709551616".into()),
            Error(400, "bad_last_event_id"),
        ),
        get_with(
            "Last-Event-ID: NaN",
            "/api/sse",
            ("Last-Event-ID", "NaN".into()),
            Error(400, "bad_last_event_id"),
        ),
        // --- oversize heads. actix-http reads a request head of up to 128 KiB; beyond that, or
        //     with more than 96 headers, it answers 431 itself (empty body) before any of our
        //     code runs. A URI over 64 KiB is its 400 (empty body).
        get_with(
            "a 100 KiB cookie (not a session: a spectator)",
            "/api/snapshot",
            (
                "Cookie",
                format!("clickgame_session={}", "a".repeat(100 * 1024)),
            ),
            Status(200),
        ),
        Case {
            what: "a 100 KiB cookie on a player-only POST",
            input: Input::Http(
                "POST",
                "/api/leave".into(),
                vec![
                    ("Content-Type", "application/json".into()),
                    (
                        "Cookie",
                        format!("clickgame_session={}", "a".repeat(100 * 1024)),
                    ),
                ],
                b"{}".to_vec(),
            ),
            want: Error(401, "unauthorized"),
        },
        raw(
            "a 200 KiB header",
            format!(
                "GET /api/snapshot HTTP/1.1\r\nHost: x\r\nX-Padding: {}\r\n\r\n",
                "p".repeat(200 * 1024)
            ),
            Status(431),
        ),
        raw(
            "a 100 KiB query string",
            format!(
                "GET /api/poll?epoch={} HTTP/1.1\r\nHost: x\r\n\r\n",
                "q".repeat(100 * 1024)
            ),
            Status(400),
        ),
        // --- WebSocket framing (spectator socket on /api/ws; see websocket.rs's table)
        ws(
            "text frame of invalid UTF-8",
            frame(0x81, b"{\"type\":\"\xff\"}", true),
            Close(1007),
        ),
        ws(
            "invalid UTF-8 split over two fragments",
            [frame(0x01, b"\xe2\x82", true), frame(0x80, b"\x28", true)].concat(),
            Close(1007),
        ),
        ws("binary frame", frame(0x82, b"{}", true), Close(1003)),
        ws(
            "5,000-byte text frame (limit 4,096)",
            text(&"x".repeat(5_000)),
            Close(1009),
        ),
        ws(
            "a frame announcing 1 GiB, nothing sent after the header",
            announce(1 << 30),
            Close(1009),
        ),
        ws(
            "fragments adding up to 6,000 bytes",
            [
                frame(0x01, &[b' '; 3_000], true),
                frame(0x80, &[b' '; 3_000], true),
            ]
            .concat(),
            Close(1009),
        ),
        ws(
            "RSV1 set (no extension negotiated)",
            frame(0xC1, b"{}", true),
            Close(1002),
        ),
        ws("reserved opcode 0x3", frame(0x83, b"", true), Close(1002)),
        ws(
            "unmasked client frame",
            frame(0x81, b"{}", false),
            Close(1002),
        ),
        ws(
            "continuation with nothing to continue",
            frame(0x80, b"x", true),
            Close(1002),
        ),
        ws("126-byte ping", frame(0x89, &[0; 126], true), Close(1002)),
        ws(
            "close with code 999",
            frame(0x88, &999u16.to_be_bytes(), true),
            Close(1002),
        ),
        ws(
            "close with an invalid UTF-8 reason",
            frame(0x88, b"\x03\xe8\xff", true),
            Close(1002),
        ),
        ws(
            "close 4000 (application code): echoed",
            frame(0x88, &4000u16.to_be_bytes(), true),
            Close(4000),
        ),
        ws(
            "10 bad messages",
            (0..10).flat_map(|_| text("nope")).collect(),
            Close(1008),
        ),
        ws(
            "4,000 '[' in a message",
            text(&"[".repeat(4_000)),
            Reply("bad_message"),
        ),
        ws(
            "resume with since > u64::MAX",
            text(r#"{"type":"resume","since":18446744073709551616}"#),
            Reply("bad_message"),
        ),
        ws(
            "resume with since = -1",
            text(r#"{"type":"resume","since":-1}"#),
            Reply("bad_message"),
        ),
        ws(
            "click with a duplicate key",
            text(r#"{"type":"click","round":1,"round":2,"x":1,"y":1}"#),
            Reply("bad_message"),
        ),
        ws(
            "click with x = 1e999",
            text(r#"{"type":"click","round":1,"x":1e999,"y":1}"#),
            Reply("bad_message"),
        ),
        ws(
            "a click as an array of the fields",
            text(r#"["click",1,1,500,500]"#),
            Reply("bad_message"),
        ),
        ws(
            "a resume as an array",
            text(r#"["resume"]"#),
            Reply("bad_message"),
        ),
        ws(
            "a spectator's well-formed click",
            text(r#"{"type":"click","round":1,"x":1,"y":1}"#),
            Reply("unauthorized"),
        ),
    ];
    cases.push(get_with(
        "200 headers",
        "/api/snapshot",
        ("X-Many", "1".into()),
        Status(431),
    ));
    cases
}

/// Passes raw bytes out and decodes the server's (unmasked) frames in.
struct RawCodec(ws::Codec);

impl Encoder<Bytes> for RawCodec {
    type Error = actix_http::ws::ProtocolError;

    fn encode(&mut self, item: Bytes, dst: &mut BytesMut) -> Result<(), Self::Error> {
        dst.extend_from_slice(&item);
        Ok(())
    }
}

impl Decoder for RawCodec {
    type Item = ws::Frame;
    type Error = actix_http::ws::ProtocolError;

    fn decode(&mut self, src: &mut BytesMut) -> Result<Option<ws::Frame>, Self::Error> {
        self.0.decode(src)
    }
}

/// What the server did with a WebSocket row: its close code, or (unless a close is expected)
/// its first reply's `error`.
async fn run_ws(app: &TestApp, bytes: Vec<u8>, want_close: bool) -> Result<Answer, String> {
    let (_, framed) = app
        .client
        .ws(app.url("/api/ws"))
        .protocols(["clickgame.v1"])
        .max_frame_size(1 << 20)
        .connect()
        .await
        .map_err(|e| format!("handshake: {e:?}"))?;
    let mut framed: Framed<_, RawCodec> = framed.into_map_codec(RawCodec);
    framed
        .send(Bytes::from(bytes))
        .await
        .map_err(|e| format!("send: {e:?}"))?;
    loop {
        match framed.next().await {
            Some(Ok(ws::Frame::Close(reason))) => {
                return Ok(Answer::Close(reason.map_or(1005, |r| u16::from(r.code))));
            }
            Some(Ok(ws::Frame::Text(t))) => {
                let v: Value = serde_json::from_slice(&t).map_err(|e| format!("reply: {e}"))?;
                if v["type"] == "error" && !want_close {
                    return Ok(Answer::Reply(v["error"].as_str().unwrap_or("").into()));
                }
            }
            Some(Ok(_)) => {}
            Some(Err(e)) => return Err(format!("read: {e:?}")),
            None => return Err("dropped without a close frame".into()),
        }
    }
}

/// Writes `bytes` to a new connection and reads one response (status line, `content-length`
/// body), for request heads awc will not send.
async fn run_raw(app: &TestApp, bytes: Vec<u8>) -> Result<Answer, String> {
    let stream = actix_web::rt::net::TcpStream::connect(app.server.http_addr)
        .await
        .map_err(|e| format!("connect: {e}"))?;
    let mut framed = Framed::new(stream, actix_codec::BytesCodec);
    // The server may answer (and close) before it has read everything: a failed write is fine.
    let _ = framed.send(Bytes::from(bytes)).await;
    let mut got = Vec::new();
    while let Some(chunk) = framed.next().await {
        match chunk {
            Ok(chunk) => got.extend_from_slice(&chunk),
            Err(_) if !got.is_empty() => break,
            Err(e) => return Err(format!("read: {e}")),
        }
        let text = String::from_utf8_lossy(&got);
        let Some(end) = text.find("\r\n\r\n") else {
            continue;
        };
        let length = text[..end]
            .lines()
            .filter_map(|l| {
                l.to_ascii_lowercase()
                    .strip_prefix("content-length:")
                    .map(|v| v.trim().parse::<usize>())
            })
            .next()
            .unwrap_or(Ok(0))
            .map_err(|e| format!("content-length: {e}"))?;
        if got.len() >= end + 4 + length {
            let status = text
                .split(' ')
                .nth(1)
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| format!("status line: {text:.40}"))?;
            return judge(status, &got[end + 4..end + 4 + length]);
        }
    }
    Err(format!("connection closed after {} bytes", got.len()))
}

/// What the server did with an HTTP row.
async fn run_http(
    app: &TestApp,
    method: &str,
    path: &str,
    headers: &[(&str, String)],
    body: Vec<u8>,
    many_headers: bool,
    token: &str,
) -> Result<Answer, String> {
    let method = awc::http::Method::from_bytes(method.as_bytes()).map_err(|e| e.to_string())?;
    let mut req = app.client.request(method, app.url(path));
    if path == "/api/click" {
        req = req.bearer_auth(token);
    }
    for (k, v) in headers {
        req = req.insert_header((*k, v.as_str()));
    }
    if many_headers {
        for i in 0..200 {
            req = req.append_header((format!("x-many-{i}"), "1"));
        }
    }
    let mut res = req
        .send_body(body)
        .await
        .map_err(|e| format!("request: {e}"))?;
    let status = res.status().as_u16();
    let is_stream = res
        .headers()
        .get("content-type")
        .is_some_and(|v| v == "text/event-stream");
    if is_stream {
        return Ok(Answer::Status(status)); // an SSE stream never ends; the status is the answer
    }
    let bytes = res
        .body()
        .limit(1 << 20)
        .await
        .map_err(|e| format!("body: {e}"))?;
    judge(status, &bytes)
}

/// An HTTP answer in the table's terms; any 4xx/5xx other than actix's own must be an API error.
fn judge(status: u16, bytes: &[u8]) -> Result<Answer, String> {
    let body = parse(bytes);
    match body.get("error").and_then(Value::as_str) {
        Some(code) => {
            if body["detail"].as_str().is_none_or(str::is_empty) {
                return Err(format!("{status}: an error without a detail: {body}"));
            }
            Ok(Answer::Error(status, code.to_string()))
        }
        None if status >= 400 && !(bytes.is_empty() && matches!(status, 400 | 431)) => {
            Err(format!("{status} without a JSON error body: {body}"))
        }
        None => Ok(Answer::Status(status)),
    }
}

#[actix_web::test]
async fn a_table_of_bad_input_then_a_normal_game() {
    let started = Instant::now();
    let app = TestApp::spawn().await;
    let clicker = app.join("Clicker").await;
    let mut wrong = Vec::new();
    for case in cases() {
        let many = case.what == "200 headers";
        let got = actix_web::rt::time::timeout(Duration::from_secs(5), async {
            match &case.input {
                Input::Http(method, path, headers, body) => {
                    run_http(
                        &app,
                        method,
                        path,
                        headers,
                        body.clone(),
                        many,
                        &clicker.token,
                    )
                    .await
                }
                Input::Raw(bytes) => run_raw(&app, bytes.clone()).await,
                Input::Ws(bytes) => {
                    run_ws(&app, bytes.clone(), matches!(case.want, Want::Close(_))).await
                }
            }
        })
        .await
        .unwrap_or_else(|_| Err("no answer within 5 s".into()));
        if !got.as_ref().is_ok_and(|answer| answer.is(case.want)) {
            wrong.push(format!(
                "{}: want {:?}, got {:?}",
                case.what, case.want, got
            ));
        }
    }
    assert!(
        wrong.is_empty(),
        "{} rows differ:\n{}",
        wrong.len(),
        wrong.join("\n")
    );

    // A flood of joins: 300 at once, all served, none lost.
    let joins = (0..300).map(|i| {
        let app = &app;
        async move {
            let (status, body) = app
                .post(
                    "/api/join",
                    None,
                    &serde_json::json!({ "name": format!("flood-{i}") }),
                )
                .await;
            (status.as_u16(), body)
        }
    });
    let results = futures_util::future::join_all(joins).await;
    let created = results.iter().filter(|(s, _)| *s == 201).count();
    assert_eq!(
        created,
        300,
        "{:?}",
        results.iter().find(|(s, _)| *s != 201)
    );

    // Still serving a normal player: join, click the target, see the win on a WebSocket.
    let ada = app.join("Ada").await;
    let mut socket = Downstream::open(&app, Kind::Websocket, Some(&ada.token), None, None).await;
    assert_eq!(socket.next().await["type"], "snapshot");
    let round = app.win_round(&ada).await;
    let won = socket
        .until(|v| v["type"] == "round_won" && v["round"] == round)
        .await;
    assert_eq!(won["winner"], ada.id, "{won}");
    assert_eq!(won["name"], "Ada");
    app.server.stop().await;
    assert!(
        started.elapsed() < Duration::from_secs(15),
        "took {:?}",
        started.elapsed()
    );
}
