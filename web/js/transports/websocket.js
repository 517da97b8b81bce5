// # WebSocket — `GET /api/ws`, upgraded to a full-duplex socket (sub-protocol `clickgame.v1`)
//
// One connection carries both directions: events come down as text frames the moment they
// happen, and clicks go up in-band as `{"type":"click","id":k,...}`, answered by a
// `click_result` (or `error`) with the same `id`. No request per event and no headers per
// message; the price is a protocol of our own on top (ids to match replies, resume on reconnect).

import { ApiError, RETRY_MS, advance } from './common.js';

/** The sub-protocol the server insists on; it refuses a handshake that does not offer it. */
export const WS_SUBPROTOCOL = 'clickgame.v1';
/** A click with no reply after this long is given up (the socket is probably dead). */
const CLICK_TIMEOUT_MS = 5000;

export class WebSocketTransport {
  static transportName = 'websocket';

  constructor({ onEvent, onStatus = () => {} }) {
    this.onEvent = onEvent;
    this.onStatus = onStatus;
    this.position = { since: null, epoch: null };
    this.socket = null;
    this.retryTimer = null;
    this.closed = true;
    this.nextId = 1;
    /** Clicks waiting for their reply: id → {resolve, reject, timer}. */
    this.pending = new Map();
  }

  connect(since, epoch) {
    this.position = { since, epoch };
    this.closed = false;
    this.onStatus('connecting');
    this.#open();
  }

  #open() {
    const url = new URL('/api/ws', window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    // The handshake is a GET that carries our session cookie; the server checks its Origin.
    const socket = new WebSocket(url, WS_SUBPROTOCOL);
    this.socket = socket;
    socket.onopen = () => {
      if (this.socket !== socket) return;
      // The server sends nothing until we say where we are. Saying it first, in-band, means no
      // event can slip by between "socket open" and "stream starts", and after a reconnect we
      // resume from our own position instead of a stale one baked into the URL.
      socket.send(
        JSON.stringify({ type: 'resume', since: this.position.since, epoch: this.position.epoch }),
      );
      this.onStatus('connected');
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      let data;
      try {
        data = JSON.parse(message.data);
      } catch {
        console.warn('websocket: frame is not JSON', message.data);
        return;
      }
      // Events have a seq; replies to our commands do not.
      if (data !== null && typeof data === 'object' && 'seq' in data) {
        advance(this.position, data);
        this.onEvent(data);
      } else {
        this.#reply(data);
      }
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.#failPending(new ApiError('disconnected', `socket closed (${close.code})`));
      if (this.closed) return;
      // Unlike EventSource, a WebSocket never reconnects by itself.
      this.onStatus('reconnecting', `closed with ${close.code} ${close.reason}`.trim());
      this.retryTimer = setTimeout(() => {
        this.retryTimer = null;
        if (!this.closed) this.#open();
      }, RETRY_MS);
    };
    // An 'error' is always followed by 'close', which does the work.
    socket.onerror = () => {};
  }

  /** Settles the click a `click_result` or `error` answers. */
  #reply(data) {
    const waiting = data && this.pending.get(data.id);
    if (!waiting) {
      if (data?.type === 'error') console.warn('websocket: server error', data);
      return;
    }
    this.pending.delete(data.id);
    clearTimeout(waiting.timer);
    if (data.type === 'click_result') {
      // Hand back the same object POST /api/click returns, without the envelope.
      const { type: _type, id: _id, ...result } = data;
      waiting.resolve(result);
    } else {
      waiting.reject(new ApiError(String(data.error), String(data.detail ?? '')));
    }
  }

  #failPending(error) {
    for (const { reject, timer } of this.pending.values()) {
      clearTimeout(timer);
      reject(error);
    }
    this.pending.clear();
  }

  send(command) {
    const socket = this.socket;
    if (!socket || socket.readyState !== WebSocket.OPEN) {
      return Promise.reject(new ApiError('not_connected', 'the WebSocket is not open yet'));
    }
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        reject(new ApiError('timeout', `no reply to click ${id}`));
      }, CLICK_TIMEOUT_MS);
      this.pending.set(id, { resolve, reject, timer });
      socket.send(
        JSON.stringify({ type: 'click', id, round: command.round, x: command.x, y: command.y }),
      );
    });
  }

  close() {
    this.closed = true;
    clearTimeout(this.retryTimer);
    this.retryTimer = null;
    const socket = this.socket;
    this.socket = null;
    this.#failPending(new ApiError('closed', 'transport closed'));
    // 1000 = normal closure: we are switching transports or leaving, nothing went wrong.
    if (socket) socket.close(1000, 'client closed');
    this.onStatus('closed');
  }
}
