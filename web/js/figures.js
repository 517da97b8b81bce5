// # The figures table: one transport's client-side figures next to the server's
//
// Used by `/` (the player's transport) and by each pane of `/compare.html`. Rows are built once
// and updated in place; each row is `tr[data-figure=<name>]` with cells `td[data-side=client]` and
// `td[data-side=server]` (stable hooks for tests). The tooltip of each row says exactly what is
// measured — keep it in step with metrics.js and docs/transports.md.

import { formatBytes } from './metrics.js';

const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${Math.round(v)}`);
const PUSH = new Set(['sse', 'websocket']);
const DOWN_WORDS = { ajax: 'poll', longpoll: 'long poll', sse: 'stream', websocket: 'upgrade' };
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/** Labels for the narrow panes of the compare page (same figures, same tooltips). */
const SHORT = {
  latency: 'Click ms',
  lag: 'Lag ms',
  events: 'Events',
  requests: 'Requests',
  bytes: 'Bytes',
  wasted: 'Wasted',
  reconnects: 'Reconnects',
  open: 'Open conns',
  clicks: 'Clicks',
};

/** name, label, unit (small, under the label), tooltip */
export const FIGURES = [
  ['latency', 'Click latency', 'ms: last / mean / p95',
    'Client: from our click handler to the click\'s answer (POST /api/click response, or the WebSocket click_result frame), performance.now(). Your own clicks only.'],
  ['lag', 'Delivery lag', 'ms: last / mean / p95',
    'Client: server time now (our clock + estimated offset) − the event\'s ts, when the page handles the event; new events only. Server: event created → written to the connection (mean / p95), all clients of this transport.'],
  ['events', 'Events received', '',
    'Client: new events applied (duplicates and snapshots not counted; snapshots in brackets). Server: events written including snapshots, all clients of this transport.'],
  ['requests', 'HTTP requests', 'all (of them for events)',
    'Client: every HTTP request this transport made — polls, long polls, click POSTs, tickets, the EventSource GET, the WebSocket upgrade; in brackets those that fetch events (polls, long polls, EventSource GETs, WebSocket upgrades). Server: those event-fetching requests only (clicks are counted under Clicks), all clients of this transport.'],
  ['bytes', 'Bytes received', 'bodies and frames, no headers',
    'Client: response bodies (decoded, no headers); SSE event blocks rebuilt from id/event/data (no heartbeat comments); WebSocket text frame payloads (no frame headers, no pings). Server: response bodies and frame payloads written (no headers, no TLS, no WebSocket frame headers), all clients.'],
  ['wasted', 'Wasted requests', 'polls with no event',
    'Client: downstream polls whose answer carried no event (including 204). SSE and WebSocket do not poll (n/a).'],
  ['reconnects', 'Reconnects', 'recovered / resynced',
    'Client: reconnect attempts after a failure; recovered = resumed from the last seq without a snapshot; resynced = the server sent a snapshot (epoch changed, or the gap had left its history).'],
  ['open', 'Open connections', 'now',
    'Client: requests in flight plus open streams/sockets of this transport, now. Server: open connections of this transport, all clients.'],
  ['clicks', 'Clicks', 'accepted / rejected',
    'Server only: clicks the server accepted (hit, miss, late) or rejected (errors), all players whose transport this is.'],
];

export class FiguresTable {
  /** @param {HTMLTableSectionElement} tbody */
  /** `compact`: short labels without the unit line (the tooltip still says everything). */
  constructor(tbody, { rows = FIGURES.map(([name]) => name), compact = false } = {}) {
    this.cells = new Map();
    const make = [];
    for (const [name, label, unit, tip] of FIGURES) {
      if (!rows.includes(name)) continue;
      const tr = document.createElement('tr');
      tr.dataset.figure = name;
      tr.title = unit ? `${label} (${unit}). ${tip}` : `${label}. ${tip}`;
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = compact ? SHORT[name] : label;
      if (unit && !compact) {
        const small = document.createElement('span');
        small.className = 'unit';
        small.textContent = unit;
        th.append(small);
      }
      const client = document.createElement('td');
      client.dataset.side = 'client';
      const server = document.createElement('td');
      server.dataset.side = 'server';
      tr.append(th, client, server);
      make.push(tr);
      this.cells.set(name, { client, server });
    }
    tbody.replaceChildren(...make);
  }

  /** @param meter a Meter (null: nothing yet) @param server /api/stats transports[name] or null */
  update(meter, server) {
    const values = meter ? clientValues(meter) : {};
    const serverValues = serverFigures(server);
    for (const [name, { client, server: cell }] of this.cells) {
      set(client, values[name] ?? '–');
      set(cell, serverValues[name] ?? '–');
    }
  }
}

function set(cell, text) {
  if (cell.textContent !== text) cell.textContent = text;
}

function clientValues(m) {
  return {
    latency: m.latency.count ? `${ms(m.latency.last)} / ${ms(m.latency.mean)} / ${ms(m.latency.percentile(95))}` : '–',
    lag: m.lag.count ? `${ms(m.lag.last)} / ${ms(m.lag.mean)} / ${ms(m.lag.percentile(95))}` : '–',
    events: `${m.events}${m.snapshots ? ` (+${m.snapshots} snapshot${m.snapshots === 1 ? '' : 's'})` : ''}`,
    requests: `${m.requests} (${plural(m.downstreamRequests, DOWN_WORDS[m.transport] ?? 'downstream')})`,
    bytes: formatBytes(m.bytes),
    wasted: PUSH.has(m.transport)
      ? 'n/a'
      : `${m.wasted}${m.downstreamPolls ? ` of ${m.downstreamPolls} (${Math.round((100 * m.wasted) / m.downstreamPolls)} %)` : ''}`,
    reconnects: `${m.reconnects} (${m.recovered} / ${m.resynced})`,
    open: String(m.open),
  };
}

function serverFigures(t) {
  if (!t) return {};
  const num = (v) => (Number.isFinite(v) ? String(v) : '–');
  const lag = t.delivery_lag_ms;
  return {
    lag: lag && lag.count ? `– / ${ms(lag.mean)} / ${ms(lag.p95)}` : '–',
    events: num(t.events_delivered),
    requests: num(t.requests),
    bytes: Number.isFinite(t.bytes_written) ? formatBytes(t.bytes_written) : '–',
    open: num(t.open_connections),
    clicks: `${num(t.clicks_accepted)} / ${num(t.clicks_rejected)}`,
  };
}

/** Formatting shared with the history and summary tables. */
export const fmt = {
  ms,
  ratio: (v, digits = 2) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits)),
  bytes: formatBytes,
};
