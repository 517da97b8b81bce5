//! # The lecture's WSS best practices, enforced
//!
//! * **Check Origin** — [`origin_check`] refuses any request whose `Origin` is not on an exact
//!   allow-list (the server's own origins plus `--allowed-origin`) with `403 origin_not_allowed`,
//!   before a WebSocket upgrade happens: cookies ride along on a cross-site handshake, so this
//!   is what stops cross-site WebSocket hijacking. Requests without `Origin` come from
//!   non-browser clients, which cannot borrow a victim's cookie, and are allowed. State-changing
//!   requests also refuse `Sec-Fetch-Site: cross-site`. We never send `Access-Control-Allow-Origin`.
//!
//!   The check is **scope middleware on `/api`** (and on the resources outside it that answer
//!   dynamically: `/metrics`, the test-only WebSocket echo), not a test of the request's path.
//!   The router matches the *percent-decoded* path, so a check on the raw path (`starts_with
//!   ("/api/")`, what we had) let `POST /%61pi/click` reach the handler unchecked. Attached to
//!   the scope, the check runs exactly when the router has chosen an API handler, whatever the
//!   spelling; a spelling the router does not match reaches no handler and gets a JSON 404.
//! * **Security headers** on every response ([`guard`], the app-wide layer): a strict CSP
//!   without inline script, `nosniff`, `no-referrer`, `frame-ancestors 'none'`; HSTS on HTTPS.
//!   With `--redirect-http` the same layer answers every plain-HTTP request with a `308` to the
//!   HTTPS listener, naming only a host we were configured with ([`RedirectToHttps`]).
//! * **Rate limits** — [`RateLimiter`]: clicks per player per second (token bucket);
//!   [`ConnLimiter`]: long-lived connections per IP.
//!
//! Authentication lives in `session.rs`, input validation in `protocol.rs` (strict serde types)
//! and in the transports (sizes, WebSocket close codes).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Arc, Mutex, PoisonError};
use std::time::Instant;

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, StatusCode},
    middleware::Next,
    web, HttpResponse, ResponseError,
};

use crate::error::ApiError;
use crate::game::PlayerId;

pub const CONTENT_SECURITY_POLICY: &str =
    "default-src 'self'; script-src 'self'; style-src 'self'; \
img-src 'self' data:; connect-src 'self'; object-src 'none'; base-uri 'none'; form-action 'self'; \
frame-ancestors 'none'";
/// Two years, as the HSTS preload list asks.
pub const HSTS: &str = "max-age=63072000";

/// Origins that may use the API, compared exactly (scheme, host and port).
#[derive(Debug, Clone, Default)]
pub struct OriginPolicy {
    allowed: HashSet<String>,
}

/// The origin strings a browser sends for pages served from `addr` over `scheme`.
pub fn own_origins(scheme: &str, addr: SocketAddr) -> Vec<String> {
    let default_port = if scheme == "https" { 443 } else { 80 };
    let port = if addr.port() == default_port {
        String::new()
    } else {
        format!(":{}", addr.port())
    };
    let ip = addr.ip();
    let mut hosts = Vec::new();
    if ip.is_loopback() || ip.is_unspecified() {
        hosts.extend([
            "localhost".to_string(),
            "127.0.0.1".to_string(),
            "[::1]".to_string(),
        ]);
    }
    if !ip.is_unspecified() {
        hosts.push(match ip {
            IpAddr::V4(v4) => v4.to_string(),
            IpAddr::V6(v6) => format!("[{v6}]"),
        });
    }
    hosts.sort();
    hosts.dedup();
    hosts
        .into_iter()
        .map(|h| format!("{scheme}://{h}{port}"))
        .collect()
}

fn normalise(origin: &str) -> String {
    origin.trim().trim_end_matches('/').to_ascii_lowercase()
}

impl OriginPolicy {
    pub fn new(own: impl IntoIterator<Item = String>, extra: &[String]) -> OriginPolicy {
        let allowed = own
            .into_iter()
            .chain(extra.iter().cloned())
            .map(|o| normalise(&o))
            .collect();
        OriginPolicy { allowed }
    }

    pub fn allows(&self, origin: &str) -> bool {
        self.allowed.contains(&normalise(origin))
    }

    pub fn allowed(&self) -> impl Iterator<Item = &String> {
        self.allowed.iter()
    }
}

