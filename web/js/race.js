// # A race's tally: which rounds count, and who won them
//
// Race mode (js/compare.js) lets one bot per transport play a fixed number of rounds. To be fair
// the race starts on a *fresh* round: a round already on the board when the race starts (or when
// the scores are reset) belongs to nobody's race — all bots would fire at it at once from the same
// JavaScript thread, and whichever request left first (AJAX's POST, as it happened) would win.
// So a race counts the `rounds` rounds after `startAfter`, each exactly once however many panes
// report its end, with the server's own figures: the winner and `reaction_ms` of `round_won`.
// An expired round counts as nobody's; a round a human won counts as "others".
//
// Pure: no DOM, no clock. Node's unit tests drive it with plain event objects.

export class RaceTally {
  /**
   * @param {object} options
   * @param {string[]} options.transports the bots' transports, in table order
   * @param {number} options.rounds how many rounds the race lasts (0 = until stopped)
   * @param {number} options.startAfter the last round that does *not* count (the one on the
   *   board, or the last one seen, when the race started)
   */
  constructor({ transports, rounds, startAfter }) {
    this.transports = transports;
    this.rounds = rounds;
    this.startAfter = startAfter;
    /** round → {kind: 'won' | 'expired', transport (bot's) | null, reactionMs | null} */
    this.ended = new Map();
    this.wins = Object.fromEntries(transports.map((t) => [t, 0]));
    this.reactionSum = Object.fromEntries(transports.map((t) => [t, 0]));
    this.nobody = 0;
    this.others = 0;
  }

  /** Whether `round` is one of this race's rounds. */
  inRace(round) {
    return round > this.startAfter && (this.rounds === 0 || round <= this.startAfter + this.rounds);
  }

  get done() {
    return this.rounds > 0 && this.ended.size >= this.rounds;
  }

  get played() {
    return this.ended.size;
  }

  /**
   * Counts a `round_won` or `round_expired` event once. `botOf(playerId)` names the transport of
   * the bot with that id, or null for a human. Returns the round's record when it was newly
   * counted, else null (not a race round, or already counted via another pane).
   */
  record(event, botOf) {
    if (event.type !== 'round_won' && event.type !== 'round_expired') return null;
    if (!this.inRace(event.round) || this.ended.has(event.round)) return null;
    let entry;
    if (event.type === 'round_expired') {
      this.nobody += 1;
      entry = { kind: 'expired', transport: null, reactionMs: null, name: null };
    } else {
      const transport = botOf(event.winner);
      if (transport && transport in this.wins) {
        this.wins[transport] += 1;
        this.reactionSum[transport] += event.reaction_ms;
      } else {
        this.others += 1;
      }
      entry = { kind: 'won', transport: transport ?? null, reactionMs: event.reaction_ms, name: event.name };
    }
    this.ended.set(event.round, entry);
    return entry;
  }

  /** Mean of the server's reaction_ms over the transport's wins in this race; null before one. */
  meanReaction(transport) {
    const wins = this.wins[transport];
    return wins ? this.reactionSum[transport] / wins : null;
  }

  /** The first and last rounds counted so far (null before any). */
  span() {
    if (this.ended.size === 0) return null;
    const rounds = [...this.ended.keys()];
    return { first: Math.min(...rounds), last: Math.max(...rounds) };
  }

  /** Total rounds in the table: every counted round lands in exactly one cell. */
  total() {
    return Object.values(this.wins).reduce((a, b) => a + b, 0) + this.nobody + this.others;
  }
}
