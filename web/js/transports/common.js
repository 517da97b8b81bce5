// # What the four transports share
//
// Every transport in this folder is a class with the same members, so a page can swap one for
// another while the game goes on:
//
//   new Transport({onEvent, onStatus, pollIntervalMs, probe, auth})
//   connect(since, epoch)   start delivering every event after `since` (of server run `epoch`)
//   send(command)           a click {round, x, y} → Promise of {"result": "hit"|"miss"|"late", ...}
//   drop()                  cut the connection as a network failure would (it then reconnects)
//   close()                 stop; no onEvent/onStatus after this returns
//
// `onEvent(object)` gets each event as parsed JSON, in order (validation is protocol.js's job).
// `onStatus(state, detail)` reports 'connecting' | 'connected' | 'reconnecting' | 'closed'.
//
// `probe` is told about every request, socket, frame and reconnect (js/metrics.js's Meter counts
// them and feeds the wire inspector); `NO_PROBE` ignores everything. `auth` says who we are:
// `{kind: 'cookie'}` (the page's session cookie, the default), `{kind: 'none'}` (a spectator that
// sends no credentials where it can avoid it) or `{kind: 'token', token}` (a bot: `Authorization:
// Bearer` on fetches, a one-time `?ticket=` on EventSource and WebSocket, which cannot send
// headers).
//
// Polling, long polling and SSE only carry events *down*; their clicks go *up* through
// `POST /api/click` (`postClick` below) — the server's src/transport/command.rs. The WebSocket
// carries clicks in-band instead.
//
// Reconnecting is the same everywhere, and lives in one place: `Reconnector` below (the SignalR
// client's shape — a transport opens one connection and reports how it went; the retry loop is
// not its business). After a failure it waits `Backoff.next()` — 0.5 s doubling to 10 s, with
// jitter so a classroom of clients dropped at once does not come back in one burst — then opens
// again from the last seq seen. The first answer after a reconnect says whether the resume
// *recovered* (events continued where we were) or *resynced* (the server sent a snapshot: its
// epoch changed or our gap had left its history).

/** Backoff: the first retry waits about this long… */
export const BACKOFF_MIN_MS = 500;
/** …doubling per failed attempt up to this cap. */
export const BACKOFF_MAX_MS = 10_000;

/** A refusal from the server: `{"error": code, "detail": text}`, or a transport failure. */
export class ApiError extends Error {
  constructor(code, detail, status = 0) {
    super(`${code}: ${detail}`);
    this.name = 'ApiError';
    this.code = code;
    this.detail = detail;
    this.status = status;
  }
}

/**
 * Capped exponential backoff with "equal jitter": attempt n waits a uniformly random time in
 * [d/2, d] where d = min(max, min × 2^n). The random half spreads reconnects out; the fixed half
 * keeps a retry from ever being instant.
 */
export class Backoff {
  constructor({ min = BACKOFF_MIN_MS, max = BACKOFF_MAX_MS, random = Math.random } = {}) {
    this.min = min;
    this.max = max;
    this.random = random;
    this.attempt = 0;
  }

  /** The wait before the next attempt (and counts the attempt). */
  next() {
    const ceiling = Math.min(this.max, this.min * 2 ** Math.min(this.attempt, 30));
    this.attempt += 1;
    return Math.round(ceiling / 2 + (this.random() * ceiling) / 2);
  }

  /** After a success: the next failure starts from `min` again. */
  reset() {
    this.attempt = 0;
  }
}

/** A probe that ignores everything (for transports used without a Meter). */
export const NO_PROBE = Object.freeze({
  requestStarted() {},
  requestDone() {},
  streamRequest() {},
  socketOpened() {},
  socketClosed() {},
  frame() {},
  reconnecting() {},
  resumed() {},
  note() {},
});

