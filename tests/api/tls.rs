//! HTTPS and WSS: the generated certificate, the protocol floor, ALPN, and every transport
//! over TLS 1.2 and TLS 1.3 with the certificate as the only trust anchor.

use std::io::{Read, Write};
use std::net::TcpStream;
use std::os::unix::fs::PermissionsExt;

use openssl::ssl::{SslConnector, SslMethod, SslVersion};
use openssl::x509::X509;

use crate::clients::{Downstream, ALL};
use crate::helpers::TestApp;

async fn tls_app() -> TestApp {
    TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.round_pause_ms = 50;
    })
    .await
}

fn server_cert(app: &TestApp) -> X509 {
    X509::from_pem(&std::fs::read(app.data_dir.path().join("cert.pem")).unwrap()).unwrap()
}

/// A connector that trusts only the server's certificate, pinned to one TLS version.
fn connector(app: &TestApp, version: SslVersion) -> SslConnector {
    let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
    b.cert_store_mut().add_cert(server_cert(app)).unwrap();
    b.set_min_proto_version(Some(version)).unwrap();
    b.set_max_proto_version(Some(version)).unwrap();
    b.build()
}

/// Runs blocking socket code off the test's single-threaded runtime, which the server needs.
async fn blocking<T: Send + 'static>(f: impl FnOnce() -> T + Send + 'static) -> T {
    actix_web::rt::task::spawn_blocking(f)
        .await
        .expect("blocking part finished")
}

fn https_port(app: &TestApp) -> u16 {
    app.server.https_addr.expect("TLS listener").port()
}

#[actix_web::test]
async fn the_generated_certificate_is_ecdsa_p256_for_the_loopback_names_and_kept_private() {
    let app = tls_app().await;
    let cert = server_cert(&app);
    let names: Vec<String> = cert
        .subject_alt_names()
        .unwrap()
        .iter()
        .map(|n| match (n.dnsname(), n.ipaddress()) {
            (Some(d), _) => d.to_string(),
            (_, Some(ip)) if ip.len() == 4 => {
                std::net::Ipv4Addr::new(ip[0], ip[1], ip[2], ip[3]).to_string()
            }
            (_, Some(ip)) => {
                std::net::Ipv6Addr::from(<[u8; 16]>::try_from(ip).unwrap()).to_string()
            }
            _ => String::new(),
        })
        .collect();
    assert_eq!(names, vec!["localhost", "127.0.0.1", "::1"]);
    let key = cert.public_key().unwrap();
    let ec = key.ec_key().expect("an EC key");
    assert_eq!(
        ec.group().curve_name(),
        Some(openssl::nid::Nid::X9_62_PRIME256V1)
    );
    let days = cert.not_before().diff(cert.not_after()).unwrap().days;
    assert!((1..=90).contains(&days), "valid for {days} days");
    let text = String::from_utf8(cert.to_text().unwrap()).unwrap();
    assert!(
        text.contains("TLS Web Server Authentication"),
        "serverAuth EKU"
    );
    let mode = std::fs::metadata(app.data_dir.path().join("key.pem"))
        .unwrap()
        .permissions()
        .mode();
    assert_eq!(mode & 0o777, 0o600, "the key is readable by its owner only");
    let fingerprint = app.server.cert.as_ref().unwrap().sha256.clone();
    app.server.stop().await;

    // A second start in the same data dir reuses the certificate.
    let dir = app.data_dir;
    let mut config = clickgame::config::Config::for_tests();
    config.no_tls = false;
    config.data_dir = dir.path().to_path_buf();
    let again = clickgame::server::start(config).await.unwrap();
    let info = again.cert.clone().unwrap();
    assert!(!info.generated);
    assert_eq!(info.sha256, fingerprint);
    again.stop().await;
}

