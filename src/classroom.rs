//! # The classroom: how the room finds the game
//!
//! The projector shows `/compare.html`; the students need one thing from it — the address to
//! type, or better a QR code to point their phone at. This module makes both, once at start:
//!
//! * [`JoinInfo`]: the player page's URLs under every name the room can use (`lan.rs`), plain
//!   HTTP and HTTPS, and the certificate's fingerprint; `GET /api/join-info` serves it and the
//!   compare page's join card (`web/js/join_card.js`) shows it.
//! * `GET /api/join-qr.svg`: a QR code of the *first plain-HTTP* URL. Not HTTPS: phones do not
//!   trust the laptop's certificate, and a QR code that opens a certificate warning teaches
//!   the class to click warnings away. The SVG is only `<rect>` and `<path>` with presentation
//!   attributes (nothing the CSP's `style-src 'self'` or `script-src` would refuse), served as
//!   `image/svg+xml` and shown with `<img>`, never inserted as markup.
//! * [`JoinInfo::banner`]: the same for the terminal, the QR code in Unicode half blocks (two
//!   modules per character cell, so it is square and small enough for a phone's camera).
//!
//! Without `--lan` the URLs are the loopback ones: the card still works on the lecturer's own
//! machine, and nothing is advertised that the server does not listen on.
//!
//! Behind a reverse proxy, a port forward or the cluster's entry point (`make cluster`), the
//! address students must use is not one this process listens on: a node's own port would take
//! phones past the proxy (and past failover). [`PublicUrl`] (`--public-url`) says which one it
//! is; it comes first, and the QR code carries it. The server does not guess it from a request's
//! `Host` or `X-Forwarded-Host`: anyone can send those.

use std::net::{IpAddr, SocketAddr};
use std::str::FromStr;

use actix_web::{http::header, web, HttpResponse};
use qrcode::render::{svg, unicode::Dense1x2};
use qrcode::{EcLevel, QrCode};
use serde::Serialize;

use crate::config::Config;
use crate::error::ApiError;
use crate::lan::{Host, LanNames};
use crate::limits::Limits;
use crate::transport::method_not_allowed;

/// A `--public-url`: where students reach this server from outside it, `http(s)://host[:port]/`.
/// Only an origin with the `/` path: the player page is at the root, and a path, query,
/// fragment or user name would be a URL the server cannot vouch for. Parsed by the `url` crate
/// (the WHATWG parser browsers follow), so what the QR code carries is what a phone opens.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PublicUrl(url::Url);

impl FromStr for PublicUrl {
    type Err = String;

    fn from_str(text: &str) -> Result<PublicUrl, String> {
        let want = "give scheme://host[:port]/, e.g. http://192.0.2.10:8080/";
        let url = url::Url::parse(text.trim()).map_err(|e| format!("{text:?}: {e}; {want}"))?;
        if !matches!(url.scheme(), "http" | "https") {
            return Err(format!("{text:?} is not http:// or https://; {want}"));
        }
        if url.host_str().is_none_or(str::is_empty) {
            return Err(format!("{text:?} names no host; {want}"));
        }
        if !url.username().is_empty() || url.password().is_some() {
            return Err(format!(
                "{text:?} carries a user name or password, which a projector would show to the \
                 room; {want}"
            ));
        }
        if url.path() != "/" || url.query().is_some() || url.fragment().is_some() {
            return Err(format!(
                "{text:?} has a path, query or fragment, but the player page is at the root of \
                 its origin; {want}"
            ));
        }
        Ok(PublicUrl(url))
    }
}

impl PublicUrl {
    /// The URL as browsers write it (lower-case host, default port left out, trailing `/`).
    pub fn as_str(&self) -> &str {
        self.0.as_str()
    }

    pub fn is_https(&self) -> bool {
        self.0.scheme() == "https"
    }

    /// Its origin (`scheme://host[:port]`), for the Origin allow-list: the pages students load
    /// from there call the API from there.
    pub fn origin(&self) -> String {
        self.0.origin().ascii_serialization()
    }
}

