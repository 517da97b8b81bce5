// # WebSocket — `GET /api/ws`, upgraded to a full-duplex socket (sub-protocol `clickgame.v1`)
//
// One connection carries both directions: events come down as text frames the moment they
// happen, and clicks go up in-band as `{"type":"click","id":k,...}`, answered by a
// `click_result` (or `error`) with the same `id`. No request per event and no headers per
// message; the price is a protocol of our own on top (ids to match replies, resume on reconnect).
//
// A WebSocket never reconnects by itself. When it closes — 1012 when the lecturer drops every
// connection, 1001 when the server shuts down, 1006 when the network fails — we reopen it after a
// backoff and send `resume` with the last seq we saw.
//
// A click made while the socket is reconnecting waits (at most CLICK_TIMEOUT_MS, at most
// QUEUE_MAX of them) and goes out right after `resume` when the socket reopens. The HTTP
// transports still deliver a click while their downstream reconnects — it is a separate POST —
// and the WebSocket should not lose one where they do; the road not taken, refusing it as
// "not connected", taught that WebSockets drop clicks. Queueing cannot cheat: the click names
// its round, so one that arrives after the round ended is judged late (or expired).
//
// A click sent on an open socket that gets no answer within CLICK_TIMEOUT_MS is *not* reported
// as lost: on a phone that left the Wi-Fi for a few seconds the browser still shows the socket
// open, the frame waits in its buffer and reaches the server when the network is back — where
// it may well win the round. So the page hears "no answer yet, it may still count", and the
// answer, if it comes, still reaches it (`err.late`). The road not taken, "not counted", was
// wrong whenever the network came back in time.

import {
  ApiError,
  HEAD_STANDIN_BYTES,
  NO_PROBE,
  Reconnector,
  byteLength,
  resumeUrl,
  streamAuthParams,
  wsFrameHeaderBytes,
} from './common.js';

/** The sub-protocol the server insists on; it refuses a handshake that does not offer it. */
export const WS_SUBPROTOCOL = 'clickgame.v1';
/** A click with no reply after this long is reported as unanswered (the socket may be dead). */
const CLICK_TIMEOUT_MS = 5000;
/** Unanswered clicks whose late answer we still pass on, at most. */
const LATE_MAX = 8;
/** Our close code for a simulated network failure (4000–4999 are for applications). */
const DROP_CODE = 4000;
/** Clicks waiting for the socket to reopen, at most. */
export const QUEUE_MAX = 8;

export class WebSocketTransport {
  static transportName = 'websocket';

  constructor({ onEvent, onStatus = () => {}, probe = NO_PROBE, auth = { kind: 'cookie' }, onNode = () => {}, clickTimeoutMs = CLICK_TIMEOUT_MS }) {
    this.probe = probe;
    this.auth = auth;
    /** In a cluster: told the node serving the socket (its first message, `{"type":"node"}`). */
    this.onNode = onNode;
    this.clickTimeoutMs = clickTimeoutMs;
    this.socket = null;
    this.nextId = 1;
    /** Clicks waiting for their reply: id → {resolve, reject, timer}. */
    this.pending = new Map();
    /** Clicks made while the socket was not open: {command, resolve, reject, timer}. */
    this.queued = [];
    /** Clicks that timed out on this socket, whose answer may still come: id → resolve. */
    this.late = new Map();
    this.reconnect = new Reconnector({ open: (link) => this.#open(link), onEvent, onStatus, probe });
  }

  connect(since, epoch) {
    this.reconnect.start(since, epoch);
  }

  /** One attempt: one socket, until it closes. */
  async #open(link) {
    let extra = {};
    try {
      extra = await streamAuthParams(this.auth, this.probe, link.signal);
    } catch (err) {
      link.closed(`no ticket: ${err.message}`);
      return;
    }
    if (!link.alive) return;
    const path = resumeUrl('/api/ws', null, null, extra);
    const url = new URL(path, window.location.href);
    url.protocol = url.protocol === 'https:' ? 'wss:' : 'ws:';
    // The handshake is a GET that carries our session cookie; the server checks its Origin.
    const socket = new WebSocket(url, WS_SUBPROTOCOL);
    this.socket = socket;
    let opened = false;
    this.probe.streamRequest({ method: 'GET', path, kind: `WebSocket upgrade, ${WS_SUBPROTOCOL}` });
    socket.onopen = () => {
      if (this.socket !== socket) return;
      opened = true;
      // The 101 head is invisible to scripts: counted as a response head (common.js).
      this.probe.socketOpened({ label: '101 Switching Protocols: WebSocket open', bytes: HEAD_STANDIN_BYTES });
      // The server sends nothing until we say where we are. Saying it first, in-band, means no
      // event can slip by between "socket open" and "stream starts", and after a reconnect we
      // resume from our own position instead of a stale one baked into the URL.
      const { since, epoch } = link.position;
      this.#sendFrame(socket, JSON.stringify({ type: 'resume', since, epoch }));
      link.opened();
      this.#flushQueued(socket);
    };
    socket.onmessage = (message) => {
      if (this.socket !== socket) return;
      const text = typeof message.data === 'string' ? message.data : '';
      const payload = byteLength(text);
      this.probe.frame({ dir: 'in', text, bytes: payload + wsFrameHeaderBytes(payload) });
      let data;
      try {
        data = JSON.parse(text);
      } catch {
        console.warn('websocket: frame is not JSON', message.data);
        return;
      }
      // Events have a seq; replies to our commands do not; in a cluster, the first message
      // names the node serving this socket.
      if (data?.type === 'node' && typeof data.node === 'string') {
        this.onNode(data.node);
      } else if (data !== null && typeof data === 'object' && 'seq' in data) {
        link.event(data);
      } else {
        this.#reply(data);
      }
    };
    socket.onclose = (close) => {
      if (this.socket !== socket) return;
      this.socket = null;
      this.late.clear();
      const detail = `${close.code}${close.reason ? ` ${close.reason}` : ''}`;
      if (opened) this.probe.socketClosed({ label: `WebSocket closed ${detail}`, detail });
      this.#failPending(new ApiError('disconnected', `socket closed (${close.code})`));
      link.closed(`closed with ${detail}`);
    };
    // An 'error' is always followed by 'close', which does the work.
    socket.onerror = () => {};
  }

  #sendFrame(socket, text) {
    socket.send(text);
    const payload = byteLength(text);
    this.probe.frame({ dir: 'out', text, bytes: payload + wsFrameHeaderBytes(payload, { masked: true }) });
  }

