// # The page: wiring between the transports, the event fold and the panels
//
// Data flows one way:
//
//   transport ──onEvent──> validateEvent ──> Stream.accept ──> applyEvent ──> app.state ──> panels
//
// * One `app` object holds everything the page shows. Only `onEvent` (and join/leave) change it.
// * The transport is swappable at any time (`useTransport`): the old one is closed, the new one
//   starts from `stream.lastSeq` of the same epoch, so no event is lost, and any event delivered
//   twice is dropped by the Stream.
// * A *panel* is `{render(app)}`; after every change all panels re-render from `app`. To add one
//   (a comparison table, live figures), write a render function and `addPanel` it — nothing else
//   needs to know.
//
// Every string from the server (player names above all) is written with textContent, never as
// HTML.

import { AjaxPollingTransport } from './transports/ajax_polling.js';
import { LongPollingTransport } from './transports/long_polling.js';
import { SseTransport } from './transports/sse.js';
import { WebSocketTransport } from './transports/websocket.js';
import { errorFrom } from './transports/common.js';
import {
  DEFAULT_POLL_INTERVAL_MS,
  Stream,
  TRANSPORTS,
  applyEvent,
  meanReactionMs,
  stateFromSnapshot,
  validateEvent,
} from './protocol.js';
import { Board } from './game.js';

/** The four interchangeable transports, by the name the server uses. */
const TRANSPORT_CLASSES = {
  ajax: AjaxPollingTransport,
  longpoll: LongPollingTransport,
  sse: SseTransport,
  websocket: WebSocketTransport,
};
const TRANSPORT_LABELS = {
  ajax: 'AJAX polling',
  longpoll: 'Long polling',
  sse: 'Server-Sent Events',
  websocket: 'WebSocket',
};
const DEFAULT_TRANSPORT = 'websocket';
/** How long a click result stays on screen. */
const RESULT_MS = 3000;
/** Remembers who "you" are across reloads; the session itself is the HttpOnly cookie. */
const ME_KEY = 'clickgame.me';

const $ = (id) => document.getElementById(id);

/** Everything the page shows. */
const app = {
  /** The folded snapshot (see protocol.js), null until the first one. */
  state: null,
  stream: new Stream(),
  /** `{id, name}` once joined; null while spectating. */
  me: null,
  transportName: DEFAULT_TRANSPORT,
  transport: null,
  /** The current transport's state: connecting, connected, reconnecting, closed. */
  connection: 'idle',
  connectionDetail: '',
};

// ---- panels -------------------------------------------------------------------------------

const panels = [];

export function addPanel(panel) {
  panels.push(panel);
  scheduleRender();
}

let renderQueued = false;
/** Renders once after the current burst of events (a poll answer can carry many). */
function scheduleRender() {
  if (renderQueued) return;
  renderQueued = true;
  queueMicrotask(() => {
    renderQueued = false;
    for (const panel of panels) panel.render(app);
  });
}

function statusPanel() {
  const status = $('status');
  const detail = $('status-detail');
  const lastSeq = $('last-seq');
  const missed = $('missed');
  const duplicates = $('duplicates');
  return {
    render({ transportName, connection, connectionDetail, stream }) {
      status.textContent = `${transportName}: ${connection}`;
      status.dataset.state = connection;
      detail.textContent = connection === 'connected' ? '' : connectionDetail;
      lastSeq.textContent = stream.lastSeq === null ? '–' : String(stream.lastSeq);
      missed.textContent = String(stream.missed);
      missed.classList.toggle('bad', stream.missed > 0);
      duplicates.textContent = String(stream.duplicates);
    },
  };
}

function boardPanel(board) {
  return { render: ({ state }) => board.render(state) };
}

