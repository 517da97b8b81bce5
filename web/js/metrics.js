// # Client-side figures of one transport run, and the wire log behind the inspector
//
// A `Meter` is the `probe` a transport reports to (see transports/common.js) plus the page's own
// observations (events seen, click answers). One Meter per transport run: switching transports
// starts a new one, and the finished run's `summary()` goes into the history table.
//
// What each figure counts is defined once, in js/definitions.js (and docs/transports.md, "What
// each figure measures", says the same): this file computes exactly that. Each figure comes
// twice: *since open* (this run) and over the *last WINDOW_S seconds*, so a change the lecturer
// makes (an interval, a delay) shows within seconds instead of drowning in the run's history.
// A mean and its p95 are always taken over the same samples — the page once showed a lifetime
// mean next to a p95 of the last 2000 values, and a mean above the p95 with it.

import { clientNow } from './clock.js';
import { WINDOW_MS } from './definitions.js';

/** The wire inspector shows this many items. */
export const WIRE_LIMIT = 50;
/** Long texts (snapshots) are cut in the inspector: the byte count still says their size. */
const WIRE_TEXT_LIMIT = 400;
/** Lag samples kept for the compare page's chart. */
const SERIES_MS = 90_000;

/** Values kept for a since-open percentile; beyond it a uniform sample of all of them. */
export const RESERVOIR = 4096;

/** Nearest-rank percentile (p in 0…100) of an array of numbers; null when empty. */
export function percentile(values, p) {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
  return sorted[rank - 1];
}

/**
 * Every value since the start: count, sum (so an exact mean), last, max, and percentiles from a
 * uniform random sample of *all* values (reservoir sampling, Algorithm R) — the same population
 * as the mean, however long the lecture runs, in bounded memory.
 */
export class Samples {
  constructor(capacity = RESERVOIR, random = Math.random) {
    this.capacity = capacity;
    this.random = random;
    this.values = [];
    this.count = 0;
    this.sum = 0;
    this.last = null;
    this.max = null;
  }

  add(v) {
    this.count += 1;
    this.sum += v;
    this.last = v;
    this.max = this.max === null ? v : Math.max(this.max, v);
    if (this.values.length < this.capacity) {
      this.values.push(v);
    } else {
      const slot = Math.floor(this.random() * this.count);
      if (slot < this.capacity) this.values[slot] = v;
    }
  }

  get mean() {
    return this.count ? this.sum / this.count : null;
  }

  percentile(p) {
    return percentile(this.values, p);
  }
}

/** The values of the last `windowMs` only: `{t, v}` pairs, dropped as they age. */
export class WindowSamples {
  constructor(windowMs = WINDOW_MS, now = clientNow) {
    this.windowMs = windowMs;
    this.now = now;
    this.items = [];
  }

  add(v, t = this.now()) {
    this.items.push({ t, v });
    this.#prune(t);
  }

  #prune(t = this.now()) {
    const from = t - this.windowMs;
    let drop = 0;
    while (drop < this.items.length && this.items[drop].t < from) drop += 1;
    if (drop) this.items.splice(0, drop);
  }

  /** `{count, mean, p95, last}` of the window now (count 0 and nulls when empty). */
  stats(t = this.now()) {
    this.#prune(t);
    const values = this.items.map((i) => i.v);
    const count = values.length;
    return {
      count,
      mean: count ? values.reduce((a, b) => a + b, 0) / count : null,
      p95: percentile(values, 95),
      last: count ? values[count - 1] : null,
    };
  }
}

/**
 * Counters of the last `windowMs`: each `add({events, bytes, ...})` is stamped; `sums()` adds up
 * the entries still inside the window.
 */
export class WindowCounts {
  constructor(windowMs = WINDOW_MS, now = clientNow) {
    this.windowMs = windowMs;
    this.now = now;
    this.items = [];
  }

  add(counts, t = this.now()) {
    this.items.push({ t, counts });
    const from = t - this.windowMs;
    while (this.items.length && this.items[0].t < from) this.items.shift();
  }