/// Where `--redirect-http` sends plain-HTTP requests: the HTTPS listener's port under a host
/// name we were *configured* with.
///
/// The `Location` is never built from the request's `Host`, `X-Forwarded-Host` or `Forwarded`
/// (what we did before: `Host: evil.example` got `308 Location: https://evil.example:…`, an
/// open redirect usable for phishing and cache poisoning). The request's `Host` only *chooses*
/// among the configured names: if it equals one, that name is used (a student who typed
/// `127.0.0.1` stays on `127.0.0.1`), otherwise the first configured name is.
#[derive(Debug, Clone, Default)]
pub struct RedirectToHttps {
    /// The HTTPS port, or `None` when plain HTTP is served normally.
    port: Option<u16>,
    /// Host names in URL form (`localhost`, `127.0.0.1`, `[::1]`), lower case, in order of
    /// preference; `*.example.org` entries match one extra label.
    names: Vec<String>,
}

impl RedirectToHttps {
    /// Plain HTTP is served as it is: no redirect.
    pub fn off() -> RedirectToHttps {
        RedirectToHttps::default()
    }

    /// Redirects to the HTTPS listener at `https_addr` under the certificate's names
    /// (`cert_names`, as in its SAN), then the hosts of `--allowed-origin`, then the listener's
    /// own address when it is a specific one; `localhost` if all of these are empty.
    pub fn new(
        https_addr: SocketAddr,
        cert_names: &[String],
        allowed_origins: &[String],
    ) -> RedirectToHttps {
        let origin_hosts = allowed_origins.iter().filter_map(|o| {
            let rest = o.trim().split_once("://")?.1;
            let authority = rest.split('/').next()?;
            Some(split_host(authority).0.to_string())
        });
        let own = (!https_addr.ip().is_unspecified()).then(|| https_addr.ip().to_string());
        let mut names: Vec<String> = Vec::new();
        for name in cert_names.iter().cloned().chain(origin_hosts).chain(own) {
            let name = url_host(&name.to_ascii_lowercase());
            if !name.is_empty() && !names.contains(&name) {
                names.push(name);
            }
        }
        RedirectToHttps {
            port: Some(https_addr.port()),
            names,
        }
    }

    /// The `Location` for a plain request that said `Host: host` and asked for `path_and_query`;
    /// `None` when redirecting is off.
    pub fn location(&self, host: Option<&str>, path_and_query: &str) -> Option<String> {
        let port = self.port?;
        let asked = host.map(|h| split_host(h.trim()).0.to_ascii_lowercase());
        let chosen = asked
            .as_deref()
            .and_then(|asked| {
                self.names
                    .iter()
                    .find_map(|name| match name.strip_prefix("*.") {
                        None => (name == asked).then(|| name.clone()),
                        // One label of letters, digits and hyphens in front of the wildcard's
                        // domain: what the certificate covers (RFC 6125 §6.4.3), nothing else.
                        Some(domain) => asked
                            .strip_suffix(domain)
                            .and_then(|label| label.strip_suffix('.'))
                            .filter(|label| {
                                !label.is_empty()
                                    && label
                                        .bytes()
                                        .all(|b| b.is_ascii_alphanumeric() || b == b'-')
                            })
                            .map(|_| asked.to_string()),
                    })
            })
            .or_else(|| self.names.iter().find(|n| !n.starts_with("*.")).cloned())
            .unwrap_or_else(|| "localhost".to_string());
        let port = if port == 443 {
            String::new()
        } else {
            format!(":{port}")
        };
        Some(format!("https://{chosen}{port}{path_and_query}"))
    }
}

/// `host[:port]` or `[v6][:port]` → (`host` or `[v6]`, port part).
fn split_host(authority: &str) -> (&str, &str) {
    if authority.starts_with('[') {
        return match authority.find(']') {
            Some(end) => authority.split_at(end + 1),
            None => (authority, ""),
        };
    }
    match authority.rsplit_once(':') {
        Some((host, port)) => (host, port),
        None => (authority, ""),
    }
}

/// A host as it appears in a URL: IPv6 addresses in brackets.
fn url_host(name: &str) -> String {
    match name.parse::<std::net::Ipv6Addr>() {
        Ok(v6) => format!("[{v6}]"),
        Err(_) => name.to_string(),
    }
}

