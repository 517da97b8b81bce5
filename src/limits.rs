//! # Limits: how much one client may hold, and for how long
//!
//! Every open connection costs the server a file descriptor, and a process has a fixed number of
//! them (`ulimit -n`; 20,000 on the lecture machine, and it cannot be raised). A server that
//! lets one client hold descriptors for as long as it likes can be stopped by that client alone:
//! it opens connections until `accept` fails with "Too many open files", and then nobody else
//! gets in. So everything a client can hold is counted, capped, and given a deadline:
//!
//! | what | counted from … to … | cap | over the cap |
//! |---|---|---|---|
//! | TCP/TLS connections ("sockets") | accept → close (`listener.rs`) | `--max-sockets-per-ip`, `--max-conns` | closed at accept, before a byte is read |
//! | long-lived streams (WebSocket, SSE, parked long poll) | handler → stream ends | `--max-conns-per-ip`, and overall the sockets minus the reserve | `429 too_many_connections` / `503 server_busy` |
//! | a request body | head complete → body complete | `--body-timeout-ms` | `408 request_timeout`, connection closed |
//! | a request head | first byte → head complete | `--body-timeout-ms` (actix's `client_request_timeout` for the first head, `listener.rs` for later ones) | `408` / connection closed |
//! | a write the client does not read | `--ws-send-timeout-ms` | — | connection closed (WebSocket: after close `1008`) |
//!
//! Two counters per address, because they measure different things: on HTTP/2 one socket
//! carries many streams, and on HTTP/1.1 a browser holds a keep-alive socket beside its stream.
//!
//! **The reserve.** The last eighth of `--max-conns` is kept for short requests: long-lived
//! streams overall stop at `max_conns − reserve`, and once that many sockets are open a new one
//! is accepted only from an address that holds fewer than [`SMALL_HOLDER`] sockets. So however
//! many streams a flood opens, from however many addresses, a newcomer's `GET /api/time` still
//! finds a socket. (Nothing stops an attacker with more addresses than the reserve has sockets;
//! that is a job for the network in front of the server.)
//!
//! The defaults suit a lecture hall behind one NAT address; `docs/security.md` gives the
//! arithmetic. Load tools and tests that need more raise the caps explicitly.

use std::cell::Cell;
use std::collections::HashMap;
use std::future::Future;
use std::net::{IpAddr, SocketAddr};
use std::pin::Pin;
use std::rc::Rc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use actix_web::{
    body::{BodySize, EitherBody, MessageBody},
    dev::{Payload, ServiceRequest, ServiceResponse},
    error::PayloadError,
    http::{ConnectionType, StatusCode, Version},
    middleware::Next,
    web::Bytes,
    HttpMessage, HttpRequest, ResponseError,
};
use futures_util::Stream;

use crate::config::Config;
use crate::error::ApiError;
use crate::forwarded::TrustedProxies;
use crate::listener::{ConnHandle, RequestGuard};
// The key joins are counted under too: IPv4 as is, IPv6 per /64 (the block one subscriber
// usually holds, so rotating addresses within it does not multiply the caps).
use crate::security::join_key as address_key;

/// Descriptors kept back from `--max-conns` for everything that is not a client socket: the
/// listeners, each worker's epoll and wake-up descriptors, static files being sent, the state
/// file, the certificate, stdio.
pub const FD_RESERVE: u64 = 256;

/// Once the reserve is being used, only an address holding fewer sockets than this gets a new
/// one: enough for a browser that opens its usual six connections to load a page.
pub const SMALL_HOLDER: u32 = 8;

/// How often a parked request on HTTP/2 looks whether its client is still there.
///
/// actix-http does not tell a handler that an HTTP/2 stream was reset (on HTTP/1.1 the socket
/// closing ends the request at once), so on HTTP/2 a parked long poll answers `204` after at most
/// this long and an idle SSE stream sends its keep-alive comment this often: a write to a reset
/// stream fails, and the request, with its slot, ends.
pub const H2_PARKED_CHECK: Duration = Duration::from_secs(4);

/// The numbers in force, derived from [`Config`] (after [`fit_descriptor_limit`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Sockets overall.
    pub sockets: u32,
    /// Sockets per address (`0` = no per-address cap).
    pub sockets_per_ip: u32,
    /// Sockets that long-lived streams and busy addresses cannot take.
    pub reserve: u32,
    /// Long-lived streams overall: `sockets − reserve`.
    pub streams: u32,
    /// Long-lived streams per address (`0` = no per-address cap).
    pub streams_per_ip: u32,
}

