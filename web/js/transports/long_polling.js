// # Long polling — `GET /api/longpoll?since=N&epoch=E`, held by the server until there is news
//
// The same request and answer as AJAX polling, but the server *parks* the request until an event
// after N exists (or answers `204 No Content` after its timeout, or when the lecturer drops all
// connections). So an event leaves the server the moment it happens — as fast as a push — at the
// price of one full HTTP request/response per delivery. Clicks go up separately with
// `POST /api/click`.

import { NO_PROBE, Reconnector, meteredFetch, postClick, resumeUrl } from './common.js';

/** A long poll still unanswered after this long is parked at the server: we are connected. */
const PARKED_MS = 1000;

export class LongPollingTransport {
  static transportName = 'longpoll';

  constructor({ onEvent, onStatus = () => {}, probe = NO_PROBE, auth = { kind: 'cookie' }, onNode = () => {} }) {
    this.probe = probe;
    this.auth = auth;
    /** In a cluster: told the node that answered each long poll (`X-Clickgame-Node`). */
    this.onNode = onNode;
    this.request = null;
    this.reconnect = new Reconnector({
      open: (link) => this.#loop(link),
      onEvent,
      onStatus,
      probe,
      retryLabel: 'next long poll',
    });
  }

  connect(since, epoch) {
    this.reconnect.start(since, epoch);
  }

  /** One "connection": long polls back to back until one fails, then reports it and ends. */
  async #loop(link) {
    while (link.alive) {
      // fetch() tells us nothing until the answer, which may be 25 s away when nothing happens.
      // A request still pending after PARKED_MS has evidently reached the server and is parked
      // there (a refused connection fails much faster), so call that "connected".
      const parked = setTimeout(() => link.opened(), PARKED_MS);
      const request = new AbortController();
      const cut = () => request.abort();
      link.signal.addEventListener('abort', cut, { once: true });
      this.request = request;
      try {
        const url = resumeUrl('/api/longpoll', link.position.since, link.position.epoch);
        // Aborting this fetch (close()) makes the server drop the parked request at once.
        const { res, body } = await meteredFetch(this.probe, url, {
          auth: this.auth,
          signal: request.signal,
          downstream: true,
        });
        clearTimeout(parked);
        this.onNode(res.headers.get('X-Clickgame-Node'));
        link.opened();
        const events = res.status === 204 || !Array.isArray(body?.events) ? [] : body.events;
        if (!link.answered(events, body?.last_seq)) return;
        // Re-request at once, with no pause: while no request is parked at the server, new
        // events cannot be pushed to us. None is lost (the next request asks for everything
        // after `since`), but every millisecond spent here is added to their latency.
        // A 204 (server timeout, or the lecturer dropped connections) is answered the same way.
      } catch (err) {
        clearTimeout(parked);
        // Unlike after an answer, wait after an *error* (the Reconnector's backoff): an
        // immediate retry would hammer a server that is down or refusing us.
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

  /** Cuts the parked request, as a network failure would. */
  drop() {
    if (this.request) {
      this.probe.note('drop: cutting the parked long poll');
      this.request.abort();
    } else {
      this.probe.note('drop: no long poll open right now');
    }
  }

  close() {
    this.reconnect.stop();
  }
}
