// # AJAX (short) polling — `GET /api/poll?since=N&epoch=E` every poll_interval_ms
//
// The simplest transport: ask, get an immediate answer (often "nothing new"), wait, ask again.
// Nothing stays open between requests, so it works through any proxy; the cost is latency (an
// event waits on average half an interval until we ask) and many empty requests — watch the
// wire inspector or the network tab. Clicks go up separately with `POST /api/click`.
//
// The interval is the server's: `poll_interval_ms` from the snapshot, changed by a `settings`
// event when the lecturer sets another. `pollIntervalMs()` reads the folded state after every
// answer, so the new interval applies from the very poll that brought the change.

import { DEFAULT_POLL_INTERVAL_MS } from '../protocol.js';
import {
  Backoff,
  NO_PROBE,
  ResumeWatch,
  advance,
  delay,
  meteredFetch,
  postClick,
  resumeUrl,
} from './common.js';

/** Never poll faster than this, whatever a (buggy) server says. */
const MIN_INTERVAL_MS = 50;

export class AjaxPollingTransport {
  static transportName = 'ajax';

  constructor({
    onEvent,
    onStatus = () => {},
    pollIntervalMs = () => DEFAULT_POLL_INTERVAL_MS,
    probe = NO_PROBE,
    auth = { kind: 'cookie' },
  }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.pollIntervalMs = pollIntervalMs;
    this.probe = probe;
    this.auth = auth;
    this.position = { since: null, epoch: null };
    this.abort = null;
    /** The request in flight, so drop() can cut just it. */
    this.request = null;
    this.backoff = new Backoff();
    this.resume = new ResumeWatch(probe);
  }

  connect(since, epoch) {
    this.position = { since, epoch };
    this.abort = new AbortController();
    this.onStatus('connecting');
    this.#loop(this.abort.signal);
  }

  async #loop(signal) {
    let connected = false;
    while (!signal.aborted) {
      const request = new AbortController();
      const cut = () => request.abort();
      signal.addEventListener('abort', cut, { once: true });
      this.request = request;
      try {
        const url = resumeUrl('/api/poll', this.position.since, this.position.epoch);
        const { body } = await meteredFetch(this.probe, url, {
          auth: this.auth,
          signal: request.signal,
          downstream: true,
        });
        if (signal.aborted) return;
        if (!connected) {
          connected = true;
          this.backoff.reset();
          this.onStatus('connected');
        }
        const events = Array.isArray(body?.events) ? body.events : [];
        this.resume.settle(events[0] ?? null);
        for (const event of events) {
          advance(this.position, event);
          this.onEvent(event);
          if (signal.aborted) return;
        }
        if (Number.isSafeInteger(body?.last_seq)) this.position.since = body.last_seq;
        // The price of this transport: an event that happens now waits here until we ask again.
        const interval = Math.max(MIN_INTERVAL_MS, Number(this.pollIntervalMs()) || DEFAULT_POLL_INTERVAL_MS);
        await delay(interval, signal);
      } catch (err) {
        if (signal.aborted) return;
        connected = false;
        const wait = this.backoff.next();
        const reason = request.signal.aborted ? 'request cut (simulated drop)' : String(err?.message ?? err);
        this.probe.reconnecting({ wait, attempt: this.backoff.attempt, reason });
        this.onStatus('reconnecting', `next poll in ${(wait / 1000).toFixed(1)} s (attempt ${this.backoff.attempt}): ${reason}`);
        this.resume.arm();
        await delay(wait, signal);
      } finally {
        signal.removeEventListener('abort', cut);
        if (this.request === request) this.request = null;
      }
    }
  }

  send(command) {
    return postClick(command, { probe: this.probe, auth: this.auth });
  }

  /** Cuts the poll in flight. Between polls there is no connection to cut: says so. */
  drop() {
    if (this.request) {
      this.probe.note('drop: cutting the poll in flight');
      this.request.abort();
    } else {
      this.probe.note('drop: nothing open — AJAX polling holds no connection between polls');
    }
  }

  close() {
    this.abort?.abort();
    this.abort = null;
    this.onStatus('closed');
  }
}
