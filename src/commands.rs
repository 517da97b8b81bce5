//! # Commands: what a client asks of the game, run here or by the node that runs it
//!
//! Everything a client (or the lecturer) can ask that changes the game is one [`Command`]:
//! join, click, leave, ask for a ticket, and the lecturer's controls. [`Commands::run`] is the
//! one way the handlers give one:
//!
//! * **One process** (no `--redis-url`): [`Commands::execute`] runs it on the hub at once,
//!   exactly as the handlers used to — the limits first, then the game.
//! * **A cluster**: the command is serialised (JSON) and forwarded to the node holding the lease
//!   (`cluster/forward.rs`), which runs the same [`Commands::execute`] on its game and answers
//!   with a [`Reply`] or an error, in JSON too. So the limits that protect the game — clicks
//!   per player, joins per address and overall, the player cap, tickets per player — are
//!   checked in one place and hold for the whole cluster, and the answer a client gets does
//!   not depend on the node it asked. Failures of the cluster itself (Redis away, no authority
//!   during a failover, no answer in time) are `503` with `Retry-After: 1`.
//!
//! On the authority, [`GameCore::execute`] wraps [`Commands::execute`] so that a command's
//! events and its answer reach Redis in **one** script call (`cluster/stream.rs`): a retry
//! with the same idempotency key is answered from there instead of running twice.
//!
//! The client address a join carries is the one `forwarded.rs` believes, so the per-address
//! join limit sees the real client behind the proxy.

use std::net::IpAddr;

use actix_web::{http::StatusCode, web};
use serde::{Deserialize, Serialize};

use crate::cluster::{Commit, Committed, GameCore, IdemKey};
use crate::error::{to_json, ApiError};
use crate::game::{Click, ClickOutcome, GameError, NameCheck, PlayerId, Transport};
use crate::hub::Hub;
use crate::log::now_ms;
use crate::security::{JoinLimiter, RateLimiter};
use crate::tickets::{
    TicketRefusal, Tickets, MAX_OUTSTANDING_TICKETS, TICKET_BURST, TICKET_RATE_PER_SEC,
};

/// One thing a client asks of the game. In a cluster this travels as JSON to the authority.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "cmd", rename_all = "snake_case", deny_unknown_fields)]
pub enum Command {
    /// `addr`: the client's address as the receiving node believes it (`forwarded.rs`);
    /// `naive`: the lab's input defence is off there, so the name is stored as sent.
    Join {
        name: String,
        addr: Option<IpAddr>,
        #[serde(default)]
        naive: bool,
    },
    Click {
        player: PlayerId,
        round: u64,
        x: f64,
        y: f64,
    },
    Leave {
        player: PlayerId,
    },
    /// A player was heard from over `transport` (their idle clock, their scoreboard label).
    Contact {
        player: PlayerId,
        transport: Transport,
    },
    /// The live round reached the player at `at` (the delivering node's clock, ms) over `via`,
    /// with that node's simulated delay `delay_ms` for it (`Game::round_delivered`).
    Delivered {
        player: PlayerId,
        round: u64,
        at: u64,
        via: Transport,
        #[serde(default)]
        delay_ms: u64,
    },
    Ticket {
        player: PlayerId,
    },
    Paused {
        paused: bool,
    },
    Reset,
    PollInterval {
        ms: u64,
    },
    Kick {
        player: PlayerId,
    },
    Rename {
        player: PlayerId,
        name: String,
    },
    Joins {
        open: bool,
    },
}

/// The game's answer to a [`Command`].
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    /// `body` is the `201` body of `POST /api/join`, serialised where the join ran.
    Joined {
        player_id: PlayerId,
        token: String,
        body: String,
    },
    Click {
        outcome: ClickOutcome,
    },
    Done,
    Ticket {
        ticket: String,
    },
    /// The game's switches after a lecturer control, as the game that ran it has them.
    Game {
        paused: bool,
        joins_open: bool,
        poll_interval_ms: u64,
    },
    Renamed {
        name: String,
    },
}

