//! # One-time connection tickets
//!
//! `EventSource` and `WebSocket` cannot send an `Authorization` header, and a page that holds
//! several players (the compare page's race bots) cannot use the one session cookie for all of
//! them. So a player may trade their token for a **ticket** (`POST /api/ticket`) and put it in
//! the URL of one downstream connection (`?ticket=t<player id>.<32 hex>`): it is good once, for
//! [`TICKET_TTL`], and says nothing about the long-lived token if a URL leaks into a log.
//!
//! A ticket is *checked* when a request arrives and *spent* only once the request is accepted
//! (`session.rs`, `MaybePlayer::commit`), so a request refused for a reason of its own leaves
//! the ticket for its retry. Issuing is bounded per player: a few unspent at a time, and a
//! token bucket for the rate.
//!
//! This is its own store beside the hub, not part of it: the hub runs the game, and a ticket
//! only needs to know whether its player still has a session (the `has_session` callback).
//! Lock order: the ticket store before the hub's core (nothing takes them the other way round).

use std::collections::HashMap;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use std::time::{Duration, Instant};

use crate::game::PlayerId;
use crate::secret::{hex, random_bytes, same, unhex};

/// How long a one-time connection ticket stays valid.
pub const TICKET_TTL: Duration = Duration::from_secs(30);
/// Unspent tickets one player may hold at once; asking for one more is refused until one is
/// spent or expires. A page needs one per connection it is opening, so a few are plenty.
pub const MAX_OUTSTANDING_TICKETS: usize = 4;
/// Tickets a player may be issued in a burst...
pub const TICKET_BURST: f64 = 8.0;
/// ...and per second after it, on average (a token bucket).
pub const TICKET_RATE_PER_SEC: f64 = 2.0;

/// Why no ticket was issued; both are `429` with `Retry-After`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TicketRefusal {
    /// The player already holds [`MAX_OUTSTANDING_TICKETS`] unspent ones.
    TooManyOutstanding { retry_after_s: u64 },
    /// Over [`TICKET_RATE_PER_SEC`] after a burst of [`TICKET_BURST`].
    TooFast { retry_after_s: u64 },
}

/// One player's tickets: the unspent ones, and the bucket their issuing draws from.
struct PlayerTickets {
    /// Secret and expiry of each unspent ticket; at most [`MAX_OUTSTANDING_TICKETS`].
    live: Vec<([u8; 16], Instant)>,
    tokens: f64,
    refilled: Instant,
}

impl PlayerTickets {
    fn refill(&mut self, now: Instant) {
        let earned = now.duration_since(self.refilled).as_secs_f64() * TICKET_RATE_PER_SEC;
        self.tokens = (self.tokens + earned).min(TICKET_BURST);
        self.refilled = now;
    }

    /// Nothing to remember: no unspent ticket and a full bucket.
    fn idle(&mut self, now: Instant) -> bool {
        self.live.retain(|(_, expires)| *expires > now);
        self.refill(now);
        self.live.is_empty() && self.tokens >= TICKET_BURST
    }
}

/// Every player's tickets. Keyed by player (tickets are `t<player id>.<secret>`, like session
/// tokens), so issuing and redeeming touch one player's few entries, never the whole map: the
/// first version swept all unexpired tickets on every issue, and a client asking in a loop
/// brought throughput from 7.3k to 2.6k requests/s.
struct Book {
    players: HashMap<PlayerId, PlayerTickets>,
    /// When idle entries were last dropped (at most once per [`TICKET_TTL`]).
    swept: Instant,
}

/// The ticket store; cheap to clone (an `Arc`), shared by every worker.
#[derive(Clone)]
pub struct Tickets {
    book: Arc<Mutex<Book>>,
}

impl Default for Tickets {
    fn default() -> Self {
        Tickets {
            book: Arc::new(Mutex::new(Book {
                players: HashMap::new(),
                swept: Instant::now(),
            })),
        }
    }
}

/// A wait rounded up to whole seconds, at least 1: the unit of `Retry-After`.
fn whole_seconds(wait: Duration) -> u64 {
    wait.as_secs_f64().ceil().max(1.0) as u64
}

impl Tickets {
    /// A ticket that authenticates one connection as `player` via `?ticket=`. Refused when the
    /// player already holds [`MAX_OUTSTANDING_TICKETS`] unspent ones or asks too fast.
    pub fn issue(&self, player: PlayerId) -> Result<String, TicketRefusal> {
        let now = Instant::now();
        let mut book = self.book();
        if now.duration_since(book.swept) >= TICKET_TTL {
            book.players.retain(|_, t| !t.idle(now));
            book.swept = now;
        }
        let mine = book.players.entry(player).or_insert_with(|| PlayerTickets {
            live: Vec::new(),
            tokens: TICKET_BURST,
            refilled: now,
        });
        mine.live.retain(|(_, expires)| *expires > now);
        if mine.live.len() >= MAX_OUTSTANDING_TICKETS {
            let first_expiry = mine.live.iter().map(|(_, e)| *e).min().unwrap_or(now);
            return Err(TicketRefusal::TooManyOutstanding {
                retry_after_s: whole_seconds(first_expiry.duration_since(now)),
            });
        }
        mine.refill(now);
        if mine.tokens < 1.0 {
            let wait = (1.0 - mine.tokens) / TICKET_RATE_PER_SEC;
            return Err(TicketRefusal::TooFast {
                retry_after_s: whole_seconds(Duration::from_secs_f64(wait)),
            });
        }
        mine.tokens -= 1.0;
        let secret = random_bytes::<16>();
        mine.live.push((secret, now + TICKET_TTL));
        Ok(format!("t{player}.{}", hex(&secret)))
    }

