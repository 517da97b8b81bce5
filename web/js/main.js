// # The player's page: one GameClient, its panels, joining and clicking
//
// Data flows one way:
//
//   transport ──onEvent──> GameClient (validate, Stream, fold) ──> client.state ──> panels
//        └─────probe─────> Meter (figures, wire log) ──────────────────────────────> panels
//
// * `client` (js/client.js) holds the folded state, the resume cursor and the current transport;
//   only its events (and join/leave) change what the page shows.
// * The transport is swappable at any time (`client.use`): the new one resumes from the last seq,
//   so no event is lost, and any event delivered twice is dropped by the Stream. The finished
//   run's figures go into the history table.
// * A *panel* is `{render(view)}`; after every change all panels re-render from the same view.
//   To add one, write a render function and `addPanel` it — nothing else needs to know.
//
// Every string from the server (player names above all) is written with textContent, never as
// HTML — the one exception is the lab's demonstration (`showName` in js/lab.js, only with
// `--lab` and its server_data defence switched off).
//
// Two small interaction rules: the transport dropdown switches on *commit* — a mouse pick at
// once, but arrow keys on a focused dropdown (which fire `change` at every press) only after the
// keys have settled, on Enter, or on leaving it — so walking through the list does not start a
// new transport run per keypress. And the board plays by keyboard (Tab to the target, Enter or
// Space): a click at the target's centre at the moment of the key press (see game.js).

import { GameClient, TRANSPORT_LABELS } from './client.js';
import { ServerClock } from './clock.js';
import { FiguresTable, fmt, formatLag } from './figures.js';
import { StatsPoller, serverTransport } from './stats.js';
import { WireView } from './wire.js';
import { errorFrom } from './transports/common.js';
import { TRANSPORTS, isRoundOpen, meanReactionMs, validateEvent } from './protocol.js';
import { Board } from './game.js';
import { tooltip } from './definitions.js';
import { ConnectionCensus, connectionWarning, heldBy, schemes, watchProtocols } from './netinfo.js';
import { onLabChange, showName } from './lab.js';

const DEFAULT_TRANSPORT = 'websocket';
/** How long a click result stays on screen. */
const RESULT_MS = 3000;
/** Figures are redrawn at most this often (events can arrive much faster). */
const RENDER_MS = 100;
/** Remembers who "you" are across reloads; the session itself is the HttpOnly cookie. */
const ME_KEY = 'clickgame.me';
/** Arrow keys on the dropdown switch transport once no key has come for this long. */
const SETTLE_MS = 1000;
/** Keys that move a focused <select> to another option (and fire `change` at once in Chromium). */
const NAV_KEYS = new Set(['ArrowUp', 'ArrowDown', 'ArrowLeft', 'ArrowRight', 'Home', 'End', 'PageUp', 'PageDown']);

const $ = (id) => document.getElementById(id);

const clock = new ServerClock();
const client = new GameClient({
  clock,
  onChange: () => scheduleRender(),
  onEvent: (event, verdict) => onEvent(event, verdict),
});

/** Everything the page shows besides the client: who we are, the server's figures. */
const app = {
  client,
  /** `{id, name}` once joined; null while spectating. */
  me: null,
  /**
   * `{id, name}` of a player the server let go for being idle. Our session cookie still holds
   * its token, and the server rejoins us with it on our next request (`player_rejoined`, score
   * kept): then we are that player again.
   */
  away: null,
  stats: null,
  /** js/netinfo.js ProtocolBook: which HTTP version the page's requests use. */
  protocols: null,
};

const census = new ConnectionCensus({ onChange: () => scheduleRender() });

// ---- panels -------------------------------------------------------------------------------

const panels = [];

export function addPanel(panel) {
  panels.push(panel);
  scheduleRender();
}

let renderTimer = null;
let lastRender = 0;
/**
 * Renders once after the current burst of changes (a poll answer can carry many events), and at
 * most every RENDER_MS (a busy WebSocket can bring hundreds of frames a second).
 */
function scheduleRender() {
  if (renderTimer !== null) return;
  const wait = Math.max(0, lastRender + RENDER_MS - performance.now());
  renderTimer = setTimeout(() => {
    renderTimer = null;
    lastRender = performance.now();
    for (const panel of panels) panel.render(app);
  }, wait);
}

