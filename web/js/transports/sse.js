// # Server-Sent Events — one `GET /api/sse?since=N&epoch=E` whose response never ends
//
// The browser's `EventSource` reads a `text/event-stream`: blocks of `id:`, `event:` and `data:`
// lines. It reconnects by itself when the connection drops (after the server's `retry:` ms) and
// then sends the last `id:` it saw as `Last-Event-ID`, which the server prefers to our `since` —
// so resuming is built into the protocol. Downstream only: clicks go up with `POST /api/click`.

import { EVENT_TYPES } from '../protocol.js';
import { RETRY_MS, advance, postClick, resumeUrl } from './common.js';

export class SseTransport {
  static transportName = 'sse';

  constructor({ onEvent, onStatus = () => {} }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.position = { since: null, epoch: null };
    this.source = null;
    this.retryTimer = null;
    this.closed = true;
  }

  connect(since, epoch) {
    this.position = { since, epoch };
    this.closed = false;
    this.onStatus('connecting');
    this.#open();
  }

  #open() {
    // Same origin, so the session cookie goes along without `withCredentials`.
    const source = new EventSource(
      resumeUrl('/api/sse', this.position.since, this.position.epoch),
    );
    this.source = source;
    const urlEpoch = this.position.epoch;
    const onMessage = (message) => {
      if (this.source !== source) return;
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        console.warn('sse: data is not JSON', message.data);
        return;
      }
      advance(this.position, event);
      this.onEvent(event);
      // The epoch in our URL is kept by the browser's own reconnects. If the server restarted
      // (a snapshot of another epoch), reopen with the new one, or every automatic reconnect
      // would start again with a snapshot.
      if (event?.type === 'snapshot' && event.epoch !== urlEpoch && this.source === source) {
        source.close();
        this.#open();
      }
    };
    // The server names every event (`event: round_won`), and EventSource only passes unnamed
    // events to `onmessage` — so we listen for each type by name. The gain: the type is visible
    // in the stream (and in DevTools' EventStream tab) without parsing `data`. The catch: a type
    // this client does not list is never delivered, and would show up as a missed seq.
    for (const type of EVENT_TYPES) source.addEventListener(type, onMessage);
    source.onopen = () => {
      if (this.source === source) this.onStatus('connected');
    };
    source.onerror = () => {
      if (this.source !== source) return;
      if (source.readyState === EventSource.CONNECTING) {
        // The browser reconnects by itself, with Last-Event-ID: nothing for us to do.
        this.onStatus('reconnecting', 'EventSource is reconnecting');
        return;
      }
      // CLOSED: the browser gave up (an HTTP error status, say 429 or 503, or a wrong content
      // type). EventSource never retries those, so we do, from where we are.
      source.close();
      this.source = null;
      this.onStatus('reconnecting', 'EventSource closed');
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.closed) this.#open();
      }, RETRY_MS);
    };
  }

  send(command) {
    return postClick(command);
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    this.source?.close();
    this.source = null;
    this.onStatus('closed');
  }
}