#[actix_web::test]
async fn a_tls_1_1_client_is_refused_and_tls_1_2_and_1_3_are_accepted() {
    let app = tls_app().await;
    let port = https_port(&app);
    let (c12, c13) = (
        connector(&app, SslVersion::TLS1_2),
        connector(&app, SslVersion::TLS1_3),
    );
    blocking(move || {
        // OpenSSL 3 will not even offer TLS 1.1 at its default security level; lower it so the
        // refusal we observe is the server's.
        let mut old = SslConnector::builder(SslMethod::tls_client()).unwrap();
        old.set_cipher_list("DEFAULT@SECLEVEL=0").unwrap();
        old.set_min_proto_version(Some(SslVersion::TLS1_1)).unwrap();
        old.set_max_proto_version(Some(SslVersion::TLS1_1)).unwrap();
        old.set_verify(openssl::ssl::SslVerifyMode::NONE);
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let err = old
            .build()
            .connect("localhost", tcp)
            .expect_err("TLS 1.1 refused");
        let text = format!("{err:?}");
        assert!(
            text.contains("protocol version")
                || text.contains("unsupported protocol")
                || text.contains("alert"),
            "{text}"
        );

        for version in [SslVersion::TLS1_2, SslVersion::TLS1_3] {
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let mut tls = if version == SslVersion::TLS1_2 {
                &c12
            } else {
                &c13
            }
            .connect("localhost", tcp)
            .unwrap();
            assert_eq!(tls.ssl().version2(), Some(version));
            tls.write_all(
                b"GET /api/snapshot HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
            )
            .unwrap();
            let mut reply = String::new();
            let _ = tls.read_to_string(&mut reply);
            assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
            // No HSTS without --redirect-http: it would pin localhost to HTTPS for two years.
            assert!(
                !reply
                    .to_ascii_lowercase()
                    .contains("strict-transport-security"),
                "{reply}"
            );
        }
    })
    .await;
    app.server.stop().await;
}

#[actix_web::test]
async fn tls_1_2_offers_only_the_six_ecdhe_aead_suites() {
    let app = tls_app().await;
    let port = https_port(&app);
    blocking(move || {
        for (suite, ok) in [
            ("ECDHE-ECDSA-AES128-GCM-SHA256", true),
            ("ECDHE-ECDSA-CHACHA20-POLY1305", true),
            ("ECDHE-ECDSA-AES256-SHA384", false),
            ("ECDHE-ECDSA-AES128-SHA", false),
            ("AES128-GCM-SHA256", false),
        ] {
            let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
            b.set_max_proto_version(Some(SslVersion::TLS1_2)).unwrap();
            b.set_cipher_list(&format!("{suite}@SECLEVEL=0")).unwrap();
            b.set_verify(openssl::ssl::SslVerifyMode::NONE);
            let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
            let result = b.build().connect("localhost", tcp);
            assert_eq!(result.is_ok(), ok, "{suite}");
        }
    })
    .await;
    app.server.stop().await;
}

#[actix_web::test]
async fn h2_is_negotiated_by_alpn() {
    let app = tls_app().await;
    let (cert, port) = (server_cert(&app), https_port(&app));
    blocking(move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(cert.clone()).unwrap();
        b.set_alpn_protos(b"\x02h2\x08http/1.1").unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let tls = b.build().connect("localhost", tcp).unwrap();
        assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"h2"[..]));
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(cert.clone()).unwrap();
        b.set_alpn_protos(b"\x08http/1.1").unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let tls = b.build().connect("localhost", tcp).unwrap();
        assert_eq!(tls.ssl().selected_alpn_protocol(), Some(&b"http/1.1"[..]));
    })
    .await;
    app.server.stop().await;
}

