// # The wire protocol, browser side (mirrors src/protocol.rs and src/game/state.rs)
//
// Three things live here, and nothing about *how* bytes arrive (that is js/transports/):
//
// * `validateEvent`: every event is untrusted JSON until its shape is checked. A transport hands
//   us whatever it parsed; only objects that look exactly like docs/protocol.md says reach the fold.
// * `applyEvent(state, event)`: the fold from events to state, the same one the server runs in
//   `GameState::apply`. A snapshot plus the events after it must always give the server's state.
// * `Stream`: the client's cursor into the server's event log (lastSeq + epoch). It drops
//   duplicates (seq <= lastSeq, which happens when switching transports overlaps) and counts
//   *missed* events: a jump in seq that no snapshot explains. On a correct server and client that
//   count stays 0 whichever transport carried the events — that is the point of the whole exercise.

/** Transport names, as the server spells them everywhere. */
export const TRANSPORTS = Object.freeze(['ajax', 'longpoll', 'sse', 'websocket']);

/** Every event type of protocol v1. SSE needs this list: see transports/sse.js. */
export const EVENT_TYPES = Object.freeze([
  'snapshot',
  'player_joined',
  'player_left',
  'player_rejoined',
  'player_transport',
  'round_started',
  'click_missed',
  'round_won',
  'round_expired',
  'game_paused',
  'scores_reset',
  'settings',
  'player_renamed',
  'joins_changed',
]);

/** The board is BOARD × BOARD logical units, whatever size it is drawn at. */
export const BOARD = 1000;

/** Used until a snapshot tells us the server's `poll_interval_ms`. */
export const DEFAULT_POLL_INTERVAL_MS = 1000;

// ---- shape checks -------------------------------------------------------------------------

const isObject = (v) => typeof v === 'object' && v !== null && !Array.isArray(v);
const isCount = (v) => Number.isSafeInteger(v) && v >= 0;
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
const isString = (v) => typeof v === 'string';
// Transport names are strings we display but never trust: a future server may add a fifth.
const isTransport = (v) => typeof v === 'string' && v.length > 0 && v.length <= 32;

function isRound(r) {
  return (
    isObject(r) &&
    isCount(r.number) &&
    isNumber(r.x) &&
    isNumber(r.y) &&
    isNumber(r.r) &&
    isCount(r.started_ts) &&
    (r.winner === null || isCount(r.winner)) &&
    // Servers before the round timeout send no `expired`.
    (r.expired === undefined || typeof r.expired === 'boolean')
  );
}

function isPlayer(p) {
  return (
    isObject(p) &&
    isCount(p.id) &&
    isString(p.name) &&
    isCount(p.score) &&
    isCount(p.misses) &&
    (p.transport === null || isTransport(p.transport))
  );
}

function isTally(t) {
  return isObject(t) && isCount(t.wins) && isCount(t.total_reaction_ms);
}

/** Field checks per event type, on top of `seq`, `ts` and `type`. */
const SHAPES = {
  snapshot: (e) =>
    isString(e.epoch) &&
    isCount(e.board) &&
    isCount(e.poll_interval_ms) &&
    (e.paused === undefined || typeof e.paused === 'boolean') &&
    (e.joins_open === undefined || typeof e.joins_open === 'boolean') &&
    (e.round === null || isRound(e.round)) &&
    Array.isArray(e.players) &&
    e.players.every(isPlayer) &&
    isObject(e.transports) &&
    Object.values(e.transports).every(isTally),
  player_joined: (e) => isCount(e.player) && isString(e.name),
  player_left: (e) => isCount(e.player) && isString(e.reason),
  player_rejoined: (e) =>
    isCount(e.player) && isString(e.name) && isCount(e.score) && isCount(e.misses),
  player_transport: (e) => isCount(e.player) && isTransport(e.transport),
  round_started: (e) => isCount(e.round) && isNumber(e.x) && isNumber(e.y) && isNumber(e.r),
  click_missed: (e) => isCount(e.player) && isCount(e.round) && isCount(e.misses),
  round_won: (e) =>
    isCount(e.round) &&
    isCount(e.winner) &&
    isString(e.name) &&
    isCount(e.reaction_ms) &&
    isTransport(e.transport) &&
    (e.reaction_from === undefined || isString(e.reaction_from)),
  round_expired: (e) => isCount(e.round),
  game_paused: (e) => typeof e.paused === 'boolean',
  scores_reset: () => true,
  settings: (e) => isCount(e.poll_interval_ms),
  player_renamed: (e) => isCount(e.player) && isString(e.name),
  joins_changed: (e) => typeof e.open === 'boolean',
};

