// # The lecturer's comparison page: four spectators, a summary, a chart, race mode, controls
//
// Four GameClients (js/client.js), one per transport, each an independent live spectator of the
// same game: its own resume cursor, its own folded state, its own Meter. Nothing is shared
// between the panes except the page's estimate of the server clock — so whatever differs between
// them (when a target appears, how many requests it took) is the transports' doing.
//
// Spectator panes send no credentials where they can avoid it (`auth: none`: fetch with
// `credentials: 'omit'`). EventSource and WebSocket always carry the page's cookies; if this
// browser also plays on `/`, its player's transport contact is refreshed by those two panes.
//
// Race mode: one bot player per transport joins with `credentials: 'omit'` (so its Set-Cookie does
// not replace this browser's own session), and its pane switches to that bot's identity: Bearer
// token on fetches, a one-time ticket for EventSource and WebSocket (tickets are fetched afresh
// for every reconnect — see transports/common.js). Each bot clicks the target's centre
// `reaction delay` ms after *its own pane* applied `round_started`, through its own transport.

import { GameClient, TRANSPORT_LABELS, TRANSPORT_SHORT } from './client.js';
import { ServerClock, clientNow } from './clock.js';
import { FiguresTable, fmt } from './figures.js';
import { LagChart } from './chart.js';
import { StatsPoller, serverTransport } from './stats.js';
import { adminPost, loadAdminToken, saveAdminToken } from './admin.js';
import { RoomControls } from './room_controls.js';
import { errorFrom } from './transports/common.js';
import { TRANSPORTS } from './protocol.js';
import { Board } from './game.js';

/** Redraw at most this often: a projector laptop should not spend its time re-rendering. */
const RENDER_MS = 200;
const BOT_NAMES = { ajax: 'Bot AJAX', longpoll: 'Bot LongPoll', sse: 'Bot SSE', websocket: 'Bot WebSocket' };
const SPECTATOR = Object.freeze({ kind: 'none' });
const PUSH = new Set(['sse', 'websocket']);

const $ = (id) => document.getElementById(id);

const clock = new ServerClock();
let stats = null;

// ---- rendering ----------------------------------------------------------------------------

let renderTimer = null;
let lastRender = 0;
function scheduleRender() {
  if (renderTimer !== null) return;
  const wait = Math.max(0, lastRender + RENDER_MS - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = null;
    lastRender = performance.now();
    render();
  }, wait);
}

// ---- panes --------------------------------------------------------------------------------

/** transport → {client, root, board, figures, refs} */
const panes = new Map();

function describeEvent(e) {
  switch (e.type) {
    case 'round_started':
      return `round ${e.round} started`;
    case 'round_won':
      return `round ${e.round} won by ${e.name} via ${e.transport}`;
    case 'player_joined':
      return `${e.name} joined`;
    case 'player_left':
      return `player ${e.player} left`;
    case 'click_missed':
      return `player ${e.player} missed`;
    case 'game_paused':
      return e.paused ? 'game paused' : 'game resumed';
    case 'scores_reset':
      return 'scores reset';
    case 'settings':
      return `poll interval now ${e.poll_interval_ms} ms`;
    case 'snapshot':
      return 'snapshot';
    default:
      return e.type;
  }
}

function createPane(transport) {
  const fragment = $('pane-template').content.cloneNode(true);
  const root = fragment.querySelector('.pane');
  root.dataset.testid = `pane-${transport}`;
  root.dataset.transport = transport;
  root.querySelector('.pane-title').textContent = TRANSPORT_LABELS[transport];
  const refs = Object.fromEntries(
    [...root.querySelectorAll('[data-role]')].map((node) => [node.dataset.role, node]),
  );
  const board = new Board(root.querySelector('.mini-board'));
  const figures = new FiguresTable(refs.figures, { compact: true });
  const pane = { transport, root, refs, board, figures, lastEvent: '' };
  pane.client = new GameClient({
    clock,
    auth: SPECTATOR,
    onChange: () => scheduleRender(),
    onEvent: (event, verdict) => {
      if (verdict === 'apply' || verdict === 'reset') {
        pane.lastEvent = `#${event.seq} ${describeEvent(event)}`;
      }
      race.onEvent(pane, event, verdict);
    },
  });
  $('panes').append(fragment);
  panes.set(transport, pane);
  return pane;
}