function statusPanel() {
  const status = $('status');
  const detail = $('status-detail');
  const lastSeq = $('last-seq');
  const missed = $('missed');
  const duplicates = $('duplicates');
  const recovered = $('recovered');
  const resynced = $('resynced');
  return {
    render({ client: c }) {
      const shown = c.connection === 'reconnecting' ? 'reconnecting…' : c.connection;
      status.textContent = `${c.transportName ?? '–'}: ${shown}`;
      status.dataset.state = c.connection;
      detail.textContent = c.connection === 'connected' ? '' : c.connectionDetail;
      lastSeq.textContent = c.stream.lastSeq === null ? '–' : String(c.stream.lastSeq);
      missed.textContent = String(c.stream.missed);
      missed.classList.toggle('bad', c.stream.missed > 0);
      duplicates.textContent = String(c.stream.duplicates);
      recovered.textContent = String(c.meter?.recovered ?? 0);
      resynced.textContent = String(c.meter?.resynced ?? 0);
    },
  };
}

/** HTTP/1.1 or HTTP/2, http: or https:, ws: or wss: — and the per-origin connection warning. */
function protocolPanel() {
  const label = $('page-protocol');
  const warning = $('conn-warning');
  return {
    render({ client: c, protocols }) {
      const s = schemes(window.location);
      const page = protocols?.page() ?? null;
      const mine = c.transportName && protocols ? protocols.transport(c.transportName, window.location) : null;
      label.textContent = `${page ?? 'HTTP/?'} · ${s.http} · ${s.ws}${mine ? ` — ${c.transportName} over ${mine.text}` : ''}`;
      label.title = 'This page\'s API requests (Resource Timing nextHopProtocol) and the schemes it uses; then the current transport\'s.';
      label.dataset.protocol = page ?? '';
      label.dataset.http = s.http;
      label.dataset.ws = s.ws;
      census.set(heldBy(c));
      const text = connectionWarning({ protocol: page, held: census.total() });
      warning.hidden = text === null;
      warning.textContent = text ?? '';
    },
  };
}

/** What became of the current round: live, won by whom, or expired. */
function roundPanel() {
  const line = $('round-status');
  return {
    render({ client: c }) {
      const round = c.state?.round ?? null;
      let text = 'No round yet.';
      let state = 'none';
      if (round && isRoundOpen(round)) {
        text = `Round ${round.number}: live — hit the red target.`;
        state = 'live';
      } else if (round?.expired) {
        text = `Round ${round.number} expired: nobody hit it in time. The next one comes after a short pause.`;
        state = 'expired';
      } else if (round) {
        const winner = c.state.players.find((p) => p.id === round.winner);
        text = `Round ${round.number} won by ${winner ? winner.name : `player ${round.winner}`}. Next round soon.`;
        state = 'won';
      }
      line.textContent = text;
      line.dataset.state = state;
      line.dataset.round = round ? String(round.number) : '';
    },
  };
}

function boardPanel(board) {
  const paused = $('paused');
  return {
    render: ({ client: c }) => {
      board.render(c.state);
      paused.hidden = !c.state?.paused;
    },
  };
}

function joinPanel() {
  const form = $('join-form');
  const playing = $('playing');
  const youName = $('you-name');
  const hint = $('hint');
  return {
    render({ me, client: c }) {
      form.hidden = me !== null;
      playing.hidden = me === null;
      youName.textContent = me ? me.name : '';
      hint.textContent = me
        ? 'Click the red target before anybody else.'
        : c.state?.joins_open === false
          ? 'Watching. The lecturer has closed joining for now.'
          : 'Watching. Join to play: click the red target before anybody else.';
    },
  };
}

function scoreboardPanel() {
  const body = $('scoreboard');
  const empty = $('no-players');
  const cell = (text, col) => {
    const td = document.createElement('td');
    td.dataset.col = col;
    td.textContent = text;
    return td;
  };
  return {
    render({ client: c, me }) {
      const players = [...(c.state?.players ?? [])].sort((a, b) => b.score - a.score || a.id - b.id);
      const rows = players.map((p) => {
        const tr = document.createElement('tr');
        tr.dataset.player = String(p.id);
        const name = cell('', 'name');
        // As text — or, only while the lab's server_data defence is off, as HTML (js/lab.js).
        showName(name, p.name);
        if (me && p.id === me.id) {
          tr.classList.add('you');
          const badge = document.createElement('span');
          badge.className = 'badge';
          badge.textContent = 'you';
          name.append(' ', badge);
        }
        tr.append(
          name,
          cell(String(p.score), 'score'),
          cell(String(p.misses), 'misses'),
          cell(p.transport ?? '–', 'transport'),
        );
        return tr;
      });
      body.replaceChildren(...rows);
      empty.hidden = rows.length > 0;
    },
  };
}