impl Limits {
    pub fn from_config(config: &Config) -> Limits {
        let sockets = if config.max_conns == 0 {
            u32::MAX
        } else {
            config.max_conns
        };
        let reserve = sockets.div_ceil(8);
        Limits {
            sockets,
            sockets_per_ip: config.max_sockets_per_ip,
            reserve,
            streams: sockets - reserve,
            streams_per_ip: config.max_conns_per_ip,
        }
    }
}

/// Raises this process's soft limit on open files to its hard limit (as Go's runtime and most
/// servers do) and lowers `config.max_conns` to what fits under it with [`FD_RESERVE`] to
/// spare (`0` becomes exactly that). Returns the descriptor limit.
pub fn fit_descriptor_limit(config: &mut Config) -> u64 {
    let limit = raise_nofile_limit();
    let fits = u32::try_from(limit.saturating_sub(FD_RESERVE).max(1)).unwrap_or(u32::MAX);
    if config.max_conns == 0 {
        config.max_conns = fits;
    } else if config.max_conns > fits {
        tracing::warn!(
            asked = config.max_conns,
            lowered_to = fits,
            descriptor_limit = limit,
            "--max-conns lowered to fit the open-files limit"
        );
        config.max_conns = fits;
    }
    limit
}

/// `RLIMIT_NOFILE`: the soft limit raised to the hard one; the soft limit if that fails.
fn raise_nofile_limit() -> u64 {
    let mut lim = libc::rlimit {
        rlim_cur: 0,
        rlim_max: 0,
    };
    // SAFETY: getrlimit/setrlimit only read and write the struct we pass.
    unsafe {
        if libc::getrlimit(libc::RLIMIT_NOFILE, &mut lim) != 0 {
            return 1024;
        }
        if lim.rlim_cur < lim.rlim_max {
            let raised = libc::rlimit {
                rlim_cur: lim.rlim_max,
                rlim_max: lim.rlim_max,
            };
            if libc::setrlimit(libc::RLIMIT_NOFILE, &raised) == 0 {
                lim.rlim_cur = lim.rlim_max;
            }
        }
    }
    lim.rlim_cur
}

/// Why a socket was closed at accept.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// The address already holds `--max-sockets-per-ip`.
    PerAddress,
    /// `--max-conns` sockets are open.
    Full,
    /// Only the reserve is left, and this address already holds [`SMALL_HOLDER`] or more.
    Reserve,
    /// The peer's address is unknown: the connection is already gone.
    NoPeer,
}

#[derive(Debug, Default)]
struct Counts {
    total: u32,
    per_ip: HashMap<IpAddr, u32>,
}

impl Counts {
    fn take(&mut self, ip: IpAddr) {
        self.total += 1;
        *self.per_ip.entry(ip).or_insert(0) += 1;
    }

    fn give_back(&mut self, ip: IpAddr) {
        self.total = self.total.saturating_sub(1);
        if let Some(n) = self.per_ip.get_mut(&ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                self.per_ip.remove(&ip);
            }
        }
    }
}

/// Counts TCP/TLS connections per address and overall, from accept to close. Shared by every
/// listener and worker (one mutex taken twice per connection: cheap next to a TCP handshake).
#[derive(Debug, Clone)]
pub struct SocketLimiter {
    limits: Limits,
    counts: Arc<Mutex<Counts>>,
    refused: Arc<RefusalLog>,
    /// `--trusted-proxy`: their sockets carry many clients, so they are exempt from the
    /// per-address cap (and the reserve's rule for busy addresses); they still count overall.
    trusted: Arc<TrustedProxies>,
}

/// One counted socket; dropping it (the connection closed) gives the count back.
#[derive(Debug)]
pub struct SocketPermit {
    counts: Arc<Mutex<Counts>>,
    ip: IpAddr,
}

impl Drop for SocketPermit {
    fn drop(&mut self) {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .give_back(self.ip);
    }
}

impl SocketLimiter {
    pub fn new(limits: Limits) -> SocketLimiter {
        SocketLimiter {
            limits,
            counts: Arc::default(),
            refused: Arc::default(),
            trusted: Arc::default(),
        }
    }