/**
 * Classifies untrusted parsed JSON.
 * @returns {'ok' | 'unknown' | 'invalid'} `unknown`: a well-formed event of a type this client
 *   does not know (a newer server) — it still occupies a seq. `invalid`: not an event at all, or
 *   a known type with the wrong fields.
 */
export function validateEvent(e) {
  if (!isObject(e) || !isCount(e.seq) || !isCount(e.ts) || !isString(e.type)) return 'invalid';
  const shape = SHAPES[e.type];
  if (!shape) return 'unknown';
  return shape(e) ? 'ok' : 'invalid';
}

// ---- the fold -----------------------------------------------------------------------------

/**
 * The client's state is a snapshot object (see docs/protocol.md) kept up to date by events.
 * Copies only the fields we use, so nothing unexpected from the server is carried along.
 */
export function stateFromSnapshot(s) {
  const transports = {};
  for (const name of TRANSPORTS) transports[name] = { wins: 0, total_reaction_ms: 0 };
  for (const [name, t] of Object.entries(s.transports)) {
    transports[name] = { wins: t.wins, total_reaction_ms: t.total_reaction_ms };
  }
  return {
    seq: s.seq,
    epoch: s.epoch,
    board: s.board,
    poll_interval_ms: s.poll_interval_ms,
    // Older servers (before the lecturer controls) send no `paused`: never paused.
    paused: s.paused === true,
    // Older servers (before the lecturer could close joining) send no `joins_open`: open.
    joins_open: s.joins_open !== false,
    round: s.round && { ...s.round, expired: s.round.expired === true },
    players: s.players.map((p) => ({ ...p })),
    transports,
  };
}

const updatePlayer = (players, id, change) =>
  players.map((p) => (p.id === id ? { ...p, ...change(p) } : p));

/**
 * Applies one validated event and returns the new state (the old one is not changed).
 * The rules are docs/protocol.md's "Applying an event to a snapshot", line by line.
 */