function summaryPanel() {
  const list = $('summary');
  return {
    render({ client: c }) {
      const state = c.state;
      if (!state) return;
      // The four we know first, then any a newer server reports.
      const names = [...TRANSPORTS, ...Object.keys(state.transports).filter((t) => !TRANSPORTS.includes(t))];
      list.replaceChildren(
        ...names.map((name) => {
          const tally = state.transports[name] ?? { wins: 0, total_reaction_ms: 0 };
          const mean = meanReactionMs(tally);
          const li = document.createElement('li');
          li.dataset.transport = name;
          const label = document.createElement('span');
          label.className = 'label';
          label.textContent = TRANSPORT_LABELS[name] ?? name;
          const wins = document.createElement('span');
          wins.dataset.col = 'wins';
          wins.textContent = `${tally.wins} ${tally.wins === 1 ? 'win' : 'wins'}`;
          const ms = document.createElement('span');
          ms.dataset.col = 'mean';
          ms.textContent = mean === null ? 'mean –' : `mean ${Math.round(mean)} ms`;
          ms.title = tooltip('reaction');
          li.append(label, wins, ms);
          return li;
        }),
      );
    },
  };
}

function figuresPanel() {
  const table = new FiguresTable($('figures'));
  const title = $('figures-transport');
  const clockLine = $('clock');
  return {
    render({ client: c, stats }) {
      title.textContent = TRANSPORT_LABELS[c.transportName] ?? '–';
      table.update(c.meter, serverTransport(stats, c.transportName), { uncertaintyMs: clock.uncertaintyMs ?? 0 });
      clockLine.textContent = `${clock.describe()}; lags within ± that show as "≈ 0".`;
      clockLine.title = tooltip('clock');
    },
  };
}

function wirePanel() {
  const view = new WireView($('wire'), $('wire-pause'), $('wire-clear'), $('wire-caption'));
  return { render: ({ client: c }) => view.render(c.meter) };
}

function historyPanel() {
  const body = $('history');
  // Column headings say what they measure, in the words of js/definitions.js.
  for (const th of document.querySelectorAll('[data-testid="history"] th[data-figure]')) {
    th.title = tooltip(th.dataset.figure);
  }
  const td = (text, col) => {
    const cell = document.createElement('td');
    cell.dataset.col = col;
    cell.textContent = text;
    return cell;
  };
  return {
    render({ client: c }) {
      const runs = [...c.history.values()].filter((run) => run.transport !== c.transportName);
      if (c.meter) runs.push({ ...c.meter.summary(), live: true });
      runs.sort((a, b) => TRANSPORTS.indexOf(a.transport) - TRANSPORTS.indexOf(b.transport));
      body.replaceChildren(
        ...runs.map((r) => {
          const tr = document.createElement('tr');
          tr.dataset.transport = r.transport;
          if (r.live) tr.classList.add('live');
          const name = td(TRANSPORT_LABELS[r.transport] ?? r.transport, 'transport');
          if (r.live) {
            const badge = document.createElement('span');
            badge.className = 'badge';
            badge.textContent = 'now';
            name.append(' ', badge);
          }
          tr.append(
            name,
            td(`${Math.round(r.seconds)} s`, 'seconds'),
            td(String(r.events), 'events'),
            td(`${formatLag(r.lagMean, clock.uncertaintyMs ?? 0)} / ${formatLag(r.lagP95, clock.uncertaintyMs ?? 0)}`, 'lag'),
            td(fmt.ms(r.latencyMean), 'latency'),
            td(fmt.ratio(r.requestsPerEvent), 'requests-per-event'),
            td(r.bytesPerEvent === null ? '–' : String(Math.round(r.bytesPerEvent)), 'bytes-per-event'),
            td(r.transport === 'sse' || r.transport === 'websocket' ? 'n/a' : String(r.wasted), 'wasted'),
            td(`${r.reconnects} (${r.recovered} / ${r.resynced})`, 'reconnects'),
          );
          return tr;
        }),
      );
    },
  };
}

// ---- events -------------------------------------------------------------------------------

const LEFT_BECAUSE = {
  idle: 'You were removed after 60 s without contact.',
  kicked: 'The lecturer removed you from the game.',
};

