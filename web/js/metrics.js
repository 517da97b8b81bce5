// # Client-side figures of one transport run, and the wire log behind the inspector
//
// A `Meter` is the `probe` a transport reports to (see transports/common.js) plus the page's own
// observations (events seen, click answers). One Meter per transport run: switching transports
// starts a new one, and the finished run's `summary()` goes into the history table.
//
// What each figure counts — docs/transports.md ("How the figures are measured") says the same
// for lecturers, and the page's tooltips repeat it:
//
// * requests: every HTTP request this transport made: polls, long polls, click POSTs, ticket
//   requests, the EventSource GET and the WebSocket upgrade GET. Not the page's own side requests
//   (GET /api/stats, /api/time, /api/snapshot, the files). Of these, the *downstream* requests
//   (polls, long polls, EventSource GETs, WebSocket upgrades) are what it took to deliver events:
//   "requests per event" divides those by the events seen.
// * bytes received: response bodies as fetch() hands them over (decoded; no headers, no
//   chunked-encoding framing); for SSE each event block `id:…\nevent:…\ndata:…\n\n` as rebuilt
//   from the MessageEvent (heartbeat comments and `retry:` are invisible to scripts); for the
//   WebSocket each received text frame's payload (no frame header, no ping/pong).
// * wasted requests: downstream polls (AJAX and long polling) whose answer carried no event,
//   including 204s. Push transports have none (their heartbeats are invisible to scripts).
// * delivery lag: server clock now (our clock + the estimated offset, see clock.js) − event `ts`,
//   for each new event (not snapshots, not duplicates), when the page handles it.
// * click latency: our click handler → the click's answer (the POST response, or the WebSocket's
//   click_result frame), measured with performance.now().
// * open connections: requests in flight plus open streams/sockets of this transport, now.

import { clientNow } from './clock.js';

/** The wire inspector shows this many items. */
export const WIRE_LIMIT = 50;
/** Long texts (snapshots) are cut in the inspector: the byte count still says their size. */
const WIRE_TEXT_LIMIT = 400;
/** Lag samples kept for the compare page's chart. */
const SERIES_MS = 90_000;

/** Running count/sum plus a bounded window of recent values for percentiles. */
export class Samples {
  constructor(window = 2000) {
    this.window = window;
    this.values = [];
    this.count = 0;
    this.sum = 0;
    this.last = null;
    this.max = null;
  }

  add(v) {
    this.values.push(v);
    if (this.values.length > this.window) this.values.shift();
    this.count += 1;
    this.sum += v;
    this.last = v;
    this.max = this.max === null ? v : Math.max(this.max, v);
  }

  get mean() {
    return this.count ? this.sum / this.count : null;
  }

  /** Nearest-rank percentile (p in 0…100) over the recent window; null when empty. */
  percentile(p) {
    if (this.values.length === 0) return null;
    const sorted = [...this.values].sort((a, b) => a - b);
    const rank = Math.max(1, Math.ceil((p / 100) * sorted.length));
    return sorted[rank - 1];
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
    /** [{t: client ms, v: lag ms}] for the last SERIES_MS, for charts. */
    this.lagSeries = [];
    /** The wire inspector's items: {t, dir: 'up'|'down'|'info', text}. */
    this.wire = [];
    this.wireSeq = 0;
    /** Called after every change (the page throttles its rendering). */
    this.onChange = () => {};
  }

  #wire(dir, text) {
    this.wire.push({ n: ++this.wireSeq, t: clientNow(), dir, text: shorten(text) });
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

  requestDone({ method, path, status, bytes, events, downstream, ms, error }) {
    this.open = Math.max(0, this.open - 1);
    this.requests += 1;
    this.bytes += bytes;
    if (downstream) this.downstreamRequests += 1;
    if (downstream && !error) {
      this.downstreamPolls += 1;
      if (events === 0) this.wasted += 1;
    }
    let outcome;
    if (error) outcome = status ? `${status}, ${error}` : error;
    else if (downstream) outcome = `${status}, ${events} ${events === 1 ? 'event' : 'events'}`;
    else outcome = String(status);
    this.#wire('up', `${method} ${path} → ${outcome}, ${formatBytes(bytes)}, ${Math.round(ms)} ms`);
    this.onChange();
  }

  streamRequest({ method, path, kind }) {
    this.requests += 1;
    this.downstreamRequests += 1;
    this.#wire('up', `${method} ${path} (${kind})`);
    this.onChange();
  }

  socketOpened({ label }) {
    this.open += 1;
    this.#wire('info', label);
    this.onChange();
  }

  socketClosed({ label }) {
    this.open = Math.max(0, this.open - 1);
    this.#wire('info', label);
    this.onChange();
  }

  frame({ dir, text, bytes }) {
    if (dir === 'in') {
      this.framesIn += 1;
      this.bytes += bytes;
    } else {
      this.framesOut += 1;
    }
    this.#wire(dir === 'in' ? 'down' : 'up', text);
    this.onChange();
  }

  reconnecting({ wait, attempt, reason }) {
    this.reconnects += 1;
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
      this.lag.add(lag);
      const t = clientNow();
      this.lagSeries.push({ t, v: lag });
      while (this.lagSeries.length && this.lagSeries[0].t < t - SERIES_MS) this.lagSeries.shift();
    }
    this.onChange();
  }

  clickAnswered(ms) {
    this.latency.add(ms);
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
    };
  }
}