    /// The same limiter, trusting `proxies` (see the field).
    pub fn trusting(mut self, proxies: TrustedProxies) -> SocketLimiter {
        self.trusted = Arc::new(proxies);
        self
    }

    /// Whether `ip` is a `--trusted-proxy` (whose PROXY protocol header the TLS port reads).
    pub fn trusts(&self, ip: IpAddr) -> bool {
        self.trusted.trusts(ip)
    }

    /// Decides on a freshly accepted socket: a permit to hold for its lifetime, or a refusal
    /// (the caller closes the socket).
    pub fn admit(&self, peer: Option<SocketAddr>) -> Result<SocketPermit, Refusal> {
        let verdict = self.decide(peer);
        if let Err(why) = verdict {
            self.refused.note(why, peer.map(|p| p.ip()), &self.limits);
        }
        verdict
    }

    fn decide(&self, peer: Option<SocketAddr>) -> Result<SocketPermit, Refusal> {
        let peer_ip = peer.ok_or(Refusal::NoPeer)?.ip();
        let ip = address_key(peer_ip);
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        // A trusted proxy's sockets carry its clients: only the overall cap applies to them.
        let held = if self.trusted.trusts(peer_ip) {
            0
        } else {
            counts.per_ip.get(&ip).copied().unwrap_or(0)
        };
        let Limits {
            sockets,
            sockets_per_ip,
            reserve,
            ..
        } = self.limits;
        if sockets_per_ip > 0 && held >= sockets_per_ip {
            return Err(Refusal::PerAddress);
        }
        if counts.total >= sockets {
            return Err(Refusal::Full);
        }
        if counts.total >= sockets - reserve && held >= SMALL_HOLDER {
            return Err(Refusal::Reserve);
        }
        counts.take(ip);
        Ok(SocketPermit {
            counts: self.counts.clone(),
            ip,
        })
    }

    /// Sockets open now (all addresses).
    pub fn open(&self) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// A cap a client can run into, with the flag that raises it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Cap {
    SocketsPerIp,
    Sockets,
    StreamsPerIp,
    Streams,
    JoinRate,
    JoinRateTotal,
    MaxPlayers,
}

impl Cap {
    /// The command-line flag that sets this cap.
    pub fn flag(self) -> &'static str {
        match self {
            Cap::SocketsPerIp => "--max-sockets-per-ip",
            Cap::Sockets | Cap::Streams => "--max-conns",
            Cap::StreamsPerIp => "--max-conns-per-ip",
            Cap::JoinRate => "--join-rate",
            Cap::JoinRateTotal => "--join-rate-total",
            Cap::MaxPlayers => "--max-players",
        }
    }

    fn what(self) -> &'static str {
        match self {
            Cap::SocketsPerIp => "connections from one address",
            Cap::Sockets => "connections overall",
            Cap::StreamsPerIp => "long-lived streams from one address",
            Cap::Streams => "long-lived streams overall (connections minus the reserve)",
            Cap::JoinRate => "joins per minute from one address",
            Cap::JoinRateTotal => "joins per minute overall",
            Cap::MaxPlayers => "players",
        }
    }

    /// The log line for `ip` reaching this cap of `limit`.
    pub fn message(self, limit: u64, ip: Option<IpAddr>) -> String {
        let who = ip.map_or_else(|| "a client".to_string(), |ip| ip.to_string());
        format!(
            "{who} reached the cap of {limit} {}; if a whole room shares this address (a campus \
             NAT does that), raise it with {} N (docs/security.md, section 7)",
            self.what(),
            self.flag()
        )
    }
}

/// Says, once per address and cap, that an address reached a cap and which flag raises it: in
/// a lecture hall behind one NAT address the lecturer needs that line, and needs it once — a
/// hundred refused phones must not become a hundred log lines. Remembers at most
/// [`CapLog::MAX_ADDRESSES`] pairs (a flood from many addresses is then summed up once).
#[derive(Debug, Default)]
pub struct CapLog {
    seen: Mutex<std::collections::HashSet<(Cap, Option<IpAddr>)>>,
}

impl CapLog {
    pub const MAX_ADDRESSES: usize = 4096;