  sums(t = this.now()) {
    const from = t - this.windowMs;
    while (this.items.length && this.items[0].t < from) this.items.shift();
    const out = { events: 0, requests: 0, downstreamRequests: 0, downstreamPolls: 0, wasted: 0, bytes: 0, reconnects: 0 };
    for (const { counts } of this.items) {
      for (const [key, value] of Object.entries(counts)) out[key] = (out[key] ?? 0) + value;
    }
    return out;
  }
}

function shorten(text) {
  return text.length > WIRE_TEXT_LIMIT ? `${text.slice(0, WIRE_TEXT_LIMIT)}…` : text;
}

export function formatBytes(n) {
  if (n < 1024) return `${n} B`;
  if (n < 1024 * 1024) return `${(n / 1024).toFixed(1)} KiB`;
  return `${(n / 1024 / 1024).toFixed(2)} MiB`;
}

export class Meter {
  constructor(transport) {
    this.transport = transport;
    this.startedAt = clientNow();
    this.requests = 0;
    this.bytes = 0;
    this.wasted = 0;
    /** Requests that fetch events: polls, long polls, EventSource GETs, WebSocket upgrades. */
    this.downstreamRequests = 0;
    /** Polls and long polls that got an answer (the base of the wasted share). */
    this.downstreamPolls = 0;
    this.reconnects = 0;
    this.recovered = 0;
    this.resynced = 0;
    this.open = 0;
    /** New events the page applied (not duplicates); snapshots counted apart. */
    this.events = 0;
    this.snapshots = 0;
    this.framesIn = 0;
    this.framesOut = 0;
    this.latency = new Samples();
    this.lag = new Samples();
    /** The same two, and the counters, over the last WINDOW_MS only. */
    this.latencyWindow = new WindowSamples();
    this.lagWindow = new WindowSamples();
    this.recent = new WindowCounts();
    /** [{t: client ms, v: lag ms}] for the last SERIES_MS, for charts. */
    this.lagSeries = [];
    /** The wire inspector's items: {t, dir: 'up'|'down'|'info', text}. */
    this.wire = [];
    this.wireSeq = 0;
    /** Called after every change (the page throttles its rendering). */
    this.onChange = () => {};
  }

