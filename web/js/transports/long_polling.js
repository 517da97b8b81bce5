// # Long polling — `GET /api/longpoll?since=N&epoch=E`, held by the server until there is news
//
// The same request and answer as AJAX polling, but the server *parks* the request until an event
// after N exists (or answers `204 No Content` after its timeout). So an event leaves the server
// the moment it happens — as fast as a push — at the price of one full HTTP request/response per
// delivery. Clicks go up separately with `POST /api/click`.

import { RETRY_MS, advance, delay, errorFrom, postClick, resumeUrl } from './common.js';

/** A long poll still unanswered after this long is parked at the server: we are connected. */
const PARKED_MS = 1000;

export class LongPollingTransport {
  static transportName = 'longpoll';

  constructor({ onEvent, onStatus = () => {} }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
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
    const markConnected = () => {
      if (!connected && !signal.aborted) {
        connected = true;
        this.onStatus('connected');
      }
    };
    while (!signal.aborted) {
      // fetch() tells us nothing until the answer, which may be 25 s away when nothing happens.
      // A request still pending after PARKED_MS has evidently reached the server and is parked
      // there (a refused connection fails much faster), so call that "connected".
      const parked = connected ? null : setTimeout(markConnected, PARKED_MS);
      try {
        const url = resumeUrl('/api/longpoll', this.position.since, this.position.epoch);
        // Aborting this fetch (close()) makes the server drop the parked request at once.
        const res = await fetch(url, { credentials: 'same-origin', cache: 'no-store', signal });
        clearTimeout(parked);
        if (res.status !== 204 && !res.ok) throw await errorFrom(res);
        const body = res.status === 204 ? null : await res.json();
        if (signal.aborted) return;
        markConnected();
        for (const event of Array.isArray(body?.events) ? body.events : []) {
          advance(this.position, event);
          this.onEvent(event);
          if (signal.aborted) return;
        }
        if (Number.isSafeInteger(body?.last_seq)) this.position.since = body.last_seq;
        // Re-request at once, with no pause: while no request is parked at the server, new
        // events cannot be pushed to us. None is lost (the next request asks for everything
        // after `since`), but every millisecond spent here is added to their latency.
        // A 204 (server timeout, nothing happened) is answered the same way.
      } catch (err) {
        clearTimeout(parked);
        if (signal.aborted) return;
        connected = false;
        this.onStatus('reconnecting', String(err?.message ?? err));
        // Unlike after an answer, wait after an *error*: an immediate retry would hammer a
        // server that is down or refusing us.
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
