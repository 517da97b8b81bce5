// # What each figure measures — the one place that says it
//
// Every figure `/` and `/compare.html` show is defined here once: its label, its unit, what
// exactly it counts, what it leaves out, and whether (and why) it is an estimate. The pages build
// their tooltips and their "estimate" marks from this module (figures.js, compare.js, main.js),
// metrics.js computes what it says, and docs/transports.md ("What each figure measures") carries
// the same sentences: e2e/web-unit.test.mjs fails when the doc's table and `docRow` disagree, so
// neither can drift from the other. The road not taken: hand-written `title` attributes in the
// HTML, which is how the pages came to say one thing and count another.
//
// Pure data and string functions: no DOM, so Node imports it as it is served.

/** The "last N seconds" of every windowed figure on /compare.html (and the live figures on /). */
export const WINDOW_S = 10;
export const WINDOW_MS = WINDOW_S * 1000;

/**
 * id → {label, short (narrow places), unit, measures, excludes, estimate (null, or why the
 * figure is not exact), side ('client' | 'server' | 'race')}.
 */
export const FIGURE_DEFS = Object.freeze({
  latency: {
    label: 'Click latency',
    short: 'Click ms',
    unit: 'ms: mean / p95',
    side: 'client',
    measures: 'From the page\'s click handler (performance.now()) to the click\'s answer: the POST /api/click response, or the WebSocket click_result frame. This page\'s own clicks only.',
    excludes: 'the way back of the resulting event to other players; painting the screen',
    estimate: null,
  },
  lag: {
    label: 'Delivery lag',
    short: 'Lag ms',
    unit: 'ms: mean / p95',
    side: 'client',
    measures: 'Estimated server time when the page handles a new event, minus the event\'s ts. Server time = this page\'s clock + the clock offset.',
    excludes: 'snapshots and duplicates; painting the screen',
    estimate: 'only as exact as the clock offset: a lag within its uncertainty is shown as "≈ 0", never negative',
  },
  events: {
    label: 'Events received',
    short: 'Events',
    unit: 'new events (+ snapshots)',
    side: 'client',
    measures: 'New events the page applied to its state; snapshots counted apart.',
    excludes: 'duplicates dropped after a switch or a reconnect',
    estimate: null,
  },
  requests: {
    label: 'HTTP requests',
    short: 'Requests',
    unit: 'all (of them for events)',
    side: 'client',
    measures: 'Every HTTP request this transport made: polls, long polls, click POSTs, ticket POSTs, the EventSource GET, the WebSocket upgrade GET. In brackets only those that fetch events.',
    excludes: 'the page\'s own side requests (/api/stats, /api/time, /api/snapshot, files); the browser\'s automatic retries',
    estimate: null,
  },
  requestsPerEvent: {
    label: 'Requests / event',
    short: 'Req./event',
    unit: 'event-fetching requests ÷ events',
    side: 'client',
    measures: 'Requests that fetch events (polls, long polls, EventSource GETs, WebSocket upgrades) divided by the new events received.',
    excludes: 'click POSTs and tickets',
    estimate: null,
  },
  bytes: {
    label: 'Bytes received',
    short: 'Bytes',
    unit: 'on the wire, heads included',
    side: 'client',
    measures: 'What delivering events took on the wire, response heads included. Polls and long polls: Resource Timing\'s transferSize, the body as transferred plus its head. SSE: each event block as received, plus one response head per stream. WebSocket: every frame received (events and click replies) with its header (2 B up to 125 B, 4 B up to 64 KiB), plus one 101 handshake head per socket.',
    excludes: 'the answers to click and ticket POSTs (the wire inspector shows their size); bytes sent (request heads, click bodies; the WebSocket frames we send are in the inspector with their 6 B of header and mask); TLS records; TCP/IP; SSE chunked framing (about 7 B per event over HTTP/1.1), SSE heartbeats, WebSocket pings',
    estimate: 'every response head counts as 300 B: browsers do not tell page scripts how big a head is (Resource Timing defines transferSize as the body + 300 B) and show them no SSE or WebSocket head at all. This server\'s heads are about 400 B over HTTP/1.1, and far fewer over HTTP/2, which compresses them (HPACK); the Server column counts them exactly',
  },
  bytesPerEvent: {
    label: 'Bytes / event',
    short: 'Bytes/event',
    unit: 'B per event received',
    side: 'client',
    measures: 'Bytes received divided by the new events received: polling and long polling pay a response head for every answer, SSE and WebSocket one per connection.',
    excludes: 'the same as Bytes received',
    estimate: 'like Bytes received: every response head counts as 300 B',
  },
  wasted: {
    label: 'Wasted requests',
    short: 'Wasted',
    unit: 'polls with no event',
    side: 'client',
    measures: 'Polls and long polls whose answer carried no event (including 204), with their share of all answered polls.',
    excludes: 'SSE and WebSocket heartbeats (n/a: invisible to page scripts)',
    estimate: null,
  },
  reconnects: {
    label: 'Reconnects',
    short: 'Reconnects',
    unit: 'recovered / resynced',
    side: 'client',
    measures: 'Reconnect attempts after a failure. Recovered: events continued from the last seq; resynced: the server sent a snapshot.',
    excludes: 'switching transport; a long poll\'s normal 204',
    estimate: null,
  },
  open: {
    label: 'Open connections',
    short: 'Open conns',
    unit: 'now',
    side: 'client',
    measures: 'Requests in flight plus open EventSource or WebSocket of this transport, now.',
    excludes: 'idle keep-alive connections the browser keeps between requests',
    estimate: null,
  },
  clicks: {
    label: 'Clicks',
    short: 'Clicks',
    unit: 'accepted / rejected',
    side: 'server',
    measures: 'Server only: clicks it accepted (hit, miss, late, expired) or rejected (errors), all players whose transport this is.',
    excludes: 'clicks that never reached the server',
    estimate: null,
  },
  server: {
    label: 'Server column',
    short: 'Server',
    unit: 'all clients, since the server started',
    side: 'server',
    measures: 'GET /api/stats every 2 s, for all clients of the transport: event-fetching requests, events, the bytes written to their sockets (response heads, chunked framing, WebSocket frame headers and, on HTTPS, TLS records included), open connections, and the lag from an event\'s creation to its write into the connection.',
    excludes: 'TCP/IP headers; the TLS handshake; over HTTP/2 the compressed response heads (one connection carries every transport there, so its bytes are estimated as the payload plus 9 B per frame, and the cell says ≈)',
    estimate: null,
  },
  clock: {
    label: 'Clock offset',
    short: 'Clock',
    unit: 'ms ± uncertainty',
    side: 'client',
    measures: 'Server clock minus this page\'s clock, from GET /api/time: offset = ts − (t0 + t1) / 2 of the sample with the shortest round trip among the last 12 (5 at start, then one every 30 s).',
    excludes: 'drift between two samples',
    estimate: 'the uncertainty is half that shortest round trip',
  },
  arrival: {
    label: 'Target shown after',
    short: 'Shown after',
    unit: 'ms after the round started',
    side: 'client',
    measures: 'The delivery lag of this round\'s round_started in this pane: how long after the server started the round this pane could draw its target.',
    excludes: 'painting the screen',
    estimate: 'like Delivery lag, within the clock offset\'s uncertainty',
  },
  raceWins: {
    label: 'Race wins',
    short: 'Wins',
    unit: 'rounds of this race',
    side: 'race',
    measures: 'Rounds of this race whose round_won names the transport\'s bot. Nobody: rounds that expired; Others: rounds a human won.',
    excludes: 'rounds before the race\'s first fresh round and after its last',
    estimate: null,
  },
  raceReaction: {
    label: 'Mean reaction',
    short: 'Mean',
    unit: 'ms, server clock',
    side: 'race',
    measures: 'Mean of the server\'s reaction_ms (see Reaction time) over the rounds of this race the transport\'s bot won: from the moment the server handed the round to that bot\'s own transport to the winning click\'s arrival.',
    excludes: 'rounds the bot lost: a loser\'s time is never measured; the delivery itself — how late the transport showed the target decides who wins, and shows in Target shown after',
    estimate: null,
  },
  reaction: {
    label: 'Reaction time',
    short: 'Reaction',
    unit: 'ms, server clock',
    side: 'server',
    measures: 'reaction_ms of round_won, measured by the server only: from the moment it handed round_started to the winner\'s own transport (the write to their stream or socket, or the poll answer that carried it; a delivery the client put off — a poll, connection or resume it chose to make late — counts from when it was due) to the moment their click arrived. With no delivery on record (a click without any downstream connection), from the round\'s start; round_won\'s reaction_from says which. Wins by transport shows the mean over each transport\'s wins.',
    excludes: 'the delivery itself (a slow transport shows the target later, which loses rounds but does not lengthen reactions); rounds nobody won (they expire after the round timeout)',
    estimate: null,
  },
});