/// An [`ApiError`] on its way back from the authority.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct WireError {
    status: u16,
    error: String,
    detail: String,
    retry_after: Option<u64>,
}

/// What the authority stores under the idempotency key and sends back.
#[derive(Debug, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
enum Answer {
    Ok(Reply),
    Err(WireError),
}

/// The error codes a command can end with, so that an error coming back over the wire keeps
/// its code (`ApiError::code` is a `&'static str`: codes are identifiers of ours, not text).
const CODES: &[&str] = &[
    "invalid_name",
    "name_taken",
    "game_full",
    "unauthorized",
    "joins_closed",
    "out_of_board",
    "round_not_started",
    "rate_limited",
    "too_many_tickets",
    "no_such_player",
    "bad_command",
    "cluster_unavailable",
    "no_authority",
    "authority_timeout",
    "server_busy",
];

fn encode(result: Result<Reply, ApiError>) -> String {
    let answer = match result {
        Ok(reply) => Answer::Ok(reply),
        Err(err) => Answer::Err(WireError {
            status: err.status.as_u16(),
            error: err.code.to_string(),
            detail: err.detail,
            retry_after: err.retry_after,
        }),
    };
    to_json(&answer, "an answer").unwrap_or_else(|_| {
        r#"{"err":{"status":500,"error":"internal","detail":"(not encoded)","retry_after":null}}"#
            .to_string()
    })
}

fn decode(answer: &str) -> Result<Reply, ApiError> {
    let answer: Answer = serde_json::from_str(answer)
        .map_err(|e| ApiError::internal(format!("the authority's answer does not parse: {e}")))?;
    match answer {
        Answer::Ok(reply) => Ok(reply),
        Answer::Err(err) => {
            let status =
                StatusCode::from_u16(err.status).unwrap_or(StatusCode::INTERNAL_SERVER_ERROR);
            let code = CODES
                .iter()
                .find(|c| **c == err.error)
                .copied()
                .unwrap_or("internal");
            let mut api = ApiError::new(status, code, err.detail);
            api.retry_after = err.retry_after;
            Err(api)
        }
    }
}

/// The game's refusals as a lecturer control answers them: a player who is not (or no longer)
/// in the game is `404 no_such_player` here, not the `401` a player's own request gets.
pub fn admin_error(err: GameError) -> ApiError {
    match err {
        GameError::UnknownPlayer(id) => ApiError::new(
            StatusCode::NOT_FOUND,
            "no_such_player",
            format!("player {id} is not in the game"),
        ),
        other => ApiError::from(other),
    }
}

/// `429` with `Retry-After` for a ticket the bounds refuse.
fn ticket_refusal(refusal: TicketRefusal) -> ApiError {
    match refusal {
        TicketRefusal::TooManyOutstanding { retry_after_s } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "too_many_tickets",
            format!(
                "at most {MAX_OUTSTANDING_TICKETS} unspent tickets per player; \
                 spend one or wait for one to expire"
            ),
        )
        .retry_after(retry_after_s),
        TicketRefusal::TooFast { retry_after_s } => ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate_limited",
            format!(
                "at most {TICKET_RATE_PER_SEC} tickets per second after a burst of {TICKET_BURST}"
            ),
        )
        .retry_after(retry_after_s),
    }
}

/// The game and the limits that guard it: what runs a command. Cheap to clone; the app holds
/// one as `web::Data<Commands>`.
#[derive(Clone)]
pub struct Commands {
    hub: Hub,
    rate: web::Data<RateLimiter>,
    joins: web::Data<JoinLimiter>,
    tickets: Tickets,
}

impl Commands {
    pub fn new(
        hub: Hub,
        rate: web::Data<RateLimiter>,
        joins: web::Data<JoinLimiter>,
        tickets: Tickets,
    ) -> Commands {
        Commands {
            hub,
            rate,
            joins,
            tickets,
        }
    }

    pub fn hub(&self) -> &Hub {
        &self.hub
    }

