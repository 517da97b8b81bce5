// # AJAX (short) polling — `GET /api/poll?since=N&epoch=E` every poll_interval_ms
//
// The simplest transport: ask, get an immediate answer (often "nothing new"), wait, ask again.
// Nothing stays open between requests, so it works through any proxy; the cost is latency (an
// event waits on average half an interval until we ask) and many empty requests — watch the
// network tab. Clicks go up separately with `POST /api/click`.

import { DEFAULT_POLL_INTERVAL_MS } from '../protocol.js';
import { RETRY_MS, advance, delay, errorFrom, postClick, resumeUrl } from './common.js';

export class AjaxPollingTransport {
  static transportName = 'ajax';

  constructor({ onEvent, onStatus = () => {}, pollIntervalMs = () => DEFAULT_POLL_INTERVAL_MS }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.pollIntervalMs = pollIntervalMs;
    this.position = { since: null, epoch: null };
    this.abort = null;
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
      try {
        const url = resumeUrl('/api/poll', this.position.since, this.position.epoch);
        // no-store: every poll must reach the server, never a cached "nothing new".
        const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store', signal });
        if (!res.ok) throw await errorFrom(res);
        const body = await res.json();
        if (signal.aborted) return;
        if (!connected) {
          connected = true;
          this.onStatus('connected');
        }
        for (const event of Array.isArray(body.events) ? body.events : []) {
          advance(this.position, event);
          this.onEvent(event);
          if (signal.aborted) return;
        }
        if (Number.isSafeInteger(body.last_seq)) this.position.since = body.last_seq;
        // The price of this transport: an event that happens now waits here until we ask again.
        await delay(this.pollIntervalMs(), signal);
      } catch (err) {
        if (signal.aborted) return;
        connected = false;
        this.onStatus('reconnecting', String(err?.message ?? err));
        await delay(RETRY_MS, signal);
      }
    }
  }

  send(command) {
    return postClick(command);
  }

  close() {
    this.abort?.abort();
    this.abort = null;
    this.onStatus('closed');
  }
}