function renderPane(pane) {
  const { client: c, refs, root } = pane;
  const shown = c.connection === 'reconnecting' ? 'reconnecting…' : c.connection;
  refs.status.textContent = shown;
  refs.status.dataset.state = c.connection;
  refs.status.title = c.connectionDetail;
  refs.seq.textContent = c.stream.lastSeq === null ? '–' : String(c.stream.lastSeq);
  refs.missed.textContent = String(c.stream.missed);
  refs.missed.classList.toggle('bad', c.stream.missed > 0);
  const round = c.state?.round;
  refs.round.textContent = round ? `${round.number}${round.winner === null ? ' live' : ' won'}` : '–';
  refs['last-event'].textContent = pane.lastEvent;
  pane.board.render(c.state);
  pane.figures.update(c.meter, serverTransport(stats, pane.transport));
  // Plain numbers for tests and for anybody reading the DOM.
  root.dataset.connection = c.connection;
  root.dataset.lastSeq = String(c.stream.lastSeq ?? '');
  root.dataset.missed = String(c.stream.missed);
  root.dataset.events = String(c.meter?.events ?? 0);
  root.dataset.reconnects = String(c.meter?.reconnects ?? 0);
  root.dataset.recovered = String(c.meter?.recovered ?? 0);
  root.dataset.resynced = String(c.meter?.resynced ?? 0);
  root.classList.toggle('is-bot', race.bots.has(pane.transport));
}

// ---- summary table and chart --------------------------------------------------------------

function renderSummary() {
  const body = $('summary-body');
  const td = (text, col) => {
    const cell = document.createElement('td');
    cell.dataset.col = col;
    cell.textContent = text;
    return cell;
  };
  const rows = TRANSPORTS.map((transport) => {
    const meter = panes.get(transport).client.meter;
    const s = meter?.summary();
    const server = serverTransport(stats, transport);
    const tr = document.createElement('tr');
    tr.dataset.transport = transport;
    const name = document.createElement('th');
    name.scope = 'row';
    name.textContent = TRANSPORT_SHORT[transport];
    name.title = TRANSPORT_LABELS[transport];
    const swatch = document.createElement('span');
    swatch.className = `swatch swatch-${transport}`;
    swatch.setAttribute('aria-hidden', 'true');
    name.prepend(swatch);
    tr.append(
      name,
      td(fmt.ms(s?.lagMean ?? null), 'lag-mean'),
      td(fmt.ms(s?.lagP95 ?? null), 'lag-p95'),
      td(fmt.ratio(s?.requestsPerEvent ?? null), 'requests-per-event'),
      td(s?.bytesPerEvent == null ? '–' : String(Math.round(s.bytesPerEvent)), 'bytes-per-event'),
      td(PUSH.has(transport) ? 'n/a' : String(s?.wasted ?? 0), 'wasted'),
      td(`${s?.open ?? 0} / ${Number.isFinite(server?.open_connections) ? server.open_connections : '–'}`, 'open'),
    );
    return tr;
  });
  body.replaceChildren(...rows);
}

let chart = null;
function renderChart() {
  const data = {};
  for (const [transport, pane] of panes) data[transport] = pane.client.meter?.lagSeries ?? [];
  chart.render(data, clientNow());
}

