//! TLS you can see (issue 13): `GET /api/tls` against what our own TLS client negotiated,
//! `--tls-min/--tls-max`, `--tls-keylog`, and the `--eavesdrop` relays — what a passive
//! attacker reads through the plain relay and through the TLS relay, and what tamper mode does.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;
use std::time::Duration;

use clickgame::tls::TlsVersion;
use openssl::ssl::{HandshakeError, SslConnector, SslMethod, SslStream, SslVersion};
use openssl::x509::{X509VerifyResult, X509};
use serde_json::{json, Value};

use crate::clients::{Downstream, Kind};
use crate::helpers::{assert_error, parse, TestApp};

fn server_cert(app: &TestApp) -> X509 {
    X509::from_pem(&std::fs::read(app.data_dir.path().join("cert.pem")).unwrap()).unwrap()
}

/// A client trusting only the server's certificate, offering TLS `min..=max`.
fn connector(app: &TestApp, min: SslVersion, max: SslVersion) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(server_cert(app)).unwrap();
    b.set_min_proto_version(Some(min)).unwrap();
    b.set_max_proto_version(Some(max)).unwrap();
    b.set_alpn_protos(b"\x08http/1.1").unwrap();
    b.build()
}

async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(f)
        .await
        .expect("blocking part finished")
}

