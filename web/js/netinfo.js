// # Which protocol am I on? And how many connections does this browser hold here?
//
// Two questions a student cannot answer from the page alone:
//
// * **HTTP/1.1 or HTTP/2, http: or https:, ws: or wss:** — the Resource Timing API records, for
//   every request the page made, the protocol of the connection it used (`nextHopProtocol`:
//   `http/1.1`, `h2`, `h3`). We read the entries of the page's own API requests in page code —
//   `performance.getEntriesByType('resource')` plus an observer for the ones that follow — never
//   inside the transports, which stay about carrying events. An entry appears when its response
//   has ended: a long poll's after it returns, an EventSource's never while it streams, so an SSE
//   stream is labelled with the protocol of the page's other requests to the same origin (one
//   origin, one connection pool). A WebSocket is always an HTTP/1.1 upgrade here: the server does
//   not offer WebSockets over HTTP/2 (RFC 8441).
// * **The per-origin connection limit** — over HTTP/1.1 a browser opens at most 6 connections per
//   origin, and every SSE stream and parked long poll holds one for as long as it lives. Six of
//   them, in one tab or spread over several, and the next request (a click, a page load) queues
//   and seems to hang. Each page tells the others on a BroadcastChannel (same origin only, like
//   the limit) how many it holds, so any tab can count them all and say so.

/** `nextHopProtocol` → what the page shows. */
export const PROTOCOL_NAMES = Object.freeze({
  'http/0.9': 'HTTP/0.9',
  'http/1.0': 'HTTP/1.0',
  'http/1.1': 'HTTP/1.1',
  h2: 'HTTP/2',
  h2c: 'HTTP/2',
  h3: 'HTTP/3',
});

/** Chromium's and Firefox's connections per origin over HTTP/1.x. */
export const HTTP1_CONNECTIONS_PER_ORIGIN = 6;

/** The endpoint whose entries tell a pane's protocol. */
const TRANSPORT_PATHS = { ajax: '/api/poll', longpoll: '/api/longpoll', sse: '/api/sse', websocket: '/api/ws' };

/** A `nextHopProtocol` value as the page shows it; null when unknown (empty or absent). */
export function protocolName(nextHop) {
  if (!nextHop) return null;
  return PROTOCOL_NAMES[nextHop] ?? nextHop.toUpperCase();
}

/** Whether a protocol name is HTTP/1.x: one request per connection at a time, 6 per origin. */
export function isHttp1(name) {
  return typeof name === 'string' && name.startsWith('HTTP/1');
}

/** `http:`/`https:` and the matching WebSocket scheme for a page location. */
export function schemes(location) {
  const secure = location.protocol === 'https:';
  return { http: secure ? 'https:' : 'http:', ws: secure ? 'wss:' : 'ws:' };
}

/**
 * The protocols seen so far, from Resource Timing entries (`{name, nextHopProtocol}`): the latest
 * of the page's API requests overall, and per path. Pure, for tests.
 */
export class ProtocolBook {
  constructor(origin) {
    this.origin = origin;
    /** The page's own API requests (any /api/ path): the latest protocol. */
    this.api = null;
    /** path → the latest protocol of requests to it. */
    this.byPath = new Map();
    /** The document's own (navigation) protocol, a fallback before any API request ended. */
    this.document = null;
  }

  /** Notes entries; returns true when something changed. */
  add(entries) {
    let changed = false;
    for (const entry of entries) {
      const name = protocolName(entry.nextHopProtocol);
      if (!name) continue;
      let url;
      try {
        url = new URL(entry.name, this.origin);
      } catch {
        continue;
      }
      if (url.origin !== this.origin) continue;
      if (entry.entryType === 'navigation') {
        changed ||= this.document !== name;
        this.document = name;
        continue;
      }
      if (!url.pathname.startsWith('/api/')) continue;
      changed ||= this.api !== name || this.byPath.get(url.pathname) !== name;
      this.api = name;
      this.byPath.set(url.pathname, name);
    }
    return changed;
  }

  /** The page's protocol: its API requests', else the document's; null before either. */
  page() {
    return this.api ?? this.document;
  }

  /**
   * A transport's label: `{protocol, scheme, text, measured}`. `measured` false when the protocol
   * is the page's, not an entry of the transport's own endpoint (SSE; a transport before its first
   * answer).
   */
  transport(transport, location) {
    const s = schemes(location);
    if (transport === 'websocket') {
      return { protocol: 'HTTP/1.1', scheme: s.ws, text: `${s.ws} · HTTP/1.1 upgrade`, measured: false };
    }
    const own = this.byPath.get(TRANSPORT_PATHS[transport]) ?? null;
    const protocol = own ?? this.page();
    return {
      protocol,
      scheme: s.http,
      text: `${s.http} · ${protocol ?? 'HTTP/?'}`,
      measured: own !== null,
    };
  }
}

