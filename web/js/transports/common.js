// # What the four transports share
//
// Every transport in this folder is a class with the same four members, so main.js can swap one
// for another while the game goes on:
//
//   new Transport({onEvent, onStatus, pollIntervalMs})
//   connect(since, epoch)   start delivering every event after `since` (of server run `epoch`)
//   send(command)           a click {round, x, y} → Promise of {"result": "hit"|"miss"|"late", ...}
//   close()                 stop; no onEvent/onStatus after this returns
//
// `onEvent(object)` gets each event as parsed JSON, in order (validation is protocol.js's job).
// `onStatus(state, detail)` reports 'connecting' | 'connected' | 'reconnecting' | 'closed'.
//
// Polling, long polling and SSE only carry events *down*; their clicks go *up* through
// `POST /api/click` (`postClick` below) — the server's src/transport/command.rs. The WebSocket
// carries clicks in-band instead.

/** After a failed request or a dropped connection, try again after this long. */
export const RETRY_MS = 1000;

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

/** `path?since=N&epoch=E`, leaving out what we do not know (the server then sends a snapshot). */
export function resumeUrl(path, since, epoch) {
  const params = new URLSearchParams();
  if (since !== null && since !== undefined) params.set('since', String(since));
  if (epoch) params.set('epoch', epoch);
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
  const code = typeof body?.error === 'string' ? body.error : `http_${res.status}`;
  const detail = typeof body?.detail === 'string' ? body.detail : res.statusText;
  return new ApiError(code, detail, res.status);
}

/**
 * The upstream half of the three HTTP transports. The session cookie (HttpOnly, set by
 * `POST /api/join`) authenticates us: same-origin fetches send it, page scripts cannot read it.
 */
export async function postClick(command) {
  let res;
  try {
    res = await fetch('/api/click', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ round: command.round, x: command.x, y: command.y }),
    });
  } catch (err) {
    throw new ApiError('network', String(err?.message ?? err));
  }
  if (!res.ok) throw await errorFrom(res);
  return res.json();
}

/**
 * Tracks a transport's own resume point from the events it passes on, so it can reconnect by
 * itself after an error without asking main.js where it was.
 */
export function advance(position, event) {
  if (event && Number.isSafeInteger(event.seq)) {
    position.since = event.seq;
    if (event.type === 'snapshot' && typeof event.epoch === 'string') position.epoch = event.epoch;
  }
}
