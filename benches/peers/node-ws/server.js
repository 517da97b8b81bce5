#!/usr/bin/env node
// The peer of issue 15: the Node.js server a student would write instead of clickgame.
//
// One process, one event loop, the `ws` library for WebSockets and Node's own `http` for the
// rest, written the straightforward way: a numbered event log in an array, one Set of open
// WebSockets and one of open SSE responses, and every new event written to each of them in a
// plain loop. It speaks the part of docs/protocol.md that the load tool (src/bin/load/) uses:
//
//   POST /api/join      {"name"} → 201 {"player_id","token","snapshot"} (+ session cookie)
//   GET  /api/snapshot  → the snapshot object
//   GET  /api/sse       ?since&epoch (or Last-Event-ID): `retry:`, then id/event/data blocks
//   GET  /api/ws        sub-protocol clickgame.v1; `resume` and in-band `click` messages
//
// with the same event JSON, byte for byte (`{"seq","ts","type",...}` in clickgame's field
// order), the same resume rules (a snapshot when `since` is missing, from another epoch, ahead,
// or older than the 1024-event history; a stream more than 256 events behind gets a snapshot),
// and rounds that behave like clickgame's: round 1 starts at once, a hit wins it, the next one
// starts after 1.5 s + up to 0.5 s. What it leaves out, because the load tool never asks for
// it: AJAX and long polling, POST /api/click, leaving, idle players, tickets, lecturer
// controls, rate limits, Origin checks, security headers, TLS, static files.
//
// Like clickgame: permessage-deflate off, messages over 4 KiB refused (close 1009), a ping
// every 20 s (a socket that did not answer the previous one is dropped), an SSE comment every
// 15 s, and a slow reader is dropped once 1 MiB waits for it instead of buffering without
// bound. The road not taken: `cluster` or worker threads. A student's server is one process,
// and that is the comparison issue 15 asks for.
//
//   node server.js --port 0 [--host 127.0.0.1]
//
// prints `listening on http://HOST:PORT` (the line clickgame prints and the load tool reads).

'use strict';

const http = require('node:http');
const crypto = require('node:crypto');
const { WebSocketServer } = require('ws');

const BOARD = 1000;
const RADIUS = 40;
const HISTORY = 1024;
const MAX_BACKLOG = 256;
const ROUND_PAUSE_MS = 1500;
const ROUND_PAUSE_JITTER_MS = 500;
const POLL_INTERVAL_MS = 1000;
const SSE_RETRY_MS = 1000;
const SSE_HEARTBEAT_MS = 15_000;
const WS_PING_MS = 20_000;
const WS_MAX_MESSAGE = 4096;
const WS_MAX_STRIKES = 10;
const MAX_BODY = 1024;
const MAX_BUFFERED = 1 << 20;
const SUBPROTOCOL = 'clickgame.v1';
const TRANSPORTS = ['ajax', 'longpoll', 'sse', 'websocket'];

function option(name, fallback) {
  const i = process.argv.indexOf(`--${name}`);
  return i > 0 && i + 1 < process.argv.length ? process.argv[i + 1] : fallback;
}

// ---- the game and its numbered log --------------------------------------------------------

const epoch = crypto.randomBytes(8).toString('hex');
let seq = 0;
/** The last HISTORY events: { seq, json, frame (a Buffer of the JSON), sse }. */
const history = [];
let round = null; // { number, x, y, r, started_ts, winner }
const players = new Map(); // id → { id, name, score, misses, transport }
const tokens = new Map(); // token → player id
const winners = new Map(); // round number → { id, name }, for `late` answers
const tallies = Object.fromEntries(TRANSPORTS.map((t) => [t, { wins: 0, total_reaction_ms: 0 }]));
let nextPlayer = 1;

const sockets = new Set(); // every open WebSocket (for pings)
const wsStreams = new Set(); // WebSockets that have said where to resume: they get events
const sseStreams = new Set(); // open SSE responses

function randomCoordinate() {
  return RADIUS + crypto.randomInt(BOARD - 2 * RADIUS + 1);
}

/** Numbers, stamps and serialises an event once, keeps it, and writes it to every stream. */
function publish(type, fields) {
  seq += 1;
  const ts = Date.now();
  const json = JSON.stringify({ seq, ts, type, ...fields });
  const event = { seq, json, frame: Buffer.from(json), sse: `id: ${seq}\nevent: ${type}\ndata: ${json}\n\n` };
  history.push(event);
  if (history.length > HISTORY) history.shift();
  for (const ws of wsStreams) sendFrame(ws, event.frame);
  for (const res of sseStreams) writeSse(res, event.sse);
  return ts;
}

