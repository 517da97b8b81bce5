// # The lecturer's comparison page: four spectators, race mode, drawers for the rest
//
// Four GameClients (js/client.js), one per transport, each an independent live spectator of the
// same game: its own resume cursor, its own folded state, its own Meter. Nothing is shared
// between the panes except the page's estimate of the server clock — so whatever differs between
// them (when a target appears, how many requests it took) is the transports' doing.
//
// One projector screen (js/layout.js lists what must be on it): the panes with their boards,
// running / paused, and the race. Each pane redraws its board the moment it applies a round event
// (not at the next throttled render), keeps showing its last target until *it* learns that the
// round was won or expired, and writes on the board how long after the round's start the target
// reached it — so the difference in arrival time is visible on every round. Lecturer controls,
// the figures and chart, and connection security are drawers (js/drawers.js).
//
// Spectator panes send no credentials where they can avoid it (`auth: none`: fetch with
// `credentials: 'omit'`). EventSource and WebSocket always carry the page's cookies; if this
// browser also plays on `/`, its player's transport contact is refreshed by those two panes.
//
// Race mode: one bot player per transport joins with `credentials: 'omit'` (so its Set-Cookie does
// not replace this browser's own session), and its pane switches to that bot's identity: Bearer
// token on fetches, a one-time ticket for EventSource and WebSocket. Each bot clicks the target's
// centre `reaction delay` ms after *its own pane* applied `round_started`, from its own pane's
// view, through its own transport. The race counts a fixed number of *fresh* rounds (js/race.js):
// a round already on the board at the start is nobody's race.

import { GameClient, TRANSPORT_LABELS, TRANSPORT_SHORT } from './client.js';
import { ServerClock, clientNow } from './clock.js';
import { FiguresTable, fmt, formatLag, meanAndP95, serverBytes } from './figures.js';
import { LagChart } from './chart.js';
import { StatsPoller, serverTransport } from './stats.js';
import { adminPost, loadAdminToken, saveAdminToken } from './admin.js';
import { RoomControls } from './room_controls.js';
import { errorFrom } from './transports/common.js';
import { TRANSPORTS, isRoundOpen } from './protocol.js';
import { Board } from './game.js';
import { COLUMNS, FIGURE_DEFS, WINDOW_S, tooltip } from './definitions.js';
import { DRAWERS } from './layout.js';
import { mountDrawers } from './drawers.js';
import { ConnectionCensus, connectionWarning, heldBy, schemes, watchProtocols } from './netinfo.js';
import { RaceTally } from './race.js';

/** Figures and tables redraw at most this often; boards redraw at once on round events. */
const RENDER_MS = 200;
const BOT_NAMES = { ajax: 'Bot AJAX', longpoll: 'Bot LongPoll', sse: 'Bot SSE', websocket: 'Bot WebSocket' };
const SPECTATOR = Object.freeze({ kind: 'none' });
const PUSH = new Set(['sse', 'websocket']);
/** The figures a pane shows under its board when the screen is tall enough. */
const PANE_ROWS = ['lag', 'events', 'requests', 'bytesPerEvent', 'wasted', 'reconnects', 'open'];

const $ = (id) => document.getElementById(id);

const clock = new ServerClock();
let stats = null;
let protocols = null;
const census = new ConnectionCensus({ onChange: () => scheduleRender() });

const uncertainty = () => clock.uncertaintyMs ?? 0;

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

/** transport → {client, root, board, figures, refs, arrival} */
const panes = new Map();