/** `path?since=N&epoch=E`, leaving out what we do not know (the server then sends a snapshot). */
export function resumeUrl(path, since, epoch, extra = {}) {
  const params = new URLSearchParams();
  if (since !== null && since !== undefined) params.set('since', String(since));
  if (epoch) params.set('epoch', epoch);
  for (const [key, value] of Object.entries(extra)) params.set(key, String(value));
  const query = params.toString();
  return query ? `${path}?${query}` : path;
}

/** Resolves after `ms`, or at once when `signal` aborts (so close() never waits for a timer). */
export function delay(ms, signal) {
  return new Promise((resolve) => {
    if (signal?.aborted) return resolve();
    const timer = setTimeout(done, ms);
    signal?.addEventListener('abort', done, { once: true });
    function done() {
      clearTimeout(timer);
      signal?.removeEventListener('abort', done);
      resolve();
    }
  });
}

/** Turns a non-2xx response into an ApiError with the server's code and detail. */
export async function errorFrom(res) {
  let body = null;
  try {
    body = await res.json();
  } catch {
    // Not JSON (a proxy's error page, say): fall back to the status line.
  }
  return errorFromBody(res, body);
}

function errorFromBody(res, body) {
  const code = typeof body?.error === 'string' ? body.error : `http_${res.status}`;
  const detail = typeof body?.detail === 'string' ? body.detail : res.statusText;
  return new ApiError(code, detail, res.status);
}

/** fetch() options for `auth` (see the top of this file). */
export function fetchAuth(auth, headers = {}) {
  if (auth?.kind === 'token') {
    return { credentials: 'omit', headers: { ...headers, Authorization: `Bearer ${auth.token}` } };
  }
  return { credentials: auth?.kind === 'none' ? 'omit' : 'same-origin', headers };
}

const utf8 = new TextEncoder();
/** UTF-8 length of a string: what a text body or frame weighs on the wire (before framing). */
export function byteLength(text) {
  return utf8.encode(text).length;
}

// ---- what crosses the wire ------------------------------------------------------------------
//
// "Bytes received" counts responses as they cross the wire, heads included — that is where
// polling pays: every answer carries a response head of a few hundred bytes, while an SSE stream
// or a WebSocket pays for one head per connection. But a page script cannot see a head's size:
// browsers hide it (it would reveal how big other sites' cookies are), and the Resource Timing
// standard defines `transferSize` as the body as transferred **plus a fixed 300 B**. So the page
// counts every response head as those 300 B — fetches through `transferSize` itself, an SSE
// stream's head and a WebSocket's 101 handshake by the same rule — and says it is an estimate.
// The server counts the real bytes at its sockets (the Server column): about 400 B per head here
// over HTTP/1.1, far fewer over HTTP/2, whose HPACK compresses repeated headers.

/** What a response head counts for on the page: Resource Timing's own stand-in (see above). */
export const HEAD_STANDIN_BYTES = 300;

/**
 * The header of a WebSocket frame carrying `payload` bytes (RFC 6455 §5.2): 2 B up to 125 B of
 * payload, 4 B up to 64 KiB, 10 B beyond; a client's frames add a 4-byte mask.
 */
export function wsFrameHeaderBytes(payload, { masked = false } = {}) {
  const base = payload < 126 ? 2 : payload < 65536 ? 4 : 10;
  return base + (masked ? 4 : 0);
}

/** Resource Timing entries already counted, so two requests to one URL do not share one. */
const counted = typeof WeakSet === 'undefined' ? null : new WeakSet();

/**
 * What a fetch's response weighed on the wire: the `transferSize` of its Resource Timing entry
 * (the body as transferred + 300 B for the head), found by URL among the entries that started
 * no earlier than the request (`startedAt`, performance.now() at the fetch). When there is none —
 * the browser's entry buffer (about 250) is full, or no Resource Timing at all (Node's unit
 * tests) — the same rule by hand: body + HEAD_STANDIN_BYTES.
 */