function renderHeader() {
  const state = panes.get('websocket').client.state ?? panes.get('sse').client.state;
  const gameState = $('game-state');
  const paused = state?.paused === true;
  gameState.textContent = state ? (paused ? 'paused' : 'running') : 'connecting';
  gameState.dataset.state = state ? (paused ? 'reconnecting' : 'connected') : 'idle';
  const seqs = [...panes.values()].map((p) => p.client.stream.lastSeq ?? -1);
  const max = Math.max(...seqs);
  $('seq').textContent = max < 0 ? '–' : String(max);
  $('clock-line').textContent = clock.describe();
}

function render() {
  for (const pane of panes.values()) renderPane(pane);
  renderSummary();
  renderChart();
  renderHeader();
  race.render();
  admin.render();
}

// ---- race mode ----------------------------------------------------------------------------

const race = {
  on: false,
  busy: false,
  /** transport → {id, name, token} */
  bots: new Map(),
  wins: Object.fromEntries([...TRANSPORTS, 'others'].map((t) => [t, 0])),
  /** Rounds already tallied (every pane sees every round_won). */
  counted: new Set(),
  /** transport → rounds its bot has clicked (or scheduled). */
  clicked: new Map(),
  timers: new Set(),
  status: 'Off. Start it to let four bots race.',
  winsList: null,

  reactionMs() {
    const v = Number($('race-delay').value);
    return Number.isFinite(v) && v >= 0 ? Math.min(v, 5000) : 150;
  },

  onEvent(pane, event, verdict) {
    if (verdict === 'apply' && event.type === 'round_won' && !this.counted.has(event.round)) {
      const bot = [...this.bots.entries()].find(([, b]) => b.id === event.winner);
      if (this.on || bot) {
        this.counted.add(event.round);
        if (bot) this.wins[bot[0]] += 1;
        else this.wins.others += 1;
        this.status = `Round ${event.round}: ${bot ? TRANSPORT_LABELS[bot[0]] : event.name} won` +
          ` (${event.reaction_ms} ms after the round started, by the server's clock).`;
        scheduleRender();
      }
    }
    if (!this.on || !this.bots.has(pane.transport)) return;
    const round = pane.client.state?.round;
    const live = round && round.winner === null;
    const fresh = (verdict === 'apply' && event.type === 'round_started') || verdict === 'reset';
    if (fresh && live) this.schedule(pane, round);
  },

  schedule(pane, round) {
    const done = this.clicked.get(pane.transport) ?? new Set();
    this.clicked.set(pane.transport, done);
    if (done.has(round.number)) return;
    done.add(round.number);
    const timer = setTimeout(async () => {
      this.timers.delete(timer);
      if (!this.on || !this.bots.has(pane.transport)) return;
      try {
        await pane.client.click({ round: round.number, x: round.x, y: round.y });
      } catch (err) {
        if (err.code === 'unauthorized') {
          this.status = `${BOT_NAMES[pane.transport]} is no longer in the game (${err.detail}); stop and start the race again.`;
        }
        scheduleRender();
      }
    }, this.reactionMs());
    this.timers.add(timer);
  },

  async joinBot(transport) {
    for (let n = 1; n <= 9; n += 1) {
      const name = n === 1 ? BOT_NAMES[transport] : `${BOT_NAMES[transport]} ${n}`;
      const res = await fetch('/api/join', {
        method: 'POST',
        // omit: the bot's Set-Cookie must not replace this browser's own session.
        credentials: 'omit',
        headers: { 'Content-Type': 'application/json' },
        body: JSON.stringify({ name }),
      });
      if (res.status === 409) continue;
      if (!res.ok) throw await errorFrom(res);
      const body = await res.json();
      return { id: body.player_id, name, token: body.token };
    }
    throw new Error(`no free name for ${BOT_NAMES[transport]}`);
  },

  async start() {
    if (this.on || this.busy) return;
    this.busy = true;
    this.status = 'Bots joining…';
    scheduleRender();
    try {
      for (const transport of TRANSPORTS) {
        const bot = await this.joinBot(transport);
        this.bots.set(transport, bot);
        panes.get(transport).client.reopen({ auth: { kind: 'token', token: bot.token } });
      }
      this.on = true;
      this.clicked.clear();
      this.status = `Racing: each bot clicks ${this.reactionMs()} ms after its transport shows the target.`;
      // A round already live: every bot goes for it from its own pane's view.
      for (const pane of panes.values()) {
        const round = pane.client.state?.round;
        if (round && round.winner === null) this.schedule(pane, round);
      }
    } catch (err) {
      this.status = `Could not start the race: ${err.detail ?? err.message}`;
      await this.stop();
    } finally {
      this.busy = false;
      scheduleRender();
    }
  },

  async stop() {
    this.on = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const bots = [...this.bots.entries()];
    this.bots.clear();
    for (const [transport] of bots) panes.get(transport).client.reopen({ auth: SPECTATOR });
    await Promise.all(bots.map(([, bot]) => leaveBot(bot, false)));
    if (!this.status.startsWith('Could not')) this.status = 'Stopped; the bots left the game.';
    scheduleRender();
  },

  render() {
    const toggle = $('race-toggle');
    toggle.textContent = this.on ? 'Stop race' : 'Start race';
    toggle.setAttribute('aria-pressed', String(this.on));
    toggle.disabled = this.busy;
    if (!this.winsList) {
      this.winsList = new Map();
      const items = [...TRANSPORTS, 'others'].map((t) => {
        const li = document.createElement('li');
        li.dataset.transport = t;
        const label = document.createElement('span');
        label.className = 'label';
        if (t !== 'others') {
          const swatch = document.createElement('span');
          swatch.className = `swatch swatch-${t}`;
          swatch.setAttribute('aria-hidden', 'true');
          label.append(swatch);
        }
        label.append(t === 'others' ? 'Other players' : TRANSPORT_LABELS[t]);
        const count = document.createElement('strong');
        count.dataset.testid = `race-wins-${t}`;
        li.append(label, count);
        this.winsList.set(t, count);
        return li;
      });
      $('race-wins').replaceChildren(...items);
    }
    const best = Math.max(...TRANSPORTS.map((t) => this.wins[t]));
    for (const [t, count] of this.winsList) {
      count.textContent = String(this.wins[t]);
      count.parentElement.classList.toggle('leader', t !== 'others' && best > 0 && this.wins[t] === best);
    }
    $('race-status').textContent = this.status;
  },
};

