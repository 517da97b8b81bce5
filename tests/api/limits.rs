//! Connection limits and deadlines (issue 9, items 2, 4 and 5): what one client may hold, for
//! how long, and that everyone else is still served meanwhile. Raw sockets where the test must
//! control exactly what is sent (and from which loopback address: all of 127.0.0.0/8 is ours).

use std::net::SocketAddr;
use std::time::{Duration, Instant};

use actix_web::rt::time::{sleep, timeout};
use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::X509;
use serde_json::Value;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};

use crate::helpers::{parse, TestApp};

/// A TCP connection to `server` from the loopback address `127.0.0.<last>`.
async fn connect_from(last: u8, server: SocketAddr) -> TcpStream {
    let socket = TcpSocket::new_v4().unwrap();
    socket
        .bind(SocketAddr::from(([127, 0, 0, last], 0)))
        .unwrap();
    socket.connect(server).await.unwrap()
}

/// Reads until the end of the response head; returns the head and any body bytes after it.
/// `None` when the server closed (or reset) the connection before a head arrived.
async fn read_head(stream: &mut TcpStream) -> Option<(String, Vec<u8>)> {
    let mut bytes = Vec::new();
    let mut buf = [0u8; 4096];
    loop {
        if let Some(end) = bytes.windows(4).position(|w| w == b"\r\n\r\n") {
            let head = String::from_utf8_lossy(&bytes[..end]).into_owned();
            return Some((head, bytes[end + 4..].to_vec()));
        }
        match timeout(Duration::from_secs(10), stream.read(&mut buf)).await {
            Ok(Ok(0)) | Ok(Err(_)) => return None,
            Ok(Ok(n)) => bytes.extend_from_slice(&buf[..n]),
            Err(_) => panic!("no response head within 10 s: {bytes:?}"),
        }
    }
}

/// A whole response with a `Content-Length` body: the head and the parsed body.
async fn read_response(stream: &mut TcpStream) -> Option<(String, Value)> {
    let (head, mut body) = read_head(stream).await?;
    let len: usize = head
        .lines()
        .find_map(|l| {
            let (k, v) = l.split_once(':')?;
            k.eq_ignore_ascii_case("content-length")
                .then(|| v.trim().parse().ok())?
        })
        .unwrap_or(0);
    let mut buf = [0u8; 4096];
    while body.len() < len {
        match timeout(Duration::from_secs(5), stream.read(&mut buf)).await {
            Ok(Ok(n)) if n > 0 => body.extend_from_slice(&buf[..n]),
            _ => break,
        }
    }
    Some((head, parse(&body)))
}

/// Everything until the server closes the connection.
async fn read_to_close(stream: &mut TcpStream, within: Duration) -> Vec<u8> {
    let mut bytes = Vec::new();
    let _ = timeout(within, stream.read_to_end(&mut bytes))
        .await
        .expect("the server closed the connection");
    bytes
}

/// `GET path` on a fresh connection from `127.0.0.<last>`: the status line's code and body.
async fn get_from(last: u8, server: SocketAddr, path: &str) -> Option<(u16, Value)> {
    let mut s = connect_from(last, server).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\nConnection: close\r\n\r\n");
    s.write_all(req.as_bytes()).await.ok()?;
    let (head, mut body) = read_head(&mut s).await?;
    let mut rest = Vec::new();
    let _ = timeout(Duration::from_secs(5), s.read_to_end(&mut rest)).await;
    body.extend(rest);
    Some((status_of(&head), parse(&body)))
}

fn status_of(head: &str) -> u16 {
    head.split(' ')
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(0)
}