/// Where the room joins, computed once at start.
#[derive(Debug, Clone, Serialize)]
pub struct JoinInfo {
    /// Where to join, the first being the QR code's and the card's: every `--public-url` as
    /// given (whatever its scheme: the operator vouches for it), then the player page over
    /// plain HTTP under each of this server's own names.
    pub urls: Vec<String>,
    /// Over HTTPS: the `https://` public URLs, then this server's own names (none of its own
    /// with `--no-tls`).
    pub https_urls: Vec<String>,
    /// Where the QR code of `urls[0]` is.
    pub qr: &'static str,
    /// The HTTPS certificate's SHA-256 fingerprint, for students to compare before they accept
    /// the certificate on their phone.
    pub cert_sha256: Option<String>,
    /// True with `--lan`.
    pub lan: bool,
    /// True with `--public-url`: the first URL is the operator's, reachable from the room.
    pub public: bool,
    #[serde(skip)]
    qr_svg: String,
}

/// Where the QR code is served (inside the `/api` scope).
pub const QR_PATH: &str = "/api/join-qr.svg";

/// The names a server without `--lan` is reached by from this machine: its own address, or
/// `127.0.0.1` and `localhost` for a loopback or wildcard listener.
pub fn local_names(listener: SocketAddr) -> LanNames {
    let ip = listener.ip();
    let hosts = if ip.is_unspecified() || ip.is_loopback() {
        let own = match ip {
            IpAddr::V6(v6) if v6.is_loopback() => ip,
            _ => IpAddr::from([127, 0, 0, 1]),
        };
        vec![Host::Ip(own), Host::Dns("localhost".into())]
    } else {
        vec![Host::Ip(ip)]
    };
    LanNames::given(&hosts)
}

impl JoinInfo {
    /// The join information for `names` (the LAN names with `--lan`, else [`local_names`]) on
    /// the listeners' actual ports, after the `public` URLs (`--public-url`).
    pub fn new(
        names: &LanNames,
        lan: bool,
        http_port: u16,
        https_port: Option<u16>,
        cert_sha256: Option<String>,
        public: &[PublicUrl],
    ) -> JoinInfo {
        fn first_then(first: Vec<String>, then: Vec<String>) -> Vec<String> {
            let mut all = first;
            for url in then {
                if !all.contains(&url) {
                    all.push(url);
                }
            }
            all
        }
        let public_https = public.iter().filter(|u| u.is_https());
        let urls = first_then(
            public.iter().map(|u| u.as_str().to_string()).collect(),
            names.urls("http", http_port),
        );
        let https_urls = first_then(
            public_https.map(|u| u.as_str().to_string()).collect(),
            https_port.map_or_else(Vec::new, |p| names.urls("https", p)),
        );
        let qr_svg = urls.first().map_or_else(String::new, |u| qr_svg(u));
        JoinInfo {
            https_urls,
            urls,
            qr: QR_PATH,
            cert_sha256,
            lan,
            public: !public.is_empty(),
            qr_svg,
        }
    }

    /// What `clickgame --lan` prints for the lecturer: the join URL, the others, the HTTPS
    /// ones with the fingerprint, and the QR code (`ansi`: black on white whatever the
    /// terminal's colours, for a terminal; plain half blocks for a file).
    pub fn banner(&self, ansi: bool) -> String {
        let Some(first) = self.urls.first() else {
            return "no address to join at: see --lan-addr\n".into();
        };
        let mut out = format!("students join at: {first}\n");
        if self.urls.len() > 1 {
            out += &format!("  or: {}\n", self.urls[1..].join("  "));
        }
        if !self.https_urls.is_empty() {
            out += &format!("HTTPS: {}\n", self.https_urls.join("  "));
        }
        if let Some(fp) = &self.cert_sha256 {
            out += &format!("  certificate SHA-256 {fp}\n");
        }
        match terminal_qr(first, ansi) {
            Some(qr) => out += &qr,
            None => out += "(no QR code: the URL is too long for one)\n",
        }
        out
    }
}

fn encode(url: &str) -> Option<QrCode> {
    // Level M: survives a projector's glare and a phone's angle, and a URL stays a small code.
    QrCode::with_error_correction_level(url.as_bytes(), EcLevel::M).ok()
}

/// The QR code of `url` as an SVG document (black on white, with the quiet zone).
pub fn qr_svg(url: &str) -> String {
    encode(url).map_or_else(String::new, |code| {
        code.render::<svg::Color>()
            .min_dimensions(256, 256)
            .dark_color(svg::Color("#000"))
            .light_color(svg::Color("#fff"))
            .build()
    })
}