    /// The click rate limiter (the app shares it with the WebSocket, which strikes on it).
    pub fn rate(&self) -> &web::Data<RateLimiter> {
        &self.rate
    }

    pub fn joins(&self) -> &web::Data<JoinLimiter> {
        &self.joins
    }

    pub fn tickets(&self) -> &Tickets {
        &self.tickets
    }

    /// Runs `cmd` on the game: here without `--redis-url`, on the authority with it. `key`
    /// makes a retry of the same command safe in a cluster (scoped by the caller; without one,
    /// a fresh key: the command runs at most once, but a client's retry is a new command).
    pub async fn run(&self, cmd: Command, key: Option<IdemKey>) -> Result<Reply, ApiError> {
        let Some(node) = self.hub.node() else {
            return self.execute(cmd);
        };
        let key = key.unwrap_or_else(IdemKey::random);
        let body = to_json(&cmd, "a command")?;
        let answer = node.forward(&key, body).await.map_err(ApiError::from)?;
        decode(&answer)
    }

    /// Runs one command on this process's game: the limits first, then the game.
    pub fn execute(&self, cmd: Command) -> Result<Reply, ApiError> {
        let hub = &self.hub;
        let flags = |hub: &Hub| {
            let (paused, joins_open, poll_interval_ms) = hub.game_flags();
            Reply::Game {
                paused,
                joins_open,
                poll_interval_ms,
            }
        };
        match cmd {
            Command::Join { name, addr, naive } => {
                if let Some(node) = hub.node() {
                    if !node.sessions().ready() {
                        return Err(ApiError::new(
                            StatusCode::SERVICE_UNAVAILABLE,
                            "cluster_unavailable",
                            "the game's session key has not been read from Redis yet",
                        )
                        .retry_after(1));
                    }
                }
                self.joins.check(addr)?;
                let check = if naive {
                    NameCheck::Naive
                } else {
                    NameCheck::Validate
                };
                let joined = hub.join_with(&name, check).inspect_err(|err| {
                    if let GameError::GameFull { max } = err {
                        self.joins.note_game_full(addr, *max);
                    }
                })?;
                let name = joined
                    .snapshot
                    .players
                    .iter()
                    .find(|p| p.id == joined.player_id)
                    .map_or("", |p| p.name.as_str());
                tracing::info!(player = joined.player_id, name, "player joined");
                Ok(Reply::Joined {
                    player_id: joined.player_id,
                    token: joined.token.clone(),
                    body: to_json(&joined, "a join")?,
                })
            }
            Command::Click {
                player,
                round,
                x,
                y,
            } => {
                self.rate.check(player)?;
                let outcome = hub.click(player, Click { round, x, y })?;
                Ok(Reply::Click { outcome })
            }
            Command::Leave { player } => {
                hub.leave(player)?;
                self.rate.forget(player);
                Ok(Reply::Done)
            }
            Command::Contact { player, transport } => {
                hub.contact_game(player, transport);
                Ok(Reply::Done)
            }
            Command::Delivered {
                player,
                round,
                at,
                via,
                delay_ms,
            } => {
                // Never later than now here: a reaction cannot be negative.
                hub.round_delivered_game(player, round, at.min(now_ms()), via, delay_ms);
                Ok(Reply::Done)
            }
            Command::Ticket { player } => match hub.node() {
                None => self
                    .tickets
                    .issue(player)
                    .map(|ticket| Reply::Ticket { ticket })
                    .map_err(ticket_refusal),
                Some(node) => {
                    self.tickets.allow(player).map_err(ticket_refusal)?;
                    let ticket = node
                        .sessions()
                        .ticket_for(player, now_ms())
                        .map_err(ApiError::from)?;
                    Ok(Reply::Ticket { ticket })
                }
            },
            Command::Paused { paused } => {
                hub.set_paused(paused);
                Ok(flags(hub))
            }
            Command::Reset => {
                hub.reset_scores();
                Ok(flags(hub))
            }
            Command::PollInterval { ms } => {
                hub.set_poll_interval(ms);
                Ok(flags(hub))
            }
            Command::Joins { open } => {
                hub.set_joins_open(open);
                Ok(flags(hub))
            }
            Command::Kick { player } => {
                hub.kick(player).map_err(admin_error)?;
                self.rate.forget(player);
                tracing::info!(player, "lecturer removed a player");
                Ok(Reply::Done)
            }
            Command::Rename { player, name } => {
                let name = hub.rename(player, &name).map_err(admin_error)?;
                tracing::info!(player, name, "lecturer renamed a player");
                Ok(Reply::Renamed { name })
            }
        }
    }
}