/**
 * Watches Resource Timing for the page: calls `onChange(book)` when a protocol is first seen or
 * changes. Uses a PerformanceObserver (it sees entries even after the browser's resource buffer
 * of ~250 entries is full, which a page polling every second fills in minutes).
 */
export function watchProtocols(onChange, { location = window.location, performance: perf = window.performance } = {}) {
  const book = new ProtocolBook(location.origin);
  book.add(perf.getEntriesByType('navigation'));
  book.add(perf.getEntriesByType('resource'));
  onChange(book);
  if (typeof PerformanceObserver !== 'undefined') {
    const observer = new PerformanceObserver((list) => {
      if (book.add(list.getEntries())) onChange(book);
    });
    observer.observe({ type: 'resource', buffered: true });
  }
  return book;
}

// ---- held connections, across tabs ----------------------------------------------------------

/**
 * The warning a page shows, or null: over HTTP/1.x with `held` (SSE streams and parked long
 * polls of this origin, all tabs) at or above the per-origin limit.
 */
export function connectionWarning({ protocol, held, limit = HTTP1_CONNECTIONS_PER_ORIGIN }) {
  if (!isHttp1(protocol) || held < limit) return null;
  return `This browser holds ${held} connections to this server open with SSE streams and long polls ` +
    `(all its tabs together). Over ${protocol} a browser opens at most ${limit} per origin, so further ` +
    'requests — clicks, page loads — wait in a queue and seem to hang. Open the game over https:// ' +
    '(HTTP/2 carries them all over one connection), or close some tabs.';
}

const CHANNEL = 'clickgame.connections';
/** A tab that has not spoken for this long is gone (closed, crashed, or frozen in the background). */
const STALE_MS = 6000;
const HEARTBEAT_MS = 2000;

/**
 * This origin's held connections, summed over the tabs of this browser. `set(n)` tells the
 * others how many this page holds; `total()` adds everybody's (this page included).
 */
export class ConnectionCensus {
  constructor({ onChange = () => {}, now = () => Date.now(), Channel = globalThis.BroadcastChannel } = {}) {
    this.id = `${now().toString(36)}-${Math.random().toString(36).slice(2)}`;
    this.onChange = onChange;
    this.now = now;
    this.mine = 0;
    /** other tab id → {held, at} */
    this.others = new Map();
    this.channel = Channel ? new Channel(CHANNEL) : null;
    if (this.channel) {
      this.channel.onmessage = (message) => this.receive(message.data);
      this.timer = setInterval(() => {
        this.#post();
        this.#expire();
      }, HEARTBEAT_MS);
      this.#post({ ask: true });
    }
  }

  /** A message from another tab: its count, and maybe a request to answer with ours. */
  receive(data) {
    if (!data || typeof data.id !== 'string' || data.id === this.id) return;
    const held = Number.isSafeInteger(data.held) && data.held >= 0 ? data.held : 0;
    if (data.gone) this.others.delete(data.id);
    else this.others.set(data.id, { held, at: this.now() });
    if (data.ask) this.#post();
    this.onChange(this.total());
  }

  set(held) {
    if (held === this.mine) return;
    this.mine = held;
    this.#post();
    this.onChange(this.total());
  }

  total() {
    this.#expire();
    let sum = this.mine;
    for (const { held } of this.others.values()) sum += held;
    return sum;
  }

  /** The page is going away: the others stop counting it at once. */
  close() {
    this.#post({ gone: true });
    clearInterval(this.timer);
    this.channel?.close();
    this.channel = null;
  }

  #expire() {
    const cutoff = this.now() - STALE_MS;
    for (const [id, { at }] of this.others) if (at < cutoff) this.others.delete(id);
  }

  #post(extra = {}) {
    try {
      this.channel?.postMessage({ id: this.id, held: this.mine, ...extra });
    } catch {
      // A closed channel (page unloading): nothing to tell.
    }
  }
}

/** How many connections a GameClient holds open now: an open SSE stream or a parked long poll. */
export function heldBy(client) {
  const long = client.transportName === 'sse' || client.transportName === 'longpoll';
  return long && client.connection === 'connected' ? 1 : 0;
}
