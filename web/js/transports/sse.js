// # Server-Sent Events — one `GET /api/sse?since=N&epoch=E` whose response never ends
//
// The browser's `EventSource` reads a `text/event-stream`: blocks of `id:`, `event:` and `data:`
// lines. Downstream only: clicks go up with `POST /api/click`.
//
// EventSource can reconnect by itself: after the server's `retry:` ms it reopens the same URL and
// sends the last `id:` it saw as `Last-Event-ID`, which the server prefers to `since` — resuming
// is built into the protocol, and the server supports it. We nevertheless close the EventSource
// at its first error and reopen it ourselves, with `?since=` set to the last seq we saw, because:
// the browser's retry is a fixed delay (no backoff, no jitter: a whole classroom dropped at once
// would come back in one burst), it gives up for good on an HTTP error status, the page could not
// count or show the reconnect, and a bot's one-time `?ticket=` would be spent on the retry.
//
// Page scripts never see the raw stream: EventSource hands us one MessageEvent per block, with
// `lastEventId`, `type` and `data`. The wire inspector rebuilds the block from those three, and
// "bytes received" counts it as it came, plus the stream's response head once (as 300 B: see
// HEAD_STANDIN_BYTES in common.js); comment lines (`: keep-alive` heartbeats), `retry:` and the
// chunked framing of HTTP/1.1 are invisible to scripts.

import { EVENT_TYPES } from '../protocol.js';
import { HEAD_STANDIN_BYTES, NO_PROBE, Reconnector, byteLength, postClick, resumeUrl, streamAuthParams } from './common.js';

export class SseTransport {
  static transportName = 'sse';

  constructor({ onEvent, onStatus = () => {}, probe = NO_PROBE, auth = { kind: 'cookie' }, onNode = () => {} }) {
    this.probe = probe;
    this.auth = auth;
    /** In a cluster: told the node serving the stream (its first block, `event: node`). */
    this.onNode = onNode;
    this.source = null;
    /** The link `source` reports to (see Reconnector in common.js). */
    this.link = null;
    /** True while `source` is open (counted as an open connection). */
    this.isOpen = false;
    this.reconnect = new Reconnector({ open: (link) => this.#open(link), onEvent, onStatus, probe });
  }

  connect(since, epoch) {
    this.reconnect.start(since, epoch);
  }

  /** One attempt: one EventSource, until its first error. */
  async #open(link) {
    let extra = {};
    try {
      extra = await streamAuthParams(this.auth, this.probe, link.signal);
    } catch (err) {
      link.closed(`no ticket: ${err.message}`);
      return;
    }
    if (!link.alive) return;
    const url = resumeUrl('/api/sse', link.position.since, link.position.epoch, extra);
    // Same origin, so the session cookie (if any) goes along without `withCredentials`.
    const source = new EventSource(url);
    this.source = source;
    this.link = link;
    this.probe.streamRequest({ method: 'GET', path: url, kind: 'EventSource' });
    const onMessage = (message) => {
      if (this.source !== source) return;
      // The block as the server wrote it (single-line JSON data), and what it weighs.
      const block = `id: ${message.lastEventId}\nevent: ${message.type}\ndata: ${message.data}\n\n`;
      this.probe.frame({ dir: 'in', text: block.trimEnd(), bytes: byteLength(block) });
      let event;
      try {
        event = JSON.parse(message.data);
      } catch {
        console.warn('sse: data is not JSON', message.data);
        return;
      }
      link.event(event);
    };
    // The server names every event (`event: round_won`), and EventSource only passes unnamed
    // events to `onmessage` — so we listen for each type by name. The gain: the type is visible
    // in the stream (and in DevTools' EventStream tab) without parsing `data`. The catch: a type
    // this client does not list is never delivered, and would show up as a missed seq.
    for (const type of EVENT_TYPES) source.addEventListener(type, onMessage);
    // In a cluster the stream starts by naming its node: no id (Last-Event-ID stays the seq),
    // no seq (not an event of the game). An EventSource cannot read response headers.
    source.addEventListener('node', (message) => {
      if (this.source !== source) return;
      try {
        this.onNode(JSON.parse(message.data).node);
      } catch {
        console.warn('sse: node data is not JSON', message.data);
      }
    });
    source.onopen = () => {
      if (this.source !== source) return;
      this.isOpen = true;
      this.probe.socketOpened({ label: '200 text/event-stream: stream open', bytes: HEAD_STANDIN_BYTES });
      link.opened();
    };
    source.onerror = () => {
      if (this.source !== source) return;
      // The stream ended (server dropped it, restarted, or the network failed) or could not be
      // opened. Take over from the browser's own retry: see the top of this file.
      const reason = source.readyState === EventSource.CONNECTING ? 'stream ended' : 'EventSource failed';
      this.#shut(source, reason);
      link.closed(reason);
    };
  }

  #shut(source, reason) {
    source.close();
    if (this.source === source) {
      this.source = null;
      this.link = null;
    }
    if (this.isOpen) {
      this.isOpen = false;
      this.probe.socketClosed({ label: 'EventSource closed', detail: reason });
    }
  }

  send(command) {
    return postClick(command, { probe: this.probe, auth: this.auth });
  }

  /** Closes the stream as a network failure would; the usual reconnect follows. */
  drop() {
    const { source, link } = this;
    if (!source || !link?.alive) {
      this.probe.note('drop: no stream open right now');
      return;
    }
    this.probe.note('drop: closing the EventSource');
    this.#shut(source, 'simulated drop');
    link.closed('simulated drop');
  }

  close() {
    this.reconnect.stop();
    if (this.source) this.#shut(this.source, 'client closed');
  }
}