/// The app-wide layer, around every response: the HTTPS redirect and the security headers.
///
/// It deliberately makes no decision about the API: the Origin check is [`origin_check`],
/// attached to the routes it protects.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let secure = req.app_config().secure();
    if !secure {
        let location = req
            .app_data::<web::Data<RedirectToHttps>>()
            .and_then(|redirect| {
                // `Host` (HTTP/1.1) or the request target's authority (HTTP/2, absolute form);
                // never X-Forwarded-Host or Forwarded, which anyone can send.
                let host = req
                    .headers()
                    .get(header::HOST)
                    .and_then(|h| h.to_str().ok())
                    .or_else(|| req.uri().authority().map(|a| a.as_str()));
                redirect.location(host, req.uri().path_and_query().map_or("/", |p| p.as_str()))
            });
        if let Some(location) = location {
            let res = HttpResponse::PermanentRedirect()
                .insert_header((header::LOCATION, location))
                .finish();
            return Ok(req.into_response(res).map_into_right_body());
        }
    }
    let mut res = next.call(req).await?;
    let headers = res.headers_mut();
    headers.insert(
        header::CONTENT_SECURITY_POLICY,
        header::HeaderValue::from_static(CONTENT_SECURITY_POLICY),
    );
    headers.insert(
        header::X_CONTENT_TYPE_OPTIONS,
        header::HeaderValue::from_static("nosniff"),
    );
    headers.insert(
        header::REFERRER_POLICY,
        header::HeaderValue::from_static("no-referrer"),
    );
    headers.insert(
        header::X_FRAME_OPTIONS,
        header::HeaderValue::from_static("DENY"),
    );
    if secure {
        headers.insert(
            header::STRICT_TRANSPORT_SECURITY,
            header::HeaderValue::from_static(HSTS),
        );
    }
    Ok(res.map_into_left_body())
}

/// Middleware for the routes a browser page must not reach from another origin: the `/api`
/// scope, `/metrics` and the WebSocket echo. Mounted with `.wrap(from_fn(origin_check))` on
/// the scope or resource itself, so it runs for every spelling of a path the router sends
/// there, and for none it does not.
pub async fn origin_check(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    if let Some(refusal) = check_request(&req) {
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
    }
    Ok(next.call(req).await?.map_into_left_body())
}

fn check_request(req: &ServiceRequest) -> Option<ApiError> {
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        // No policy configured means nothing is allowed: fail closed.
        let allowed = req
            .app_data::<web::Data<OriginPolicy>>()
            .is_some_and(|policy| origin.to_str().is_ok_and(|o| policy.allows(o)));
        if !allowed {
            let origin = String::from_utf8_lossy(origin.as_bytes());
            return Some(ApiError::new(
                StatusCode::FORBIDDEN,
                "origin_not_allowed",
                format!("requests from the origin {origin:?} are not allowed"),
            ));
        }
    }
    let cross_site = req
        .headers()
        .get("sec-fetch-site")
        .is_some_and(|v| v.as_bytes().eq_ignore_ascii_case(b"cross-site"));
    if !req.method().is_safe() && cross_site {
        return Some(ApiError::new(
            StatusCode::FORBIDDEN,
            "cross_site_request",
            "state-changing requests must not come from another site",
        ));
    }
    None
}

/// A token bucket per player: `rate` clicks per second, bursts up to `rate`.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<HashMap<PlayerId, (f64, Instant)>>,
}

impl RateLimiter {
    pub fn new(rate_per_sec: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate_per_sec.max(1)),
            buckets: Mutex::new(HashMap::new()),
        }
    }

    /// Takes one token, or says how many seconds until the next one.
    pub fn check(&self, player: PlayerId) -> Result<(), ApiError> {
        let now = Instant::now();
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let (tokens, last) = buckets.entry(player).or_insert((self.rate, now));
        *tokens = (*tokens + now.duration_since(*last).as_secs_f64() * self.rate).min(self.rate);
        *last = now;
        if *tokens >= 1.0 {
            *tokens -= 1.0;
            return Ok(());
        }
        let wait = ((1.0 - *tokens) / self.rate).ceil().max(1.0) as u64;
        Err(ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!("at most {} clicks per second", self.rate),
        )
        .retry_after(wait))
    }

    pub fn forget(&self, player: PlayerId) {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .remove(&player);
    }
}

/// Counts long-lived connections per client IP.
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    max: u32,
    counts: Arc<Mutex<HashMap<IpAddr, u32>>>,
}

/// One counted connection; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnSlot {
    limiter: ConnLimiter,
    ip: Option<IpAddr>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Some(ip) = self.ip {
            let mut counts = self
                .limiter
                .counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner);
            if let Some(n) = counts.get_mut(&ip) {
                *n = n.saturating_sub(1);
                if *n == 0 {
                    counts.remove(&ip);
                }
            }
        }
    }
}