    /// Logs the first time `ip` (IPv6 per /64) reaches `cap`; `true` if this call logged.
    pub fn note(&self, cap: Cap, limit: u64, ip: Option<IpAddr>) -> bool {
        let key = (cap, ip.map(address_key));
        let mut seen = self.seen.lock().unwrap_or_else(PoisonError::into_inner);
        if seen.len() >= Self::MAX_ADDRESSES || !seen.insert(key) {
            return false;
        }
        tracing::warn!(cap = cap.flag(), limit, ?ip, "{}", cap.message(limit, ip));
        if seen.len() == Self::MAX_ADDRESSES {
            tracing::warn!(
                "{} addresses have reached caps; further ones are not logged one by one",
                Self::MAX_ADDRESSES
            );
        }
        true
    }
}

/// Refusals at accept are counted and logged at most once a second: a flood must not become a
/// flood of log lines too. The first refusal of each address under each cap is logged with
/// the flag that raises it ([`CapLog`]).
#[derive(Debug)]
struct RefusalLog {
    count: AtomicU64,
    last: Mutex<Instant>,
    caps: CapLog,
}

impl Default for RefusalLog {
    fn default() -> Self {
        RefusalLog {
            count: AtomicU64::new(0),
            last: Mutex::new(Instant::now() - Duration::from_secs(2)),
            caps: CapLog::default(),
        }
    }
}

impl RefusalLog {
    fn note(&self, why: Refusal, ip: Option<IpAddr>, limits: &Limits) {
        // The client hung up before we looked (a proxy's TCP health check does that every
        // second): nobody to tell the operator about.
        if why == Refusal::NoPeer {
            tracing::debug!("a connection was gone before it was accepted");
            return;
        }
        let count = self.count.fetch_add(1, Ordering::Relaxed) + 1;
        let first = match why {
            Refusal::PerAddress => {
                self.caps
                    .note(Cap::SocketsPerIp, u64::from(limits.sockets_per_ip), ip)
            }
            Refusal::Full | Refusal::Reserve => {
                self.caps.note(Cap::Sockets, u64::from(limits.sockets), ip)
            }
            Refusal::NoPeer => false,
        };
        if first {
            return;
        }
        let mut last = self.last.lock().unwrap_or_else(PoisonError::into_inner);
        if last.elapsed() >= Duration::from_secs(1) {
            *last = Instant::now();
            tracing::warn!(
                ?why,
                ?ip,
                refused_so_far = count,
                "connection closed at accept (connection limits; see docs/security.md)"
            );
        }
    }
}

/// Counts long-lived streams (WebSocket, SSE, parked long polls) per client address and
/// overall. The overall cap sits below the socket cap (see the reserve above), so streams can
/// never take the sockets short requests need.
#[derive(Debug, Clone)]
pub struct ConnLimiter {
    max: u32,
    total_max: u32,
    counts: Arc<Mutex<Counts>>,
    caps: Arc<CapLog>,
}

/// One counted stream; dropping it frees the slot.
#[derive(Debug)]
pub struct ConnSlot {
    counts: Option<(Arc<Mutex<Counts>>, IpAddr)>,
}

impl Drop for ConnSlot {
    fn drop(&mut self) {
        if let Some((counts, ip)) = &self.counts {
            counts
                .lock()
                .unwrap_or_else(PoisonError::into_inner)
                .give_back(*ip);
        }
    }
}

impl ConnLimiter {
    /// `max` streams per address (`0` = no per-address limit) and no overall limit.
    pub fn new(max: u32) -> ConnLimiter {
        ConnLimiter {
            max,
            total_max: u32::MAX,
            counts: Arc::default(),
            caps: Arc::default(),
        }
    }

    /// The per-address and overall stream caps of `config`.
    pub fn for_config(config: &Config) -> ConnLimiter {
        let limits = Limits::from_config(config);
        ConnLimiter::new(limits.streams_per_ip).with_total(limits.streams)
    }

    /// At most `total` streams overall.
    pub fn with_total(mut self, total: u32) -> ConnLimiter {
        self.total_max = total;
        self
    }