function startRound() {
  const number = round ? round.number + 1 : 1;
  const x = randomCoordinate();
  const y = randomCoordinate();
  const ts = publish('round_started', { round: number, x, y, r: RADIUS });
  round = { number, x, y, r: RADIUS, started_ts: ts, winner: null };
}

function snapshot() {
  return {
    seq,
    ts: Date.now(),
    type: 'snapshot',
    epoch,
    board: BOARD,
    poll_interval_ms: POLL_INTERVAL_MS,
    paused: false,
    round,
    players: [...players.values()],
    transports: tallies,
  };
}

function snapshotEvent() {
  const json = JSON.stringify(snapshot());
  return { seq, json, frame: Buffer.from(json), sse: `id: ${seq}\nevent: snapshot\ndata: ${json}\n\n` };
}

/** Everything after `since`, or a snapshot when that history is not (or no longer) here. */
function catchUp(since, clientEpoch) {
  const first = history.length ? history[0].seq : seq + 1;
  const fresh = since !== null && (clientEpoch === null || clientEpoch === epoch);
  if (!fresh || since > seq || since + 1 < first) return [snapshotEvent()];
  const events = history.slice(since + 1 - first);
  return events.length > MAX_BACKLOG ? [snapshotEvent()] : events;
}

function validName(raw) {
  const name = typeof raw === 'string' ? raw.trim() : '';
  const chars = [...name].length;
  if (chars === 0) return [null, 'the name is empty'];
  if (chars > 20) return [null, `the name has ${chars} characters; at most 20 are allowed`];
  if (!/^[\p{L}\p{N} _.-]+$/u.test(name)) return [null, 'use letters, digits, space and - _ .'];
  return [name, null];
}

function join(rawName) {
  const [name, problem] = validName(rawName);
  if (!name) return [400, { error: 'invalid_name', detail: problem }];
  const lower = name.toLowerCase();
  for (const p of players.values()) {
    if (p.name.toLowerCase() === lower) return [409, { error: 'name_taken', detail: `${name} is taken` }];
  }
  const id = nextPlayer++;
  const token = `${id}.${crypto.randomBytes(16).toString('hex')}`;
  tokens.set(token, id);
  players.set(id, { id, name, score: 0, misses: 0, transport: null });
  publish('player_joined', { player: id, name });
  return [201, { player_id: id, token, snapshot: snapshot() }];
}

/** A player's downstream connection opened: their transport is now this one. */
function contact(id, transport) {
  const player = players.get(id);
  if (player && player.transport !== transport) {
    player.transport = transport;
    publish('player_transport', { player: id, transport });
  }
}

/** Judges a click: [reply fields] or [null, error code, detail]. */
function click(id, c) {
  const player = players.get(id);
  if (!player) return [null, 'unauthorized', 'join first'];
  if (!(c.x >= 0 && c.x <= BOARD && c.y >= 0 && c.y <= BOARD)) {
    return [null, 'out_of_board', `(${c.x}, ${c.y}) is outside the ${BOARD} × ${BOARD} board`];
  }
  if (!round || c.round > round.number) return [null, 'round_not_started', `round ${c.round} has not started`];
  if (c.round < round.number || round.winner !== null) {
    const w = winners.get(c.round);
    return [{ result: 'late', round: c.round, winner: w ? w.id : null, winner_name: w ? w.name : null }];
  }
  const dx = c.x - round.x;
  const dy = c.y - round.y;
  if (dx * dx + dy * dy <= round.r * round.r) {
    const now = Date.now();
    const reaction_ms = Math.max(0, now - round.started_ts);
    const transport = player.transport || 'ajax';
    round.winner = id;
    player.score += 1;
    tallies[transport].wins += 1;
    tallies[transport].total_reaction_ms += reaction_ms;
    winners.set(round.number, { id, name: player.name });
    if (winners.size > 64) winners.delete(winners.keys().next().value);
    publish('round_won', { round: round.number, winner: id, name: player.name, reaction_ms, transport });
    setTimeout(startRound, ROUND_PAUSE_MS + crypto.randomInt(ROUND_PAUSE_JITTER_MS + 1));
    return [{ result: 'hit', round: round.number, reaction_ms }];
  }
  player.misses += 1;
  publish('click_missed', { player: id, round: round.number, misses: player.misses });
  return [{ result: 'miss', round: round.number, misses: player.misses }];
}

// ---- HTTP ---------------------------------------------------------------------------------