  /** Settles the click a `click_result` or `error` answers. */
  #reply(data) {
    const waiting = data && this.pending.get(data.id);
    if (!waiting) {
      const late = data && this.late.get(data.id);
      if (late && data.type === 'click_result') {
        this.late.delete(data.id);
        const { type: _type, id: _id, ...result } = data;
        this.probe.note(`late answer to click ${data.id}: ${String(result.result)}`);
        late(result);
        return;
      }
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

  #failQueued(error) {
    const queued = this.queued;
    this.queued = [];
    for (const { reject, timer } of queued) {
      clearTimeout(timer);
      reject(error);
    }
  }

  send(command) {
    const socket = this.socket;
    if (socket && socket.readyState === WebSocket.OPEN) return this.#sendClick(socket, command);
    if (!this.reconnect.running) {
      return Promise.reject(new ApiError('not_connected', 'the WebSocket is closed'));
    }
    if (this.queued.length >= QUEUE_MAX) {
      return Promise.reject(new ApiError('not_connected', `the WebSocket is reconnecting and ${QUEUE_MAX} clicks already wait for it`));
    }
    return new Promise((resolve, reject) => {
      const entry = { command, resolve, reject, timer: null };
      entry.timer = setTimeout(() => {
        this.queued = this.queued.filter((e) => e !== entry);
        reject(new ApiError('not_connected', `the WebSocket did not reopen within ${this.clickTimeoutMs / 1000} s`));
      }, this.clickTimeoutMs);
      this.queued.push(entry);
      this.probe.note(`click for round ${command.round} queued: the socket is reconnecting; it goes out when the socket reopens (a late one is judged late)`);
    });
  }

  /** Sends the clicks made while the socket was away, in order, now that it is open. */
  #flushQueued(socket) {
    const queued = this.queued;
    this.queued = [];
    for (const { command, resolve, reject, timer } of queued) {
      clearTimeout(timer);
      this.#sendClick(socket, command).then(resolve, reject);
    }
  }

  #sendClick(socket, command) {
    const id = this.nextId++;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        this.pending.delete(id);
        const err = new ApiError(
          'no_reply',
          `no answer within ${this.clickTimeoutMs / 1000} s; the connection may be down. ` +
            'If the click still gets through, the server judges it as usual and it may still count',
        );
        // The late answer, if the socket delivers one (bounded: the oldest is forgotten).
        err.late = new Promise((resolveLate) => {
          this.late.set(id, resolveLate);
          if (this.late.size > LATE_MAX) this.late.delete(this.late.keys().next().value);
        });
        reject(err);
      }, this.clickTimeoutMs);
      this.pending.set(id, { resolve, reject, timer });
      this.#sendFrame(
        socket,
        JSON.stringify({ type: 'click', id, round: command.round, x: command.x, y: command.y }),
      );
    });
  }

  /** Closes the socket as if the network had failed; the usual reconnect follows. */
  drop() {
    const socket = this.socket;
    if (!socket) {
      this.probe.note('drop: no socket open right now');
      return;
    }
    this.probe.note(`drop: closing the socket with ${DROP_CODE}`);
    // onclose (the link is alive) counts it and reconnects.
    socket.close(DROP_CODE, 'simulated drop');
  }

  close() {
    // First: the socket's own close event, which comes later, then belongs to a dead link.
    this.reconnect.stop();
    const socket = this.socket;
    this.socket = null;
    this.late.clear();
    this.#failPending(new ApiError('closed', 'transport closed'));
    this.#failQueued(new ApiError('closed', 'transport closed'));
    // 1000 = normal closure: we are switching transports or leaving, nothing went wrong.
    if (socket) {
      if (socket.readyState === WebSocket.OPEN) this.probe.socketClosed({ label: 'WebSocket closed 1000 (client closed)', detail: '1000' });
      socket.close(1000, 'client closed');
    }
  }
}