export function responseWireBytes(path, bodyBytes, startedAt = 0) {
  const perf = typeof performance === 'undefined' ? null : performance;
  if (perf?.getEntriesByName && typeof location !== 'undefined') {
    const url = new URL(path, location.href).href;
    const entries = perf.getEntriesByName(url, 'resource');
    for (let i = entries.length - 1; i >= 0; i -= 1) {
      const entry = entries[i];
      if (entry.startTime < startedAt - 1) break;
      if (counted?.has(entry) || !(entry.transferSize > 0)) continue;
      counted?.add(entry);
      return entry.transferSize;
    }
  }
  return bodyBytes + HEAD_STANDIN_BYTES;
}

/**
 * A fetch that reports itself to the probe: one request, its size on the wire (`bytes`: the
 * body plus its head, see responseWireBytes; `body`: the body alone), the status and, for a
 * downstream poll, how many events the answer carried (0 = a wasted request). Resolves to
 * `{res, body}` with `body` the parsed JSON (null for an empty body); throws ApiError for a
 * non-2xx answer or a network failure. Only `signal` aborts are rethrown as they are.
 */
export async function meteredFetch(
  probe,
  path,
  { method = 'GET', auth, body, signal, downstream = false, extraHeaders = {} } = {},
) {
  const started = performance.now();
  const { credentials, headers } = fetchAuth(
    auth,
    body === undefined ? { ...extraHeaders } : { 'Content-Type': 'application/json', ...extraHeaders },
  );
  probe.requestStarted();
  let status = 0;
  let bytes = 0;
  let bodyBytes = 0;
  let events = null;
  let failure = null;
  try {
    // no-store: every poll must reach the server, never a cached "nothing new".
    const res = await fetch(path, {
      method,
      credentials,
      headers,
      cache: 'no-store',
      signal,
      body: body === undefined ? undefined : JSON.stringify(body),
    });
    status = res.status;
    const raw = await res.arrayBuffer();
    bodyBytes = raw.byteLength;
    bytes = responseWireBytes(path, bodyBytes, started);
    const text = new TextDecoder().decode(raw);
    let parsed = null;
    if (text.length > 0) {
      try {
        parsed = JSON.parse(text);
      } catch {
        parsed = null;
      }
    }
    if (!res.ok) throw errorFromBody(res, parsed);
    if (downstream) events = Array.isArray(parsed?.events) ? parsed.events.length : 0;
    return { res, body: parsed };
  } catch (err) {
    failure = err;
    if (err?.name === 'AbortError' || err instanceof ApiError) throw err;
    throw new ApiError('network', String(err?.message ?? err));
  } finally {
    probe.requestDone({
      method,
      path,
      status,
      bytes,
      body: bodyBytes,
      events,
      downstream,
      ms: performance.now() - started,
      error: failure ? (failure.name === 'AbortError' ? 'aborted' : String(failure.code ?? failure.message)) : null,
    });
  }
}

/**
 * The upstream half of the three HTTP transports: `POST /api/click`, authenticated by the session
 * cookie (HttpOnly, set by `POST /api/join`: same-origin fetches send it, page scripts cannot read
 * it) or, for a bot, by its Bearer token.
 */
export async function postClick(command, { probe = NO_PROBE, auth } = {}) {
  // One key per click, the same on every retry: the server runs the click at most once.
  const key = idempotencyKey();
  const giveUp = performance.now() + CLICK_RETRY_MS;
  for (;;) {
    try {
      const { body } = await meteredFetch(probe, '/api/click', {
        method: 'POST',
        auth,
        body: { round: command.round, x: command.x, y: command.y },
        extraHeaders: { 'Idempotency-Key': key },
      });
      return body;
    } catch (err) {
      // 503: in a cluster, the node that runs the game is out of reach for a moment (a
      // failover, Redis restarting); 502/504 and a network failure: the proxy lost the node
      // mid-request. The click may or may not have run: asking again with the same key is
      // safe — it is answered, not run twice (docs/scaling.md).
      const retry = err instanceof ApiError && (RETRY_STATUSES.has(err.status) || err.code === 'network');
      if (!retry || performance.now() + CLICK_RETRY_PAUSE_MS > giveUp) throw err;
      probe.note(`click: ${err.code}, asking again with the same Idempotency-Key`);
      await delay(CLICK_RETRY_PAUSE_MS);
    }
  }
}