impl ConnLimiter {
    /// `max == 0` means no limit.
    pub fn new(max: u32) -> ConnLimiter {
        ConnLimiter {
            max,
            counts: Arc::new(Mutex::new(HashMap::new())),
        }
    }

    pub fn acquire(&self, peer: Option<SocketAddr>) -> Result<ConnSlot, ApiError> {
        let Some(ip) = peer.map(|p| p.ip()).filter(|_| self.max > 0) else {
            return Ok(ConnSlot {
                limiter: self.clone(),
                ip: None,
            });
        };
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let n = counts.entry(ip).or_insert(0);
        if *n >= self.max {
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!("at most {} open connections per address", self.max),
            )
            .retry_after(1));
        }
        *n += 1;
        Ok(ConnSlot {
            limiter: self.clone(),
            ip: Some(ip),
        })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn own_origins_cover_the_loopback_names_and_omit_default_ports() {
        let o = own_origins("http", "127.0.0.1:8080".parse().unwrap());
        assert_eq!(
            o,
            vec![
                "http://127.0.0.1:8080",
                "http://[::1]:8080",
                "http://localhost:8080"
            ]
        );
        assert_eq!(
            own_origins("https", "10.1.2.3:443".parse().unwrap()),
            vec!["https://10.1.2.3"]
        );
        let p = OriginPolicy::new(o, &["https://Lecture.example/".into()]);
        assert!(p.allows("http://localhost:8080"));
        assert!(p.allows("https://lecture.example"));
        assert!(!p.allows("http://localhost:8081"));
        assert!(!p.allows("null"));
        assert!(!p.allows("http://localhost:8080.evil.example"));
    }

    #[test]
    fn the_redirect_names_a_configured_host_whatever_the_request_says() {
        let names = [
            "localhost".to_string(),
            "::1".into(),
            "*.lab.example".into(),
        ];
        let r = RedirectToHttps::new(
            "0.0.0.0:8443".parse().unwrap(),
            &names,
            &["https://Lecture.example:9000/".into()],
        );
        let at = |host: Option<&str>| r.location(host, "/x?y=1").unwrap();
        assert_eq!(at(Some("localhost:8080")), "https://localhost:8443/x?y=1");
        assert_eq!(at(Some("[::1]:8080")), "https://[::1]:8443/x?y=1");
        assert_eq!(at(Some("[::1]")), "https://[::1]:8443/x?y=1");
        assert_eq!(
            at(Some("lecture.EXAMPLE")),
            "https://lecture.example:8443/x?y=1"
        );
        assert_eq!(
            at(Some("pc-7.lab.example")),
            "https://pc-7.lab.example:8443/x?y=1"
        );
        for foreign in [
            Some("evil.example"),
            Some("a.b.lab.example"),
            Some(".lab.example"),
            Some("x_y.lab.example"),
            Some("lab.example"),
            Some("localhost.evil.example"),
            Some("[::1"),
            Some(""),
            None,
        ] {
            assert_eq!(at(foreign), "https://localhost:8443/x?y=1", "{foreign:?}");
        }
        // A specific listener address is a configured name too; port 443 is left out.
        let r = RedirectToHttps::new("10.0.0.5:443".parse().unwrap(), &[], &[]);
        assert_eq!(
            r.location(Some("10.0.0.5"), "/").unwrap(),
            "https://10.0.0.5/"
        );
        assert_eq!(r.location(Some("evil"), "/").unwrap(), "https://10.0.0.5/");
        assert_eq!(
            RedirectToHttps::off().location(Some("localhost"), "/"),
            None
        );
    }

    #[test]
    fn the_bucket_allows_a_burst_of_rate_then_refuses_with_retry_after() {
        let limiter = RateLimiter::new(5);
        for _ in 0..5 {
            limiter.check(1).unwrap();
        }
        let err = limiter.check(1).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.retry_after, Some(1));
        limiter.check(2).unwrap();
    }

    #[test]
    fn connection_slots_are_counted_per_ip_and_freed_on_drop() {
        let limiter = ConnLimiter::new(2);
        let a: SocketAddr = "127.0.0.2:1000".parse().unwrap();
        let s1 = limiter.acquire(Some(a)).unwrap();
        let _s2 = limiter.acquire(Some(a)).unwrap();
        assert!(limiter.acquire(Some(a)).is_err());
        assert!(limiter
            .acquire(Some("127.0.0.3:1".parse().unwrap()))
            .is_ok());
        drop(s1);
        assert!(limiter.acquire(Some(a)).is_ok());
    }
}