#[actix_web::test]
async fn every_transport_plays_over_tls_1_2_and_tls_1_3_with_the_certificate_as_trust_anchor() {
    let app = tls_app().await;
    let base = format!("https://localhost:{}", https_port(&app));
    for (v, version) in [(12, SslVersion::TLS1_2), (13, SslVersion::TLS1_3)] {
        let client = awc::Client::builder()
            .connector(awc::Connector::new().openssl(connector(&app, version)))
            .finish();
        for kind in ALL {
            let mut res = client
                .post(format!("{base}/api/join"))
                .send_json(&serde_json::json!({"name": format!("{}{v}", kind.name())}))
                .await
                .unwrap();
            assert_eq!(res.status().as_u16(), 201);
            let cookie = res
                .headers()
                .get("set-cookie")
                .unwrap()
                .to_str()
                .unwrap()
                .to_string();
            assert!(cookie.contains("Secure"), "Secure over HTTPS: {cookie}");
            let joined: serde_json::Value = res.json().limit(1 << 20).await.unwrap();
            let token = joined["token"].as_str().unwrap().to_string();
            let mut stream =
                Downstream::open_via(client.clone(), &base, kind, Some(&token), None, None).await;
            let (round, x, y) = loop {
                let v = stream.next().await;
                let r = if v["type"] == "snapshot" {
                    v["round"].clone()
                } else {
                    v.clone()
                };
                if v["type"] == "round_started" {
                    break (
                        r["round"].as_u64().unwrap(),
                        r["x"].as_f64().unwrap(),
                        r["y"].as_f64().unwrap(),
                    );
                }
                if r.is_object() && r["winner"].is_null() && v["type"] == "snapshot" {
                    break (
                        r["number"].as_u64().unwrap(),
                        r["x"].as_f64().unwrap(),
                        r["y"].as_f64().unwrap(),
                    );
                }
            };
            let result = stream.click(round, x, y).await;
            assert_eq!(
                result["result"],
                "hit",
                "{kind:?} over TLS 1.{}: {result}",
                v % 10
            );
            let won = stream.until(|e| e["type"] == "round_won").await;
            assert_eq!(won["transport"], kind.name());
        }
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn redirect_http_sends_plain_requests_to_https() {
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.redirect_http = true;
    })
    .await;
    let client = awc::Client::builder().disable_redirects().finish();
    let res = client
        .get(app.url("/api/snapshot?x=1"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 308);
    let location = res.headers().get("location").unwrap().to_str().unwrap();
    assert_eq!(
        location,
        format!("https://127.0.0.1:{}/api/snapshot?x=1", https_port(&app))
    );
    // With the redirect, HTTPS responses pin the host to HTTPS (HSTS, two years).
    let port = https_port(&app);
    let cert = server_cert(&app);
    let reply = blocking(move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(cert).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = b.build().connect("localhost", tcp).unwrap();
        tls.write_all(
            b"GET /api/snapshot HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n",
        )
        .unwrap();
        let mut reply = String::new();
        let _ = tls.read_to_string(&mut reply);
        reply
    })
    .await;
    assert!(
        reply
            .to_ascii_lowercase()
            .contains("strict-transport-security: max-age=63072000"),
        "{reply}"
    );
    app.server.stop().await;
}

/// The `Location` of a plain-HTTP request carrying `headers` (`Host` among them).
async fn redirect_location(app: &TestApp, headers: &str) -> String {
    let reply = crate::path_spellings::raw(
        app.server.http_addr,
        format!("GET /api/snapshot?x=1 HTTP/1.1\r\n{headers}Connection: close\r\n\r\n"),
    )
    .await;
    assert_eq!(reply.status, 308, "{headers}");
    reply
        .head
        .lines()
        .find_map(|l| l.strip_prefix("location: "))
        .unwrap_or_else(|| panic!("a Location in {}", reply.head))
        .to_string()
}

#[actix_web::test]
async fn redirect_http_names_only_configured_hosts_never_the_requests_headers() {
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.redirect_http = true;
        c.allowed_origins = vec!["https://Lecture.example:9443".into()];
    })
    .await;
    let port = https_port(&app);
    let http = app.server.http_addr.port();
    let to = |host: &str| format!("https://{host}:{port}/api/snapshot?x=1");
    // The request's host chooses among the certificate's names and the allowed origins' hosts.
    for (host, want) in [
        (format!("127.0.0.1:{http}"), "127.0.0.1"),
        (format!("localhost:{http}"), "localhost"),
        (format!("[::1]:{http}"), "[::1]"),
        ("LECTURE.example".to_string(), "lecture.example"),
    ] {
        assert_eq!(
            redirect_location(&app, &format!("Host: {host}\r\n")).await,
            to(want),
            "Host: {host}"
        );
    }
    // Anything else gets the first configured name; forwarding headers are not read at all.
    for headers in [
        "Host: evil.example\r\n".to_string(),
        "Host: evil.example:443\r\n".to_string(),
        "Host: localhost.evil.example\r\n".to_string(),
        format!("Host: 127.0.0.1:{http}\r\nX-Forwarded-Host: evil.example\r\n"),
        format!("Host: 127.0.0.1:{http}\r\nForwarded: host=evil.example;proto=https\r\n"),
        "Host: evil.example\r\nX-Forwarded-Host: localhost\r\n".to_string(),
    ] {
        let location = redirect_location(&app, &headers).await;
        assert!(!location.contains("evil"), "{headers:?} → {location}");
        assert!(
            location == to("localhost") || location == to("127.0.0.1"),
            "{headers:?} → {location}"
        );
    }
    assert_eq!(
        redirect_location(&app, "Host: evil.example\r\n").await,
        to("localhost"),
        "the certificate's first name"
    );
    app.server.stop().await;
}
