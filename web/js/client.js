// # One view of the game over one (swappable) transport
//
//   transport ──onEvent──> validateEvent ──> Stream.accept ──> applyEvent ──> client.state
//        └────probe────> Meter (figures, wire log)
//
// `/` has one GameClient (the player's); `/compare.html` has four, one per transport, side by
// side. A GameClient holds the folded state, the Stream cursor (lastSeq, epoch, missed), the
// current transport and its Meter. `use(name)` switches transport: the old one is closed, the new
// one resumes from `stream.lastSeq` of the same epoch (so no event is lost; an event delivered
// twice is dropped by the Stream), and the old Meter's summary goes into `history`.

import { AjaxPollingTransport } from './transports/ajax_polling.js';
import { LongPollingTransport } from './transports/long_polling.js';
import { SseTransport } from './transports/sse.js';
import { WebSocketTransport } from './transports/websocket.js';
import {
  DEFAULT_POLL_INTERVAL_MS,
  Stream,
  applyEvent,
  stateFromSnapshot,
  validateEvent,
} from './protocol.js';
import { Meter } from './metrics.js';
import { reportRefusal } from './lab.js';

/** The four interchangeable transports, by the name the server uses. */
export const TRANSPORT_CLASSES = {
  ajax: AjaxPollingTransport,
  longpoll: LongPollingTransport,
  sse: SseTransport,
  websocket: WebSocketTransport,
};

export const TRANSPORT_LABELS = {
  ajax: 'AJAX polling',
  longpoll: 'Long polling',
  sse: 'Server-Sent Events',
  websocket: 'WebSocket',
};

/** For narrow places (table rows on a projector). */
export const TRANSPORT_SHORT = {
  ajax: 'AJAX',
  longpoll: 'Long poll',
  sse: 'SSE',
  websocket: 'WebSocket',
};

export class GameClient {
  /**
   * @param {object} options
   * @param {import('./clock.js').ServerClock} options.clock for delivery lag
   * @param {object} [options.auth] see transports/common.js; default: the session cookie
   * @param {(client: GameClient) => void} [options.onChange] after every change (coalesce it)
   * @param {(event: object, verdict: string) => void} [options.onEvent] after an event is folded
   */
  constructor({ clock, auth = { kind: 'cookie' }, onChange = () => {}, onEvent = () => {} }) {
    this.clock = clock;
    this.auth = auth;
    this.onChange = onChange;
    this.onEventHook = onEvent;
    /** The folded snapshot (see protocol.js), null until the first one. */
    this.state = null;
    this.stream = new Stream();
    this.transportName = null;
    this.transport = null;
    this.meter = null;
    /** connecting, connected, reconnecting, closed (or idle/loading before the first). */
    this.connection = 'idle';
    this.connectionDetail = '';
    /** transport → summary() of its most recent finished run, for the history table. */
    this.history = new Map();
    /** In a cluster: the node the current transport is connected to (null: not known / one process). */
    this.node = null;
  }

  /** Every event from every transport (and the initial snapshot) comes through here. */
  accept(event) {
    const kind = validateEvent(event);
    if (kind === 'invalid') {
      console.warn('clickgame: dropped a malformed event', event);
      // For the lab's defence log (only with --lab): the page's own check refused server data.
      reportRefusal('event_ignored', `an event that failed the page's checks was ignored (type ${String(event?.type).slice(0, 40)})`);
      return;
    }
    if (kind === 'unknown') console.info('clickgame: ignoring unknown event type', event.type);
    const verdict = this.stream.accept(event, kind);
    if (verdict === 'reset') this.state = stateFromSnapshot(event);
    else if (verdict === 'apply' && this.state) this.state = applyEvent(this.state, event);
    this.meter?.eventSeen(event, verdict, this.clock.serverNow());
    this.onEventHook(event, verdict);
    this.onChange(this);
  }

  /**
   * Closes the current transport and opens `name` from where we are. The new one resumes with
   * `since = lastSeq` of the same epoch, so the server sends exactly the events we have not seen.
   * `auth` (optional) changes who we are from now on (race bots). `reopen()` is the same with
   * the same transport and the same figures (after joining, say: the new connection carries the
   * new session).
   */
  use(name, { auth, keepMeter = false } = {}) {
    const Transport = TRANSPORT_CLASSES[name];
    if (!Transport) throw new Error(`unknown transport ${name}`);
    if (auth) this.auth = auth;
    let meter = keepMeter && name === this.transportName ? this.meter : null;
    if (meter) {
      const old = this.transport;
      this.transport = null;
      old?.close();
      meter.note('reopened (new credentials)');
    } else {
      this.#finishRun();
      meter = new Meter(name);
    }
    meter.onChange = () => {
      if (this.meter === meter) this.onChange(this);
    };
    // Callbacks check they still belong to the current transport: a late answer of a closed one
    // must not change the page (the Stream would drop it as a duplicate anyway).
    this.node = null;
    const transport = new Transport({
      onEvent: (event) => {
        if (this.transport === transport) this.accept(event);
      },
      onNode: (node) => {
        if (this.transport !== transport || !node || node === this.node) return;
        this.node = node;
        this.onChange(this);
      },
      onStatus: (state, detail = '') => {
        if (this.transport !== transport) return;
        this.connection = state;
        this.connectionDetail = detail;
        this.onChange(this);
      },
      pollIntervalMs: () => this.state?.poll_interval_ms ?? DEFAULT_POLL_INTERVAL_MS,
      probe: meter,
      auth: this.auth,
    });
    this.meter = meter;
    this.transport = transport;
    this.transportName = name;
    transport.connect(this.stream.lastSeq, this.stream.epoch);
    this.onChange(this);
  }

  reopen({ auth } = {}) {
    this.use(this.transportName, { auth, keepMeter: true });
  }

  /** Stores the current run's figures in the history and closes its transport. */
  #finishRun() {
    if (!this.transport) return;
    const old = this.transport;
    this.transport = null;
    old.close();
    if (this.meter && (this.meter.events > 0 || this.meter.requests > 0)) {
      this.history.set(this.meter.transport, this.meter.summary());
    }
  }

  /** A click through the current transport; its answer time is the click latency. */
  async click(command) {
    const meter = this.meter;
    const started = performance.now();
    const result = await this.transport.send(command);
    if (this.meter === meter) meter.clickAnswered(performance.now() - started);
    return result;
  }

  /** Cuts the current connection as a network failure would (it reconnects by itself). */
  drop() {
    this.transport?.drop();
  }

  close() {
    this.#finishRun();
    this.connection = 'closed';
  }
}