/** After the client folded an event: what it means for "you". */
function onEvent(event, verdict) {
  if (verdict === 'reset') {
    // A snapshot is the whole truth: if "you" are not in it any more, you are a spectator —
    // and if the player we were before an idle timeout is in it again, our cookie rejoined us.
    if (app.me && !client.state.players.some((p) => p.id === app.me.id)) forgetMe();
    const back = app.away && client.state.players.find((p) => p.id === app.away.id);
    if (!app.me && back) rememberMe({ id: back.id, name: back.name });
  } else if (verdict === 'apply' && event.type === 'player_left' && app.me?.id === event.player) {
    const me = app.me;
    forgetMe();
    if (event.reason === 'idle') app.away = me;
    showResult(LEFT_BECAUSE[event.reason] ?? 'You left.', 'info');
  } else if (verdict === 'apply' && event.type === 'player_rejoined' && app.away?.id === event.player) {
    // Our own request brought us back (a phone back on the Wi-Fi): the server kept our score.
    app.away = null;
    rememberMe({ id: event.player, name: event.name });
    showResult(`Welcome back, ${event.name}: your score was kept.`, 'info');
  } else if (verdict === 'apply' && event.type === 'player_renamed' && app.me?.id === event.player) {
    rememberMe({ id: app.me.id, name: event.name });
    showResult(`The lecturer renamed you to ${event.name}.`, 'info');
  }
}

// ---- players ------------------------------------------------------------------------------

function rememberMe(me) {
  app.me = me;
  app.away = null;
  try {
    localStorage.setItem(ME_KEY, JSON.stringify(me));
  } catch {
    // Storage may be disabled; then a reload just shows the join form again.
  }
}

function forgetMe() {
  app.me = null;
  try {
    localStorage.removeItem(ME_KEY);
  } catch {
    // see rememberMe
  }
}

/**
 * After a reload: is the player we joined as still in the game? (Not compared: the epoch. A
 * server that restores its saved game starts a new epoch but keeps the sessions.) If we guess
 * wrong — a fresh server gave our id and name to someone else — our first click gets
 * `401 unauthorized` and we forget it then.
 */
function restoreMe() {
  let saved = null;
  try {
    saved = JSON.parse(localStorage.getItem(ME_KEY) ?? 'null');
  } catch {
    saved = null;
  }
  const player = client.state?.players.find((p) => p.id === saved?.id && p.name === saved?.name);
  if (player) app.me = { id: player.id, name: player.name };
  else forgetMe();
}

// Short words for the common refusals; the server's own detail for the rest (for a refused
// name it says which character or rule, for too_many_joins how long to wait).
const JOIN_ERRORS = {
  name_taken: 'Somebody already plays with that name, or one that looks the same.',
  game_full: 'The game is full; try again when somebody leaves.',
  joins_closed: 'The lecturer has closed joining for now; you can watch.',
};

async function join(name) {
  const error = $('join-error');
  error.textContent = '';
  let res;
  try {
    res = await fetch('/api/join', {
      method: 'POST',
      headers: { 'Content-Type': 'application/json' },
      credentials: 'same-origin',
      body: JSON.stringify({ name }),
    });
  } catch (err) {
    error.textContent = `Could not reach the server (${err.message}).`;
    return;
  }
  if (!res.ok) {
    const err = await errorFrom(res);
    error.textContent = JOIN_ERRORS[err.code] ?? err.detail;
    return;
  }
  const body = await res.json();
  // The server set our session cookie (HttpOnly: we never see it). The token in the body is for
  // non-browser clients; we do not keep it.
  const snapshot = body.snapshot;
  const stream = client.stream;
  if (validateEvent(snapshot) === 'ok' &&
      (snapshot.epoch !== stream.epoch || stream.lastSeq === null || snapshot.seq > stream.lastSeq)) {
    client.accept(snapshot);
  }
  const player = client.state?.players.find((p) => p.id === body.player_id);
  rememberMe({ id: body.player_id, name: player?.name ?? name.trim() });
  // Reconnect: SSE and WebSocket identify us when they open, and ours opened before we had a
  // cookie. The new connection carries it, so the server counts it as our transport.
  client.reopen();
  scheduleRender();
}

async function leave() {
  try {
    await fetch('/api/leave', { method: 'POST', credentials: 'same-origin' });
  } catch {
    // The server will drop us after its idle timeout anyway.
  }
  forgetMe();
  client.reopen();
}

// ---- clicks -------------------------------------------------------------------------------

let resultTimer = null;
function showResult(text, kind) {
  const el = $('result');
  el.textContent = text;
  el.dataset.kind = kind;
  clearTimeout(resultTimer);
  resultTimer = setTimeout(() => {
    el.textContent = '';
    delete el.dataset.kind;
  }, RESULT_MS);
}

