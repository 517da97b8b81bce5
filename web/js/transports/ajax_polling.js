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
import { NO_PROBE, Reconnector, delay, meteredFetch, postClick, resumeUrl } from './common.js';

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
    onNode = () => {},
  }) {
    this.pollIntervalMs = pollIntervalMs;
    /** In a cluster: told the node that answered each poll (`X-Clickgame-Node`). */
    this.onNode = onNode;
    this.probe = probe;
    this.auth = auth;
    /** The request in flight, so drop() can cut just it. */
    this.request = null;
    this.reconnect = new Reconnector({
      open: (link) => this.#loop(link),
      onEvent,
      onStatus,
      probe,
      retryLabel: 'next poll',
    });
  }

  connect(since, epoch) {
    this.reconnect.start(since, epoch);
  }

  /** One "connection": polls until a poll fails, then reports it and ends. */
  async #loop(link) {
    while (link.alive) {
      const request = new AbortController();
      const cut = () => request.abort();
      link.signal.addEventListener('abort', cut, { once: true });
      this.request = request;
      try {
        const url = resumeUrl('/api/poll', link.position.since, link.position.epoch);
        const { res, body } = await meteredFetch(this.probe, url, {
          auth: this.auth,
          signal: request.signal,
          downstream: true,
        });
        this.onNode(res.headers.get('X-Clickgame-Node'));
        // Answered: from here until the next poll nothing is open, and drop() must say so.
        this.request = null;
        link.opened();
        if (!link.answered(Array.isArray(body?.events) ? body.events : [], body?.last_seq)) return;
        // The price of this transport: an event that happens now waits here until we ask again.
        const interval = Math.max(MIN_INTERVAL_MS, Number(this.pollIntervalMs()) || DEFAULT_POLL_INTERVAL_MS);
        await delay(interval, link.signal);
      } catch (err) {
        link.closed(request.signal.aborted ? 'request cut (simulated drop)' : String(err?.message ?? err));
        return;
      } finally {
        link.signal.removeEventListener('abort', cut);
        if (this.request === request) this.request = null;
      }
    }
  }

  send(command) {
    return postClick(command, { probe: this.probe, auth: this.auth });
  }

  /**
   * Cuts the poll in flight. Between polls there is no connection to cut (the last poll was
   * answered, the next is not sent yet): says so, and changes nothing.
   */
  drop() {
    if (this.request) {
      this.probe.note('drop: cutting the poll in flight');
      this.request.abort();
    } else {
      this.probe.note('drop: nothing open — AJAX polling holds no connection between polls');
    }
  }

  close() {
    this.reconnect.stop();
  }
}