export function applyEvent(state, e) {
  const next = { ...state, seq: e.seq };
  switch (e.type) {
    case 'snapshot':
      return stateFromSnapshot(e);
    case 'player_joined':
      next.players = [
        ...state.players.filter((p) => p.id !== e.player),
        { id: e.player, name: e.name, score: 0, misses: 0, transport: null },
      ].sort((a, b) => a.id - b.id);
      return next;
    case 'player_left':
      next.players = state.players.filter((p) => p.id !== e.player);
      // A player the lecturer removed takes their name off the board too (the page's own field).
      if (e.reason === 'kicked' && state.round?.winner === e.player) next.round = { ...state.round, winner_name: null };
      return next;
    case 'player_rejoined':
      next.players = [
        ...state.players.filter((p) => p.id !== e.player),
        { id: e.player, name: e.name, score: e.score, misses: e.misses, transport: null },
      ].sort((a, b) => a.id - b.id);
      return next;
    case 'player_transport':
      next.players = updatePlayer(state.players, e.player, () => ({ transport: e.transport }));
      return next;
    case 'round_started':
      next.round = { number: e.round, x: e.x, y: e.y, r: e.r, started_ts: e.ts, winner: null, expired: false };
      return next;
    case 'click_missed':
      next.players = updatePlayer(state.players, e.player, () => ({ misses: e.misses }));
      return next;
    case 'round_won': {
      if (state.round && state.round.number === e.round) {
        // winner_name is the page's own: the board still names the winner once they have left
        // (the race's bots leave right after their last round).
        next.round = { ...state.round, winner: e.winner, winner_name: e.name };
      }
      next.players = updatePlayer(state.players, e.winner, (p) => ({ score: p.score + 1 }));
      const tally = state.transports[e.transport] ?? { wins: 0, total_reaction_ms: 0 };
      next.transports = {
        ...state.transports,
        [e.transport]: {
          wins: tally.wins + 1,
          total_reaction_ms: tally.total_reaction_ms + e.reaction_ms,
        },
      };
      return next;
    }
    case 'round_expired':
      if (state.round && state.round.number === e.round) {
        next.round = { ...state.round, expired: true };
      }
      return next;
    case 'game_paused':
      next.paused = e.paused;
      return next;
    case 'scores_reset': {
      next.players = state.players.map((p) => ({ ...p, score: 0, misses: 0 }));
      const transports = {};
      for (const name of Object.keys(state.transports)) transports[name] = { wins: 0, total_reaction_ms: 0 };
      next.transports = transports;
      return next;
    }
    case 'settings':
      next.poll_interval_ms = e.poll_interval_ms;
      return next;
    case 'player_renamed':
      next.players = updatePlayer(state.players, e.player, () => ({ name: e.name }));
      if (state.round?.winner === e.player) next.round = { ...state.round, winner_name: e.name };
      return next;
    case 'joins_changed':
      next.joins_open = e.open;
      return next;
    default:
      // Unknown types change nothing we know how to draw.
      return next;
  }
}

/** A round a click may still win: neither won nor expired. */
export function isRoundOpen(round) {
  return Boolean(round) && round.winner === null && round.expired !== true;
}

/** Mean reaction time of a transport's wins, or null before its first win. */
export function meanReactionMs(tally) {
  return tally && tally.wins > 0 ? tally.total_reaction_ms / tally.wins : null;
}

// ---- the cursor ---------------------------------------------------------------------------

/**
 * Where this page is in the server's event log, and how many events it has lost.
 *
 * Every event goes through `accept` before it is applied. Transports may deliver an event twice
 * (when we switch, the new transport starts from our `lastSeq`, but an old in-flight response may
 * still land) — such duplicates are dropped here, in one place, rather than in four transports.
 */
export class Stream {
  constructor() {
    /** Last seq applied; null before the first snapshot. */
    this.lastSeq = null;
    /** The server run our seqs belong to; sent back when resuming. */
    this.epoch = null;
    /** Events that never arrived: jumps in seq not explained by a snapshot. Must stay 0. */
    this.missed = 0;
    this.duplicates = 0;
    this.received = 0;
  }

  /**
   * Decides what to do with a validated event (`kind` is validateEvent's answer).
   * @returns {'reset' | 'apply' | 'skip'} `reset`: a snapshot, replace the state; `apply`: fold
   *   it in; `skip`: a duplicate or an unknown type, nothing to draw.
   */
  accept(e, kind = 'ok') {
    this.received += 1;
    if (e.type === 'snapshot' && kind === 'ok') {
      // A snapshot is the whole truth at its seq: whatever jump it makes is explained.
      this.lastSeq = e.seq;
      this.epoch = e.epoch;
      return 'reset';
    }
    if (this.lastSeq !== null && e.seq <= this.lastSeq) {
      this.duplicates += 1;
      return 'skip';
    }
    if (this.lastSeq !== null && e.seq > this.lastSeq + 1) {
      this.missed += e.seq - this.lastSeq - 1;
    }
    this.lastSeq = e.seq;
    // An unknown type still used up its seq (so the next event is no "gap"), but we cannot fold it.
    return kind === 'ok' ? 'apply' : 'skip';
  }
}