/** A click refused with one of these is asked again (see postClick). */
const RETRY_STATUSES = new Set([502, 503, 504]);
/** How long a click keeps being asked again; a failover takes a few seconds. */
export const CLICK_RETRY_MS = 6000;
/** The pause between two attempts (the server says `Retry-After: 1`). */
const CLICK_RETRY_PAUSE_MS = 1000;

/**
 * 128 random bits as hex. `crypto.getRandomValues`, not `randomUUID`: the latter exists only in
 * secure contexts, and the game is also played over plain HTTP on a LAN.
 */
export function idempotencyKey() {
  const bytes = crypto.getRandomValues(new Uint8Array(16));
  return Array.from(bytes, (b) => b.toString(16).padStart(2, '0')).join('');
}

/**
 * For EventSource and WebSocket, which cannot send an Authorization header: a bot trades its
 * token for a one-time ticket (`POST /api/ticket`) before each connection. Returns the extra
 * query parameters to add: `{ticket}` for a token, nothing otherwise (the cookie, if any, goes
 * along by itself).
 */
export async function streamAuthParams(auth, probe, signal) {
  // A spectator pane must not count as the page's player, whose cookie rides along anyway.
  if (auth?.kind === 'none') return { spectate: '1' };
  if (auth?.kind !== 'token') return {};
  const { body } = await meteredFetch(probe, '/api/ticket', { method: 'POST', auth, signal });
  if (typeof body?.ticket !== 'string') throw new ApiError('bad_ticket', 'no ticket in the answer');
  return { ticket: body.ticket };
}

/**
 * Tracks a transport's own resume point from the events it passes on, so it can reconnect by
 * itself after an error without asking the page where it was.
 */
export function advance(position, event) {
  if (event && Number.isSafeInteger(event.seq)) {
    position.since = event.seq;
    if (event.type === 'snapshot' && typeof event.epoch === 'string') position.epoch = event.epoch;
  }
}

/**
 * Decides, once per reconnect, whether the resume *recovered* or *resynced*: `arm()` when a
 * reconnect starts; then the first event (or an answer with no events) settles it.
 */
export class ResumeWatch {
  constructor(probe) {
    this.probe = probe;
    this.armed = false;
  }

  arm() {
    this.armed = true;
  }

  /** `event` is the first event after the reconnect, or null for an empty answer. */
  settle(event) {
    if (!this.armed) return;
    this.armed = false;
    this.probe.resumed(event?.type === 'snapshot' ? 'resynced' : 'recovered');
  }
}

/**
 * The one reconnect loop of all four transports: backoff, status text, resume bookkeeping.
 *
 *   const reconnect = new Reconnector({ open: (link) => ..., onEvent, onStatus, probe });
 *   reconnect.start(since, epoch)   status 'connecting', then open(link)
 *   reconnect.stop()                status 'closed'; the current link dies, no retry follows
 *
 * `open(link)` makes one attempt — one poll loop, one EventSource, one WebSocket — and reports
 * through its `link` (a transport does nothing else about reconnecting):
 *
 *   link.position        {since, epoch}: where to resume from (kept up to date by the link)
 *   link.signal          aborts when the link dies (stop(), or after closed()): cancel fetches
 *   link.alive           false once the link is dead; a dead link's reports are ignored
 *   link.opened()        reached the server: status 'connected', the backoff starts over
 *   link.event(event)    one event: advances the position, settles recovered/resynced, onEvent
 *   link.answered(events, lastSeq)  a poll's answer (maybe empty): the same, then since = lastSeq
 *   link.closed(reason)  the attempt failed or ended: status 'reconnecting', wait, open() again
 *
 * `timers` and `backoff` are injectable so the Node unit tests can drive time themselves.
 */
