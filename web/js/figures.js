// # The figures table: one transport's client-side figures next to the server's
//
// Used by `/` (the player's transport) and by each pane of `/compare.html`. Rows are built once
// and updated in place; each row is `tr[data-figure=<name>]` with cells `td[data-side=window]`
// (the last WINDOW_S seconds), `td[data-side=client]` (since this run started) and
// `td[data-side=server]` (stable hooks for tests). Labels, units, tooltips and "estimate" marks
// all come from js/definitions.js — this file only formats numbers.

import { COLUMNS, FIGURE_DEFS, MEAN_ABOVE_P95, isEstimate, tooltip } from './definitions.js';
import { formatBytes } from './metrics.js';

const ms = (v) => (v === null || v === undefined || !Number.isFinite(v) ? '–' : `${Math.round(v)}`);
const PUSH = new Set(['sse', 'websocket']);
const DOWN_WORDS = { ajax: 'poll', longpoll: 'long poll', sse: 'stream', websocket: 'upgrade' };
const plural = (n, word) => `${n} ${word}${n === 1 ? '' : 's'}`;

/**
 * A delivery lag for the page: "≈ 0" when it lies within the clock offset's uncertainty (or
 * below zero, which only the offset's error can produce), whole milliseconds otherwise.
 */
export function formatLag(v, uncertaintyMs = 0) {
  if (v === null || v === undefined || !Number.isFinite(v)) return '–';
  const within = Math.max(0.5, uncertaintyMs ?? 0);
  if (v <= within) return '≈ 0';
  return `${Math.round(v)}`;
}

/**
 * "mean / p95" over one set of samples, and a note when the mean is above the p95 — which can
 * happen (a few very late events), but never without saying why. `format` formats one value.
 */
export function meanAndP95({ mean, p95 }, format) {
  if (mean === null || mean === undefined) return { text: '–', note: null };
  const parts = [format(mean), format(p95)];
  const above = p95 !== null && mean > p95 && format(mean) !== format(p95);
  return { text: `${parts.join(' / ')}${above ? ' *' : ''}`, note: above ? MEAN_ABOVE_P95 : null };
}

/** Every row `/` shows; the compare panes show a subset (see compare.js). */
export const FIGURE_ROWS = ['latency', 'lag', 'events', 'requests', 'bytes', 'bytesPerEvent', 'wasted', 'reconnects', 'open', 'clicks'];

export class FiguresTable {
  /**
   * @param {HTMLTableSectionElement} tbody
   * `rows`: which figures; `compact`: short labels without the unit line (the tooltip still says
   * everything).
   */
  constructor(tbody, { rows = FIGURE_ROWS, compact = false } = {}) {
    this.cells = new Map();
    const make = [];
    for (const name of rows) {
      const def = FIGURE_DEFS[name];
      const tr = document.createElement('tr');
      tr.dataset.figure = name;
      tr.title = tooltip(name);
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = compact ? def.short : def.label;
      if (isEstimate(name)) {
        const est = document.createElement('abbr');
        est.className = 'estimate';
        est.textContent = 'est.';
        est.title = `An estimate: ${def.estimate}.`;
        th.append(' ', est);
      }
      if (def.unit && !compact) {
        const small = document.createElement('span');
        small.className = 'unit';
        small.textContent = def.unit;
        th.append(small);
      }
      const cell = (side) => {
        const td = document.createElement('td');
        td.dataset.side = side;
        return td;
      };
      const window = cell('window');
      const client = cell('client');
      const server = cell('server');
      tr.append(th, window, client, server);
      make.push(tr);
      this.cells.set(name, { window, client, server });
    }
    tbody.replaceChildren(...make);
    const head = tbody.closest('table')?.querySelector('thead tr');
    if (head) fillHead(head);
  }

  /**
   * @param meter a Meter (null: nothing yet) @param server /api/stats transports[name] or null
   * @param options.uncertaintyMs the clock offset's uncertainty, for "≈ 0" lags
   */
  update(meter, server, { uncertaintyMs = 0 } = {}) {
    const values = meter ? clientValues(meter, uncertaintyMs) : {};
    const windowed = meter ? windowValues(meter, uncertaintyMs) : {};
    const serverValues = serverFigures(server);
    for (const [name, { window, client, server: cell }] of this.cells) {
      set(window, windowed[name] ?? '–');
      set(client, values[name] ?? '–');
      set(cell, serverValues[name] ?? '–');
    }
  }
}

/** The table head: Figure | Last 10 s | Since open | Server, with their definitions as titles. */
function fillHead(tr) {
  const th = (text, title) => {
    const cell = document.createElement('th');
    cell.scope = 'col';
    cell.textContent = text;
    if (title) cell.title = title;
    return cell;
  };
  tr.replaceChildren(
    th('Figure'),
    th(COLUMNS.window.label, COLUMNS.window.title),
    th(COLUMNS.total.label, COLUMNS.total.title),
    th(COLUMNS.server.label, tooltip('server')),
  );
}