/** The two columns of every windowed figure, for headers and tooltips. */
export const COLUMNS = Object.freeze({
  window: {
    label: `Last ${WINDOW_S} s`,
    title: `Over the last ${WINDOW_S} seconds only: a change of interval or delay shows here within seconds.`,
  },
  total: {
    label: 'Since open',
    title: 'Since this page (or this transport run, or "Reset figures") started.',
  },
  server: {
    label: 'Server',
    title: 'The server\'s own count, all clients of this transport, since the server started (GET /api/stats, every 2 s).',
  },
});

/** Note on a mean above its p95: legitimate, but never without saying why. */
export const MEAN_ABOVE_P95 = 'The mean is above the 95th percentile: fewer than 5 % of the events were very late (a reconnect\'s catch-up, a stalled poll) and pull the mean up.';

function sentence(text) {
  return text.charAt(0).toUpperCase() + text.slice(1);
}

/** The tooltip of a figure: the same words as the doc's table. */
export function tooltip(id) {
  const d = FIGURE_DEFS[id];
  if (!d) throw new Error(`no definition for figure ${id}`);
  const unit = d.unit ? ` (${d.unit})` : '';
  const estimate = d.estimate ? ` Estimate: ${d.estimate}.` : '';
  return `${d.label}${unit}: ${d.measures} Not included: ${d.excludes}.${estimate}`;
}

/** The row of docs/transports.md's "What each figure measures" table for a figure. */
export function docRow(id) {
  const d = FIGURE_DEFS[id];
  const cell = (text) => text.replaceAll('|', '\\|');
  return `| **${d.label}** (${cell(d.unit)}) | ${cell(d.measures)} | ${cell(sentence(d.excludes))} | ${d.estimate ? cell(sentence(d.estimate)) : '—'} |`;
}

/** Whether a figure is an estimate (the pages mark it with "≈" and say why in the tooltip). */
export function isEstimate(id) {
  return Boolean(FIGURE_DEFS[id]?.estimate);
}