function sendJson(res, status, body, headers = {}) {
  const text = JSON.stringify(body);
  res.writeHead(status, { 'content-type': 'application/json', 'content-length': Buffer.byteLength(text), ...headers });
  res.end(text);
}

function bearer(req) {
  const auth = req.headers.authorization;
  return auth && auth.startsWith('Bearer ') ? auth.slice(7).trim() : null;
}

function cookieToken(req) {
  const m = /(?:^|;\s*)clickgame_session=([^;]+)/.exec(req.headers.cookie || '');
  return m ? m[1] : null;
}

/** [player id or null, error]: a presented Bearer token that is not valid is an error. */
function viewer(req) {
  const presented = bearer(req);
  if (presented !== null) {
    const id = tokens.get(presented);
    return id === undefined ? [null, 'unauthorized'] : [id, null];
  }
  const id = tokens.get(cookieToken(req));
  return [id === undefined ? null : id, null];
}

/** `?since=N&epoch=E`; `since` must be a whole number. */
function resumePoint(url) {
  const raw = url.searchParams.get('since');
  if (raw !== null && !/^\d+$/.test(raw)) return null;
  return { since: raw === null ? null : Number(raw), epoch: url.searchParams.get('epoch') };
}

function readBody(req, done) {
  const chunks = [];
  let size = 0;
  req.on('data', (chunk) => {
    size += chunk.length;
    if (size <= MAX_BODY) chunks.push(chunk);
  });
  req.on('end', () => done(size > MAX_BODY ? null : Buffer.concat(chunks).toString('utf8')));
}

function onJoin(req, res) {
  if (!(req.headers['content-type'] || '').startsWith('application/json')) {
    return sendJson(res, 415, { error: 'unsupported_media_type', detail: 'send application/json' });
  }
  readBody(req, (text) => {
    if (text === null) return sendJson(res, 413, { error: 'payload_too_large', detail: `at most ${MAX_BODY} bytes` });
    let body;
    try {
      body = JSON.parse(text);
    } catch (e) {
      return sendJson(res, 400, { error: 'bad_json', detail: e.message });
    }
    const [status, answer] = join(body && body.name);
    const headers =
      status === 201 ? { 'set-cookie': `clickgame_session=${answer.token}; HttpOnly; SameSite=Strict; Path=/` } : {};
    sendJson(res, status, answer, headers);
  });
}

function writeSse(res, text) {
  // A reader that stopped reading: drop it rather than buffer for it without bound.
  if (res.writableLength > MAX_BUFFERED) {
    sseStreams.delete(res);
    res.destroy();
    return;
  }
  res.write(text);
}

function onSse(req, res, url) {
  const point = resumePoint(url);
  if (!point) return sendJson(res, 400, { error: 'bad_query', detail: 'since must be a whole number' });
  const lastId = (req.headers['last-event-id'] || '').trim();
  if (lastId) {
    if (!/^\d+$/.test(lastId)) return sendJson(res, 400, { error: 'bad_last_event_id', detail: 'not a number' });
    point.since = Number(lastId);
  }
  const [player, refused] = viewer(req);
  if (refused) return sendJson(res, 401, { error: refused, detail: 'unknown session' });
  res.writeHead(200, { 'content-type': 'text/event-stream', 'cache-control': 'no-cache', 'x-accel-buffering': 'no' });
  res.write(`retry: ${SSE_RETRY_MS}\n\n`);
  if (player !== null) contact(player, 'sse');
  const batch = catchUp(point.since, point.epoch);
  if (batch.length) res.write(batch.map((e) => e.sse).join(''));
  sseStreams.add(res);
  res.on('close', () => sseStreams.delete(res));
}

const server = http.createServer((req, res) => {
  const url = new URL(req.url, 'http://peer');
  const route = `${req.method} ${url.pathname}`;
  if (route === 'POST /api/join') return onJoin(req, res);
  if (route === 'GET /api/snapshot') return sendJson(res, 200, snapshot());
  if (route === 'GET /api/sse') return onSse(req, res, url);
  sendJson(res, 404, { error: 'not_found', detail: `${route} is not served by this peer` });
});

setInterval(() => {
  for (const res of sseStreams) writeSse(res, ': keep-alive\n\n');
}, SSE_HEARTBEAT_MS).unref();

// ---- WebSocket ----------------------------------------------------------------------------

const wss = new WebSocketServer({
  noServer: true,
  clientTracking: false,
  perMessageDeflate: false,
  maxPayload: WS_MAX_MESSAGE,
  handleProtocols: (offered) => (offered.has(SUBPROTOCOL) ? SUBPROTOCOL : false),
});

