//! # Tokens every node checks on its own; tickets spent once across all nodes
//!
//! A single node keeps a random 128-bit secret per player and compares tokens against it.
//! Several nodes would each need every secret, for every request on any node: a Redis read
//! per request (the extractors become async, and every poll depends on Redis), or a replica of
//! the secrets kept in step (a second, private log). Neither is needed if the secret is
//! *derived*: a player's secret is `HMAC-SHA256(K, "session" ‖ id)` cut to 128 bits, where `K`
//! is one random key per game, kept in Redis (`{game}:session-key`, created once with
//! `SET NX`) and read by each node once. The token keeps its shape, `<id>.<32 hex>`.
//!
//! So the **session extractors stay synchronous and read a local replica**: [`Sessions::verify`]
//! is a MAC check against the cached key, and whether the player still plays is read from the
//! node's replica of the game (folded from the log every node tails). Player ids are never
//! reused, so a token dies with its player. Nothing secret ever travels in the public log.
//!
//! One-time tickets (`?ticket=`, for pages that hold several players) are MAC'd the same way
//! and carry their expiry, so any node checks one without asking; **spending** one is a
//! `SET NX` of its nonce in Redis ([`Sessions::spend_ticket`]): of two nodes racing with the
//! same ticket exactly one wins, whatever node issued it. (Issuing stays with the authority,
//! which keeps the per-player bounds; those reset on a failover, which is harmless.)
//!
//! Costs, said plainly: whoever reads `K` from Redis can mint tokens — but whoever can write
//! Redis can rewrite the game anyway; Redis must be reachable only by the nodes (loopback or a
//! private network, `requirepass`/ACLs). A new game (Redis emptied) makes a new `K`, and old
//! tokens stop working, like a restarted single node's epoch.

use std::sync::{Arc, PoisonError, RwLock};
use std::time::Duration;

use openssl::hash::MessageDigest;
use openssl::pkey::{PKey, Private};
use openssl::sign::Signer;

use super::conn::Redis;
use super::{hex, random_bytes, ClusterError};
use crate::game::PlayerId;
use crate::secret;

/// How long a ticket stays valid (as on a single node).
pub const TICKET_TTL: Duration = Duration::from_secs(30);

/// A node's copy of the game's session key.
pub struct Sessions {
    redis: Redis,
    key: RwLock<Option<PKey<Private>>>,
}

/// Hex as we write it (lower case, exact length) back into bytes: one spelling per token.
fn unhex<const N: usize>(s: &str) -> Option<[u8; N]> {
    secret::unhex::<N>(s).filter(|bytes| hex(bytes) == s)
}

impl Sessions {
    pub(crate) fn new(redis: Redis) -> Arc<Sessions> {
        Arc::new(Sessions {
            redis,
            key: RwLock::new(None),
        })
    }

    /// Reads the game's key, creating it if this is the first node of a new game. Phase 2 calls
    /// it again when the game's epoch changes (Redis was emptied).
    pub async fn load(&self) -> Result<(), ClusterError> {
        let name = self.redis.keys().session_key();
        let fresh = hex(&random_bytes::<32>());
        let stored: String = self
            .redis
            .run("session key", move |mut c| async move {
                let _: () = redis::cmd("SET")
                    .arg(&name)
                    .arg(fresh)
                    .arg("NX")
                    .query_async(&mut c)
                    .await?;
                redis::cmd("GET").arg(&name).query_async(&mut c).await
            })
            .await?;
        let bytes = unhex::<32>(&stored).ok_or_else(|| {
            ClusterError::Protocol("the session key in Redis is not 64 hex digits".into())
        })?;
        let key = PKey::hmac(&bytes).map_err(|e| ClusterError::Protocol(e.to_string()))?;
        *self.key.write().unwrap_or_else(PoisonError::into_inner) = Some(key);
        Ok(())
    }

    /// Keeps trying [`Sessions::load`] until it works (started with the node).
    pub(crate) async fn load_until_ready(self: Arc<Self>) {
        while self.load().await.is_err() {
            tokio::time::sleep(Duration::from_millis(250)).await;
        }
    }

    /// Whether the key has been read (before that, every check is `Unavailable`).
    pub fn ready(&self) -> bool {
        self.key
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .is_some()
    }

    fn mac(&self, parts: &[&[u8]]) -> Result<[u8; 16], ClusterError> {
        let guard = self.key.read().unwrap_or_else(PoisonError::into_inner);
        let key = guard.as_ref().ok_or_else(|| {
            ClusterError::Unavailable("the session key has not been read from Redis yet".into())
        })?;
        let fail = |e: openssl::error::ErrorStack| ClusterError::Protocol(e.to_string());
        let mut signer = Signer::new(MessageDigest::sha256(), key).map_err(fail)?;
        for part in parts {
            signer.update(part).map_err(fail)?;
        }
        let full = signer.sign_to_vec().map_err(fail)?;
        let mut out = [0u8; 16];
        out.copy_from_slice(full.get(..16).unwrap_or(&[0; 16]));
        Ok(out)
    }