/// The QR code of `url` in Unicode half blocks (`▀`, `▄`, `█`, space: two modules per cell),
/// with its quiet zone, one line per two module rows. With `ansi`, every line is drawn black on
/// bright white, so the code reads the right way round on a dark terminal too.
pub fn terminal_qr(url: &str, ansi: bool) -> Option<String> {
    let code = encode(url)?;
    let art = code
        .render::<Dense1x2>()
        .dark_color(Dense1x2::Dark)
        .light_color(Dense1x2::Light)
        .quiet_zone(true)
        .build();
    let mut out = String::new();
    for line in art.lines() {
        if ansi {
            out += &format!("\x1b[30;107m{line}\x1b[0m\n");
        } else {
            out += line;
            out.push('\n');
        }
    }
    Some(out)
}

/// The caps a room behind one address meets first, stated once when `--lan` starts, with the
/// flags that raise them.
pub fn log_caps(limits: &Limits, config: &Config) {
    let per = |n: u32| {
        if n == 0 {
            "no cap".to_string()
        } else {
            n.to_string()
        }
    };
    tracing::info!(
        "classroom caps per address (a whole room behind a campus NAT is one address): \
         connections {} (--max-sockets-per-ip), long-lived streams {} (--max-conns-per-ip), \
         joins a minute {} (--join-rate); overall: connections {} (--max-conns; the last {} \
         kept for short requests), joins a minute {} (--join-rate-total), players {} \
         (--max-players). A hundred phones behind one address hold about 200 connections and \
         100 streams; see docs/security.md, section 7, and docs/classroom.md",
        per(limits.sockets_per_ip),
        per(limits.streams_per_ip),
        per(config.join_rate),
        limits.sockets,
        limits.reserve,
        per(config.join_rate_total),
        config.max_players,
    );
}

/// `GET /api/join-info` and `GET /api/join-qr.svg`, inside the `/api` scope.
pub fn configure(cfg: &mut web::ServiceConfig) {
    cfg.service(
        web::resource("/join-info")
            .route(web::get().to(join_info))
            .default_service(method_not_allowed("GET")),
    )
    .service(
        web::resource("/join-qr.svg")
            .route(web::get().to(join_qr))
            .default_service(method_not_allowed("GET")),
    );
}

async fn join_info(info: web::Data<JoinInfo>) -> HttpResponse {
    HttpResponse::Ok()
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .json(info.get_ref())
}

