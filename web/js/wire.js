// # The wire inspector: the last WIRE_LIMIT things the current transport sent or received
//
// It shows a Meter's `wire` items (see metrics.js) as the network tab would: requests with their
// status, event count, body and head size and time; SSE event blocks as `id:`/`event:`/`data:`
// lines; WebSocket frames in both directions (↑ sent, ↓ received); opens, closes and reconnects.
// Frames, blocks and opened streams carry their size on the wire at the end of the line (a
// WebSocket frame's payload plus its 2–4 B header, and 4 B of mask on the frames we send).
// "Pause" freezes the list (the Meter keeps recording; un-pausing shows the latest items);
// "Clear" empties it. Everything is written with textContent: frames carry player names.

const ARROWS = { up: '↑', down: '↓', info: '•' };

export class WireView {
  /**
   * @param {HTMLOListElement} list `[data-testid=wire]`
   * @param {HTMLButtonElement} pauseButton `[data-testid=wire-pause]`
   * @param {HTMLButtonElement} clearButton `[data-testid=wire-clear]`
   */
  constructor(list, pauseButton, clearButton, caption) {
    this.list = list;
    this.pauseButton = pauseButton;
    this.caption = caption;
    this.paused = false;
    this.meter = null;
    this.shownSeq = -1;
    pauseButton.addEventListener('click', () => {
      this.paused = !this.paused;
      pauseButton.textContent = this.paused ? 'Resume' : 'Pause';
      pauseButton.setAttribute('aria-pressed', String(this.paused));
      this.list.dataset.paused = String(this.paused);
      if (!this.paused) this.render(this.meter, true);
    });
    clearButton.addEventListener('click', () => {
      this.meter?.clearWire();
      this.render(this.meter, true);
    });
  }

  /** Draws `meter`'s wire items (a new meter: a switched transport, so start over). */
  render(meter, force = false) {
    if (!meter) return;
    const changedMeter = meter !== this.meter;
    this.meter = meter;
    if (this.paused && !changedMeter && !force) return;
    const last = meter.wire.at(-1)?.n ?? 0;
    if (!changedMeter && !force && last === this.shownSeq) return;
    this.shownSeq = last;
    // Newest first: the eye finds the latest at the top, like a log tail turned over.
    const items = [...meter.wire].reverse().map((item) => {
      const li = document.createElement('li');
      li.dataset.dir = item.dir;
      const time = document.createElement('span');
      time.className = 'wire-time';
      time.textContent = `${((item.t - meter.startedAt) / 1000).toFixed(2)} s`;
      const arrow = document.createElement('span');
      arrow.className = 'wire-dir';
      arrow.textContent = ARROWS[item.dir] ?? '•';
      const text = document.createElement('span');
      text.className = 'wire-text';
      text.textContent = item.text;
      li.append(time, arrow, text);
      if (item.size !== null && item.size !== undefined) {
        const size = document.createElement('span');
        size.className = 'wire-size';
        size.textContent = `${item.size} B`;
        size.title = 'Its size on the wire, framing included (a response head counts as 300 B, like Resource Timing\'s transferSize).';
        li.append(size);
      }
      return li;
    });
    this.list.replaceChildren(...items);
    if (this.caption) {
      this.caption.textContent = this.paused
        ? 'paused — new items are recorded but not shown'
        : `${meter.wire.length} most recent (of at most 50), newest first; times since switching to this transport`;
    }
  }
}