    /// The session token of `player`: `<id>.<32 hex>`, the same on every node.
    pub fn token_for(&self, player: PlayerId) -> Result<String, ClusterError> {
        let mac = self.mac(&[b"session\0", player.to_string().as_bytes()])?;
        Ok(format!("{player}.{}", hex(&mac)))
    }

    /// The player a token names, if its MAC is right. Whether that player still plays is the
    /// caller's question (the node's replica of the game).
    pub fn verify(&self, token: &str) -> Result<Option<PlayerId>, ClusterError> {
        let Some((id, mac)) = token.split_once('.') else {
            return Ok(None);
        };
        let (Ok(player), Some(given)) = (id.parse::<PlayerId>(), unhex::<16>(mac)) else {
            return Ok(None);
        };
        if player.to_string() != id {
            return Ok(None);
        }
        let expected = self.mac(&[b"session\0", id.as_bytes()])?;
        Ok(secret::same(&expected, &given).then_some(player))
    }

    /// A one-time ticket for `player`, valid until `now_ms + TICKET_TTL`:
    /// `t<id>.<expiry ms>.<nonce>.<mac>`.
    pub fn ticket_for(&self, player: PlayerId, now_ms: u64) -> Result<String, ClusterError> {
        let expiry = now_ms + TICKET_TTL.as_millis() as u64;
        let nonce = hex(&random_bytes::<12>());
        let body = format!("{player}.{expiry}.{nonce}");
        let mac = self.mac(&[b"ticket\0", body.as_bytes()])?;
        Ok(format!("t{body}.{}", hex(&mac)))
    }

    /// The player of a valid, unexpired ticket, without spending it; also its nonce and
    /// expiry. Any node, no Redis.
    fn open_ticket(
        &self,
        ticket: &str,
        now_ms: u64,
    ) -> Result<Option<(PlayerId, String, u64)>, ClusterError> {
        let Some(rest) = ticket.strip_prefix('t') else {
            return Ok(None);
        };
        let Some((body, mac)) = rest.rsplit_once('.') else {
            return Ok(None);
        };
        let mut parts = body.split('.');
        let (Some(id), Some(expiry), Some(nonce), None) =
            (parts.next(), parts.next(), parts.next(), parts.next())
        else {
            return Ok(None);
        };
        let (Ok(player), Ok(expiry), Some(given), Some(_)) = (
            id.parse::<PlayerId>(),
            expiry.parse::<u64>(),
            unhex::<16>(mac),
            unhex::<12>(nonce),
        ) else {
            return Ok(None);
        };
        let expected = self.mac(&[b"ticket\0", body.as_bytes()])?;
        if !secret::same(&expected, &given) || expiry <= now_ms {
            return Ok(None);
        }
        Ok(Some((player, nonce.to_string(), expiry)))
    }

    /// The player of a valid, unexpired, unspent-as-far-as-we-know ticket; spends nothing.
    pub fn check_ticket(
        &self,
        ticket: &str,
        now_ms: u64,
    ) -> Result<Option<PlayerId>, ClusterError> {
        Ok(self
            .open_ticket(ticket, now_ms)?
            .map(|(player, _, _)| player))
    }

    /// Spends a ticket: its player if it is valid and nobody spent it before, on any node.
    pub async fn spend_ticket(
        &self,
        ticket: &str,
        now_ms: u64,
    ) -> Result<Option<PlayerId>, ClusterError> {
        let Some((player, nonce, expiry)) = self.open_ticket(ticket, now_ms)? else {
            return Ok(None);
        };
        let name = self.redis.keys().spent_ticket(&nonce);
        // Kept a little past the expiry, after which the MAC check refuses the ticket anyway.
        let keep_ms = expiry.saturating_sub(now_ms) + 1000;
        let first: Option<String> = self
            .redis
            .run("spend ticket", move |mut c| async move {
                redis::cmd("SET")
                    .arg(name)
                    .arg(1)
                    .arg("NX")
                    .arg("PX")
                    .arg(keep_ms)
                    .query_async(&mut c)
                    .await
            })
            .await?;
        Ok(first.map(|_| player))
    }
}

#[cfg(test)]
mod tests {
    use super::unhex;

    #[test]
    fn only_lower_case_hex_of_the_right_length_decodes() {
        assert_eq!(unhex::<2>("00ff"), Some([0, 255]));
        for bad in ["00FF", "00f", "00fff", "0x0f", "+0ff", "ü0"] {
            assert_eq!(unhex::<2>(bad), None, "{bad}");
        }
    }
}