    /// Takes one ticket's worth from `player`'s bucket without issuing a ticket: in a cluster
    /// the tickets themselves are MAC'd (`cluster/sessions.rs`) and spent in Redis, so only the
    /// rate is bounded here (on the node running the game); the outstanding count is not kept,
    /// because this node never hears of a ticket being spent on another.
    pub fn allow(&self, player: PlayerId) -> Result<(), TicketRefusal> {
        let now = Instant::now();
        let mut book = self.book();
        let mine = book.players.entry(player).or_insert_with(|| PlayerTickets {
            live: Vec::new(),
            tokens: TICKET_BURST,
            refilled: now,
        });
        mine.refill(now);
        if mine.tokens < 1.0 {
            let wait = (1.0 - mine.tokens) / TICKET_RATE_PER_SEC;
            return Err(TicketRefusal::TooFast {
                retry_after_s: whole_seconds(Duration::from_secs_f64(wait)),
            });
        }
        mine.tokens -= 1.0;
        Ok(())
    }

    /// The player a ticket was issued to, if it is valid, unspent, and `has_session` says the
    /// player is still there; does not spend it.
    pub fn check(
        &self,
        ticket: &str,
        has_session: impl FnOnce(PlayerId) -> bool,
    ) -> Option<PlayerId> {
        self.find(ticket, false, has_session)
    }

    /// Spends a ticket: the player it was issued to, if it is valid and unspent and the player
    /// is still there. Atomic: of two callers with the same ticket, exactly one gets the player.
    pub fn redeem(
        &self,
        ticket: &str,
        has_session: impl FnOnce(PlayerId) -> bool,
    ) -> Option<PlayerId> {
        self.find(ticket, true, has_session)
    }

    fn find(
        &self,
        ticket: &str,
        spend: bool,
        has_session: impl FnOnce(PlayerId) -> bool,
    ) -> Option<PlayerId> {
        let (id, secret) = ticket.strip_prefix('t')?.split_once('.')?;
        let player: PlayerId = id.parse().ok()?;
        let given = unhex::<16>(secret)?;
        let now = Instant::now();
        let mut book = self.book();
        let mine = book.players.get_mut(&player)?;
        let index = mine
            .live
            .iter()
            .position(|(s, expires)| *expires > now && same(s, &given))?;
        // A player who left takes their tickets along.
        if !has_session(player) {
            return None;
        }
        if spend {
            mine.live.swap_remove(index);
        }
        Some(player)
    }

    fn book(&self) -> MutexGuard<'_, Book> {
        self.book.lock().unwrap_or_else(PoisonError::into_inner)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ADA: PlayerId = 1;
    const BOB: PlayerId = 2;

    fn anyone(_: PlayerId) -> bool {
        true
    }

    #[test]
    fn a_ticket_is_checked_without_spending_and_redeemed_once_by_its_player_only() {
        let tickets = Tickets::default();
        let t = tickets.issue(ADA).unwrap();
        assert_eq!(tickets.check(&t, anyone), Some(ADA));
        assert_eq!(
            tickets.check(&t, anyone),
            Some(ADA),
            "checking spends nothing"
        );
        // The same secret under another player's id is no ticket.
        let forged = t.replacen(&format!("t{ADA}."), &format!("t{BOB}."), 1);
        assert_eq!(tickets.check(&forged, anyone), None);
        for bad in ["", "t", "t1", "t1.", "tx.00", "1.00", &format!("{t}0")] {
            assert_eq!(tickets.check(bad, anyone), None, "{bad:?}");
        }
        assert_eq!(tickets.redeem(&t, anyone), Some(ADA));
        assert_eq!(tickets.redeem(&t, anyone), None);
        assert_eq!(tickets.check(&t, anyone), None);
        // A player who left takes their tickets along.
        let t = tickets.issue(BOB).unwrap();
        assert_eq!(tickets.redeem(&t, |p| p != BOB), None);
    }

    #[test]
    fn of_threads_racing_to_redeem_one_ticket_exactly_one_wins() {
        let tickets = Tickets::default();
        for _ in 0..20 {
            let t = tickets.issue(ADA).unwrap();
            let winners: usize = std::thread::scope(|s| {
                let runs: Vec<_> = (0..8)
                    .map(|_| s.spawn(|| tickets.redeem(&t, anyone).is_some()))
                    .collect();
                runs.into_iter()
                    .map(|r| usize::from(r.join().unwrap()))
                    .sum()
            });
            assert_eq!(winners, 1);
            // Let the bucket refill so the loop is about the race, not the rate.
            tickets.book().players.clear();
        }
    }

    #[test]
    fn tickets_are_bounded_per_player_and_issued_at_a_limited_rate() {
        let tickets = Tickets::default();
        let held: Vec<String> = (0..MAX_OUTSTANDING_TICKETS)
            .map(|_| tickets.issue(ADA).unwrap())
            .collect();
        match tickets.issue(ADA) {
            Err(TicketRefusal::TooManyOutstanding { retry_after_s }) => {
                assert!((29..=30).contains(&retry_after_s), "{retry_after_s}")
            }
            other => panic!("{other:?}"),
        }
        for t in &held {
            tickets.redeem(t, anyone).unwrap();
        }
        // The burst is TICKET_BURST in all, spent or not; then the bucket says when.
        let mut issued = held.len();
        while let Ok(t) = tickets.issue(ADA) {
            tickets.redeem(&t, anyone).unwrap();
            issued += 1;
        }
        assert_eq!(issued, TICKET_BURST as usize);
        assert_eq!(
            tickets.issue(ADA),
            Err(TicketRefusal::TooFast { retry_after_s: 1 })
        );
        assert!(tickets.issue(BOB).is_ok(), "per player");
    }
}