/// One HTTP/1.1 request on an established TLS stream; returns the parsed JSON body.
fn get_json(tls: &mut SslStream<TcpStream>, path: &str) -> Value {
    write!(
        tls,
        "GET {path} HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    let _ = tls.read_to_string(&mut reply);
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body = reply.split_once("\r\n\r\n").unwrap().1;
    serde_json::from_str(body).unwrap_or_else(|e| panic!("{e}: {body}"))
}

fn sha256_colon_hex(der: &[u8]) -> String {
    openssl::sha::sha256(der)
        .iter()
        .map(|b| format!("{b:02X}"))
        .collect::<Vec<_>>()
        .join(":")
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// What the client saw of its own handshake, next to what the server said about it.
struct Negotiated {
    protocol: String,
    cipher: String,
    cert_sha256: String,
    server_said: Value,
}

fn ask_api_tls(port: u16, connector: SslConnector) -> Negotiated {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let mut tls = connector.connect("localhost", tcp).unwrap();
    let protocol = tls.ssl().version_str().to_string();
    let cipher = tls.ssl().current_cipher().unwrap().name().to_string();
    let cert_sha256 = sha256_colon_hex(&tls.ssl().peer_certificate().unwrap().to_der().unwrap());
    let server_said = get_json(&mut tls, "/api/tls");
    Negotiated {
        protocol,
        cipher,
        cert_sha256,
        server_said,
    }
}

#[actix_web::test]
async fn api_tls_over_https_agrees_with_what_our_own_client_negotiated() {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    let port = app.server.https_addr.unwrap().port();
    let key_pem = std::fs::read(app.data_dir.path().join("key.pem")).unwrap();
    let secret = openssl::pkey::PKey::private_key_from_pem(&key_pem)
        .unwrap()
        .ec_key()
        .unwrap()
        .private_key()
        .to_vec();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let c = connector(&app, version, version);
        let n = blocking(move || ask_api_tls(port, c)).await;
        let t = &n.server_said;
        assert_eq!(t["tls"], true, "{t}");
        assert_eq!(t["protocol"], n.protocol.as_str(), "{t}");
        assert_eq!(t["cipher"], n.cipher.as_str(), "{t}");
        assert_eq!(t["certificate"]["sha256"], n.cert_sha256.as_str(), "{t}");
        assert_eq!(t["alpn"], "http/1.1");
        assert_eq!(t["sni"], "localhost");
        assert_eq!(t["resumed"], false);
        assert_eq!(
            t["group"], "X25519",
            "OpenSSL clients offer X25519 first: {t}"
        );
        let parts = &t["cipher_parts"];
        assert_eq!(parts["key_exchange"], "ECDHE", "{t}");
        assert_eq!(parts["authentication"], "ECDSA", "{t}");
        assert_eq!(parts["aead"], true, "{t}");
        let cert = &t["certificate"];
        assert_eq!(cert["subject"], "CN=localhost, O=clickgame (self-signed)");
        assert_eq!(cert["self_signed"], true);
        assert_eq!(
            cert["public_key"],
            json!({"type": "EC", "curve": "P-256", "bits": 256})
        );
        assert_eq!(cert["signature_algorithm"], "ecdsa-with-SHA256");
        assert_eq!(
            cert["san"],
            json!(["DNS:localhost", "IP:127.0.0.1", "IP:::1"])
        );
        assert_eq!(cert["chain"], json!([]));
        for date in ["not_before", "not_after"] {
            let d = cert[date].as_str().unwrap();
            assert!(
                d.len() == 20 && d.ends_with('Z') && &d[10..11] == "T",
                "{d}"
            );
        }
        // No key material: not the private key, in any spelling.
        let body = t.to_string().to_ascii_lowercase();
        assert!(!body.contains(&hex(&secret)), "the private key leaked");
        assert!(
            !body.contains("private") && !body.contains("master"),
            "{body}"
        );
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn api_tls_over_plain_http_says_nothing_is_encrypted() {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    let (status, body) = app.get("/api/tls").await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(body, json!({"tls": false}));
    app.server.stop().await;
}

#[actix_web::test]
async fn api_tls_over_http2_describes_the_h2_connection() {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(server_cert(&app)).unwrap();
    b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
    let client = awc::Client::builder()
        .connector(awc::Connector::new().openssl(b.build()))
        .finish();
    let port = app.server.https_addr.unwrap().port();
    let mut res = client
        .get(format!("https://localhost:{port}/api/tls"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.version(), awc::http::Version::HTTP_2);
    let body: Value = res.json().await.unwrap();
    assert_eq!(body["alpn"], "h2", "{body}");
    assert_eq!(body["protocol"], "TLSv1.3", "{body}");
    app.server.stop().await;
}

/// How a full-verification handshake under `name` ended: `Ok(())`, or the verify result the
/// client's OpenSSL recorded (`X509_V_ERR_*`) with its text and the handshake error.
fn verify_as(
    port: u16,
    connector: &SslConnector,
    name: &str,
    check_name: bool,
) -> Result<(), (i32, String, String)> {
    let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
    let config = connector.configure().unwrap().verify_hostname(check_name);
    match config.connect(name, tcp) {
        Ok(tls) => {
            assert_eq!(tls.ssl().verify_result(), X509VerifyResult::OK);
            Ok(())
        }
        Err(HandshakeError::Failure(mid)) => {
            let result = mid.ssl().verify_result();
            Err((
                result.as_raw(),
                result.error_string().to_string(),
                mid.error().to_string(),
            ))
        }
        Err(other) => panic!("{name}: the handshake did not even start: {other}"),
    }
}

/// The slide's check, item by item, as a browser does it: the chain must end at a trusted
/// anchor, and the name the client asked for must be one of the certificate's SANs (RFC 9525;
/// the CN is not consulted once SANs exist). The `wrong.example` control with the name check
/// switched off proves that the refusal is the name alone: chain, dates and signature pass.
#[actix_web::test]
async fn the_name_check_accepts_the_certificates_sans_and_refuses_another_name_with_hostname_mismatch(
) {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    let port = app.server.https_addr.unwrap().port();
    let trusting = connector(&app, SslVersion::TLS1_2, SslVersion::TLS1_3);
    let untrusting = SslConnector::builder(SslMethod::tls_client())
        .unwrap()
        .build();
    blocking(move || {
        // Signed by a trusted CA? Without the certificate as a trust anchor: no.
        let (code, text, _) = verify_as(port, &untrusting, "localhost", true).unwrap_err();
        assert_eq!(
            code,
            openssl_sys::X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT,
            "{text}"
        );

        // Trusted, and the name is in the SANs (DNS:localhost, IP:127.0.0.1): accepted.
        for name in ["localhost", "127.0.0.1"] {
            verify_as(port, &trusting, name, true).unwrap_or_else(|e| panic!("{name}: {e:?}"));
        }

        // Trusted, but the name is not in the SANs: refused, and the reason is the name.
        for name in ["wrong.example", "www.localhost"] {
            let (code, text, error) = verify_as(port, &trusting, name, true).unwrap_err();
            assert_eq!(
                code,
                openssl_sys::X509_V_ERR_HOSTNAME_MISMATCH,
                "{name}: {text}"
            );
            assert_eq!(text, "hostname mismatch");
            assert!(
                error.contains("certificate verify failed"),
                "{name}: {error}"
            );
        }
        verify_as(port, &trusting, "wrong.example", false)
            .expect("with the name check off, nothing else fails");
    })
    .await;
    app.server.stop().await;
}

#[actix_web::test]
async fn tls_max_1_2_negotiates_tls_1_2_and_refuses_a_1_3_only_client() {
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.tls_max = TlsVersion::Tls12;
    })
    .await;
    let port = app.server.https_addr.unwrap().port();
    let any = connector(&app, SslVersion::TLS1_2, SslVersion::TLS1_3);
    let only13 = connector(&app, SslVersion::TLS1_3, SslVersion::TLS1_3);
    let n = blocking(move || {
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        assert!(only13.connect("localhost", tcp).is_err());
        ask_api_tls(port, any)
    })
    .await;
    assert_eq!(n.protocol, "TLSv1.2");
    assert_eq!(n.server_said["protocol"], "TLSv1.2");
    assert_eq!(n.server_said["cipher"], n.cipher.as_str());
    app.server.stop().await;

    // A floor above the ceiling leaves no version: the server says so instead of starting.
    let mut config = clickgame::config::Config::for_tests();
    let dir = tempfile::tempdir().unwrap();
    config.no_tls = false;
    config.data_dir = dir.path().to_path_buf();
    config.tls_min = TlsVersion::Tls13;
    config.tls_max = TlsVersion::Tls12;
    let err = clickgame::server::start(config)
        .await
        .err()
        .expect("refused");
    assert!(err.to_string().contains("--tls-min"), "{err}");
}

#[actix_web::test]
async fn tls_keylog_appends_nss_key_log_lines_to_a_0600_file() {
    let dir = tempfile::tempdir().unwrap();
    let log = dir.path().join("keys.log");
    let path = log.clone();
    let app = TestApp::spawn_with(move |c| {
        c.no_tls = false;
        c.tls_keylog = Some(path);
    })
    .await;
    let port = app.server.https_addr.unwrap().port();
    let mut randoms = Vec::new();
    for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
        let c = connector(&app, version, version);
        randoms.push(
            blocking(move || {
                let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
                let mut tls = c.connect("localhost", tcp).unwrap();
                let mut random = [0u8; 32];
                tls.ssl().client_random(&mut random);
                get_json(&mut tls, "/api/snapshot");
                hex(&random)
            })
            .await,
        );
    }
    let mode = std::fs::metadata(&log).unwrap().permissions().mode();
    assert_eq!(mode & 0o777, 0o600);
    let text = std::fs::read_to_string(&log).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    // TLS 1.2: one CLIENT_RANDOM line (the master secret); TLS 1.3: the traffic secrets.
    assert!(
        lines
            .iter()
            .any(|l| l.starts_with(&format!("CLIENT_RANDOM {} ", randoms[0]))),
        "{text}"
    );
    for label in [
        "CLIENT_HANDSHAKE_TRAFFIC_SECRET",
        "SERVER_HANDSHAKE_TRAFFIC_SECRET",
        "CLIENT_TRAFFIC_SECRET_0",
        "SERVER_TRAFFIC_SECRET_0",
    ] {
        assert!(
            lines
                .iter()
                .any(|l| l.starts_with(&format!("{label} {} ", randoms[1]))),
            "{label} in {text}"
        );
    }
    for l in &lines {
        let fields: Vec<&str> = l.split(' ').collect();
        assert_eq!(
            fields.len(),
            3,
            "NSS format is `LABEL client_random secret`: {l}"
        );
        assert!(fields[2].len() >= 64 && fields[2].bytes().all(|b| b.is_ascii_hexdigit()));
    }
    app.server.stop().await;
}

// ---- the eavesdropper --------------------------------------------------------------------

async fn eavesdrop_app(tls: bool) -> TestApp {
    TestApp::spawn_with(move |c| {
        c.no_tls = !tls;
        c.eavesdrop = true;
    })
    .await
}

/// The whole feed, as the lecturer's page would read it.
async fn feed(app: &TestApp) -> Vec<Value> {
    let mut res = app
        .client
        .get(app.url("/api/admin/eavesdrop?since=0"))
        .bearer_auth(&app.server.admin_token)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let body = parse(&res.body().limit(16 << 20).await.unwrap());
    assert!(body["last_seq"].is_u64(), "{body}");
    body["records"].as_array().unwrap().clone()
}

fn relay_url(app: &TestApp) -> String {
    format!("http://{}", app.server.eavesdrop_addr.unwrap())
}

fn tls_client(app: &TestApp, max: SslVersion) -> awc::Client {
    awc::Client::builder()
        .connector(awc::Connector::new().openssl(connector(app, SslVersion::TLS1_2, max)))
        .timeout(Duration::from_secs(10))
        .finish()
}

fn tls_relay_url(app: &TestApp) -> String {
    format!(
        "https://localhost:{}",
        app.server.eavesdrop_tls_addr.unwrap().port()
    )
}

#[actix_web::test]
async fn without_eavesdrop_the_endpoints_answer_404_and_no_relay_listens() {
    let app = TestApp::spawn_with(|c| c.no_tls = false).await;
    assert!(app.server.eavesdrop_addr.is_none() && app.server.eavesdrop_tls_addr.is_none());
    let token = app.server.admin_token.clone();
    let mut res = app
        .client
        .get(app.url("/api/admin/eavesdrop?since=0"))
        .bearer_auth(&token)
        .send()
        .await
        .unwrap();
    assert_error(
        res.status(),
        &parse(&res.body().await.unwrap()),
        404,
        "not_found",
    );
    let mut res = app
        .client
        .post(app.url("/api/admin/eavesdrop"))
        .bearer_auth(&token)
        .send_json(&json!({"tamper": true}))
        .await
        .unwrap();
    assert_error(
        res.status(),
        &parse(&res.body().await.unwrap()),
        404,
        "not_found",
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn the_eavesdrop_endpoints_need_the_admin_token_and_well_formed_input() {
    let app = eavesdrop_app(false).await;
    let ada = app.join("Ada").await;
    for token in [None, Some(ada.token.as_str()), Some("wrong")] {
        let mut req = app.client.get(app.url("/api/admin/eavesdrop"));
        if let Some(t) = token {
            req = req.bearer_auth(t);
        }
        let mut res = req.send().await.unwrap();
        assert_error(
            res.status(),
            &parse(&res.body().await.unwrap()),
            403,
            "admin_required",
        );
    }
    let admin = app.server.admin_token.clone();
    let mut res = app
        .client
        .get(app.url("/api/admin/eavesdrop?since=-1"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    assert_error(
        res.status(),
        &parse(&res.body().await.unwrap()),
        400,
        "bad_query",
    );
    for body in [
        json!({"tamper": "yes"}),
        json!({"tamper": true, "x": 1}),
        json!({}),
    ] {
        let mut res = app
            .client
            .post(app.url("/api/admin/eavesdrop"))
            .bearer_auth(&admin)
            .send_json(&body)
            .await
            .unwrap();
        assert_error(
            res.status(),
            &parse(&res.body().await.unwrap()),
            400,
            "bad_json",
        );
    }
    let mut res = app
        .client
        .post(app.url("/api/admin/eavesdrop"))
        .bearer_auth(&admin)
        .send_json(&json!({"tamper": true}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    assert_eq!(parse(&res.body().await.unwrap()), json!({"tamper": true}));
    app.server.stop().await;
}

#[actix_web::test]
async fn exactly_the_relay_origins_join_the_allow_list() {
    let app = eavesdrop_app(true).await;
    let plain = app.server.eavesdrop_addr.unwrap().port();
    let tls = app.server.eavesdrop_tls_addr.unwrap().port();
    for (origin, allowed) in [
        (format!("http://localhost:{plain}"), true),
        (format!("http://127.0.0.1:{plain}"), true),
        (format!("https://localhost:{tls}"), true),
        (format!("https://localhost:{plain}"), false),
        (format!("http://localhost:{tls}"), false),
        ("http://evil.example".to_string(), false),
    ] {
        let res = app
            .client
            .get(app.url("/api/snapshot"))
            .insert_header(("Origin", origin.as_str()))
            .send()
            .await
            .unwrap();
        assert_eq!(res.status().as_u16() == 200, allowed, "{origin}");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn a_join_through_the_plain_relay_shows_the_name_the_token_and_the_frames_in_clear() {
    let app = eavesdrop_app(false).await;
    let relay = relay_url(&app);
    let name = "Quokka Zyxwvut";
    let mut res = app
        .client
        .post(format!("{relay}/api/join"))
        .send_json(&json!({ "name": name }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let joined: Value = res.json().limit(1 << 20).await.unwrap();
    let token = joined["token"].as_str().unwrap().to_string();
    // A WebSocket and an SSE stream through the relay too.
    let mut ws = Downstream::open_via(
        app.client.clone(),
        &relay,
        Kind::Websocket,
        Some(&token),
        None,
        None,
    )
    .await;
    assert_eq!(ws.next().await["type"], "snapshot");
    let mut sse =
        Downstream::open_via(app.client.clone(), &relay, Kind::Sse, None, None, None).await;
    assert_eq!(sse.next().await["type"], "snapshot");

    let records = feed(&app).await;
    assert!(records.iter().all(|r| r["relay"] == "plain"));
    let join = records
        .iter()
        .find(|r| r["kind"] == "http_request" && r["text"].as_str().unwrap().contains(name))
        .unwrap_or_else(|| panic!("the name in clear: {records:#?}"));
    assert_eq!(join["dir"], "client_to_server");
    assert!(join["text"]
        .as_str()
        .unwrap()
        .starts_with("POST /api/join HTTP/1.1"));
    assert_eq!(join["tampered"], false);
    let answer = records
        .iter()
        .find(|r| r["kind"] == "http_response" && r["text"].as_str().unwrap().contains(&token))
        .expect("the session token in clear");
    assert_eq!(answer["dir"], "server_to_client");
    assert!(
        records.iter().any(|r| r["kind"] == "ws_frame"
            && r["dir"] == "client_to_server"
            && r["text"].as_str().unwrap().contains("\"type\":\"resume\"")),
        "the client's masked resume frame, unmasked"
    );
    assert!(
        records.iter().any(|r| r["kind"] == "ws_frame"
            && r["dir"] == "server_to_client"
            && r["text"].as_str().unwrap().contains(name)),
        "the snapshot frame with the name"
    );
    assert!(records.iter().any(
        |r| r["kind"] == "sse_event" && r["text"].as_str().unwrap().contains("event: snapshot")
    ));
    for r in &records {
        assert!(
            r["seq"].is_u64() && r["conn"].is_u64() && r["bytes"].is_u64(),
            "{r}"
        );
        assert!(r["hex"].as_str().unwrap().len() <= 96, "{r}");
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn through_the_tls_relay_the_feed_has_a_client_hello_with_sni_and_only_ciphertext() {
    let app = eavesdrop_app(true).await;
    let name = "Quokka Secretname";
    let client = tls_client(&app, SslVersion::TLS1_3);
    let mut res = client
        .post(format!("{}/api/join", tls_relay_url(&app)))
        .send_json(&json!({ "name": name }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let token = res.json::<Value>().await.unwrap()["token"]
        .as_str()
        .unwrap()
        .to_string();

    let records = feed(&app).await;
    assert!(!records.is_empty());
    assert!(
        records
            .iter()
            .all(|r| r["relay"] == "tls" && r["kind"] == "tls_record"),
        "{records:#?}"
    );
    let hello = records
        .iter()
        .find(|r| {
            r["tls"]["handshake_type"]
                .as_str()
                .is_some_and(|t| t.contains("ClientHello"))
        })
        .expect("a ClientHello");
    assert_eq!(hello["dir"], "client_to_server");
    assert_eq!(hello["tls"]["content_type"], "handshake");
    assert_eq!(hello["tls"]["sni"], "localhost");
    let server_hello = records
        .iter()
        .find(|r| r["tls"]["handshake_type"] == "ServerHello")
        .expect("a ServerHello");
    assert_eq!(server_hello["tls"]["negotiated"], "TLS 1.3");
    let app_data: Vec<&Value> = records
        .iter()
        .filter(|r| r["tls"]["content_type"] == "application_data")
        .collect();
    assert!(app_data.iter().any(|r| r["dir"] == "client_to_server"));
    assert!(app_data.iter().any(|r| r["dir"] == "server_to_client"));
    for r in &app_data {
        assert_eq!(
            r["tls"]["record_version"], "TLS 1.2",
            "TLS 1.3 records say 1.2: {r}"
        );
    }
    // Neither the name nor the token, in text or in hex, anywhere in what the attacker saw.
    let everything = serde_json::to_string(&records).unwrap().to_lowercase();
    for secret in [name, token.as_str()] {
        assert!(
            !everything.contains(&secret.to_lowercase()),
            "{secret} leaked"
        );
        assert!(
            !everything.contains(&hex(secret.as_bytes())),
            "{secret} leaked as hex"
        );
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn with_tls_1_2_the_certificate_crosses_the_relay_in_clear() {
    let app = eavesdrop_app(true).await;
    let client = tls_client(&app, SslVersion::TLS1_2);
    let res = client
        .get(format!("{}/api/snapshot", tls_relay_url(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let records = feed(&app).await;
    let cert = records
        .iter()
        .find(|r| {
            r["tls"]["handshake_type"]
                .as_str()
                .is_some_and(|t| t.contains("Certificate"))
        })
        .unwrap_or_else(|| panic!("a Certificate in clear: {records:#?}"));
    assert_eq!(cert["dir"], "server_to_client");
    let text = cert["text"].as_str().unwrap();
    assert!(text.contains("CN=localhost"), "{text}");
    assert!(
        text.contains(&app.server.cert.as_ref().unwrap().sha256),
        "{text}"
    );
    assert_eq!(cert["tls"]["negotiated"], "TLS 1.2");
    // TLS 1.2 also shows the ephemeral key's group in clear.
    assert!(records.iter().any(|r| r["text"]
        .as_str()
        .is_some_and(|t| t.contains("ServerKeyExchange: ephemeral ECDHE key on X25519"))));
    app.server.stop().await;
}

#[actix_web::test]
async fn with_tamper_on_the_plain_join_arrives_changed_and_the_tls_request_fails() {
    let app = eavesdrop_app(true).await;
    let admin = app.server.admin_token.clone();
    let res = app
        .client
        .post(app.url("/api/admin/eavesdrop"))
        .bearer_auth(&admin)
        .send_json(&json!({"tamper": true}))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);

    // Plain: the server gets Mallory's name, the client is told it joined; nobody notices.
    let mut res = app
        .client
        .post(format!("{}/api/join", relay_url(&app)))
        .send_json(&json!({ "name": "Ada" }))
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 201);
    let joined: Value = res.json().limit(1 << 20).await.unwrap();
    let id = joined["player_id"].as_u64().unwrap();
    let (_, snap) = app.get("/api/snapshot").await;
    let names: Vec<&str> = snap["players"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, vec!["Mallory-Ada"]);
    assert_eq!(snap["players"][0]["id"], id);

    // TLS: one flipped bit, and the connection dies.
    let client = tls_client(&app, SslVersion::TLS1_3);
    let failed = client
        .get(format!("{}/api/snapshot", tls_relay_url(&app)))
        .send()
        .await;
    assert!(
        failed.is_err(),
        "a tampered TLS connection must fail: {failed:?}"
    );

    let records = feed(&app).await;
    let tampered: Vec<&Value> = records.iter().filter(|r| r["tampered"] == true).collect();
    assert!(
        tampered.iter().any(|r| r["relay"] == "plain"
            && r["kind"] == "http_request"
            && r["text"].as_str().unwrap().contains("Mallory-Ada")),
        "{tampered:#?}"
    );
    assert!(
        tampered.iter().any(|r| r["relay"] == "tls"
            && r["tls"]["content_type"] == "application_data"
            && r["dir"] == "client_to_server"),
        "{tampered:#?}"
    );

    // Tamper off: the same request through the same relay works again.
    app.client
        .post(app.url("/api/admin/eavesdrop"))
        .bearer_auth(&admin)
        .send_json(&json!({"tamper": false}))
        .await
        .unwrap();
    let res = tls_client(&app, SslVersion::TLS1_3)
        .get(format!("{}/api/snapshot", tls_relay_url(&app)))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    app.server.stop().await;
}

#[actix_web::test]
async fn a_relay_closes_cleanly_when_the_upstream_refuses_and_caps_connections_per_address() {
    use clickgame::eavesdrop::{relay, Eavesdrop, RelayKind};
    use clickgame::security::ConnLimiter;

    // Upstream refuses: a port that was free a moment ago.
    let dead = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let task = relay::spawn(
        listener,
        RelayKind::Plain,
        dead,
        Eavesdrop::default(),
        ConnLimiter::new(0),
        Duration::from_secs(10),
    )
    .unwrap();
    let n = blocking(move || {
        let mut s = TcpStream::connect(addr).unwrap();
        s.set_read_timeout(Some(Duration::from_secs(10))).unwrap();
        let mut b = [0u8; 16];
        s.read(&mut b).expect("a clean close, not a timeout")
    })
    .await;
    assert_eq!(n, 0);
    task.abort();

    // One connection per address: the second is closed at once, the first stays up.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let task = relay::spawn(
        listener,
        RelayKind::Plain,
        upstream.local_addr().unwrap(),
        Eavesdrop::default(),
        ConnLimiter::new(1),
        Duration::from_secs(10),
    )
    .unwrap();
    let (second, first) = blocking(move || {
        let mut first = TcpStream::connect(addr).unwrap();
        let _held = upstream.accept().unwrap();
        let mut second = TcpStream::connect(addr).unwrap();
        second
            .set_read_timeout(Some(Duration::from_secs(10)))
            .unwrap();
        let mut b = [0u8; 1];
        let second = second.read(&mut b).expect("closed, not timed out");
        first
            .set_read_timeout(Some(Duration::from_millis(300)))
            .unwrap();
        let first = first.read(&mut b).map_err(|e| e.kind());
        (second, first)
    })
    .await;
    assert_eq!(second, 0);
    assert!(
        matches!(
            first,
            Err(std::io::ErrorKind::WouldBlock | std::io::ErrorKind::TimedOut)
        ),
        "the first connection is still open: {first:?}"
    );
    task.abort();
}

/// A record of `payload` bytes of handshake messages, as the TLS record layer frames it.
fn handshake_record(payload: &[u8]) -> Vec<u8> {
    let mut rec = vec![22, 3, 1];
    rec.extend(u16::try_from(payload.len()).unwrap().to_be_bytes());
    rec.extend(payload);
    rec
}

/// A ClientHello record whose server name is `sni` (and nothing else a server needs).
fn client_hello_naming(sni: &str) -> Vec<u8> {
    let name = sni.as_bytes();
    let mut ext = Vec::new();
    ext.extend(0u16.to_be_bytes());
    ext.extend(u16::try_from(name.len() + 5).unwrap().to_be_bytes());
    ext.extend(u16::try_from(name.len() + 3).unwrap().to_be_bytes());
    ext.push(0);
    ext.extend(u16::try_from(name.len()).unwrap().to_be_bytes());
    ext.extend(name);
    let mut body = vec![3, 3];
    body.extend([7u8; 32]);
    body.push(0);
    body.extend([0, 2, 0x13, 0x01, 1, 0]);
    body.extend(u16::try_from(ext.len()).unwrap().to_be_bytes());
    body.extend(ext);
    let mut hello = vec![1];
    hello.extend(&u32::try_from(body.len()).unwrap().to_be_bytes()[1..]);
    hello.extend(body);
    handshake_record(&hello)
}

#[actix_web::test]
async fn records_packed_with_tiny_handshake_messages_or_a_huge_server_name_stay_small_in_the_feed()
{
    // The attack: each 18 KiB record of empty 4-byte handshake messages became one feed record
    // naming every message (124 KB), a ClientHello's server name was kept whatever its length,
    // and 400 such connections took the server from 22 MB to 148 MB and one feed answer to
    // 37 MB. Every record is now a few KiB, whatever the client sends.
    let app = eavesdrop_app(true).await;
    let relay = app.server.eavesdrop_tls_addr.unwrap();
    blocking(move || {
        let packed = handshake_record(&[0xee, 0, 0, 0].repeat(18_432 / 4));
        for _ in 0..4 {
            let mut s = TcpStream::connect(relay).unwrap();
            // The server gives up on this stream at its first record; what reached the relay
            // before that is enough.
            let _ = s.write_all(&packed.repeat(4));
        }
        let mut s = TcpStream::connect(relay).unwrap();
        let _ = s.write_all(&client_hello_naming(&"a".repeat(16_000)));
        s.set_read_timeout(Some(Duration::from_secs(5))).unwrap();
        let _ = s.read(&mut [0u8; 64]);
    })
    .await;

    let mut records = Vec::new();
    for _ in 0..50 {
        records = feed(&app).await;
        let long_name = records.iter().any(|r| {
            r["tls"]["sni"]
                .as_str()
                .is_some_and(|s| s.starts_with("aaaa"))
        });
        let packed = records.iter().any(|r| {
            r["tls"]["handshake_type"]
                .as_str()
                .is_some_and(|t| t.starts_with("unknown handshake message"))
        });
        if long_name && packed {
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let packed: Vec<&Value> = records
        .iter()
        .filter(|r| r["tls"]["handshake_type"].is_string())
        .collect();
    assert!(packed.len() >= 2, "{records:#?}");
    for r in &records {
        let size = serde_json::to_string(r).unwrap().len();
        assert!(size <= 4096, "a feed record of {size} bytes");
    }
    let sni = records
        .iter()
        .find_map(|r| r["tls"]["sni"].as_str())
        .expect("the ClientHello's server name");
    assert!(
        sni.starts_with("aaaa") && sni.ends_with(" …") && sni.len() < 300,
        "{sni}"
    );
    app.server.stop().await;
}

#[actix_web::test]
async fn a_relay_client_that_never_reads_is_cut_off_after_the_send_timeout_and_frees_its_place() {
    use clickgame::eavesdrop::{relay, Eavesdrop, RelayKind};
    use clickgame::security::ConnLimiter;
    use std::sync::mpsc;

    // The attack: pipelined requests for a big file through the relay, never read. The server
    // gave up on the relay after its own send timeout, but the relay waited for the client
    // forever and kept its place (194 such connections held a full relay and 1 GB of socket
    // buffers for minutes). Here an upstream that writes without end stands in for the server,
    // and the relay takes one connection per address: while the stalled client holds it, a
    // second client is closed at accept; once the send timeout has cut the first off, the
    // second gets through to the upstream.
    let upstream = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let upstream_addr = upstream.local_addr().unwrap();
    let (accepted_tx, accepted) = mpsc::channel();
    std::thread::spawn(move || {
        for conn in upstream.incoming() {
            let Ok(mut conn) = conn else { return };
            if accepted_tx.send(()).is_err() {
                return;
            }
            std::thread::spawn(move || {
                let chunk = vec![b'x'; 64 * 1024];
                // Blocks once nobody reads; fails once the relay lets go.
                while conn.write_all(&chunk).is_ok() {}
            });
        }
    });
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let addr = listener.local_addr().unwrap();
    let task = relay::spawn(
        listener,
        RelayKind::Plain,
        upstream_addr,
        Eavesdrop::default(),
        ConnLimiter::new(1),
        Duration::from_millis(300),
    )
    .unwrap();
    let got_through = blocking(move || {
        let stalled = TcpStream::connect(addr).unwrap();
        accepted
            .recv_timeout(Duration::from_secs(5))
            .expect("the relay connects the first client");
        let start = std::time::Instant::now();
        while start.elapsed() < Duration::from_secs(8) {
            let mut probe = TcpStream::connect(addr).unwrap();
            if accepted.recv_timeout(Duration::from_millis(200)).is_ok() {
                let waited = start.elapsed();
                drop(probe);
                // Reset, not closed: what the client never read is gone with the connection,
                // not left for the kernel to deliver (the orphan would hold its buffers).
                let mut stalled = stalled;
                stalled
                    .set_read_timeout(Some(Duration::from_secs(5)))
                    .unwrap();
                let mut buf = vec![0u8; 64 * 1024];
                let end = loop {
                    match stalled.read(&mut buf) {
                        Ok(0) => break Ok(0),
                        Ok(_) => continue,
                        Err(e) => break Err(e.kind()),
                    }
                };
                assert_eq!(end, Err(std::io::ErrorKind::ConnectionReset));
                return Some(waited);
            }
            let _ = probe.write_all(b"x");
        }
        drop(stalled);
        None
    })
    .await;
    let waited = got_through.expect("the stalled client still holds the relay's place after 8 s");
    assert!(waited < Duration::from_secs(5), "{waited:?}");
    task.abort();
}