/// The authority's side: a forwarded command runs on the game, and its events are queued
/// together with its answer while the game is still locked (`hub/replica.rs`).
impl GameCore for Commands {
    fn execute(&self, body: &str, commit: Commit) -> Committed {
        let result = match serde_json::from_str::<Command>(body) {
            Ok(cmd) => {
                self.hub.start_collecting();
                Commands::execute(self, cmd)
            }
            Err(e) => Err(ApiError::bad_request(
                "bad_command",
                format!("a forwarded command that does not parse: {e}"),
            )),
        };
        let answer = encode(result);
        self.hub
            .finish_collecting(|entries| commit.finish(entries, answer))
    }
}

/// An idempotency key scoped to `player`: `<player>:<what the client sent>`, so one client can
/// neither read nor block another's answers. `400 bad_idempotency_key` if it is not 1 to 100
/// characters of `A-Z a-z 0-9 . _ : -`.
pub fn player_key(player: PlayerId, client: &str) -> Result<IdemKey, ApiError> {
    if client.is_empty() || client.len() > 100 {
        return Err(ApiError::bad_request(
            "bad_idempotency_key",
            "an Idempotency-Key is 1 to 100 characters of A-Z, a-z, 0-9, . _ : -",
        ));
    }
    IdemKey::new(format!("{player}:{client}"))
        .map_err(|why| ApiError::bad_request("bad_idempotency_key", why))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_command_travels_as_json_and_back() {
        let cmd = Command::Click {
            player: 7,
            round: 3,
            x: 410.5,
            y: 99.0,
        };
        let json = serde_json::to_string(&cmd).unwrap();
        assert_eq!(
            json,
            r#"{"cmd":"click","player":7,"round":3,"x":410.5,"y":99.0}"#
        );
        assert_eq!(serde_json::from_str::<Command>(&json).unwrap(), cmd);
        assert!(serde_json::from_str::<Command>(r#"{"cmd":"leave","player":1,"x":1}"#).is_err());
    }

    #[test]
    fn an_error_keeps_its_status_code_and_retry_after_over_the_wire() {
        let err = ApiError::new(StatusCode::TOO_MANY_REQUESTS, "rate_limited", "slow down")
            .retry_after(2);
        match decode(&encode(Err(err.clone()))) {
            Err(back) => assert_eq!(back, err),
            Ok(r) => panic!("{r:?}"),
        }
        let reply = Reply::Click {
            outcome: ClickOutcome::Miss {
                round: 1,
                misses: 4,
            },
        };
        assert_eq!(decode(&encode(Ok(reply.clone()))).unwrap(), reply);
        // A code this server does not know becomes `internal`, the rest survives.
        let foreign = r#"{"err":{"status":418,"error":"teapot","detail":"x","retry_after":null}}"#;
        let back = decode(foreign).unwrap_err();
        assert_eq!((back.status.as_u16(), back.code), (418, "internal"));
    }

    #[test]
    fn idempotency_keys_are_scoped_by_player_and_checked() {
        assert_eq!(player_key(7, "abc-1").unwrap().as_str(), "7:abc-1");
        for bad in ["", "a b", "ü", &"k".repeat(101)] {
            let err = player_key(7, bad).unwrap_err();
            assert_eq!(err.code, "bad_idempotency_key", "{bad:?}");
        }
    }
}
