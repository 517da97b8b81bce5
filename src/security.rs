//! # The lecture's WSS best practices, enforced
//!
//! * **Check Origin** — [`guard`] refuses any `/api/` request whose `Origin` is not on an exact
//!   allow-list (the server's own origins plus `--allowed-origin`) with `403 origin_not_allowed`,
//!   before a WebSocket upgrade happens: cookies ride along on a cross-site handshake, so this
//!   is what stops cross-site WebSocket hijacking. Requests without `Origin` come from
//!   non-browser clients, which cannot borrow a victim's cookie, and are allowed. State-changing
//!   POSTs also refuse `Sec-Fetch-Site: cross-site`. We never send `Access-Control-Allow-Origin`.
//! * **Security headers** on every response: a strict CSP without inline script, `nosniff`,
//!   `no-referrer`, `frame-ancestors 'none'`; HSTS on HTTPS.
//! * **Rate limits** — [`RateLimiter`]: clicks per player per second (token bucket);
//!   [`ConnLimiter`]: long-lived connections per IP and overall (in `limits.rs`, with the
//!   other connection limits; re-exported here).
//!
//! Authentication lives in `session.rs`, input validation in `protocol.rs` (strict serde types)
//! and in the transports (sizes, WebSocket close codes).

use std::collections::{HashMap, HashSet};
use std::net::{IpAddr, SocketAddr};
use std::sync::{Mutex, PoisonError};
use std::time::Instant;

use actix_web::{
    body::{EitherBody, MessageBody},
    dev::{ServiceRequest, ServiceResponse},
    http::{header, Method, StatusCode},
    middleware::Next,
    web, HttpResponse, ResponseError,
};

use crate::error::ApiError;
use crate::game::PlayerId;
pub use crate::limits::{ConnLimiter, ConnSlot};

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

/// How the plain-HTTP listener behaves with `--redirect-http`.
#[derive(Debug, Clone, Copy)]
pub struct RedirectToHttps(pub Option<u16>);

/// Middleware: Origin check, `Sec-Fetch-Site` check, HTTPS redirect, security headers.
pub async fn guard(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let secure = req.app_config().secure();
    if let (false, Some(RedirectToHttps(Some(port)))) = (
        secure,
        req.app_data::<web::Data<RedirectToHttps>>()
            .map(|d| *d.get_ref()),
    ) {
        let host = req.connection_info().host().rsplit_once(':').map_or_else(
            || req.connection_info().host().to_string(),
            |(h, _)| h.to_string(),
        );
        let target = format!(
            "https://{host}:{port}{}",
            req.uri().path_and_query().map_or("/", |p| p.as_str())
        );
        let res = HttpResponse::PermanentRedirect()
            .insert_header((header::LOCATION, target))
            .finish();
        return Ok(req.into_response(res).map_into_right_body());
    }
    if let Some(refusal) = check_request(&req) {
        return Ok(req
            .into_response(refusal.error_response())
            .map_into_right_body());
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

fn check_request(req: &ServiceRequest) -> Option<ApiError> {
    if !req.path().starts_with("/api/") {
        return None;
    }
    if let Some(origin) = req.headers().get(header::ORIGIN) {
        let policy = req.app_data::<web::Data<OriginPolicy>>()?;
        let origin = origin.to_str().unwrap_or("");
        if !policy.allows(origin) {
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
    if req.method() == Method::POST && cross_site {
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
}