function refuseUpgrade(socket, status, reason, error, detail) {
  const body = JSON.stringify({ error, detail });
  socket.end(
    `HTTP/1.1 ${status} ${reason}\r\ncontent-type: application/json\r\ncontent-length: ${Buffer.byteLength(body)}\r\n` +
      `connection: close\r\n\r\n${body}`,
  );
}

server.on('upgrade', (req, socket, head) => {
  const url = new URL(req.url, 'http://peer');
  if (url.pathname !== '/api/ws') return refuseUpgrade(socket, 404, 'Not Found', 'not_found', 'no WebSocket here');
  const point = resumePoint(url);
  if (!point) return refuseUpgrade(socket, 400, 'Bad Request', 'bad_query', 'since must be a whole number');
  const offered = (req.headers['sec-websocket-protocol'] || '').split(',').map((p) => p.trim());
  if (!offered.includes(SUBPROTOCOL)) {
    return refuseUpgrade(socket, 400, 'Bad Request', 'subprotocol_required', `offer ${SUBPROTOCOL}`);
  }
  const [player, refused] = viewer(req);
  if (refused) return refuseUpgrade(socket, 401, 'Unauthorized', refused, 'unknown session');
  socket.setNoDelay(true);
  wss.handleUpgrade(req, socket, head, (ws) => onWebSocket(ws, player, point));
});

function sendFrame(ws, frame) {
  if (ws.bufferedAmount > MAX_BUFFERED) {
    wsStreams.delete(ws);
    ws.terminate();
    return;
  }
  ws.send(frame, { binary: false });
}

function resume(ws, since, clientEpoch) {
  for (const event of catchUp(since, clientEpoch)) sendFrame(ws, event.frame);
  wsStreams.add(ws);
}

function onWebSocket(ws, player, point) {
  sockets.add(ws);
  ws.isAlive = true;
  ws.strikes = 0;
  if (player !== null) contact(player, 'websocket');
  if (point.since !== null || point.epoch !== null) resume(ws, point.since, point.epoch);
  ws.on('pong', () => {
    ws.isAlive = true;
  });
  ws.on('close', () => {
    sockets.delete(ws);
    wsStreams.delete(ws);
  });
  ws.on('error', () => ws.terminate());
  ws.on('message', (data, isBinary) => {
    ws.isAlive = true;
    if (isBinary) return ws.close(1003, 'binary messages are not part of clickgame.v1');
    let msg = null;
    try {
      msg = JSON.parse(data.toString('utf8'));
    } catch {
      // answered below as a bad message
    }
    const id = msg && Number.isInteger(msg.id) ? msg.id : null;
    if (msg && msg.type === 'resume') {
      const since = Number.isInteger(msg.since) && msg.since >= 0 ? msg.since : null;
      return resume(ws, since, typeof msg.epoch === 'string' ? msg.epoch : null);
    }
    if (msg && msg.type === 'click' && Number.isInteger(msg.round) && typeof msg.x === 'number' && typeof msg.y === 'number') {
      if (player === null) return reply(ws, { type: 'error', id, error: 'unauthorized', detail: 'clicks need a player session; join first' });
      const [outcome, error, detail] = click(player, msg);
      return reply(ws, outcome ? { type: 'click_result', id, ...outcome } : { type: 'error', id, error, detail });
    }
    ws.strikes += 1;
    if (ws.strikes >= WS_MAX_STRIKES) return ws.close(1008, 'too many bad messages');
    reply(ws, { type: 'error', id, error: 'bad_message', detail: 'expected a resume or click message' });
  });
}

function reply(ws, body) {
  ws.send(JSON.stringify(body));
}

setInterval(() => {
  for (const ws of sockets) {
    if (!ws.isAlive) {
      ws.terminate();
      continue;
    }
    ws.isAlive = false;
    ws.ping();
  }
}, WS_PING_MS).unref();

// ---- start --------------------------------------------------------------------------------

startRound();
server.listen(Number(option('port', '8090')), option('host', '127.0.0.1'), () => {
  const { address, port } = server.address();
  console.log(`listening on http://${address}:${port}`);
});
for (const signal of ['SIGINT', 'SIGTERM']) {
  process.on(signal, () => {
    for (const ws of sockets) ws.close(1001, 'server shutting down');
    for (const res of sseStreams) res.end();
    server.close();
    setTimeout(() => process.exit(0), 200).unref();
  });
}