function describeEvent(e) {
  switch (e.type) {
    case 'round_started':
      return `round ${e.round} started`;
    case 'round_won':
      return `round ${e.round} won by ${e.name} via ${e.transport}`;
    case 'round_expired':
      return `round ${e.round} expired: nobody hit it`;
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
  const svg = root.querySelector('.mini-board');
  svg.dataset.testid = `board-${transport}`;
  const board = new Board(svg);
  const figures = new FiguresTable(refs.figures, { rows: PANE_ROWS, compact: true });
  refs['lag-label'].title = `${tooltip('lag')} Here: the mean over the last ${WINDOW_S} s.`;
  const pane = {
    transport,
    root,
    refs,
    board,
    figures,
    arrivalLabel: document.createTextNode(''),
    lastEvent: '',
    /**
     * {round, ms, at} — how long after the round's start this pane learned of it (server clock,
     * estimated), and when (our clock); null = unknown.
     */
    arrival: null,
  };
  const arrivalText = svg.querySelector('.arrival');
  pane.arrivalText = arrivalText;
  const arrivalTitle = document.createElementNS('http://www.w3.org/2000/svg', 'title');
  arrivalTitle.textContent = tooltip('arrival');
  arrivalText.append(arrivalTitle, pane.arrivalLabel);
  pane.client = new GameClient({
    clock,
    auth: SPECTATOR,
    onChange: () => scheduleRender(),
    onEvent: (event, verdict) => onPaneEvent(pane, event, verdict),
  });
  $('panes').append(fragment);
  panes.set(transport, pane);
  return pane;
}

/** After a pane folded an event: its board at once, then race bookkeeping. */
function onPaneEvent(pane, event, verdict) {
  if (verdict === 'apply' || verdict === 'reset') {
    pane.lastEvent = `#${event.seq} ${describeEvent(event)}`;
  }
  const round = pane.client.state?.round;
  if (verdict === 'apply' && event.type === 'round_started') {
    pane.arrival = { round: event.round, ms: clock.serverNow() - event.ts, at: clientNow() };
  } else if (verdict === 'reset' && round && pane.arrival?.round !== round.number) {
    pane.arrival = null; // joined this round late: when it started reaching us is unknown
  }
  const roundEvent = ['round_started', 'round_won', 'round_expired'].includes(event.type);
  if (verdict === 'reset' || (verdict === 'apply' && roundEvent)) drawBoard(pane);
  race.onEvent(pane, event, verdict);
}

/** The pane's board and its "shown after" label: cheap, so drawn on every round event. */
function drawBoard(pane) {
  const state = pane.client.state;
  pane.board.render(state);
  const round = state?.round ?? null;
  const root = pane.root;
  root.dataset.roundState = !round ? 'none' : isRoundOpen(round) ? 'live' : round.expired ? 'expired' : 'won';
  root.dataset.round = round ? String(round.number) : '';
  const arrival = round && pane.arrival?.round === round.number ? pane.arrival.ms : null;
  const shown = arrival === null ? '' : formatLag(arrival, uncertainty());
  pane.arrivalLabel.data = shown === '' ? '' : shown.startsWith('≈') ? `${shown} ms` : `+${shown} ms`;
  // The label sits in the half of the board the target is not in.
  pane.arrivalText.setAttribute('y', round && round.y < 400 ? '960' : '110');
  root.dataset.arrivalMs = arrival === null ? '' : String(Math.round(arrival));
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
  const roundState = !round ? '' : isRoundOpen(round) ? ' live' : round.expired ? ' expired' : ' won';
  refs.round.textContent = round ? `${round.number}${roundState}` : '–';
  const lag = c.meter?.windowSummary();
  refs.lag.textContent = lag?.lagCount ? `${formatLag(lag.lagMean, uncertainty())} ms` : '–';
  refs['last-event'].textContent = pane.lastEvent;
  // In a cluster: the node this pane's connection is on, marked when it runs the game.
  const authority = stats?.node?.authority_node ?? null;
  refs.node.hidden = c.node === null;
  refs.node.textContent = c.node === null ? '' : `node ${c.node}${c.node === authority ? ' ★' : ''}`;
  refs.node.classList.toggle('is-authority', c.node !== null && c.node === authority);
  refs.node.title = c.node === null
    ? ''
    : `This pane's ${pane.transport === 'ajax' || pane.transport === 'longpoll' ? 'last poll was answered by' : 'stream is served by'} node ${c.node}` +
      `${c.node === authority ? ', which runs the game (★)' : `; node ${authority ?? '?'} runs the game`}. Every node sends the same events: the proxy may hand the next connection to any of them.`;
  root.dataset.node = c.node ?? '';
  if (protocols) {
    const proto = protocols.transport(pane.transport, window.location);
    refs.proto.textContent = proto.text;
    refs.proto.title = proto.measured
      ? `Resource Timing nextHopProtocol of this pane's own ${pane.transport === 'ajax' ? 'polls' : 'long polls'}.`
      : pane.transport === 'websocket'
        ? 'A WebSocket is an HTTP/1.1 upgrade here (the server does not offer WebSockets over HTTP/2).'
        : 'The protocol of the page\'s own API requests to this origin (one origin, one connection pool): a stream\'s own entry appears only when it ends.';
    root.dataset.protocol = proto.protocol ?? '';
    root.dataset.scheme = proto.scheme;
  }
  drawBoard(pane);
  pane.figures.update(c.meter, serverTransport(stats, pane.transport), { uncertaintyMs: uncertainty() });
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

// ---- summary table and chart (the Figures drawer) -------------------------------------------

/** Columns of the summary: [data-col, figure id, which run, header]. */
const SUMMARY_COLUMNS = [
  ['lag-window', 'lag', 'window'],
  ['lag-total', 'lag', 'total'],
  ['rpe-window', 'requestsPerEvent', 'window'],
  ['rpe-total', 'requestsPerEvent', 'total'],
  ['bpe-window', 'bytesPerEvent', 'window'],
  ['bpe-total', 'bytesPerEvent', 'total'],
  ['bpe-server', 'bytesPerEvent', 'server'],
  ['wasted-window', 'wasted', 'window'],
  ['wasted-total', 'wasted', 'total'],
];

function buildSummaryHead() {
  const groups = document.createElement('tr');
  const sub = document.createElement('tr');
  const th = (text, title, attrs = {}) => {
    const cell = document.createElement('th');
    cell.scope = attrs.scope ?? 'col';
    cell.textContent = text;
    if (title) cell.title = title;
    if (attrs.colSpan) cell.colSpan = attrs.colSpan;
    if (attrs.rowSpan) cell.rowSpan = attrs.rowSpan;
    return cell;
  };
  groups.append(th('Transport', null, { rowSpan: 2 }));
  for (const id of ['lag', 'requestsPerEvent', 'bytesPerEvent', 'wasted']) {
    const def = FIGURE_DEFS[id];
    const label = def.estimate ? `${def.label} (est.)` : def.label;
    // Bytes per event also get the server's own count, exact where the page can only estimate.
    const server = id === 'bytesPerEvent';
    groups.append(th(id === 'lag' ? `${label}, ms mean / p95` : label, tooltip(id), { colSpan: server ? 3 : 2, scope: 'colgroup' }));
    sub.append(th(COLUMNS.window.label, COLUMNS.window.title), th(COLUMNS.total.label, COLUMNS.total.title));
    if (server) sub.append(th(COLUMNS.server.label, tooltip('server')));
  }
  groups.append(th(FIGURE_DEFS.open.short, `${tooltip('open')} This pane / the server (all clients).`, { rowSpan: 2 }));
  $('summary-head').replaceChildren(groups, sub);
  $('summary-explain').textContent = `Each figure twice: over the last ${WINDOW_S} s (a change of interval or delay shows ` +
    'here within seconds) and since this page opened (or since "Reset figures"). Hover a heading for its definition; ' +
    '"est." marks an estimate: the page counts every response head as 300 B, the Server column counts the real bytes at its sockets. ' +
    '* = mean above p95 (hover the cell).';
}

function renderSummary() {
  const body = $('summary-body');
  const td = (value, col) => {
    const cell = document.createElement('td');
    cell.dataset.col = col;
    const { text, note, kind = 'mean-above-p95' } = typeof value === 'string' ? { text: value, note: null } : value;
    cell.textContent = text;
    if (note) {
      cell.title = note;
      cell.dataset.note = kind;
    }
    return cell;
  };
  const lag = (v) => formatLag(v, uncertainty());
  const rows = TRANSPORTS.map((transport) => {
    const meter = panes.get(transport).client.meter;
    const s = meter?.summary();
    const runs = { window: s?.window, total: s };
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
    const cells = SUMMARY_COLUMNS.map(([col, id, run]) => {
      if (run === 'server') return td(serverBytes(server).bytesPerEvent, col);
      const r = runs[run];
      if (!r) return td('–', col);
      switch (id) {
        case 'lag':
          return td(meanAndP95({ mean: r.lagMean, p95: r.lagP95 }, lag), col);
        case 'requestsPerEvent':
          return td(fmt.ratio(r.requestsPerEvent ?? null), col);
        case 'bytesPerEvent':
          return td(r.bytesPerEvent == null ? '–' : String(Math.round(r.bytesPerEvent)), col);
        default:
          return td(PUSH.has(transport) ? 'n/a' : String(r.wasted ?? 0), col);
      }
    });
    tr.append(
      name,
      ...cells,
      td(`${s?.open ?? 0} / ${Number.isFinite(server?.open_connections) ? server.open_connections : '–'}`, 'open'),
    );
    return tr;
  });
  body.replaceChildren(...rows);
}

let chart = null;
function renderChart() {
  if (!chart) return;
  const data = {};
  for (const [transport, pane] of panes) data[transport] = pane.client.meter?.lagSeries ?? [];
  chart.render(data, clientNow(), uncertainty());
}

/** The state the header shows: the freshest of the panes (they all follow one game). */
function freshestState() {
  let best = null;
  for (const pane of panes.values()) {
    const s = pane.client.state;
    if (s && (!best || s.seq > best.seq)) best = s;
  }
  return best;
}

function renderHeader() {
  const state = freshestState();
  const gameState = $('game-state');
  const paused = state?.paused === true;
  gameState.textContent = state ? (paused ? '❚❚ paused' : '▶ running') : 'connecting';
  gameState.dataset.state = state ? (paused ? 'paused' : 'running') : 'idle';
  $('pause-banner').hidden = !paused;
  document.body.classList.toggle('is-paused', paused);
  const seqs = [...panes.values()].map((p) => p.client.stream.lastSeq ?? -1);
  const max = Math.max(...seqs);
  $('seq').textContent = max < 0 ? '–' : String(max);
  const line = $('clock-line');
  line.textContent = clock.describeShort();
  line.title = `${clock.describe()}. ${tooltip('clock')} Lags within ± the uncertainty show as "≈ 0".`;

  // In a cluster (/api/stats has `node`): which node runs the game, and which one answered.
  const node = stats?.node ?? null;
  const cluster = $('cluster-line');
  cluster.hidden = node === null;
  if (node) {
    cluster.textContent = `game on node ${node.authority_node ?? '–'}${node.redis === 'ok' ? '' : ' · Redis unreachable'}`;
    cluster.title = `Several nodes serve this game through Redis (docs/scaling.md). Node ${node.authority_node ?? '(none: a failover is under way)'} ` +
      `runs it; node ${node.id} answered the last figures request and says Redis is ${node.redis}.`;
    cluster.dataset.authority = node.authority_node ?? '';
    cluster.dataset.redis = node.redis;
  }

  const s = schemes(window.location);
  const page = protocols?.page() ?? null;
  const label = $('page-protocol');
  label.textContent = `${page ?? 'HTTP/?'} · ${s.http} · ${s.ws}`;
  label.title = 'This page\'s API requests (Resource Timing nextHopProtocol), and the schemes it uses for HTTP and WebSocket.';
  label.dataset.protocol = page ?? '';
  label.dataset.http = s.http;
  label.dataset.ws = s.ws;

  let held = 0;
  for (const pane of panes.values()) held += heldBy(pane.client);
  census.set(held);
  const warning = connectionWarning({ protocol: page, held: census.total() });
  const box = $('conn-warning');
  box.hidden = warning === null;
  box.textContent = warning ?? '';
}

function render() {
  for (const pane of panes.values()) renderPane(pane);
  if (document.body.dataset.drawer === 'figures') {
    renderSummary();
    renderChart();
  }
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
  /** The current (or last) race's tally; null before the first race. */
  tally: null,
  /** Seq of the last scores_reset handled (every pane sees it). */
  lastResetSeq: null,
  /** transport → rounds its bot has clicked (or scheduled). */
  clicked: new Map(),
  timers: new Set(),
  status: 'Off. Start it to let four bots race over a fixed number of fresh rounds.',
  cells: null,

  reactionMs() {
    const v = Number($('race-delay').value);
    return Number.isFinite(v) && v >= 0 ? Math.min(v, 5000) : 150;
  },

  roundsWanted() {
    const v = Math.round(Number($('race-rounds').value));
    return Number.isFinite(v) && v >= 0 ? Math.min(v, 500) : 20;
  },

  /** The highest round any pane knows of (0 before the first). */
  latestRound() {
    return Math.max(0, ...[...panes.values()].map((p) => p.client.state?.round?.number ?? 0));
  },

  botOf(playerId) {
    for (const [transport, bot] of this.bots) if (bot.id === playerId) return transport;
    return null;
  },

  onEvent(pane, event, verdict) {
    if (verdict === 'apply' && event.type === 'scores_reset' && event.seq !== this.lastResetSeq) {
      this.lastResetSeq = event.seq;
      this.resetTally();
    }
    if (verdict === 'apply' && this.tally && this.on) {
      const entry = this.tally.record(event, (id) => this.botOf(id));
      if (entry) {
        const who = entry.kind === 'expired'
          ? 'nobody (expired)'
          : `${entry.transport ? TRANSPORT_LABELS[entry.transport] : entry.name} won (${entry.reactionMs} ms, server clock)`;
        this.status = `Round ${event.round} (${this.tally.played}${this.tally.rounds ? ` of ${this.tally.rounds}` : ''}): ${who}.`;
        if (this.tally.done) this.finish();
        scheduleRender();
      }
    }
    if (!this.on || !this.bots.has(pane.transport) || !this.tally) return;
    const round = pane.client.state?.round;
    if (!isRoundOpen(round) || !this.tally.inRace(round.number)) return;
    const fresh = (verdict === 'apply' && event.type === 'round_started') || verdict === 'reset';
    if (fresh) this.schedule(pane, round, clientNow());
  },

  /** Zeroes the tallies; a running race counts its rounds again from the next fresh round. */
  resetTally() {
    if (!this.tally) return;
    this.tally = new RaceTally({ transports: TRANSPORTS, rounds: this.tally.rounds, startAfter: this.latestRound() });
    this.status = this.on
      ? 'Scores reset: the race counts again from the next fresh round.'
      : 'Scores reset.';
    scheduleRender();
  },

  /** The bot of `pane` clicks `round` `reactionMs` after `seenAt` (our clock), its pane's view. */
  schedule(pane, round, seenAt) {
    const done = this.clicked.get(pane.transport) ?? new Set();
    this.clicked.set(pane.transport, done);
    if (done.has(round.number)) return;
    done.add(round.number);
    const wait = Math.max(0, this.reactionMs() - (clientNow() - seenAt));
    const timer = setTimeout(async () => {
      this.timers.delete(timer);
      if (!this.on || !this.bots.has(pane.transport)) return;
      // The bot sees what its pane sees: a round its pane already knows is over is not clicked.
      const now = pane.client.state?.round;
      if (!isRoundOpen(now) || now.number !== round.number) return;
      try {
        await pane.client.click({ round: round.number, x: round.x, y: round.y });
      } catch (err) {
        if (err.code === 'unauthorized') {
          this.status = `${BOT_NAMES[pane.transport]} is no longer in the game (${err.detail}); stop and start the race again.`;
        }
        scheduleRender();
      }
    }, wait);
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
      // The round on the board now (live or not, asked once every bot is connected) is nobody's
      // race: the race starts with the next round, which every bot sees arrive through its own
      // transport.
      let current = this.latestRound();
      let live = false;
      try {
        const res = await fetch('/api/snapshot', { credentials: 'omit', cache: 'no-store' });
        if (res.ok) {
          const snap = await res.json();
          current = Math.max(current, snap.round?.number ?? 0);
          live = isRoundOpen(snap.round ?? null) && snap.round.number === current;
        }
      } catch {
        // The panes' own view is then the best we know.
      }
      current = Math.max(current, this.latestRound());
      this.tally = new RaceTally({ transports: TRANSPORTS, rounds: this.roundsWanted(), startAfter: current });
      this.clicked.clear();
      this.on = true;
      // A fresh round that reached a pane while we asked: its bot reacts as if it had been
      // racing then, counting from when its pane saw it.
      for (const pane of panes.values()) {
        const round = pane.client.state?.round;
        if (isRoundOpen(round) && this.tally.inRace(round.number)) {
          this.schedule(pane, round, pane.arrival?.round === round.number ? pane.arrival.at : clientNow());
        }
      }
      const length = this.tally.rounds ? `${this.tally.rounds} rounds` : 'until stopped';
      this.status = live
        ? `Racing ${length} from round ${current + 1}: round ${current} is still on the board, so the bots wait for the next, fresh one (it comes when round ${current} is won or expires).`
        : `Racing ${length} from round ${current + 1}: each bot clicks ${this.reactionMs()} ms after its own pane shows the target.`;
    } catch (err) {
      this.status = `Could not start the race: ${err.detail ?? err.message}`;
      await this.stop();
    } finally {
      this.busy = false;
      scheduleRender();
    }
  },

  /** The last round of a fixed-length race was counted: stop clicking at once, then leave. */
  finish() {
    const t = this.tally;
    const best = Math.max(...TRANSPORTS.map((tr) => t.wins[tr]));
    const leaders = TRANSPORTS.filter((tr) => best > 0 && t.wins[tr] === best).map((tr) => TRANSPORT_LABELS[tr]);
    this.status = `Race over: ${t.rounds} rounds (${t.span()?.first ?? '–'}–${t.span()?.last ?? '–'}). ` +
      (leaders.length ? `Most wins: ${leaders.join(', ')} (${best}).` : 'No bot won a round.');
    this.stop({ finished: true });
  },

  async stop({ finished = false } = {}) {
    this.on = false;
    for (const timer of this.timers) clearTimeout(timer);
    this.timers.clear();
    const bots = [...this.bots.entries()];
    this.bots.clear();
    for (const [transport] of bots) panes.get(transport).client.reopen({ auth: SPECTATOR });
    await Promise.all(bots.map(([, bot]) => leaveBot(bot, false)));
    if (!finished && !this.status.startsWith('Could not')) {
      const t = this.tally;
      this.status = t
        ? `Stopped after ${t.played}${t.rounds ? ` of ${t.rounds}` : ''} rounds; the bots left the game.`
        : 'Stopped; the bots left the game.';
    }
    scheduleRender();
  },

  buildTable() {
    const columns = [...TRANSPORTS, 'nobody', 'others'];
    const head = $('race-head-row');
    const wins = $('race-wins');
    const means = $('race-means');
    const rowHead = (text, title) => {
      const th = document.createElement('th');
      th.scope = 'row';
      th.textContent = text;
      th.title = title;
      return th;
    };
    head.replaceChildren(Object.assign(document.createElement('td'), { className: 'race-corner' }));
    wins.replaceChildren(rowHead('wins', tooltip('raceWins')));
    means.replaceChildren(rowHead('mean', tooltip('raceReaction')));
    this.cells = new Map();
    for (const t of columns) {
      const th = document.createElement('th');
      th.scope = 'col';
      th.dataset.transport = t;
      if (TRANSPORTS.includes(t)) {
        const swatch = document.createElement('span');
        swatch.className = `swatch swatch-${t}`;
        swatch.setAttribute('aria-hidden', 'true');
        th.append(swatch, TRANSPORT_SHORT[t]);
      } else {
        th.append(t === 'nobody' ? 'Nobody' : 'Others');
        th.title = t === 'nobody' ? 'Rounds of this race that expired: nobody hit them in time.' : 'Rounds of this race a human player won.';
      }
      head.append(th);
      const win = document.createElement('td');
      win.dataset.transport = t;
      const count = document.createElement('strong');
      count.dataset.testid = `race-wins-${t}`;
      win.append(count);
      wins.append(win);
      const mean = document.createElement('td');
      mean.dataset.transport = t;
      mean.dataset.testid = `race-mean-${t}`;
      means.append(mean);
      this.cells.set(t, { win, count, mean });
    }
  },

  render() {
    const toggle = $('race-toggle');
    toggle.textContent = this.on ? 'Stop race' : 'Start race';
    toggle.setAttribute('aria-pressed', String(this.on));
    toggle.disabled = this.busy;
    if (!this.cells) this.buildTable();
    const t = this.tally;
    const best = t ? Math.max(...TRANSPORTS.map((tr) => t.wins[tr])) : 0;
    for (const [name, { win, count, mean }] of this.cells) {
      const wins = !t ? 0 : name === 'nobody' ? t.nobody : name === 'others' ? t.others : t.wins[name];
      count.textContent = String(wins);
      win.classList.toggle('leader', TRANSPORTS.includes(name) && best > 0 && wins === best);
      const m = t && TRANSPORTS.includes(name) ? t.meanReaction(name) : null;
      mean.textContent = TRANSPORTS.includes(name) ? (m === null ? '–' : `${Math.round(m)} ms`) : '';
    }
    const table = document.querySelector('[data-testid="race-table"]');
    table.dataset.played = String(t?.played ?? 0);
    table.dataset.total = String(t?.total() ?? 0);
    table.dataset.rounds = String(t?.rounds ?? 0);
    table.dataset.startAfter = String(t?.startAfter ?? '');
    table.dataset.first = String(t?.span()?.first ?? '');
    table.dataset.last = String(t?.span()?.last ?? '');
    table.dataset.state = this.on ? 'racing' : t?.done ? 'over' : t ? 'stopped' : 'off';
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
  ok: null,
  delayInputs: new Map(),

  token() {
    return $('admin-token').value.trim();
  },

  async call(action, body, done) {
    const result = await adminPost(this.token(), action, body);
    // A success replaces any earlier error (a wrong token, say) with what was done.
    this.message = result.ok ? done : result.message;
    this.ok = result.ok;
    statsPoller.refresh();
    scheduleRender();
  },

  setup() {
    this.room = new RoomControls($('room-controls'), { call: (action, body, done) => this.call(action, body, done) });
    const token = $('admin-token');
    token.value = loadAdminToken();
    token.addEventListener('input', () => {
      saveAdminToken(token.value.trim());
      // The error was about the old token; the new one has not been tried yet.
      if (this.ok === false) {
        this.message = '';
        this.ok = null;
        this.render();
      }
    });
    $('admin-token-form').addEventListener('submit', (e) => e.preventDefault());
    $('admin-pause').addEventListener('click', () => this.call('pause', undefined, 'Paused: no new rounds.'));
    $('admin-resume').addEventListener('click', () => this.call('resume', undefined, 'Resumed.'));
    $('admin-reset').addEventListener('click', () => this.call('reset', undefined, 'Scores and tallies reset.'));
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
    const message = $('admin-message');
    message.textContent = this.message;
    if (this.ok === null) delete message.dataset.ok;
    else message.dataset.ok = String(this.ok);
    this.room.render(freshestState());
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
  mountDrawers({ tabs: $('drawer-tabs'), into: $('drawer-host'), list: DRAWERS });
  // The figures drawer is drawn only while open; opening it draws it at once.
  $('drawer-tabs').addEventListener('click', () => scheduleRender());
  for (const transport of TRANSPORTS) createPane(transport);
  buildSummaryHead();
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
  $('race-form').addEventListener('submit', (e) => {
    e.preventDefault();
    race.start();
  });
  $('reset-figures').addEventListener('click', () => {
    for (const pane of panes.values()) pane.client.use(pane.transport);
    scheduleRender();
  });
  window.addEventListener('pagehide', () => {
    for (const bot of race.bots.values()) leaveBot(bot, true);
    census.close();
  });
  protocols = watchProtocols(() => scheduleRender());
  clock.onChange(() => scheduleRender());
  clock.start();
  statsPoller.start();
  // A ticking chart and windows even when no event arrives (the "now" edge moves).
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