  /** `size`: what the item weighed on the wire, when the text does not say it. */
  #wire(dir, text, size = null) {
    this.wire.push({ n: ++this.wireSeq, t: clientNow(), dir, text: shorten(text), size });
    if (this.wire.length > WIRE_LIMIT) this.wire.shift();
  }

  clearWire() {
    this.wire = [];
    this.onChange();
  }

  // ---- the probe (called by transports) ----

  requestStarted() {
    this.open += 1;
    this.onChange();
  }

  /** `bytes`: the response on the wire (head included); `body`: the body alone. */
  requestDone({ method, path, status, bytes, body = bytes, events, downstream, ms, error }) {
    this.open = Math.max(0, this.open - 1);
    this.requests += 1;
    // Bytes received count what delivering events took: polls and long polls, not the answers
    // to clicks and tickets (the server's figure leaves those out too).
    const delivery = downstream ? bytes : 0;
    this.bytes += delivery;
    if (downstream) this.downstreamRequests += 1;
    const answered = downstream && !error;
    const wasted = answered && events === 0;
    if (answered) this.downstreamPolls += 1;
    if (wasted) this.wasted += 1;
    this.recent.add({
      requests: 1,
      bytes: delivery,
      downstreamRequests: downstream ? 1 : 0,
      downstreamPolls: answered ? 1 : 0,
      wasted: wasted ? 1 : 0,
    });
    let outcome;
    if (error) outcome = status ? `${status}, ${error}` : error;
    else if (downstream) outcome = `${status}, ${events} ${events === 1 ? 'event' : 'events'}`;
    else outcome = String(status);
    const head = bytes - body;
    const size = head > 0 ? `${formatBytes(body)} + ${formatBytes(head)} head` : formatBytes(bytes);
    this.#wire('up', `${method} ${path} → ${outcome}, ${size}, ${Math.round(ms)} ms`);
    this.onChange();
  }

  streamRequest({ method, path, kind }) {
    this.requests += 1;
    this.downstreamRequests += 1;
    this.recent.add({ requests: 1, downstreamRequests: 1 });
    this.#wire('up', `${method} ${path} (${kind})`);
    this.onChange();
  }

  /** An EventSource or WebSocket opened; `bytes`: its response head, as the page counts it. */
  socketOpened({ label, bytes = 0 }) {
    this.open += 1;
    if (bytes) {
      this.bytes += bytes;
      this.recent.add({ bytes });
    }
    this.#wire('info', label, bytes || null);
    this.onChange();
  }

  socketClosed({ label }) {
    this.open = Math.max(0, this.open - 1);
    this.#wire('info', label);
    this.onChange();
  }

  /** A frame or SSE block; `bytes`: what it weighed on the wire (framing included). */
  frame({ dir, text, bytes }) {
    if (dir === 'in') {
      this.framesIn += 1;
      this.bytes += bytes;
      this.recent.add({ bytes });
    } else {
      this.framesOut += 1;
    }
    this.#wire(dir === 'in' ? 'down' : 'up', text, bytes);
    this.onChange();
  }

  reconnecting({ wait, attempt, reason }) {
    this.reconnects += 1;
    this.recent.add({ reconnects: 1 });
    this.#wire('info', `reconnecting in ${wait} ms (attempt ${attempt}): ${reason}`);
    this.onChange();
  }

  resumed(kind) {
    if (kind === 'resynced') this.resynced += 1;
    else this.recovered += 1;
    this.#wire('info', kind === 'resynced'
      ? 'resumed with a snapshot (resynced): epoch changed or the gap left the history'
      : 'resumed where we were (recovered): no event lost, no snapshot needed');
    this.onChange();
  }

  note(text) {
    this.#wire('info', text);
    this.onChange();
  }

  // ---- the page's observations ----

  /** A new event was applied (`verdict` from Stream.accept); `serverNow` from the clock. */
  eventSeen(event, verdict, serverNow) {
    if (verdict === 'reset') {
      this.snapshots += 1;
    } else if (verdict === 'apply') {
      this.events += 1;
      const lag = serverNow - event.ts;
      const t = clientNow();
      this.lag.add(lag);
      this.lagWindow.add(lag, t);
      this.recent.add({ events: 1 }, t);
      this.lagSeries.push({ t, v: lag });
      while (this.lagSeries.length && this.lagSeries[0].t < t - SERIES_MS) this.lagSeries.shift();
    }
    this.onChange();
  }

  clickAnswered(ms) {
    this.latency.add(ms);
    this.latencyWindow.add(ms);
    this.onChange();
  }

  /** The figures of this run, plain numbers (null = no sample), for tables and the history. */
  summary() {
    return {
      transport: this.transport,
      seconds: (clientNow() - this.startedAt) / 1000,
      events: this.events,
      requests: this.requests,
      downstreamRequests: this.downstreamRequests,
      bytes: this.bytes,
      wasted: this.wasted,
      reconnects: this.reconnects,
      recovered: this.recovered,
      resynced: this.resynced,
      open: this.open,
      lagMean: this.lag.mean,
      lagP95: this.lag.percentile(95),
      latencyMean: this.latency.mean,
      latencyP95: this.latency.percentile(95),
      /** Downstream requests only: what it took to *deliver* the events (clicks not counted). */
      requestsPerEvent: this.events ? this.downstreamRequests / this.events : null,
      bytesPerEvent: this.events ? this.bytes / this.events : null,
      window: this.windowSummary(),
    };
  }

  /** The same figures over the last WINDOW_MS only (`seconds`: how much of it this run covers). */
  windowSummary(t = clientNow()) {
    const c = this.recent.sums(t);
    const lag = this.lagWindow.stats(t);
    const latency = this.latencyWindow.stats(t);
    return {
      seconds: Math.min(WINDOW_MS, t - this.startedAt) / 1000,
      ...c,
      lagMean: lag.mean,
      lagP95: lag.p95,
      lagCount: lag.count,
      latencyMean: latency.mean,
      latencyP95: latency.p95,
      latencyCount: latency.count,
      requestsPerEvent: c.events ? c.downstreamRequests / c.events : null,
      bytesPerEvent: c.events ? c.bytes / c.events : null,
    };
  }
}