async fn join_qr(info: web::Data<JoinInfo>) -> Result<HttpResponse, ApiError> {
    if info.qr_svg.is_empty() {
        return Err(ApiError::not_found("no join URL to encode"));
    }
    Ok(HttpResponse::Ok()
        .content_type("image/svg+xml")
        .insert_header((header::CACHE_CONTROL, "no-store"))
        .body(info.qr_svg.clone()))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn lan() -> LanNames {
        LanNames::given(&[
            Host::parse("192.0.2.10").unwrap(),
            Host::parse("2001:db8::10").unwrap(),
        ])
    }

    #[test]
    fn join_info_lists_both_schemes_and_the_qr_code_carries_the_first_plain_url() {
        let info = JoinInfo::new(&lan(), true, 8080, Some(8443), Some("AB:CD".into()), &[]);
        assert_eq!(
            info.urls,
            vec!["http://192.0.2.10:8080/", "http://[2001:db8::10]:8080/"]
        );
        assert_eq!(
            info.https_urls,
            vec!["https://192.0.2.10:8443/", "https://[2001:db8::10]:8443/"]
        );
        assert!(info.qr_svg.starts_with("<?xml"), "{}", info.qr_svg);
        assert_eq!(info.qr_svg, qr_svg("http://192.0.2.10:8080/"));
        assert_ne!(info.qr_svg, qr_svg("http://[2001:db8::10]:8080/"));
        // Nothing in it a CSP could object to, and nothing that runs or links.
        for never in ["script", "style", "href", " on", "<foreignObject"] {
            assert!(!info.qr_svg.contains(never), "{never} in {}", info.qr_svg);
        }
        let banner = info.banner(false);
        assert!(
            banner.starts_with("students join at: http://192.0.2.10:8080/\n"),
            "{banner}"
        );
        assert!(banner.contains("certificate SHA-256 AB:CD"), "{banner}");
    }

    #[test]
    fn without_lan_the_urls_are_the_loopback_ones_the_server_listens_on() {
        let names = local_names("127.0.0.1:8080".parse().unwrap());
        let info = JoinInfo::new(&names, false, 8080, None, None, &[]);
        assert_eq!(
            info.urls,
            vec!["http://127.0.0.1:8080/", "http://localhost:8080/"]
        );
        assert!(info.https_urls.is_empty());
        let names = local_names("[::1]:9000".parse().unwrap());
        assert_eq!(
            names.urls("http", 9000),
            vec!["http://[::1]:9000/", "http://localhost:9000/"]
        );
        let names = local_names("10.0.0.5:8080".parse().unwrap());
        assert_eq!(names.urls("http", 8080), vec!["http://10.0.0.5:8080/"]);
    }

    #[test]
    fn a_public_url_is_an_http_or_https_origin_with_the_root_path_and_nothing_else() {
        for (given, kept) in [
            ("http://192.0.2.10:8080/", "http://192.0.2.10:8080/"),
            ("http://Class.Example:8080", "http://class.example:8080/"),
            ("https://class.example:443/", "https://class.example/"),
            ("http://[2001:db8::10]:8080/", "http://[2001:db8::10]:8080/"),
        ] {
            let url: PublicUrl = given.parse().unwrap();
            assert_eq!(url.as_str(), kept, "{given}");
        }
        assert_eq!(
            "https://class.example:8443/"
                .parse::<PublicUrl>()
                .unwrap()
                .origin(),
            "https://class.example:8443"
        );
        for refused in [
            "class.example:8080",
            "ftp://class.example/",
            "ws://class.example/",
            "http:///",
            "http://user:pw@class.example/",
            "http://class.example/game/",
            "http://class.example/?x=1",
            "http://class.example/#join",
            "http://class.example:99999/",
            "",
        ] {
            let err = refused.parse::<PublicUrl>().unwrap_err();
            assert!(err.contains("scheme://host[:port]/"), "{refused}: {err}");
        }
    }

    #[test]
    fn public_urls_come_first_and_the_qr_code_carries_the_first_of_them() {
        let public: Vec<PublicUrl> = ["http://127.0.0.1:8080/", "https://127.0.0.1:8443/"]
            .iter()
            .map(|u| u.parse().unwrap())
            .collect();
        let names = local_names("127.0.0.1:41234".parse().unwrap());
        let info = JoinInfo::new(&names, false, 41234, Some(41235), None, &public);
        assert_eq!(
            info.urls,
            vec![
                "http://127.0.0.1:8080/",
                "https://127.0.0.1:8443/",
                "http://127.0.0.1:41234/",
                "http://localhost:41234/"
            ]
        );
        assert_eq!(
            info.https_urls,
            vec![
                "https://127.0.0.1:8443/",
                "https://127.0.0.1:41235/",
                "https://localhost:41235/"
            ]
        );
        assert_eq!(info.qr_svg, qr_svg("http://127.0.0.1:8080/"));
        // A public URL that is also one of the server's own is listed once.
        let same = ["http://localhost:41234/".parse().unwrap()];
        let info = JoinInfo::new(&names, false, 41234, None, None, &same);
        assert_eq!(
            info.urls,
            vec!["http://localhost:41234/", "http://127.0.0.1:41234/"]
        );
    }

    #[test]
    fn the_terminal_qr_code_draws_two_module_rows_per_line_in_half_blocks() {
        let url = "http://192.0.2.10:8080/";
        let code = encode(url).unwrap();
        let width = code.width();
        let modules = code.to_colors();
        // With the 4-module quiet zone on every side.
        let side = width + 8;
        let dark = |x: usize, y: usize| {
            x >= 4
                && y >= 4
                && x < width + 4
                && y < width + 4
                && modules[(y - 4) * width + (x - 4)] == qrcode::Color::Dark
        };
        let art = terminal_qr(url, false).unwrap();
        let lines: Vec<&str> = art.lines().collect();
        assert_eq!(lines.len(), side.div_ceil(2));
        for (row, line) in lines.iter().enumerate() {
            let cells: Vec<char> = line.chars().collect();
            assert_eq!(cells.len(), side, "line {row}");
            for (x, cell) in cells.iter().enumerate() {
                let (top, bottom) = (dark(x, 2 * row), dark(x, 2 * row + 1));
                let want = match (top, bottom) {
                    (false, false) => ' ',
                    (false, true) => '▄',
                    (true, false) => '▀',
                    (true, true) => '█',
                };
                assert_eq!(*cell, want, "cell ({x}, {row})");
            }
        }
        let coloured = terminal_qr(url, true).unwrap();
        assert!(coloured
            .lines()
            .all(|l| l.starts_with("\x1b[30;107m") && l.ends_with("\x1b[0m")));
    }
}
