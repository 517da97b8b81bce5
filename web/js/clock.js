// # The server's clock, estimated NTP-style
//
// Delivery lag is "the event's server time (`ts`) → the moment this page saw it". The two clocks
// belong to different machines, so we estimate how far the server's clock is from ours:
//
//   t0 = our clock; GET /api/time → {"ts": server ms}; t1 = our clock
//   offset = ts − (t0 + t1) / 2          (assumes the request and the answer took equally long)
//
// The error of one sample is at most half its round trip, so of several samples we keep the one
// with the smallest round trip. "Our clock" is `performance.timeOrigin + performance.now()`:
// wall-clock milliseconds that never jump when the system clock is adjusted.

/** Samples at start-up (spaced out a little); then one more every RESAMPLE_MS. */
const INITIAL_SAMPLES = 5;
const INITIAL_SPACING_MS = 150;
const RESAMPLE_MS = 30_000;
/** Only recent samples compete: a machine's clock drifts slowly over a long lecture. */
const KEEP_SAMPLES = 12;

/** Client wall-clock time in ms, monotonic within the page's life. */
export function clientNow() {
  return performance.timeOrigin + performance.now();
}

export class ServerClock {
  constructor({ path = '/api/time' } = {}) {
    this.path = path;
    /** server − client, ms; 0 until a sample arrived. */
    this.offsetMs = 0;
    /** Round trip of the sample in use (the offset's error is at most half of it); null = none yet. */
    this.rttMs = null;
    /** 'pending' | 'ok' | 'unavailable' (the server has no /api/time). */
    this.status = 'pending';
    this.samples = [];
    this.timer = null;
    this.listeners = new Set();
  }

  /** The estimated server time now, in ms since the Unix epoch. */
  serverNow() {
    return clientNow() + this.offsetMs;
  }

  onChange(listener) {
    this.listeners.add(listener);
  }

  async start() {
    for (let i = 0; i < INITIAL_SAMPLES; i += 1) {
      if (!(await this.sample())) break;
      await new Promise((resolve) => setTimeout(resolve, INITIAL_SPACING_MS));
    }
    this.timer = setInterval(() => this.sample(), RESAMPLE_MS);
  }

  stop() {
    clearInterval(this.timer);
    this.timer = null;
  }

  /** Takes one sample; false when the server cannot answer (then the offset stays 0). */
  async sample() {
    const t0 = clientNow();
    let ts;
    try {
      const res = await fetch(this.path, { credentials: 'omit', cache: 'no-store' });
      if (res.status === 404) {
        this.status = 'unavailable';
        this.#changed();
        return false;
      }
      if (!res.ok) return true;
      ts = (await res.json())?.ts;
    } catch {
      return true;
    }
    const t1 = clientNow();
    if (!Number.isFinite(ts)) return true;
    this.samples.push({ rtt: t1 - t0, offset: ts - (t0 + t1) / 2 });
    if (this.samples.length > KEEP_SAMPLES) this.samples.shift();
    const best = this.samples.reduce((a, b) => (b.rtt < a.rtt ? b : a));
    this.offsetMs = best.offset;
    this.rttMs = best.rtt;
    this.status = 'ok';
    this.#changed();
    return true;
  }

  /**
   * How far off the offset may be: half the round trip of the sample in use (the request and the
   * answer may have taken it all one way). A lag within it cannot be told from 0. Null before the
   * first sample.
   */
  get uncertaintyMs() {
    return this.rttMs === null ? null : this.rttMs / 2;
  }

  /** "clock offset +3.2 ± 0.4 ms" for a narrow place (the compare page's header). */
  describeShort() {
    if (this.status === 'unavailable') return 'clock offset unknown';
    if (this.rttMs === null) return 'clock offset…';
    const sign = this.offsetMs >= 0 ? '+' : '−';
    return `clock offset ${sign}${Math.abs(this.offsetMs).toFixed(1)} ± ${this.uncertaintyMs.toFixed(1)} ms`;
  }

  /** "server clock +3.2 ms from ours (± 0.4 ms)" for the page. */
  describe() {
    if (this.status === 'unavailable') return 'server clock unknown (no /api/time): offset assumed 0';
    if (this.rttMs === null) return 'estimating the server clock…';
    const sign = this.offsetMs >= 0 ? '+' : '−';
    return `server clock ${sign}${Math.abs(this.offsetMs).toFixed(1)} ms from ours (± ${this.uncertaintyMs.toFixed(1)} ms)`;
  }

  #changed() {
    for (const listener of this.listeners) listener(this);
  }
}