function leaveBot(bot, keepalive) {
  return fetch('/api/leave', {
    method: 'POST',
    credentials: 'omit',
    keepalive,
    headers: { Authorization: `Bearer ${bot.token}` },
  }).catch(() => {});
}

// ---- lecturer controls --------------------------------------------------------------------

const admin = {
  message: '',
  delayInputs: new Map(),

  token() {
    return $('admin-token').value.trim();
  },

  async call(action, body, done) {
    const result = await adminPost(this.token(), action, body);
    this.message = result.ok ? done : result.message;
    $('admin-message').dataset.ok = String(result.ok);
    statsPoller.refresh();
    scheduleRender();
  },

  setup() {
    this.room = new RoomControls($('room-controls'), { call: (action, body, done) => this.call(action, body, done) });
    const token = $('admin-token');
    token.value = loadAdminToken();
    token.addEventListener('input', () => saveAdminToken(token.value.trim()));
    $('admin-token-form').addEventListener('submit', (e) => e.preventDefault());
    $('admin-pause').addEventListener('click', () => this.call('pause', undefined, 'Paused: no new rounds.'));
    $('admin-resume').addEventListener('click', () => this.call('resume', undefined, 'Resumed.'));
    $('admin-reset').addEventListener('click', () => this.call('reset', undefined, 'Scores reset.'));
    $('admin-disconnect').addEventListener('click', () =>
      this.call('disconnect', undefined, 'Dropped every open connection: watch the panes reconnect and resume.'));
    $('poll-form').addEventListener('submit', (e) => {
      e.preventDefault();
      const ms = Math.round(Number($('admin-poll-interval').value));
      this.call('poll-interval', { ms }, `AJAX clients now poll every ${ms} ms.`);
    });
    const grid = $('delay-controls');
    for (const transport of TRANSPORTS) {
      const id = `admin-delay-${transport}`;
      const label = document.createElement('label');
      label.htmlFor = id;
      label.textContent = TRANSPORT_LABELS[transport];
      const input = document.createElement('input');
      input.type = 'range';
      input.id = id;
      input.min = '0';
      input.max = '500';
      input.step = '10';
      input.value = '0';
      input.dataset.testid = id;
      const output = document.createElement('output');
      output.htmlFor = id;
      output.textContent = '0 ms';
      input.addEventListener('input', () => {
        output.textContent = `${input.value} ms`;
      });
      input.addEventListener('change', () => {
        const ms = Number(input.value);
        this.call('delay', { transport, ms }, `${TRANSPORT_LABELS[transport]}: ${ms} ms delay on every response/frame.`);
      });
      const row = document.createElement('div');
      row.className = 'delay-row';
      row.append(label, input, output);
      grid.append(row);
      this.delayInputs.set(transport, { input, output });
    }
  },

  /** Mirrors the server's current settings, except in a field the lecturer is editing. */
  render() {
    $('admin-message').textContent = this.message;
    this.room.render(panes.get('websocket').client.state ?? panes.get('sse').client.state);
    const settings = stats?.admin;
    if (!settings) return;
    const active = document.activeElement;
    const poll = $('admin-poll-interval');
    if (active !== poll && Number.isFinite(settings.poll_interval_ms)) poll.value = String(settings.poll_interval_ms);
    for (const [transport, { input, output }] of this.delayInputs) {
      const ms = settings.delay_ms?.[transport];
      if (active !== input && Number.isFinite(ms)) {
        input.value = String(ms);
        output.textContent = `${ms} ms`;
      }
    }
  },
};