export class Reconnector {
  constructor({
    open,
    onEvent,
    onStatus = () => {},
    probe = NO_PROBE,
    retryLabel = 'next attempt',
    backoff = new Backoff(),
    timers = { setTimeout: (fn, ms) => setTimeout(fn, ms), clearTimeout: (id) => clearTimeout(id) },
    // Where the browser says "online" (the window); null where there is none (Node).
    network = typeof window !== 'undefined' && typeof window.addEventListener === 'function' ? window : null,
  }) {
    this.open = open;
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.probe = probe;
    this.retryLabel = retryLabel;
    this.backoff = backoff;
    this.timers = timers;
    this.network = network;
    /** While waiting out a backoff: the `online` listener that cuts the wait short. */
    this.onOnline = null;
    this.resume = new ResumeWatch(probe);
    /** Where to resume from: the last event seen, of which server run. */
    this.position = { since: null, epoch: null };
    this.running = false;
    this.link = null;
    this.timer = null;
  }

  /** Starts delivering every event after `since` (of server run `epoch`). */
  start(since, epoch) {
    this.#end();
    this.position = { since, epoch };
    this.running = true;
    this.onStatus('connecting');
    this.#attempt();
  }

  /** Stops for good: no report of the current link counts any more, no retry follows. */
  stop() {
    this.#end();
    this.onStatus('closed');
  }

  #end() {
    this.running = false;
    this.#stopWaiting();
    const link = this.link;
    this.link = null;
    link?.kill();
  }

  #attempt() {
    const controller = new AbortController();
    let connected = false;
    const owner = this;
    const link = {
      signal: controller.signal,
      get alive() {
        return owner.link === link && !controller.signal.aborted;
      },
      get position() {
        return owner.position;
      },
      opened() {
        if (!link.alive || connected) return;
        connected = true;
        owner.backoff.reset();
        owner.onStatus('connected');
      },
      event(event) {
        if (!link.alive) return false;
        owner.resume.settle(event);
        advance(owner.position, event);
        owner.onEvent(event);
        return link.alive;
      },
      answered(events, lastSeq) {
        if (!link.alive) return false;
        owner.resume.settle(events[0] ?? null);
        for (const event of events) {
          if (!link.event(event)) return false;
        }
        if (Number.isSafeInteger(lastSeq)) owner.position.since = lastSeq;
        return true;
      },
      closed(reason) {
        if (!link.alive) return;
        owner.#retry(String(reason));
      },
      kill() {
        controller.abort();
      },
    };
    this.link = link;
    try {
      Promise.resolve(this.open(link)).catch((err) => link.closed(String(err?.message ?? err)));
    } catch (err) {
      link.closed(String(err?.message ?? err));
    }
  }

  #retry(reason) {
    const link = this.link;
    this.link = null;
    link?.kill();
    const wait = this.backoff.next();
    const attempt = this.backoff.attempt;
    this.probe.reconnecting({ wait, attempt, reason });
    this.onStatus('reconnecting', `${this.retryLabel} in ${(wait / 1000).toFixed(1)} s (attempt ${attempt}): ${reason}`);
    this.resume.arm();
    const next = () => {
      this.#stopWaiting();
      if (this.running) this.#attempt();
    };
    this.timer = this.timers.setTimeout(next, wait);
    // A phone back on the Wi-Fi should not sit out a backoff of up to 10 s: the browser's
    // `online` event starts the next attempt at once. (Only a hint: `online` means "some
    // network", not "the server", so the backoff stays for when it was wrong.)
    if (this.network) {
      this.onOnline = next;
      this.network.addEventListener('online', next);
    }
  }

  #stopWaiting() {
    this.timers.clearTimeout(this.timer);
    this.timer = null;
    if (this.onOnline) this.network?.removeEventListener('online', this.onOnline);
    this.onOnline = null;
  }
}
