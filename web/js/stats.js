// # Server-side figures: GET /api/stats, polled while the page is open
//
// The server counts, per transport and over *all* its clients: open connections, requests,
// events delivered, bytes written, clicks accepted/rejected, and the delivery lag from an event's
// creation to its write into the connection (`delivery_lag_ms`). The pages put these next to
// their own client-side figures; what each one measures is defined once, in js/definitions.js
// (`server`, `clicks`). This request is the page's instrumentation, not part of any
// transport: it is not counted in the client figures and not shown in the wire inspector.

const STATS_MS = 2000;
/** A server without /api/stats (404) is asked again only this rarely. */
const ABSENT_RETRY_MS = 15_000;

export class StatsPoller {
  constructor({ onStats, path = '/api/stats', intervalMs = STATS_MS }) {
    this.onStats = onStats;
    this.path = path;
    this.intervalMs = intervalMs;
    /** The last answer, or null; `available` false after a 404. */
    this.latest = null;
    this.available = true;
    this.timer = null;
    this.stopped = false;
  }

  start() {
    this.stopped = false;
    this.#tick();
  }

  stop() {
    this.stopped = true;
    clearTimeout(this.timer);
  }

  /** Asks now (after a lecturer action, say) instead of at the next tick. */
  refresh() {
    clearTimeout(this.timer);
    this.#tick();
  }

  async #tick() {
    let wait = this.intervalMs;
    try {
      const res = await fetch(this.path, { credentials: 'omit', cache: 'no-store' });
      if (res.status === 404) {
        this.available = false;
        wait = ABSENT_RETRY_MS;
      } else if (res.ok) {
        this.available = true;
        this.latest = await res.json();
        this.onStats(this.latest);
      }
    } catch {
      // The server may be restarting; the pages show the last figures until it answers again.
    }
    if (!this.stopped) {
      clearTimeout(this.timer);
      this.timer = setTimeout(() => this.#tick(), wait);
    }
  }
}

/** The server's figures for one transport, or null when the server has none. */
export function serverTransport(stats, transport) {
  const t = stats?.transports?.[transport];
  return t && typeof t === 'object' ? t : null;
}