function describeResult(r, via) {
  switch (r.result) {
    case 'hit':
      return `Hit! Round ${r.round} in ${r.reaction_ms} ms via ${via}.`;
    case 'miss':
      return `Miss. ${r.misses} ${r.misses === 1 ? 'miss' : 'misses'} so far.`;
    case 'late':
      return r.winner_name
        ? `Too late: ${r.winner_name} won round ${r.round}.`
        : `Too late for round ${r.round}.`;
    case 'expired':
      return `Too late: round ${r.round} expired — nobody hit it in time.`;
    default:
      return `Unexpected answer: ${String(r.result)}`;
  }
}

async function onBoardClick(event, board) {
  const round = client.state?.round;
  if (!app.me || !round) {
    showResult(app.me ? 'No target yet.' : 'Join first to play; for now you are watching.', 'info');
    return;
  }
  await play(board, round, board.pointFromEvent(event));
}

/**
 * Enter or Space on the board: a click at the live target's centre, as the game stands at the
 * moment of the key press — the same request a mouse click on the centre sends.
 */
async function onBoardKey(board) {
  const round = client.state?.round;
  if (!app.me) {
    showResult('Join first to play; for now you are watching.', 'info');
    return;
  }
  if (!isRoundOpen(round)) {
    showResult('No live target right now; Enter or Space hits it when one appears.', 'info');
    return;
  }
  await play(board, round, { x: round.x, y: round.y });
}

async function play(board, round, point) {
  const via = client.transportName;
  try {
    const result = await client.click({ round: round.number, x: point.x, y: point.y });
    board.markClick(point, String(result.result));
    showResult(describeResult(result, via), String(result.result));
  } catch (err) {
    if (err.code === 'unauthorized') {
      forgetMe();
      scheduleRender();
    }
    if (err.late) {
      // The WebSocket had no answer in time, but the click may be on its way (websocket.js).
      showResult(`Your click: ${err.detail}.`, 'info');
      err.late.then((result) => {
        board.markClick(point, String(result.result));
        showResult(`Your click arrived late — ${describeResult(result, via)}`, String(result.result));
      });
      return;
    }
    showResult(`Click not counted: ${err.detail || err.message} (${err.code ?? 'error'})`, 'error');
  }
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  const board = new Board($('board'));
  addPanel(statusPanel());
  addPanel(protocolPanel());
  addPanel(roundPanel());
  addPanel(boardPanel(board));
  addPanel(joinPanel());
  addPanel(scoreboardPanel());
  addPanel(summaryPanel());
  addPanel(figuresPanel());
  addPanel(wirePanel());
  addPanel(historyPanel());

  const select = $('transport');
  const requested = new URLSearchParams(window.location.search).get('transport');
  const initial = TRANSPORTS.includes(requested) ? requested : DEFAULT_TRANSPORT;
  select.value = initial;
  const statsPoller = new StatsPoller({
    onStats: (stats) => {
      app.stats = stats;
      scheduleRender();
    },
  });
  // Switch on commit: see the top of this file.
  let lastNavKey = -Infinity;
  let settle = null;
  const commit = () => {
    clearTimeout(settle);
    settle = null;
    if (select.value === client.transportName) return;
    client.use(select.value);
    // The new transport's server figures at once, and once more when it has done something.
    statsPoller.refresh();
    setTimeout(() => statsPoller.refresh(), 1000);
  };
  select.addEventListener('keydown', (e) => {
    if (e.key === 'Enter') commit();
    else if (NAV_KEYS.has(e.key) || (e.key.length === 1 && e.key !== ' ')) lastNavKey = performance.now();
  });
  select.addEventListener('change', () => {
    if (performance.now() - lastNavKey < 250) {
      clearTimeout(settle);
      settle = setTimeout(commit, SETTLE_MS);
    } else {
      commit();
    }
  });
  select.addEventListener('blur', () => {
    if (settle !== null) commit();
  });

  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    join($('name').value);
  });
  $('leave').addEventListener('click', () => leave());
  $('drop').addEventListener('click', () => client.drop());
  board.onTap((event) => onBoardClick(event, board));
  board.enableKeyboard(() => onBoardKey(board));
  app.protocols = watchProtocols(() => scheduleRender());
  window.addEventListener('pagehide', () => census.close());

  clock.onChange(() => scheduleRender());
  onLabChange(() => scheduleRender());
  clock.start();
  statsPoller.start();

  // Draw at once from a snapshot, then stream from its seq. If the snapshot cannot be had, the
  // transport starts without `since` and the server sends a snapshot first.
  client.connection = 'loading';
  client.transportName = initial;
  scheduleRender();
  try {
    const res = await fetch('/api/snapshot', { credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok) throw await errorFrom(res);
    client.accept(await res.json());
    restoreMe();
  } catch (err) {
    console.warn('clickgame: no initial snapshot', err);
  }
  client.use(initial);
}

start();
