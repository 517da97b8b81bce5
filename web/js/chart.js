// # A small live chart of delivery lag per transport (SVG, no library)
//
// x: the last WINDOW_MS of time, now at the right edge. y: delivery lag on a *logarithmic* scale,
// 1 ms … 10 s: a WebSocket's 2 ms and AJAX polling's 500 ms differ by a factor of 250, and on a
// linear axis the three push transports would all lie flat on zero. Each event a pane saw is a
// dot; dots of one transport are joined by a line. Lags below 1 ms, and every lag within the
// clock offset's uncertainty (negative ones included, which only that error can produce), are
// drawn on the bottom line: the page shows them as "≈ 0".
//
// Why our own ~150 lines and not a library: the CSP allows only our own scripts (no CDN), we have
// no build step to bundle one, and we need exactly one chart type. Colours are the Okabe–Ito
// palette (distinguishable with colour-vision deficiencies), and each series also has its own
// dash pattern; both are in css/compare.css as `.series-<transport>`.

const SVG_NS = 'http://www.w3.org/2000/svg';
export const WINDOW_MS = 60_000;
const WIDTH = 800;
const HEIGHT = 300;
const PAD = { left: 84, right: 16, top: 14, bottom: 36 };
const Y_MIN = 1;
const Y_MAX = 10_000;
const Y_TICKS = [1, 10, 100, 1000, 10_000];

function el(name, attrs = {}, text = null) {
  const node = document.createElementNS(SVG_NS, name);
  for (const [key, value] of Object.entries(attrs)) node.setAttribute(key, String(value));
  if (text !== null) node.textContent = text;
  return node;
}

const plotW = WIDTH - PAD.left - PAD.right;
const plotH = HEIGHT - PAD.top - PAD.bottom;

function yOf(ms) {
  const v = Math.min(Y_MAX, Math.max(Y_MIN, ms));
  const f = (Math.log10(v) - Math.log10(Y_MIN)) / (Math.log10(Y_MAX) - Math.log10(Y_MIN));
  return PAD.top + plotH * (1 - f);
}

function xOf(t, now) {
  return PAD.left + plotW * (1 - (now - t) / WINDOW_MS);
}

export class LagChart {
  /**
   * @param {SVGSVGElement} svg an empty <svg>; gets viewBox 0 0 800 300
   * @param {string[]} transports series names, in legend order
   * @param {Record<string, string>} labels
   */
  constructor(svg, transports, labels) {
    this.svg = svg;
    this.transports = transports;
    svg.setAttribute('viewBox', `0 0 ${WIDTH} ${HEIGHT}`);
    svg.setAttribute('preserveAspectRatio', 'xMidYMid meet');
    svg.classList.add('lag-chart');
    const axes = el('g', { class: 'axes' });
    for (const tick of Y_TICKS) {
      const y = yOf(tick);
      axes.append(
        el('line', { x1: PAD.left, x2: WIDTH - PAD.right, y1: y, y2: y, class: 'grid' }),
        el('text', { x: PAD.left - 8, y: y + 5, 'text-anchor': 'end', class: 'tick' },
          tick >= 1000 ? `${tick / 1000} s` : `${tick} ms`),
      );
    }
    for (let s = 0; s <= WINDOW_MS / 1000; s += 10) {
      const x = PAD.left + plotW * (1 - s / (WINDOW_MS / 1000));
      axes.append(
        el('line', { x1: x, x2: x, y1: PAD.top, y2: HEIGHT - PAD.bottom, class: 'grid grid-x' }),
        el('text', { x, y: HEIGHT - PAD.bottom + 22, 'text-anchor': 'middle', class: 'tick' },
          s === 0 ? 'now' : `−${s} s`),
      );
    }
    svg.append(axes);
    this.series = new Map();
    for (const name of transports) {
      const g = el('g', { class: `series series-${name}`, 'data-transport': name });
      const line = el('polyline', { points: '', class: 'line' });
      const dots = el('g', { class: 'dots' });
      const title = el('title', {}, `${labels[name] ?? name}: delivery lag`);
      g.append(title, line, dots);
      svg.append(g);
      this.series.set(name, { line, dots });
    }
  }

  /**
   * @param {Record<string, {t: number, v: number}[]>} data per transport: t = client ms when
   *   seen, v = lag ms (a Meter's lagSeries)
   * @param {number} now client ms (clock.js clientNow)
   * @param {number} [uncertaintyMs] the clock offset's uncertainty: lags within it sit at the bottom
   */
  render(data, now, uncertaintyMs = 0) {
    for (const [name, { line, dots }] of this.series) {
      const points = (data[name] ?? []).filter((p) => p.t >= now - WINDOW_MS);
      const coords = points.map((p) => [xOf(p.t, now), yOf(p.v <= uncertaintyMs ? Y_MIN : p.v)]);
      line.setAttribute('points', coords.map(([x, y]) => `${x.toFixed(1)},${y.toFixed(1)}`).join(' '));
      // Reuse circles: creating hundreds of nodes per frame would make the projector laptop work.
      while (dots.childNodes.length > coords.length) dots.lastChild.remove();
      while (dots.childNodes.length < coords.length) dots.append(el('circle', { r: 4 }));
      coords.forEach(([x, y], i) => {
        const dot = dots.childNodes[i];
        dot.setAttribute('cx', x.toFixed(1));
        dot.setAttribute('cy', y.toFixed(1));
      });
    }
  }
}