const statsPoller = new StatsPoller({
  onStats: (s) => {
    stats = s;
    scheduleRender();
  },
});

// ---- start --------------------------------------------------------------------------------

async function start() {
  for (const transport of TRANSPORTS) createPane(transport);
  chart = new LagChart($('lag-chart'), TRANSPORTS, TRANSPORT_LABELS);
  const legend = $('chart-legend');
  legend.replaceChildren(
    ...TRANSPORTS.map((t) => {
      const li = document.createElement('li');
      const swatch = document.createElement('span');
      swatch.className = `swatch swatch-${t}`;
      swatch.setAttribute('aria-hidden', 'true');
      li.append(swatch, TRANSPORT_LABELS[t]);
      return li;
    }),
  );
  admin.setup();
  $('race-toggle').addEventListener('click', () => (race.on ? race.stop() : race.start()));
  $('reset-figures').addEventListener('click', () => {
    for (const pane of panes.values()) pane.client.use(pane.transport);
    scheduleRender();
  });
  window.addEventListener('pagehide', () => {
    for (const bot of race.bots.values()) leaveBot(bot, true);
  });
  clock.onChange(() => scheduleRender());
  clock.start();
  statsPoller.start();
  // A ticking chart even when no event arrives (the "now" edge moves).
  setInterval(scheduleRender, 1000);

  // One snapshot for all four, so they start level; each then streams from its seq.
  let snapshot = null;
  try {
    const res = await fetch('/api/snapshot', { credentials: 'omit', cache: 'no-store' });
    if (res.ok) snapshot = await res.json();
  } catch {
    // Each transport then starts without `since` and gets a snapshot first.
  }
  for (const pane of panes.values()) {
    if (snapshot) pane.client.accept(structuredClone(snapshot));
    pane.client.use(pane.transport);
  }
  scheduleRender();
}

start();