    pub fn acquire(&self, peer: Option<SocketAddr>) -> Result<ConnSlot, ApiError> {
        let Some(ip) = peer.map(|p| address_key(p.ip())) else {
            return Ok(ConnSlot { counts: None });
        };
        let mut counts = self.counts.lock().unwrap_or_else(PoisonError::into_inner);
        let held = counts.per_ip.get(&ip).copied().unwrap_or(0);
        if self.max > 0 && held >= self.max {
            self.caps
                .note(Cap::StreamsPerIp, u64::from(self.max), peer.map(|p| p.ip()));
            return Err(ApiError::new(
                StatusCode::TOO_MANY_REQUESTS,
                "too_many_connections",
                format!("at most {} open connections per address", self.max),
            )
            .retry_after(1));
        }
        if counts.total >= self.total_max {
            self.caps.note(
                Cap::Streams,
                u64::from(self.total_max),
                peer.map(|p| p.ip()),
            );
            return Err(ApiError::new(
                StatusCode::SERVICE_UNAVAILABLE,
                "server_busy",
                format!(
                    "the server holds its maximum of {} long-lived connections; short requests \
                     still work, try again shortly",
                    self.total_max
                ),
            )
            .retry_after(5));
        }
        counts.take(ip);
        Ok(ConnSlot {
            counts: Some((self.counts.clone(), ip)),
        })
    }

    /// Streams open now (all addresses).
    pub fn open(&self) -> u32 {
        self.counts
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .total
    }
}

/// How long a parked request may wait before it must look whether its client is still there:
/// `wanted` on HTTP/1.1 (a closed socket ends the request at once), at most
/// [`H2_PARKED_CHECK`] on HTTP/2.
pub fn parked_wait(req: &HttpRequest, wanted: Duration) -> Duration {
    if req.version() == Version::HTTP_2 {
        wanted.min(H2_PARKED_CHECK)
    } else {
        wanted
    }
}

/// The request body's deadline, as seen by the request's own code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Deadline {
    Armed,
    /// A handler turned the body into a stream of its own (a WebSocket).
    Disarmed,
    /// The deadline passed while someone waited for the body.
    Expired,
}

/// Put in the request's extensions by [`body_deadline`]; see [`disarm_body_deadline`].
#[derive(Debug, Clone)]
struct DeadlineHandle(Rc<Cell<Deadline>>);

/// For handlers whose request body is a stream without end (the WebSocket upgrade: its "body"
/// is the socket's frames): from now on the body has no deadline.
pub fn disarm_body_deadline(req: &HttpRequest) {
    if let Some(handle) = req.extensions().get::<DeadlineHandle>() {
        if handle.0.get() == Deadline::Armed {
            handle.0.set(Deadline::Disarmed);
        }
    }
    if let Some(conn) = ConnHandle::of(req) {
        conn.upgraded();
    }
}

/// The request body with a deadline: once it passes, reading yields an I/O `TimedOut` error and
/// then ends.
struct TimedPayload {
    inner: Payload,
    deadline: Pin<Box<tokio::time::Sleep>>,
    state: Rc<Cell<Deadline>>,
}

impl Stream for TimedPayload {
    type Item = Result<Bytes, PayloadError>;

    fn poll_next(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Option<Self::Item>> {
        let this = self.get_mut();
        match this.state.get() {
            Deadline::Expired => return Poll::Ready(None),
            Deadline::Disarmed => return Pin::new(&mut this.inner).poll_next(cx),
            Deadline::Armed => {}
        }
        match Pin::new(&mut this.inner).poll_next(cx) {
            Poll::Pending => {
                if this.deadline.as_mut().poll(cx).is_ready() {
                    this.state.set(Deadline::Expired);
                    return Poll::Ready(Some(Err(PayloadError::Io(std::io::Error::new(
                        std::io::ErrorKind::TimedOut,
                        "the request body did not arrive in time",
                    )))));
                }
                Poll::Pending
            }
            ready => ready,
        }
    }
}

/// Middleware: gives every request body `timeout` from the moment its head is complete. A
/// handler that was still waiting for the body when the deadline passed answers
/// `408 request_timeout` (whatever it made of the broken body), and the connection is closed, so
/// its socket — and its place in the per-address count — is freed.
///
/// actix-http bounds the *first* request head on a connection (`client_request_timeout`) but
/// not a body: without this, `Content-Length: 100` followed by four bytes held a connection
/// (and the handler reading it) forever.
pub async fn body_deadline(
    timeout: Duration,
    mut req: ServiceRequest,
    next: Next<impl MessageBody + 'static>,
) -> Result<ServiceResponse<EitherBody<impl MessageBody>>, actix_web::Error> {
    let payload = req.take_payload();
    // HTTP/1.1: the connection is busy until the response body is done (see `listener.rs`).
    let busy = req
        .conn_data::<ConnHandle>()
        .filter(|_| req.version() < Version::HTTP_2)
        .map(ConnHandle::request_started);
    let state = if matches!(payload, Payload::None) {
        None
    } else {
        let state = Rc::new(Cell::new(Deadline::Armed));
        let timed = TimedPayload {
            inner: payload,
            deadline: Box::pin(tokio::time::sleep(timeout)),
            state: state.clone(),
        };
        req.set_payload(Payload::Stream {
            payload: Box::pin(timed),
        });
        req.extensions_mut().insert(DeadlineHandle(state.clone()));
        Some(state)
    };
    let res = next.call(req).await?;
    if state.is_some_and(|s| s.get() == Deadline::Expired) {
        let err = ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request_timeout",
            format!(
                "the request body did not arrive within {} ms",
                timeout.as_millis()
            ),
        );
        let mut timed_out = err.error_response();
        timed_out
            .head_mut()
            .set_connection_type(ConnectionType::Close);
        return Ok(res.into_response(timed_out).map_into_right_body());
    }
    Ok(res
        .map_body(|_, body| Busy { body, _busy: busy })
        .map_into_left_body())
}