/// A connection from `127.0.0.<last>` that the server has admitted: one request answered on
/// it, kept alive. (A connect returns once the kernel has the connection, before the server's
/// accept loop has counted it.)
async fn admitted_from(last: u8, server: SocketAddr) -> TcpStream {
    let mut s = connect_from(last, server).await;
    let req = format!("GET /api/time HTTP/1.1\r\nHost: {server}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s).await.expect("admitted");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    s
}

/// A request whose `Content-Length` promises 100 bytes of which only 4 ever come.
fn slow_join(server: SocketAddr) -> String {
    format!(
        "POST /api/join HTTP/1.1\r\nHost: {server}\r\nContent-Type: application/json\r\n\
         Content-Length: 100\r\n\r\n{{\"na"
    )
}

/// A socket the server closed without a response: EOF or a reset, and no HTTP bytes.
async fn assert_closed_at_accept(stream: &mut TcpStream) {
    let _ = stream
        .write_all(b"GET /api/time HTTP/1.1\r\nHost: x\r\n\r\n")
        .await;
    let mut bytes = Vec::new();
    let read = timeout(Duration::from_secs(5), stream.read_to_end(&mut bytes))
        .await
        .expect("closed at once, not left waiting");
    assert!(
        bytes.is_empty(),
        "no response for a refused socket ({read:?}): {:?}",
        String::from_utf8_lossy(&bytes)
    );
}

#[actix_web::test]
async fn a_slow_body_gets_408_with_a_json_error_and_its_socket_is_freed() {
    let app = TestApp::spawn_with(|c| {
        c.max_sockets_per_ip = 2;
        c.body_timeout_ms = 300;
    })
    .await;
    let server = app.server.http_addr;
    let mut slow = Vec::new();
    for _ in 0..2 {
        let mut s = admitted_from(1, server).await;
        s.write_all(slow_join(server).as_bytes()).await.unwrap();
        slow.push(s);
    }
    // The address holds its two sockets: a third is closed at accept.
    assert_closed_at_accept(&mut connect_from(1, server).await).await;
    for s in &mut slow {
        let bytes = read_to_close(s, Duration::from_secs(5)).await;
        let text = String::from_utf8_lossy(&bytes).into_owned();
        let (head, body) = text.split_once("\r\n\r\n").expect("a response");
        assert!(head.starts_with("HTTP/1.1 408"), "{head}");
        assert!(
            head.to_ascii_lowercase().contains("connection: close"),
            "{head}"
        );
        let body: Value = serde_json::from_str(body).expect("a JSON body");
        assert_eq!(body["error"], "request_timeout", "{body}");
        assert!(body["detail"]
            .as_str()
            .is_some_and(|d| d.contains("300 ms")));
    }
    // Both sockets are closed and counted out: the address is served again.
    let (status, _) = get_from(1, server, "/api/time").await.expect("served");
    assert_eq!(status, 200);
    let players = app.get("/api/snapshot").await.1["players"].clone();
    assert_eq!(players, serde_json::json!([]), "no half-read join");
    app.server.stop().await;
}

#[actix_web::test]
async fn a_later_request_head_that_never_completes_closes_its_connection() {
    let app = TestApp::spawn_with(|c| {
        c.body_timeout_ms = 300;
        c.longpoll_timeout_ms = 800;
        c.sse_heartbeat_ms = 100;
        c.round_pause_ms = 60_000;
    })
    .await;
    let server = app.server.http_addr;
    // actix bounds the first head on a connection; this is the second.
    let mut s = admitted_from(1, server).await;
    s.write_all(b"GET /api/time HTTP/1.1\r\nHost: x\r\n")
        .await
        .unwrap();
    let sent = Instant::now();
    let bytes = read_to_close(&mut s, Duration::from_secs(5)).await;
    assert!(bytes.is_empty(), "{:?}", String::from_utf8_lossy(&bytes));
    assert!(
        sent.elapsed() >= Duration::from_millis(200),
        "{:?}",
        sent.elapsed()
    );
    // The same after a request with a body.
    let mut s = connect_from(1, server).await;
    let body = r#"{"name":"Ada"}"#;
    let join = format!(
        "POST /api/join HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n\
         Content-Length: {}\r\n\r\n{body}",
        body.len()
    );
    s.write_all(join.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s).await.expect("joined");
    assert!(head.starts_with("HTTP/1.1 201"), "{head}");
    s.write_all(b"GET /api/time HTTP/1.1\r\n").await.unwrap();
    assert!(read_to_close(&mut s, Duration::from_secs(5))
        .await
        .is_empty());
    // A request in progress is not a slow head: a long poll held, then an SSE stream open,
    // for longer than the deadline, as the second and third requests on a connection.
    let mut s = admitted_from(1, server).await;
    let seq = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let poll = format!("GET /api/longpoll?since={seq} HTTP/1.1\r\nHost: x\r\n\r\n");
    s.write_all(poll.as_bytes()).await.unwrap();
    let (head, _) = read_response(&mut s).await.expect("the long poll ends");
    assert!(head.starts_with("HTTP/1.1 204"), "{head}");
    s.write_all(b"GET /api/sse HTTP/1.1\r\nHost: x\r\n\r\n")
        .await
        .unwrap();
    let (head, _) = read_head(&mut s).await.expect("a stream");
    assert!(head.starts_with("HTTP/1.1 200"), "{head}");
    let mut comments = 0;
    let until = Instant::now() + Duration::from_millis(1_000);
    let mut buf = [0u8; 1024];
    while Instant::now() < until {
        let n = timeout(Duration::from_millis(500), s.read(&mut buf))
            .await
            .expect("the stream goes on")
            .unwrap();
        assert!(n > 0, "the stream was closed");
        comments += buf[..n]
            .windows(12)
            .filter(|w| w == b": keep-alive")
            .count();
    }
    assert!(comments >= 3, "{comments} keep-alive comments");
    app.server.stop().await;
}

#[actix_web::test]
async fn sockets_over_the_per_address_cap_are_closed_at_accept_while_another_address_is_served() {
    let app = TestApp::spawn_with(|c| c.max_sockets_per_ip = 3).await;
    let server = app.server.http_addr;
    // Three sockets held open, as a flood of unfinished requests would hold them.
    let mut held = Vec::new();
    for _ in 0..3 {
        held.push(admitted_from(1, server).await);
    }
    assert_closed_at_accept(&mut connect_from(1, server).await).await;
    let (status, body) = get_from(2, server, "/api/time")
        .await
        .expect("another address is served");
    assert_eq!(status, 200, "{body}");
    // A socket given back is a place for its address again.
    drop(held.pop());
    let mut served = false;
    for _ in 0..50 {
        if let Some((200, _)) = get_from(1, server, "/api/time").await {
            served = true;
            break;
        }
        sleep(Duration::from_millis(20)).await;
    }
    assert!(served, "the address got its place back");
    app.server.stop().await;
}

/// Opens `GET path` from `127.0.0.<last>` and returns the socket and the response head, as
/// soon as the head is in (a stream's body never ends).
async fn open_stream(last: u8, server: SocketAddr, path: &str) -> (TcpStream, String) {
    let mut s = connect_from(last, server).await;
    let req = format!("GET {path} HTTP/1.1\r\nHost: {server}\r\n\r\n");
    s.write_all(req.as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut s).await.expect("a response");
    (s, head)
}

#[actix_web::test]
async fn streams_over_the_overall_cap_get_503_while_a_normal_get_is_answered() {
    // 16 sockets: a reserve of 2, so at most 14 long-lived streams.
    let app = TestApp::spawn_with(|c| {
        c.max_conns = 16;
        c.max_conns_per_ip = 0;
        c.max_sockets_per_ip = 0;
    })
    .await;
    let server = app.server.http_addr;
    // A flood from seven addresses, two streams each: no address is over any per-address cap.
    let mut streams = Vec::new();
    for last in 2..9 {
        for _ in 0..2 {
            let (s, head) = open_stream(last, server, "/api/sse").await;
            assert!(head.starts_with("HTTP/1.1 200"), "{head}");
            streams.push(s);
        }
    }
    let mut refused = connect_from(9, server).await;
    let req = format!("GET /api/sse HTTP/1.1\r\nHost: {server}\r\n\r\n");
    refused.write_all(req.as_bytes()).await.unwrap();
    let (head, body) = read_response(&mut refused).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 503"), "{head}");
    assert!(
        head.to_ascii_lowercase().contains("retry-after: 5"),
        "{head}"
    );
    assert_eq!(body["error"], "server_busy", "{body}");
    // Short requests still find a socket: a newcomer, and a flooding address too. Each GET
    // closes its socket; wait until the server has counted it out (it learns of the close a
    // moment after the client), so the next GET meets the same 15 open sockets.
    drop(refused);
    wait_for_sockets(&app, 14).await;
    for last in [10, 2] {
        let (status, body) = get_from(last, server, "/api/time")
            .await
            .expect("a normal GET is answered");
        assert_eq!(status, 200, "from 127.0.0.{last}: {body}");
        wait_for_sockets(&app, 14).await;
    }
    drop(streams);
    app.server.stop().await;
}

/// Waits (up to 5 s) until the server counts exactly `n` open sockets.
async fn wait_for_sockets(app: &TestApp, n: u32) {
    let deadline = Instant::now() + Duration::from_secs(5);
    while app.server.sockets.open() != n {
        assert!(
            Instant::now() < deadline,
            "the server still counts {} sockets, expected {n}",
            app.server.sockets.open()
        );
        sleep(Duration::from_millis(5)).await;
    }
}

/// The opening handshake of a game WebSocket, as raw bytes.
fn ws_handshake(server: SocketAddr) -> String {
    format!(
        "GET /api/ws HTTP/1.1\r\nHost: {server}\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n\
         Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\
         Sec-WebSocket-Protocol: clickgame.v1\r\n\r\n"
    )
}

#[actix_web::test]
async fn a_silent_websocket_is_closed_when_the_silence_timeout_ends_not_at_the_next_ping() {
    let app = TestApp::spawn_with(|c| {
        c.ws_ping_interval_ms = 5_000;
        c.ws_timeout_ms = 300;
    })
    .await;
    let server = app.server.http_addr;
    let mut s = connect_from(1, server).await;
    s.write_all(ws_handshake(server).as_bytes()).await.unwrap();
    let (head, mut frames) = read_head(&mut s).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    let upgraded = Instant::now();
    frames.extend(read_to_close(&mut s, Duration::from_secs(10)).await);
    let silent_for = upgraded.elapsed();
    // Unmasked server frame: 0x88 = FIN + close, then the code 1008 (0x03F0).
    let close = frames
        .windows(2)
        .position(|w| w[0] == 0x88)
        .expect("a close frame");
    assert_eq!(&frames[close + 2..close + 4], &[0x03, 0xF0], "close 1008");
    // The timeout is 300 ms; the first ping tick would only come at 5 s.
    assert!(
        silent_for >= Duration::from_millis(200) && silent_for < Duration::from_millis(2_500),
        "closed after {silent_for:?}"
    );
    app.server.stop().await;
}

/// A masked client ping frame carrying the largest control payload (125 bytes): each one asks
/// the server for a 127-byte pong.
fn ping_frame() -> Vec<u8> {
    let mut f = vec![0x89, 0x80 | 125, 1, 2, 3, 4];
    f.extend((0..125u8).map(|i| b'p' ^ [1, 2, 3, 4][usize::from(i % 4)]));
    f
}

#[actix_web::test]
async fn a_client_that_floods_pings_and_never_reads_is_disconnected_after_the_send_timeout() {
    let app = TestApp::spawn_with(|c| c.ws_send_timeout_ms = 300).await;
    let server = app.server.http_addr;
    let socket = TcpSocket::new_v4().unwrap();
    socket.set_recv_buffer_size(2048).unwrap();
    let mut s = socket.connect(server).await.unwrap();
    s.write_all(ws_handshake(server).as_bytes()).await.unwrap();
    let (head, _) = read_head(&mut s).await.expect("a response");
    assert!(head.starts_with("HTTP/1.1 101"), "{head}");
    // From here on the client never reads. It writes whole frames only (a write that cannot
    // proceed writes nothing), so the server never sees a broken frame.
    let batch: Vec<u8> = (0..64).flat_map(|_| ping_frame()).collect();
    let mut pending = Vec::new();
    let flooding = Instant::now();
    let ended = loop {
        assert!(
            flooding.elapsed() < Duration::from_secs(30),
            "the socket is still open after 30 s of pings"
        );
        if pending.is_empty() {
            pending.clone_from(&batch);
        }
        match timeout(Duration::from_millis(200), s.write(&pending)).await {
            Ok(Ok(n)) => drop(pending.drain(..n)),
            Ok(Err(err)) => break err,
            Err(_) => {} // the server's receive window is full; keep pushing
        }
    };
    assert!(
        matches!(
            ended.kind(),
            std::io::ErrorKind::ConnectionReset | std::io::ErrorKind::BrokenPipe
        ),
        "{ended:?}"
    );
    eprintln!("ping flood: disconnected after {:?}", flooding.elapsed());
    app.server.stop().await;
}

/// Waits until the server holds `n` parked long polls.
async fn parked_long_polls(app: &TestApp, n: u64) {
    for _ in 0..250 {
        let (_, stats) = app.get("/api/stats").await;
        if stats["transports"]["longpoll"]["open_connections"].as_u64() == Some(n) {
            return;
        }
        sleep(Duration::from_millis(20)).await;
    }
    panic!("{n} long polls were not parked within 5 s");
}

/// Opens four long-lived requests (two parked long polls, two SSE streams) over HTTP/1.1
/// from 127.0.0.1, checks they hold the address's four slots, and returns their sockets.
async fn four_streams_over_http1(app: &TestApp) -> Vec<TcpStream> {
    let server = app.server.http_addr;
    let seq = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let mut held = Vec::new();
    for _ in 0..2 {
        let mut s = connect_from(1, server).await;
        let req = format!("GET /api/longpoll?since={seq} HTTP/1.1\r\nHost: {server}\r\n\r\n");
        s.write_all(req.as_bytes()).await.unwrap();
        held.push(s);
        let (s, head) = open_stream(1, server, "/api/sse").await;
        assert!(head.starts_with("HTTP/1.1 200"), "{head}");
        held.push(s);
    }
    parked_long_polls(app, 2).await;
    let (_, head) = open_stream(1, server, "/api/sse").await;
    assert!(
        head.starts_with("HTTP/1.1 429"),
        "all four slots held: {head}"
    );
    held
}

#[actix_web::test]
async fn aborted_long_polls_and_sse_streams_free_their_slots_at_once_over_http1() {
    // Default hold (25 s) and SSE heartbeat (15 s): neither may be what frees the slots.
    let app = TestApp::spawn_with(|c| {
        c.max_conns_per_ip = 4;
        c.round_pause_ms = 60_000;
    })
    .await;
    let server = app.server.http_addr;
    let held = four_streams_over_http1(&app).await;
    sleep(Duration::from_millis(200)).await;
    drop(held);
    let aborted = Instant::now();
    let mut reopened = Vec::new();
    while reopened.len() < 4 {
        assert!(
            aborted.elapsed() < Duration::from_secs(1),
            "slots still held {:?} after the clients went away ({} reopened)",
            aborted.elapsed(),
            reopened.len()
        );
        let (s, head) = open_stream(1, server, "/api/sse").await;
        if head.starts_with("HTTP/1.1 200") {
            reopened.push(s);
        } else {
            sleep(Duration::from_millis(20)).await;
        }
    }
    eprintln!(
        "HTTP/1.1: four slots back {:?} after the abort",
        aborted.elapsed()
    );
    app.server.stop().await;
}

/// An HTTP/2 client (ALPN `h2`) that trusts only the server's certificate.
fn h2_client(app: &TestApp) -> awc::Client {
    let cert =
        X509::from_pem(&std::fs::read(app.data_dir.path().join("cert.pem")).unwrap()).unwrap();
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(cert).unwrap();
    b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
    awc::Client::builder()
        .connector(awc::Connector::new().openssl(b.build()))
        .timeout(Duration::from_secs(60))
        .finish()
}

#[actix_web::test]
async fn aborted_long_polls_and_sse_streams_free_their_slots_within_5_s_over_http2() {
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.max_conns_per_ip = 4;
        c.round_pause_ms = 60_000;
    })
    .await;
    let base = format!(
        "https://localhost:{}",
        app.server.https_addr.unwrap().port()
    );
    let client = h2_client(&app);
    let seq = app.get("/api/snapshot").await.1["seq"].as_u64().unwrap();
    let mut polls = Vec::new();
    let mut streams = Vec::new();
    for _ in 0..2 {
        let req = client.get(format!("{base}/api/longpoll?since={seq}"));
        polls.push(actix_web::rt::spawn(async move {
            req.send().await.map(|r| r.status())
        }));
        let res = client.get(format!("{base}/api/sse")).send().await.unwrap();
        assert_eq!(res.version(), awc::http::Version::HTTP_2, "over HTTP/2");
        assert_eq!(res.status().as_u16(), 200);
        streams.push(res);
    }
    parked_long_polls(&app, 2).await;
    sleep(Duration::from_millis(200)).await;
    let res = client.get(format!("{base}/api/sse")).send().await.unwrap();
    assert_eq!(res.status().as_u16(), 429, "all four slots held");
    // The client gives up on all four: the streams are reset, the connection stays.
    for poll in &polls {
        poll.abort();
    }
    drop(streams);
    let aborted = Instant::now();
    let mut reopened = Vec::new();
    while reopened.len() < 4 {
        assert!(
            aborted.elapsed() < Duration::from_secs(5),
            "slots still held {:?} after the clients went away ({} reopened)",
            aborted.elapsed(),
            reopened.len()
        );
        let res = client.get(format!("{base}/api/sse")).send().await.unwrap();
        if res.status().as_u16() == 200 {
            reopened.push(res);
        } else {
            sleep(Duration::from_millis(100)).await;
        }
    }
    eprintln!(
        "HTTP/2: four slots back {:?} after the abort",
        aborted.elapsed()
    );
    drop(reopened);
    app.server.stop().await;
}
