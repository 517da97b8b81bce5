//! The classroom (`--lan`): pages served under the laptop's LAN names may use the API, the
//! certificate names them, `/api/join-info` and the QR code say where to join, and the local CA
//! signs a certificate that verifies against it alone. Every request goes to loopback: the LAN
//! names are the documentation addresses 192.0.2.10 and 2001:db8::10, given with `--lan-addr`,
//! and only ever appear in `Host` and `Origin` headers.

use std::io::{Read, Write};
use std::net::TcpStream;

use openssl::ssl::{SslConnector, SslMethod};
use openssl::x509::X509;
use serde_json::Value;

use crate::helpers::{parse, TestApp};
use crate::path_spellings::raw;

const V4: &str = "192.0.2.10";
const V6: &str = "2001:db8::10";

fn lan(c: &mut clickgame::config::Config) {
    c.lan = true;
    c.lan_addrs = [V4, V6]
        .iter()
        .map(|a| a.parse().expect("a LAN address"))
        .collect();
}

/// A raw `POST /api/join` to the server's loopback address, as a page loaded from `origin`
/// (with `Host: host`) would send it.
async fn join_as_page(app: &TestApp, host: &str, origin: &str, name: &str) -> (u16, Value) {
    let body = format!(r#"{{"name":"{name}"}}"#);
    let reply = raw(
        app.server.http_addr,
        format!(
            "POST /api/join HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\n\
             Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{body}",
            body.len()
        ),
    )
    .await;
    (reply.status, reply.body)
}

/// A raw WebSocket handshake to the loopback address, as a page from `origin` would send it.
async fn upgrade_as_page(app: &TestApp, host: &str, origin: &str) -> u16 {
    raw(
        app.server.http_addr,
        format!(
            "GET /api/ws HTTP/1.1\r\nHost: {host}\r\nOrigin: {origin}\r\nUpgrade: websocket\r\n\
             Connection: Upgrade\r\nSec-WebSocket-Version: 13\r\n\
             Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Protocol: clickgame.v1\r\n\r\n"
        ),
    )
    .await
    .status
}

#[actix_web::test]
async fn a_page_served_under_a_lan_address_may_join_and_open_a_websocket_and_a_foreign_one_may_not()
{
    let app = TestApp::spawn_with(|c| {
        lan(c);
        c.no_tls = false;
    })
    .await;
    let port = app.server.http_addr.port();
    let https = app.server.https_addr.expect("TLS listener").port();
    for (i, (host, origin)) in [
        (format!("{V4}:{port}"), format!("http://{V4}:{port}")),
        (format!("[{V6}]:{port}"), format!("http://[{V6}]:{port}")),
        // A page from the HTTPS listener under the LAN name, calling the plain one.
        (format!("{V4}:{port}"), format!("https://{V4}:{https}")),
        (format!("[{V6}]:{port}"), format!("https://[{V6}]:{https}")),
    ]
    .into_iter()
    .enumerate()
    {
        let (status, body) = join_as_page(&app, &host, &origin, &format!("Student{i}")).await;
        assert_eq!(status, 201, "{origin}: {body}");
        assert_eq!(upgrade_as_page(&app, &host, &origin).await, 101, "{origin}");
    }
    for foreign in [
        format!("http://192.0.2.11:{port}"),
        format!("http://{V4}:{}", port.wrapping_add(1)),
        format!("https://{V4}:{port}"),
        format!("http://[2001:db8::11]:{port}"),
        "http://evil.example".to_string(),
    ] {
        let (status, body) = join_as_page(&app, &format!("{V4}:{port}"), &foreign, "Mallory").await;
        assert_eq!(status, 403, "{foreign}: {body}");
        assert_eq!(body["error"], "origin_not_allowed");
        assert_eq!(
            upgrade_as_page(&app, &format!("{V4}:{port}"), &foreign).await,
            403,
            "{foreign}"
        );
    }
    app.server.stop().await;
}

#[actix_web::test]
async fn without_lan_only_loopback_origins_are_allowed_and_join_info_names_loopback() {
    let app = TestApp::spawn().await;
    let port = app.server.http_addr.port();
    let (status, _) = join_as_page(
        &app,
        &format!("{V4}:{port}"),
        &format!("http://{V4}:{port}"),
        "Ada",
    )
    .await;
    assert_eq!(status, 403);
    let (status, _) = join_as_page(
        &app,
        &format!("localhost:{port}"),
        &format!("http://localhost:{port}"),
        "Ada",
    )
    .await;
    assert_eq!(status, 201);
    let (status, info) = app.get("/api/join-info").await;
    assert_eq!(status.as_u16(), 200);
    assert_eq!(
        info["urls"],
        serde_json::json!([
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/")
        ])
    );
    assert_eq!(info["lan"], false);
    assert_eq!(info["public"], false);
    assert_eq!(info["https_urls"], serde_json::json!([]));
    app.server.stop().await;
}

#[actix_web::test]
async fn join_info_lists_the_lan_urls_and_the_qr_code_is_an_svg_image_under_the_csp() {
    let app = TestApp::spawn_with(|c| {
        lan(c);
        c.no_tls = false;
    })
    .await;
    let port = app.server.http_addr.port();
    let https = app.server.https_addr.expect("TLS listener").port();
    let (status, info) = app.get("/api/join-info").await;
    assert_eq!(status.as_u16(), 200, "{info}");
    assert_eq!(
        info["urls"],
        serde_json::json!([
            format!("http://{V4}:{port}/"),
            format!("http://[{V6}]:{port}/")
        ])
    );
    assert_eq!(
        info["https_urls"],
        serde_json::json!([
            format!("https://{V4}:{https}/"),
            format!("https://[{V6}]:{https}/")
        ])
    );
    assert_eq!(info["qr"], "/api/join-qr.svg");
    assert_eq!(info["lan"], true);
    let fingerprint = app.server.cert.as_ref().unwrap().sha256.clone();
    assert_eq!(info["cert_sha256"], fingerprint.as_str());

    let mut res = app
        .client
        .get(app.url("/api/join-qr.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let header = |name: &str| {
        res.headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert_eq!(header("content-type"), "image/svg+xml");
    assert_eq!(header("x-content-type-options"), "nosniff");
    // An <img> of the page's own origin is what the CSP's `img-src 'self'` allows.
    assert!(
        header("content-security-policy").contains("img-src 'self'"),
        "{}",
        header("content-security-policy")
    );
    let svg = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert!(svg.starts_with("<?xml") && svg.contains("<svg"), "{svg}");
    assert_eq!(
        svg,
        clickgame::classroom::qr_svg(&format!("http://{V4}:{port}/")),
        "the QR code carries the first plain-HTTP URL"
    );
    // A foreign page cannot read where to join either (it is API, behind the Origin check).
    let res = app
        .client
        .get(app.url("/api/join-info"))
        .insert_header(("Origin", "http://evil.example"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 403);
    let mut res = app
        .client
        .post(app.url("/api/join-qr.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 405);
    assert_eq!(
        parse(&res.body().await.unwrap())["error"],
        "method_not_allowed"
    );
    app.server.stop().await;
}

fn san_of(cert: &X509) -> Vec<String> {
    cert.subject_alt_names()
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
        .collect()
}

/// Connects to the HTTPS listener (on loopback) trusting only `anchor`, checking the
/// certificate for the IP `name` as a browser at `https://<name>:port` would; returns the
/// served certificate chain and the answer to `GET path`.
async fn fetch_as(app: &TestApp, anchor: X509, name: &str, path: &str) -> (Vec<X509>, String) {
    let port = app.server.https_addr.expect("TLS listener").port();
    let (name, path) = (name.to_string(), path.to_string());
    actix_web::rt::task::spawn_blocking(move || {
        let mut b = SslConnector::builder(SslMethod::tls_client()).unwrap();
        b.cert_store_mut().add_cert(anchor).unwrap();
        let connector = b.build();
        let mut config = connector.configure().unwrap();
        config.param_mut().set_ip(name.parse().unwrap()).unwrap();
        let tcp = TcpStream::connect(("127.0.0.1", port)).unwrap();
        let mut tls = config
            .verify_hostname(false)
            .use_server_name_indication(false)
            .connect("unused", tcp)
            .unwrap_or_else(|e| panic!("{name}: {e}"));
        let chain: Vec<X509> = tls
            .ssl()
            .peer_cert_chain()
            .map(|c| c.iter().map(|x| x.to_owned()).collect())
            .unwrap_or_default();
        let host = if name.contains(':') {
            format!("[{name}]")
        } else {
            name
        };
        tls.write_all(
            format!("GET {path} HTTP/1.1\r\nHost: {host}:{port}\r\nConnection: close\r\n\r\n")
                .as_bytes(),
        )
        .unwrap();
        let mut reply = String::new();
        let _ = tls.read_to_string(&mut reply);
        (chain, reply)
    })
    .await
    .unwrap()
}

#[actix_web::test]
async fn the_served_certificate_names_the_lan_addresses_and_is_made_anew_when_they_change() {
    let app = TestApp::spawn_with(|c| {
        lan(c);
        c.no_tls = false;
    })
    .await;
    let info = app.server.cert.clone().unwrap();
    assert!(info.generated);
    let cert = X509::from_pem(&std::fs::read(&info.cert_path).unwrap()).unwrap();
    assert_eq!(
        san_of(&cert),
        vec!["localhost", "127.0.0.1", "::1", V4, V6],
        "the certificate names the LAN addresses"
    );
    // A browser at https://192.0.2.10:port (or the IPv6 one) accepts it by name.
    for name in [V4, V6] {
        let (chain, reply) = fetch_as(&app, cert.clone(), name, "/api/snapshot").await;
        assert_eq!(san_of(&chain[0]), san_of(&cert));
        assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    }
    let dir = app.data_dir.path().to_path_buf();
    app.server.stop().await;

    let start = |addrs: Vec<&str>| {
        let mut config = clickgame::config::Config::for_tests();
        config.data_dir = dir.clone();
        config.no_tls = false;
        config.log = "warn".into();
        config.lan = !addrs.is_empty();
        config.lan_addrs = addrs.iter().map(|a| a.parse().unwrap()).collect();
        clickgame::server::start(config)
    };
    // The same names again: the same certificate.
    let same = start(vec![V4, V6]).await.unwrap();
    let kept = same.cert.clone().unwrap();
    assert!(!kept.generated);
    assert_eq!(kept.sha256, info.sha256);
    same.stop().await;
    // Another network: a new certificate, for the new names only.
    let moved = start(vec!["198.51.100.7"]).await.unwrap();
    let renewed = moved.cert.clone().unwrap();
    assert!(renewed.generated);
    assert_ne!(renewed.sha256, info.sha256);
    assert_eq!(
        renewed.names,
        vec!["localhost", "127.0.0.1", "::1", "198.51.100.7"]
    );
    moved.stop().await;
    // Without --lan: loopback only, as before the classroom existed.
    let plain = start(vec![]).await.unwrap();
    assert_eq!(
        plain.cert.clone().unwrap().names,
        vec!["localhost", "127.0.0.1", "::1"]
    );
    plain.stop().await;
}

#[actix_web::test]
async fn with_a_local_ca_the_certificate_is_signed_by_it_and_verifies_against_it_alone() {
    // `make ca` first (the library call behind `clickgame --init-ca`), then the classroom.
    let dir = tempfile::tempdir().unwrap();
    let names = clickgame::lan::LanNames::given(&[V4.parse().unwrap(), V6.parse().unwrap()]);
    let (ca, new) = clickgame::ca::load_or_create(
        dir.path(),
        &clickgame::ca::Scope::for_names(&names),
        &names.san_names(),
    )
    .unwrap();
    assert!(new);
    let mut config = clickgame::config::Config::for_tests();
    config.data_dir = dir.path().to_path_buf();
    config.no_tls = false;
    config.log = "warn".into();
    lan(&mut config);
    let server = clickgame::server::start(config).await.unwrap();
    let info = server.cert.clone().unwrap();
    assert_eq!(
        info.ca.as_ref().map(|c| c.sha256.clone()),
        Some(ca.sha256.clone())
    );
    let app = TestApp {
        base: format!("http://{}", server.http_addr),
        server,
        client: awc::Client::default(),
        data_dir: dir,
    };
    // Trusting only the CA: the handshake under the LAN name succeeds, and /api/tls on that
    // connection shows a CA-issued leaf with the CA in its chain.
    let (chain, reply) = fetch_as(&app, ca.cert.clone(), V4, "/api/tls").await;
    assert_eq!(chain.len(), 2, "leaf, then the CA");
    assert_eq!(chain[1].to_der().unwrap(), ca.cert.to_der().unwrap());
    assert!(reply.starts_with("HTTP/1.1 200"), "{reply}");
    let body: Value = serde_json::from_str(reply.split_once("\r\n\r\n").unwrap().1).unwrap();
    let cert = &body["certificate"];
    assert_eq!(cert["self_signed"], false, "{body}");
    assert_eq!(cert["chain"].as_array().map(Vec::len), Some(1), "{body}");
    assert!(
        cert["issuer"]
            .as_str()
            .unwrap()
            .contains("clickgame local CA"),
        "{body}"
    );
    app.server.stop().await;
}

/// `openssl verify`, the command a student would run: the leaf `make ca` signed verifies
/// against `ca.pem` for the LAN address, and a leaf the same CA signs for a name outside its
/// constraints does not.
#[actix_web::test]
async fn the_openssl_command_verifies_the_leaf_against_the_ca_and_refuses_one_outside_the_constraints(
) {
    let dir = tempfile::tempdir().unwrap();
    let names = clickgame::lan::LanNames::given(&[V4.parse().unwrap()]);
    let (ca, _) = clickgame::ca::load_or_create(
        dir.path(),
        &clickgame::ca::Scope::for_names(&names),
        &names.san_names(),
    )
    .unwrap();
    let extra = vec![V4.to_string()];
    let (_, _, info) = clickgame::tls::load_or_create_for(None, None, dir.path(), &extra).unwrap();
    assert!(info.ca.is_some(), "the local CA signed the leaf");
    let verify = |leaf: &std::path::Path, ip: &str| {
        std::process::Command::new("openssl")
            .arg("verify")
            .arg("-CAfile")
            .arg(dir.path().join("ca.pem"))
            .args(["-purpose", "sslserver", "-verify_ip", ip])
            .arg(leaf)
            .output()
            .expect("the openssl command (Debian package openssl; scripts/deps.sh installs it)")
    };
    let ok = verify(&info.cert_path, V4);
    assert!(
        ok.status.success(),
        "{}",
        String::from_utf8_lossy(&ok.stdout)
    );
    let outside = dir.path().join("outside.pem");
    let (leaf, _) = clickgame::tls::generate_leaf(&["bank.example".into()], Some(&ca)).unwrap();
    std::fs::write(&outside, leaf.to_pem().unwrap()).unwrap();
    let refused = verify(&outside, "127.0.0.1");
    assert!(!refused.status.success());
    let said = String::from_utf8_lossy(&refused.stdout).to_string()
        + &String::from_utf8_lossy(&refused.stderr);
    assert!(said.contains("permitted subtree violation"), "{said}");
}

#[actix_web::test]
async fn a_lan_listener_on_every_interface_is_dual_stack_and_answers_on_ipv4_loopback() {
    let app = TestApp::spawn_with(|c| {
        lan(c);
        c.http_addr = "[::]:0".parse().unwrap();
    })
    .await;
    let port = app.server.http_addr.port();
    let mut res = app
        .client
        .get(format!("http://127.0.0.1:{port}/api/join-info"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let info = parse(&res.body().await.unwrap());
    assert_eq!(info["urls"][0], format!("http://{V4}:{port}/"));
    app.server.stop().await;
}

#[actix_web::test]
async fn a_public_url_comes_first_in_join_info_and_the_qr_code_and_its_origin_may_use_the_api() {
    // A single server behind a port forward (or a reverse proxy, or the cluster's entry point):
    // the room must be sent to the forwarded address, not to the port this process listens on.
    let app = TestApp::spawn_with(|c| {
        c.no_tls = false;
        c.public_urls = ["http://192.0.2.99:80/", "https://class.example/"]
            .iter()
            .map(|u| u.parse().expect("a public URL"))
            .collect();
    })
    .await;
    let port = app.server.http_addr.port();
    let https = app.server.https_addr.expect("TLS listener").port();
    let (status, info) = app.get("/api/join-info").await;
    assert_eq!(status.as_u16(), 200, "{info}");
    assert_eq!(
        info["urls"],
        serde_json::json!([
            "http://192.0.2.99/",
            "https://class.example/",
            format!("http://127.0.0.1:{port}/"),
            format!("http://localhost:{port}/")
        ])
    );
    assert_eq!(
        info["https_urls"],
        serde_json::json!([
            "https://class.example/",
            format!("https://127.0.0.1:{https}/"),
            format!("https://localhost:{https}/")
        ])
    );
    assert_eq!(
        info["public"], true,
        "the card drops its 'own addresses' note"
    );
    let mut res = app
        .client
        .get(app.url("/api/join-qr.svg"))
        .send()
        .await
        .unwrap();
    assert_eq!(res.status().as_u16(), 200);
    let svg = String::from_utf8(res.body().await.unwrap().to_vec()).unwrap();
    assert_eq!(
        svg,
        clickgame::classroom::qr_svg("http://192.0.2.99/"),
        "the QR code carries the public URL"
    );
    // Pages loaded through the public URLs may join; other origins still may not.
    let (status, body) = join_as_page(&app, "192.0.2.99", "http://192.0.2.99", "Ada").await;
    assert_eq!(status, 201, "{body}");
    let (status, body) = join_as_page(&app, "class.example", "https://class.example", "Bob").await;
    assert_eq!(status, 201, "{body}");
    assert_eq!(
        upgrade_as_page(&app, "class.example", "https://class.example").await,
        101
    );
    let (status, _) = join_as_page(&app, "class.example", "http://class.example", "Cy").await;
    assert_eq!(
        status, 403,
        "the http:// origin of an https:// public URL is not allowed"
    );
    app.server.stop().await;
}