pin_project_lite::pin_project! {
    /// A response body that keeps its HTTP/1.1 connection marked busy until it is done (for
    /// an SSE stream: until the stream ends), so the next-head deadline starts only then.
    pub struct Busy<B> {
        #[pin]
        body: B,
        _busy: Option<RequestGuard>,
    }
}

impl<B: MessageBody> MessageBody for Busy<B> {
    type Error = B::Error;

    fn size(&self) -> BodySize {
        self.body.size()
    }

    fn poll_next(
        self: Pin<&mut Self>,
        cx: &mut Context<'_>,
    ) -> Poll<Option<Result<Bytes, Self::Error>>> {
        self.project().body.poll_next(cx)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn limits(sockets: u32, per_ip: u32) -> Limits {
        let mut config = Config::for_tests();
        config.max_conns = sockets;
        config.max_sockets_per_ip = per_ip;
        Limits::from_config(&config)
    }

    fn addr(last: u8) -> Option<SocketAddr> {
        Some(SocketAddr::from(([127, 0, 0, last], 1000)))
    }

    #[test]
    fn the_default_caps_fit_a_lecture_hall_behind_one_address() {
        let l = Limits::from_config(&Config::for_tests());
        // A hundred phones, each with a stream and a keep-alive socket, plus page loads.
        assert!(l.streams_per_ip >= 200, "{l:?}");
        assert!(l.sockets_per_ip >= 2 * 100 + 6 * 20, "{l:?}");
        assert!(
            l.streams < l.sockets && l.reserve >= l.sockets / 10,
            "{l:?}"
        );
    }

    #[test]
    fn sockets_are_capped_per_address_and_the_permit_gives_its_place_back() {
        let limiter = SocketLimiter::new(limits(100, 2));
        let a = limiter.admit(addr(2)).unwrap();
        let _b = limiter.admit(addr(2)).unwrap();
        assert_eq!(limiter.admit(addr(2)).unwrap_err(), Refusal::PerAddress);
        let _c = limiter.admit(addr(3)).expect("another address is served");
        assert_eq!(limiter.admit(None).unwrap_err(), Refusal::NoPeer);
        drop(a);
        let _d = limiter.admit(addr(2)).expect("a place given back");
        assert_eq!(limiter.open(), 3, "the dropped permit counted out");
    }

    #[test]
    fn ipv6_addresses_count_per_64_and_mapped_ipv4_as_ipv4() {
        let sockets = SocketLimiter::new(limits(100, 2));
        let v6 = |s: &str| Some(SocketAddr::new(s.parse().unwrap(), 1000));
        let _a = sockets.admit(v6("2001:db8:1:2::1")).unwrap();
        let _b = sockets.admit(v6("2001:db8:1:2:ffff::9")).unwrap();
        assert_eq!(
            sockets.admit(v6("2001:db8:1:2::77")).unwrap_err(),
            Refusal::PerAddress,
            "the same /64"
        );
        assert!(sockets.admit(v6("2001:db8:1:3::1")).is_ok(), "another /64");
        let streams = ConnLimiter::new(1);
        let _c = streams.acquire(addr(9)).unwrap();
        assert!(
            streams.acquire(v6("::ffff:127.0.0.9")).is_err(),
            "mapped IPv4"
        );
    }

    #[test]
    fn the_reserve_is_only_for_addresses_holding_few_sockets() {
        // 16 sockets: a reserve of 2.
        let limiter = SocketLimiter::new(limits(16, 0));
        let busy: Vec<_> = (0..14).map(|_| limiter.admit(addr(2)).unwrap()).collect();
        assert_eq!(limiter.admit(addr(2)).unwrap_err(), Refusal::Reserve);
        let newcomer = limiter.admit(addr(3)).unwrap();
        let _second = limiter.admit(addr(3)).unwrap();
        assert_eq!(limiter.admit(addr(4)).unwrap_err(), Refusal::Full);
        drop(newcomer);
        drop(busy);
        assert!(limiter.admit(addr(2)).is_ok());
    }

    #[test]
    fn streams_are_capped_per_address_with_429_and_overall_with_503() {
        let limiter = ConnLimiter::new(2).with_total(3);
        let a = limiter.acquire(addr(2)).unwrap();
        let _b = limiter.acquire(addr(2)).unwrap();
        let err = limiter.acquire(addr(2)).unwrap_err();
        assert_eq!(
            (err.status.as_u16(), err.code),
            (429, "too_many_connections")
        );
        let _c = limiter.acquire(addr(3)).unwrap();
        let err = limiter.acquire(addr(4)).unwrap_err();
        assert_eq!((err.status.as_u16(), err.code), (503, "server_busy"));
        assert_eq!(err.retry_after, Some(5));
        drop(a);
        assert!(limiter.acquire(addr(4)).is_ok());
    }

    #[test]
    fn each_address_is_logged_once_per_cap_with_the_flag_that_raises_it() {
        let log = CapLog::default();
        let ip = |s: &str| Some(s.parse::<IpAddr>().unwrap());
        assert!(log.note(Cap::SocketsPerIp, 512, ip("192.0.2.1")));
        assert!(!log.note(Cap::SocketsPerIp, 512, ip("192.0.2.1")), "once");
        assert!(log.note(Cap::StreamsPerIp, 256, ip("192.0.2.1")), "per cap");
        assert!(
            log.note(Cap::SocketsPerIp, 512, ip("192.0.2.2")),
            "per address"
        );
        assert!(log.note(Cap::JoinRate, 120, ip("2001:db8:1:2::1")));
        assert!(
            !log.note(Cap::JoinRate, 120, ip("2001:db8:1:2::ff")),
            "one /64 is one address"
        );
        let line = Cap::SocketsPerIp.message(512, ip("192.0.2.1"));
        assert!(line.contains("192.0.2.1"), "{line}");
        assert!(line.contains("512"), "{line}");
        assert!(line.contains("--max-sockets-per-ip"), "{line}");
        for (cap, flag) in [
            (Cap::StreamsPerIp, "--max-conns-per-ip"),
            (Cap::Streams, "--max-conns"),
            (Cap::JoinRateTotal, "--join-rate-total"),
            (Cap::MaxPlayers, "--max-players"),
        ] {
            assert!(cap.message(1, None).contains(flag), "{cap:?}");
        }
        // Bounded: past the limit nothing more is remembered (or logged).
        let many = CapLog::default();
        for i in 0..CapLog::MAX_ADDRESSES as u32 {
            many.note(
                Cap::Sockets,
                1,
                Some(IpAddr::from(std::net::Ipv4Addr::from(i))),
            );
        }
        assert!(!many.note(Cap::Sockets, 1, ip("203.0.113.9")));
    }

    #[test]
    fn zero_means_no_cap() {
        let mut config = Config::for_tests();
        config.max_conns = 0;
        config.max_conns_per_ip = 0;
        let limiter = ConnLimiter::for_config(&config);
        let slots: Vec<_> = (0..1000)
            .map(|_| limiter.acquire(addr(2)).unwrap())
            .collect();
        assert_eq!(limiter.open(), 1000);
        drop(slots);
        assert_eq!(limiter.open(), 0);
    }

    #[test]
    fn max_conns_is_lowered_to_fit_the_descriptor_limit() {
        let mut config = Config::for_tests();
        config.max_conns = u32::MAX;
        let limit = fit_descriptor_limit(&mut config);
        assert!(u64::from(config.max_conns) + FD_RESERVE <= limit.max(FD_RESERVE + 1));
        let mut config = Config::for_tests();
        config.max_conns = 0;
        fit_descriptor_limit(&mut config);
        assert!(config.max_conns > 0);
    }
}
