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
//!   without inline script, `nosniff`, `no-referrer`, `frame-ancestors 'none'`. With
//!   `--redirect-http` the same layer answers every plain-HTTP request with a `308` to the
//!   HTTPS listener, naming only a host we were configured with ([`RedirectToHttps`]), and
//!   HTTPS responses carry HSTS. Only then: HSTS pins a *host name* to HTTPS for two years, and
//!   this server's names are `localhost` and the LAN addresses — once a local CA makes them
//!   trusted, a browser would refuse every plain-HTTP transport and demo on them (and on any
//!   other development server at `localhost`) until the pin expires.
//! * **Rate limits** — [`RateLimiter`]: clicks per player per second (token bucket);
//!   [`ConnLimiter`]: long-lived connections per IP and overall (in `limits.rs`, with the
//!   other connection limits; re-exported here); [`JoinLimiter`]: joins per address and
//!   overall.
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
    http::{header, StatusCode},
    middleware::Next,
    web, HttpResponse, ResponseError,
};

use crate::error::ApiError;
use crate::game::PlayerId;
use crate::hub::Hub;
use crate::lab::{self, Defence, Lab};
use crate::limits::{Cap, CapLog};
pub use crate::limits::{ConnLimiter, ConnSlot};
use crate::refusal::{Refusal, Refused, Rule};

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

    /// True when plain HTTP is redirected (`--redirect-http`).
    pub fn is_on(&self) -> bool {
        self.port.is_some()
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
    // HSTS only where plain HTTP is redirected anyway (see the module notes).
    let hsts = req
        .app_data::<web::Data<RedirectToHttps>>()
        .is_some_and(|r| r.is_on());
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
    if secure && hsts {
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
    // The lab's switch (`--lab` only): a naive server accepts every origin.
    let on = lab::defence_on(req.app_data::<web::Data<Lab>>(), Defence::Origin);
    if let Some(refusal) = check_request(&req).filter(|_| on) {
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

/// The app-wide layer that notices refusals: every error response of ours carries a
/// [`Refused`] extension (`ApiError::error_response`); if its code is a defence's
/// ([`Rule::of_error`]), it is counted on `/metrics` and, with `--lab`, logged with the request's
/// origin and address. Answers that are no defence's (a `404`, `name_taken`) pass unnoticed.
pub async fn record_refusals(
    req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<impl MessageBody>, actix_web::Error> {
    let res = next.call(req).await?;
    let refused = res.response().extensions().get::<Refused>().cloned();
    if let Some(refused) = refused {
        if let Some(rule) = Rule::of_error(refused.error) {
            let req = res.request();
            record_refusal(
                req.app_data::<web::Data<Hub>>().map(|h| h.get_ref()),
                req.app_data::<web::Data<Lab>>().map(|l| l.get_ref()),
                Refusal {
                    rule,
                    code: refused.status,
                    error: refused.error,
                    detail: refused.detail,
                    origin: origin_of(req.headers()),
                    peer: req.peer_addr(),
                },
            );
        }
    }
    Ok(res)
}

/// Counts a refusal (always) and logs it in the lab's defence log (with `--lab`). The one place
/// both happen, for HTTP answers ([`record_refusals`]) and WebSocket closes and replies alike.
pub fn record_refusal(hub: Option<&Hub>, lab: Option<&Lab>, refusal: Refusal) {
    if let Some(hub) = hub {
        hub.metrics().refused(refusal.rule);
    }
    if let Some(lab) = lab {
        lab.record(refusal);
    }
}

/// The `Origin` a request sent, as text (for the defence log).
pub fn origin_of(headers: &header::HeaderMap) -> Option<String> {
    headers
        .get(header::ORIGIN)
        .map(|o| String::from_utf8_lossy(o.as_bytes()).into_owned())
}

/// A token bucket per player: `rate` clicks per second, bursts up to `rate`.
///
/// A bucket that has refilled is the same as no bucket, so full ones are swept once the map has
/// doubled since the last sweep (as [`JoinLimiter`] does): the map holds the players who clicked
/// in about the last second, not every player id it was ever asked about. Before the sweep it
/// kept them all — a player who went idle or was removed stayed for good, and with the lab's
/// `auth` defence off (a click's `player` field is believed) each click naming a new id added
/// one: 800,000 such clicks grew the server by 34 MB, for as long as it ran.
#[derive(Debug)]
pub struct RateLimiter {
    rate: f64,
    buckets: Mutex<ClickBuckets>,
}

#[derive(Debug)]
struct ClickBuckets {
    by_player: HashMap<PlayerId, (f64, Instant)>,
    sweep_at: usize,
}

/// Sweep full click buckets once the map holds at least this many players.
const CLICK_SWEEP_MIN: usize = 1024;

impl RateLimiter {
    pub fn new(rate_per_sec: u32) -> RateLimiter {
        RateLimiter {
            rate: f64::from(rate_per_sec.max(1)),
            buckets: Mutex::new(ClickBuckets {
                by_player: HashMap::new(),
                sweep_at: CLICK_SWEEP_MIN,
            }),
        }
    }

    /// Takes one token, or says how many seconds until the next one.
    pub fn check(&self, player: PlayerId) -> Result<(), ApiError> {
        self.check_at(player, Instant::now())
    }

    fn check_at(&self, player: PlayerId, now: Instant) -> Result<(), ApiError> {
        let rate = self.rate;
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let refilled = |(tokens, last): (f64, Instant)| {
            (tokens + now.saturating_duration_since(last).as_secs_f64() * rate).min(rate)
        };
        if buckets.by_player.len() >= buckets.sweep_at {
            buckets
                .by_player
                .retain(|_, bucket| refilled(*bucket) < rate);
            buckets.sweep_at = (2 * buckets.by_player.len()).max(CLICK_SWEEP_MIN);
        }
        let bucket = buckets.by_player.entry(player).or_insert((rate, now));
        let tokens = refilled(*bucket);
        if tokens >= 1.0 {
            *bucket = (tokens - 1.0, now);
            return Ok(());
        }
        *bucket = (tokens, now);
        let wait = ((1.0 - tokens) / rate).ceil().max(1.0) as u64;
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
            .by_player
            .remove(&player);
    }

    /// Players currently remembered (for tests of the memory bound).
    pub fn tracked_players(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_player
            .len()
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
    fn players_whose_click_bucket_refilled_are_forgotten_and_limited_ones_kept() {
        let limiter = RateLimiter::new(20);
        let t0 = Instant::now();
        // A player at the limit...
        for _ in 0..20 {
            limiter.check_at(0, t0).unwrap();
        }
        // ...then 100,000 ids that click once (the lab's `auth: off` lets anyone name any id).
        for id in 1..=100_000 {
            limiter.check_at(id, t0).unwrap();
        }
        // The sweeps on the way kept everybody: nobody's bucket is full yet.
        assert_eq!(limiter.tracked_players(), 100_001);
        assert!(limiter.check_at(0, t0).is_err(), "the limit still holds");
        // Two seconds on, every one of those buckets is full: the next sweep forgets them.
        let later = t0 + std::time::Duration::from_secs(2);
        for id in 200_000..240_000 {
            limiter.check_at(id, later).unwrap();
        }
        assert!(
            limiter.tracked_players() <= 40_000,
            "{} players remembered",
            limiter.tracked_players()
        );
        assert!(
            limiter.check_at(0, later).is_ok(),
            "a fresh bucket, as before"
        );
    }
}

/// Joins per client address and overall (`--join-rate`, `--join-rate-total`): two token
/// buckets, each holding a minute's worth of joins and refilled evenly over the minute. A join
/// needs a token from both; otherwise `429 too_many_joins` with `Retry-After`. Every attempt
/// that reaches the game counts, accepted or not, so a flood of refused names costs the same.
///
/// Why per address *and* overall: the per-address bucket stops one machine from filling the
/// game (issue 9: 5,000 joins in 7.6 s); the overall one bounds the join work a flood from many
/// addresses causes. A lecture hall behind one NAT address shares one bucket, which is why the
/// default is generous (`docs/security.md`). IPv6 clients count per /64, the block one
/// subscriber usually holds, so rotating addresses within it does not help.
///
/// Memory: an address gets an entry when it spends a token, and entries whose bucket has
/// filled up again (they would behave exactly like a new one) are dropped whenever the map has
/// doubled since the last sweep. The road not taken: the `governor` crate, which does the same
/// with more dependencies than this whole type has lines.
#[derive(Debug)]
pub struct JoinLimiter {
    per_address: Option<JoinRate>,
    overall: Option<JoinRate>,
    buckets: Mutex<JoinBuckets>,
    caps: CapLog,
}

/// A bucket's size and refill speed.
#[derive(Debug, Clone, Copy)]
struct JoinRate {
    per_minute: u32,
    per_sec: f64,
}

impl JoinRate {
    fn new(per_minute: u32) -> Option<JoinRate> {
        (per_minute > 0).then(|| JoinRate {
            per_minute,
            per_sec: f64::from(per_minute) / 60.0,
        })
    }

    fn burst(self) -> f64 {
        f64::from(self.per_minute)
    }
}

#[derive(Debug, Clone, Copy)]
struct Bucket {
    tokens: f64,
    at: Instant,
}

impl Bucket {
    fn full(rate: JoinRate, now: Instant) -> Bucket {
        Bucket {
            tokens: rate.burst(),
            at: now,
        }
    }

    fn refilled(self, rate: JoinRate, now: Instant) -> Bucket {
        let elapsed = now.saturating_duration_since(self.at).as_secs_f64();
        Bucket {
            tokens: (self.tokens + elapsed * rate.per_sec).min(rate.burst()),
            at: now,
        }
    }

    /// Seconds until one token is there (0 if it is).
    fn wait(self, rate: JoinRate) -> f64 {
        ((1.0 - self.tokens) / rate.per_sec).max(0.0)
    }
}

#[derive(Debug)]
struct JoinBuckets {
    overall: Option<Bucket>,
    by_address: HashMap<IpAddr, Bucket>,
    sweep_at: usize,
}

/// Sweep full buckets once the map holds at least this many addresses.
const JOIN_SWEEP_MIN: usize = 1024;

/// The key an address is counted under: IPv4 as is (also when mapped into IPv6), IPv6 by /64.
pub(crate) fn join_key(ip: IpAddr) -> IpAddr {
    match ip {
        IpAddr::V4(v4) => IpAddr::V4(v4),
        IpAddr::V6(v6) => match v6.to_ipv4_mapped() {
            Some(v4) => IpAddr::V4(v4),
            None => IpAddr::V6(std::net::Ipv6Addr::from(
                u128::from(v6) & !((1u128 << 64) - 1),
            )),
        },
    }
}

impl JoinLimiter {
    /// Rates in joins per minute; 0 turns that bucket off.
    pub fn new(per_address_per_minute: u32, overall_per_minute: u32) -> JoinLimiter {
        let overall = JoinRate::new(overall_per_minute);
        let now = Instant::now();
        JoinLimiter {
            per_address: JoinRate::new(per_address_per_minute),
            overall,
            buckets: Mutex::new(JoinBuckets {
                overall: overall.map(|rate| Bucket::full(rate, now)),
                by_address: HashMap::new(),
                sweep_at: JOIN_SWEEP_MIN,
            }),
            caps: CapLog::default(),
        }
    }

    /// A join from `peer` was refused because the game holds `max` players: logged once per
    /// address with the flag that raises the cap.
    pub fn note_game_full(&self, peer: Option<IpAddr>, max: usize) {
        self.caps.note(Cap::MaxPlayers, max as u64, peer);
    }

    /// Takes a join token for a client at `peer` (no address: only the overall bucket), or
    /// refuses with 429 and how long to wait.
    pub fn check(&self, peer: Option<IpAddr>) -> Result<(), ApiError> {
        self.check_at(peer, Instant::now())
    }

    fn check_at(&self, peer: Option<IpAddr>, now: Instant) -> Result<(), ApiError> {
        let mut buckets = self.buckets.lock().unwrap_or_else(PoisonError::into_inner);
        let overall = self
            .overall
            .zip(buckets.overall)
            .map(|(rate, b)| (rate, b.refilled(rate, now)));
        let key = peer.map(join_key);
        let address = match (self.per_address, key) {
            (Some(rate), Some(key)) => {
                let b = buckets
                    .by_address
                    .get(&key)
                    .map_or(Bucket::full(rate, now), |b| b.refilled(rate, now));
                Some((rate, key, b))
            }
            _ => None,
        };
        if let Some((rate, _, b)) = address.filter(|(_, _, b)| b.tokens < 1.0) {
            self.caps
                .note(Cap::JoinRate, u64::from(rate.per_minute), peer);
            return Err(too_many_joins(
                format!(
                    "at most {} joins per minute from one address",
                    rate.per_minute
                ),
                b.wait(rate),
            ));
        }
        if let Some((rate, b)) = overall.filter(|(_, b)| b.tokens < 1.0) {
            self.caps
                .note(Cap::JoinRateTotal, u64::from(rate.per_minute), peer);
            return Err(too_many_joins(
                format!(
                    "the server takes at most {} joins per minute",
                    rate.per_minute
                ),
                b.wait(rate),
            ));
        }
        if let Some((_, b)) = overall {
            buckets.overall = Some(Bucket {
                tokens: b.tokens - 1.0,
                ..b
            });
        }
        if let Some((rate, key, b)) = address {
            buckets.by_address.insert(
                key,
                Bucket {
                    tokens: b.tokens - 1.0,
                    ..b
                },
            );
            if buckets.by_address.len() >= buckets.sweep_at {
                buckets
                    .by_address
                    .retain(|_, b| b.refilled(rate, now).tokens < rate.burst());
                buckets.sweep_at = (2 * buckets.by_address.len()).max(JOIN_SWEEP_MIN);
            }
        }
        Ok(())
    }

    /// Addresses currently remembered (for tests of the memory bound).
    pub fn tracked_addresses(&self) -> usize {
        self.buckets
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .by_address
            .len()
    }
}

fn too_many_joins(why: String, wait_secs: f64) -> ApiError {
    let seconds = wait_secs.ceil().max(1.0) as u64;
    ApiError::new(
        StatusCode::TOO_MANY_REQUESTS,
        "too_many_joins",
        format!("{why}; try again in {seconds} s"),
    )
    .retry_after(seconds)
}

#[cfg(test)]
mod join_limiter_tests {
    use std::time::Duration;

    use super::*;

    fn ip(s: &str) -> Option<IpAddr> {
        Some(s.parse().unwrap())
    }

    #[test]
    fn an_address_gets_its_burst_then_429_with_retry_after_while_others_still_join() {
        let limiter = JoinLimiter::new(3, 0);
        let t0 = Instant::now();
        for _ in 0..3 {
            limiter.check_at(ip("10.0.0.1"), t0).unwrap();
        }
        let err = limiter.check_at(ip("10.0.0.1"), t0).unwrap_err();
        assert_eq!(err.status, StatusCode::TOO_MANY_REQUESTS);
        assert_eq!(err.code, "too_many_joins");
        // 3 per minute: one token every 20 s.
        assert_eq!(err.retry_after, Some(20));
        limiter.check_at(ip("10.0.0.2"), t0).unwrap();
        // Waiting as long as Retry-After says is enough.
        let retry = Duration::from_secs(err.retry_after.unwrap());
        limiter.check_at(ip("10.0.0.1"), t0 + retry).unwrap();
    }

    #[test]
    fn the_overall_bucket_refuses_every_address_once_empty() {
        let limiter = JoinLimiter::new(0, 2);
        let t0 = Instant::now();
        limiter.check_at(ip("10.0.0.1"), t0).unwrap();
        limiter.check_at(ip("10.0.0.2"), t0).unwrap();
        let err = limiter.check_at(ip("10.0.0.3"), t0).unwrap_err();
        assert_eq!(err.retry_after, Some(30));
        assert!(err.detail.contains("at most 2 joins per minute"), "{err}");
        assert!(limiter.check_at(None, t0).is_err());
    }

    #[test]
    fn a_refusal_by_one_bucket_spends_no_token_of_the_other() {
        let limiter = JoinLimiter::new(1, 2);
        let t0 = Instant::now();
        limiter.check_at(ip("10.0.0.1"), t0).unwrap();
        assert!(limiter.check_at(ip("10.0.0.1"), t0).is_err());
        assert!(limiter.check_at(ip("10.0.0.1"), t0).is_err());
        // The overall bucket still has its second token.
        limiter.check_at(ip("10.0.0.2"), t0).unwrap();
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let limiter = JoinLimiter::new(1, 0);
        let t0 = Instant::now();
        limiter.check_at(ip("2001:db8:1:2::1"), t0).unwrap();
        assert!(limiter.check_at(ip("2001:db8:1:2:ffff::9"), t0).is_err());
        limiter.check_at(ip("2001:db8:1:3::1"), t0).unwrap();
        limiter.check_at(ip("192.0.2.7"), t0).unwrap();
        assert!(limiter.check_at(ip("::ffff:192.0.2.7"), t0).is_err());
    }

    #[test]
    fn addresses_whose_bucket_refilled_are_forgotten() {
        let limiter = JoinLimiter::new(60, 0);
        let t0 = Instant::now();
        for i in 0..JOIN_SWEEP_MIN as u32 {
            let a = std::net::Ipv4Addr::from(0x0a00_0000 + i);
            limiter.check_at(Some(IpAddr::V4(a)), t0).unwrap();
        }
        // The sweep at 1,024 kept them all: every bucket still misses its token.
        assert_eq!(limiter.tracked_addresses(), JOIN_SWEEP_MIN);
        // A second later every bucket is full again; the next sweep drops them.
        let later = t0 + Duration::from_secs(1);
        for i in 0..JOIN_SWEEP_MIN as u32 {
            let a = std::net::Ipv4Addr::from(0x0b00_0000 + i);
            limiter.check_at(Some(IpAddr::V4(a)), later).unwrap();
        }
        assert!(
            limiter.tracked_addresses() <= JOIN_SWEEP_MIN + 1,
            "{}",
            limiter.tracked_addresses()
        );
    }
}