function joinPanel() {
  const form = $('join-form');
  const playing = $('playing');
  const youName = $('you-name');
  const hint = $('hint');
  return {
    render({ me }) {
      form.hidden = me !== null;
      playing.hidden = me === null;
      youName.textContent = me ? me.name : '';
      hint.textContent = me
        ? 'Click the red target before anybody else.'
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
    render({ state, me }) {
      const players = [...(state?.players ?? [])].sort((a, b) => b.score - a.score || a.id - b.id);
      const rows = players.map((p) => {
        const tr = document.createElement('tr');
        tr.dataset.player = String(p.id);
        const name = cell(p.name, 'name');
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
    render({ state }) {
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
          li.append(label, wins, ms);
          return li;
        }),
      );
    },
  };
}

// ---- events -------------------------------------------------------------------------------

/** Every event from every transport (and the initial snapshot) comes through here. */
function onEvent(event) {
  const kind = validateEvent(event);
  if (kind === 'invalid') {
    console.warn('clickgame: dropped a malformed event', event);
    return;
  }
  if (kind === 'unknown') console.info('clickgame: ignoring unknown event type', event.type);
  const verdict = app.stream.accept(event, kind);
  if (verdict === 'reset') {
    app.state = stateFromSnapshot(event);
    // A snapshot is the whole truth: if "you" are not in it any more, you are a spectator.
    if (app.me && !app.state.players.some((p) => p.id === app.me.id)) forgetMe();
  } else if (verdict === 'apply' && app.state) {
    app.state = applyEvent(app.state, event);
    if (event.type === 'player_left' && app.me?.id === event.player) {
      forgetMe();
      showResult(
        event.reason === 'idle' ? 'You were removed after 60 s without contact.' : 'You left.',
        'info',
      );
    }
  }
  scheduleRender();
}

// ---- transports ---------------------------------------------------------------------------

/**
 * Closes the current transport and opens `name` from where we are. The new one resumes with
 * `since = lastSeq` of the same epoch, so the server sends exactly the events we have not seen.
 */
function useTransport(name) {
  app.transport?.close();
  const Transport = TRANSPORT_CLASSES[name];
  // Callbacks check they still belong to the current transport: a late answer of a closed one
  // must not change the page (the Stream would drop it as a duplicate anyway).
  const transport = new Transport({
    onEvent: (event) => {
      if (app.transport === transport) onEvent(event);
    },
    onStatus: (state, detail = '') => {
      if (app.transport !== transport) return;
      app.connection = state;
      app.connectionDetail = detail;
      scheduleRender();
    },
    pollIntervalMs: () => app.state?.poll_interval_ms ?? DEFAULT_POLL_INTERVAL_MS,
  });
  app.transport = transport;
  app.transportName = name;
  transport.connect(app.stream.lastSeq, app.stream.epoch);
  scheduleRender();
}

// ---- players ------------------------------------------------------------------------------

function rememberMe(me) {
  app.me = me;
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
  const player = app.state?.players.find((p) => p.id === saved?.id && p.name === saved?.name);
  if (player) app.me = { id: player.id, name: player.name };
  else forgetMe();
}

const JOIN_ERRORS = {
  invalid_name: 'Use 1–20 letters, digits, spaces or - _ .',
  name_taken: 'Somebody already plays with that name.',
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
  if (validateEvent(snapshot) === 'ok' &&
      (snapshot.epoch !== app.stream.epoch || app.stream.lastSeq === null || snapshot.seq > app.stream.lastSeq)) {
    onEvent(snapshot);
  }
  const player = app.state?.players.find((p) => p.id === body.player_id);
  rememberMe({ id: body.player_id, name: player?.name ?? name.trim() });
  // Reconnect: SSE and WebSocket identify us when they open, and ours opened before we had a
  // cookie. The new connection carries it, so the server counts it as our transport.
  useTransport(app.transportName);
}

async function leave() {
  try {
    await fetch('/api/leave', { method: 'POST', credentials: 'same-origin' });
  } catch {
    // The server will drop us after its idle timeout anyway.
  }
  forgetMe();
  useTransport(app.transportName);
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
    default:
      return `Unexpected answer: ${String(r.result)}`;
  }
}

async function onBoardClick(event, board) {
  if (!app.me) {
    showResult('Join first to play; for now you are watching.', 'info');
    return;
  }
  const round = app.state?.round;
  if (!round) {
    showResult('No target yet.', 'info');
    return;
  }
  const point = board.pointFromEvent(event);
  const via = app.transportName;
  try {
    const result = await app.transport.send({ round: round.number, x: point.x, y: point.y });
    board.markClick(point, String(result.result));
    showResult(describeResult(result, via), String(result.result));
  } catch (err) {
    if (err.code === 'unauthorized') {
      forgetMe();
      scheduleRender();
    }
    showResult(`Click not counted: ${err.detail || err.message} (${err.code ?? 'error'})`, 'error');
  }
}

// ---- start --------------------------------------------------------------------------------

async function start() {
  const board = new Board($('board'));
  addPanel(statusPanel());
  addPanel(boardPanel(board));
  addPanel(joinPanel());
  addPanel(scoreboardPanel());
  addPanel(summaryPanel());

  const select = $('transport');
  const requested = new URLSearchParams(window.location.search).get('transport');
  const initial = TRANSPORTS.includes(requested) ? requested : DEFAULT_TRANSPORT;
  select.value = initial;
  app.transportName = initial;
  select.addEventListener('change', () => useTransport(select.value));

  $('join-form').addEventListener('submit', (event) => {
    event.preventDefault();
    join($('name').value);
  });
  $('leave').addEventListener('click', () => leave());
  $('board').addEventListener('click', (event) => onBoardClick(event, board));

  // Draw at once from a snapshot, then stream from its seq. If the snapshot cannot be had, the
  // transport starts without `since` and the server sends a snapshot first.
  app.connection = 'loading';
  scheduleRender();
  try {
    const res = await fetch('/api/snapshot', { credentials: 'same-origin', cache: 'no-store' });
    if (!res.ok) throw await errorFrom(res);
    onEvent(await res.json());
    restoreMe();
  } catch (err) {
    console.warn('clickgame: no initial snapshot', err);
  }
  useTransport(app.transportName);
}

start();