/**
 * A cell's text, and its note (as title and `data-note` = `kind`) when a figure needs one: a
 * mean above its p95, or a partly estimated server figure.
 */
function set(cell, value) {
  const { text, note, kind = 'mean-above-p95' } = typeof value === 'string' ? { text: value, note: null } : value;
  if (cell.textContent !== text) cell.textContent = text;
  if (note) {
    cell.title = note;
    cell.dataset.note = kind;
  } else if (cell.dataset.note) {
    cell.removeAttribute('title');
    delete cell.dataset.note;
  }
}

function clientValues(m, unc) {
  const lag = (v) => formatLag(v, unc);
  const s = m.summary();
  return {
    latency: m.latency.count
      ? meanAndP95({ mean: m.latency.mean, p95: m.latency.percentile(95) }, ms)
      : '–',
    lag: m.lag.count
      ? meanAndP95({ mean: m.lag.mean, p95: m.lag.percentile(95) }, lag)
      : '–',
    events: `${m.events}${m.snapshots ? ` (+${m.snapshots} snapshot${m.snapshots === 1 ? '' : 's'})` : ''}`,
    requests: `${m.requests} (${plural(m.downstreamRequests, DOWN_WORDS[m.transport] ?? 'downstream')})`,
    bytes: formatBytes(m.bytes),
    bytesPerEvent: s.bytesPerEvent === null ? '–' : String(Math.round(s.bytesPerEvent)),
    wasted: PUSH.has(m.transport)
      ? 'n/a'
      : `${m.wasted}${m.downstreamPolls ? ` of ${m.downstreamPolls} (${Math.round((100 * m.wasted) / m.downstreamPolls)} %)` : ''}`,
    reconnects: `${m.reconnects} (${m.recovered} / ${m.resynced})`,
    open: String(m.open),
  };
}

function windowValues(m, unc) {
  const w = m.windowSummary();
  const lag = (v) => formatLag(v, unc);
  return {
    latency: w.latencyCount ? meanAndP95({ mean: w.latencyMean, p95: w.latencyP95 }, ms) : '–',
    lag: w.lagCount ? meanAndP95({ mean: w.lagMean, p95: w.lagP95 }, lag) : '–',
    events: String(w.events),
    requests: `${w.requests} (${plural(w.downstreamRequests, DOWN_WORDS[m.transport] ?? 'downstream')})`,
    bytes: formatBytes(w.bytes),
    bytesPerEvent: w.bytesPerEvent === null ? '–' : String(Math.round(w.bytesPerEvent)),
    wasted: PUSH.has(m.transport) ? 'n/a' : `${w.wasted} of ${w.downstreamPolls}`,
    reconnects: String(w.reconnects),
    open: String(m.open),
  };
}

/** The note on a server byte figure that is partly an estimate (bytes served over HTTP/2). */
export function serverBytesNote(t) {
  const estimated = Number(t?.bytes_estimated);
  if (!(estimated > 0)) return null;
  return `≈: ${formatBytes(estimated)} of it went over HTTP/2, where one connection carries every transport and the server ` +
    'cannot split its bytes by request: estimated as the payload plus 9 B per frame, without the compressed heads.';
}

/** The server's byte figures for one transport: `{bytes, bytesPerEvent}` as cell values. */
export function serverBytes(t) {
  if (!t || !Number.isFinite(t.bytes_written)) return { bytes: '–', bytesPerEvent: '–' };
  const note = serverBytesNote(t);
  const mark = note ? '≈ ' : '';
  const events = Number(t.events_delivered);
  const cell = (text) => (note ? { text: `${mark}${text}`, note, kind: 'estimated' } : text);
  return {
    bytes: cell(formatBytes(t.bytes_written)),
    bytesPerEvent: events > 0 ? cell(String(Math.round(t.bytes_written / events))) : '–',
  };
}

function serverFigures(t) {
  if (!t) return {};
  const num = (v) => (Number.isFinite(v) ? String(v) : '–');
  const lag = t.delivery_lag_ms;
  return {
    lag: lag && lag.count ? meanAndP95({ mean: lag.mean, p95: lag.p95 }, ms) : '–',
    events: num(t.events_delivered),
    requests: num(t.requests),
    ...serverBytes(t),
    open: num(t.open_connections),
    clicks: `${num(t.clicks_accepted)} / ${num(t.clicks_rejected)}`,
  };
}

/** Formatting shared with the history and summary tables. */
export const fmt = {
  ms,
  lag: formatLag,
  ratio: (v, digits = 2) => (v === null || !Number.isFinite(v) ? '–' : v.toFixed(digits)),
  bytes: formatBytes,
};
