// # Unit tests of issue 11's pure modules, in Node (no browser, no server)
//
// * web/js/definitions.js: every figure defined once, and docs/transports.md's table says the
//   same words (so neither can drift);
// * web/js/metrics.js: windows that forget, since-open figures whose mean and p95 come from the
//   same samples;
// * web/js/figures.js: "≈ 0" within the clock's uncertainty, never negative; a mean above its
//   p95 never shown without its note;
// * web/js/race.js: a race counts exactly its rounds, each once, expired ones as nobody's;
// * web/js/netinfo.js: protocol labels from Resource Timing entries, the connection-limit
//   warning, the cross-tab census;
// * web/js/protocol.js: round_expired folds like the server folds it;
// * bytes on the wire (phase 2): response heads counted as Resource Timing counts them
//   (transports/common.js), WebSocket frame headers, long polling's cost per event against SSE's,
//   the server's partly estimated figures (figures.js);
// * the transports' small truths: AJAX "Drop connection" between polls says nothing is open; a
//   WebSocket click made while the socket reconnects waits and goes out on reopen.

import assert from 'node:assert/strict';
import { readFile } from 'node:fs/promises';
import { describe, test } from 'node:test';

import { COLUMNS, FIGURE_DEFS, WINDOW_MS, WINDOW_S, docRow, isEstimate, tooltip } from '../web/js/definitions.js';
import { Meter, Samples, WindowCounts, WindowSamples, percentile } from '../web/js/metrics.js';
import { FIGURE_ROWS, formatLag, meanAndP95, serverBytes } from '../web/js/figures.js';
import { HEAD_STANDIN_BYTES, responseWireBytes, wsFrameHeaderBytes } from '../web/js/transports/common.js';
import { AjaxPollingTransport } from '../web/js/transports/ajax_polling.js';
import { QUEUE_MAX, WebSocketTransport } from '../web/js/transports/websocket.js';
import { RaceTally } from '../web/js/race.js';
import {
  ConnectionCensus,
  HTTP1_CONNECTIONS_PER_ORIGIN,
  ProtocolBook,
  connectionWarning,
  heldBy,
  protocolName,
  schemes,
} from '../web/js/netinfo.js';
import { DRAWERS, ON_SCREEN, drawerTestids } from '../web/js/layout.js';
import { Stream, applyEvent, isRoundOpen, stateFromSnapshot, validateEvent } from '../web/js/protocol.js';

const DOC = new URL('../docs/transports.md', import.meta.url);

describe('definitions.js: every figure is defined once, and the doc says the same', () => {
  test('each definition is complete, and its tooltip carries its whole text', () => {
    for (const [id, d] of Object.entries(FIGURE_DEFS)) {
      for (const field of ['label', 'short', 'unit', 'measures', 'excludes', 'side']) {
        assert.ok(typeof d[field] === 'string' && d[field].length > 0, `${id}.${field}`);
      }
      const tip = tooltip(id);
      assert.ok(tip.includes(d.measures), `${id}: tooltip has the definition`);
      assert.ok(tip.includes(d.excludes), `${id}: tooltip says what is left out`);
      assert.equal(isEstimate(id), d.estimate !== null, id);
      if (d.estimate) assert.ok(tip.includes(`Estimate: ${d.estimate}`), `${id}: tooltip says it is an estimate`);
    }
    assert.throws(() => tooltip('nope'), /no definition/);
  });

  test('docs/transports.md "What each figure measures" has exactly one row per definition, word for word', async () => {
    const doc = await readFile(DOC, 'utf8');
    const start = doc.indexOf('## What each figure measures');
    assert.ok(start >= 0, 'the section exists');
    const end = doc.indexOf('\n## ', start + 1);
    const section = doc.slice(start, end);
    const rows = section.split('\n').filter((line) => line.startsWith('| **'));
    const expected = Object.keys(FIGURE_DEFS).map(docRow);
    assert.deepEqual(rows, expected, 'regenerate the rows with docRow() after changing a definition');
  });

  test('the figures the pages show all have a definition; the window is the stated 10 s', () => {
    for (const row of FIGURE_ROWS) assert.ok(FIGURE_DEFS[row], row);
    assert.equal(WINDOW_S, 10);
    assert.equal(WINDOW_MS, 10_000);
    assert.match(COLUMNS.window.label, /10 s/);
  });

  test('bytes figures count response heads, as an estimate of 300 B each, and say why', () => {
    assert.ok(isEstimate('bytes') && isEstimate('bytesPerEvent'));
    assert.match(FIGURE_DEFS.bytes.unit, /heads included/);
    assert.match(FIGURE_DEFS.bytes.measures, /transferSize/);
    assert.match(FIGURE_DEFS.bytes.excludes, /answers to click and ticket POSTs/, "like the server, event deliveries only");
    assert.match(FIGURE_DEFS.bytes.measures, /one response head per stream/);
    assert.match(FIGURE_DEFS.bytes.measures, /header \(2 B up to 125 B, 4 B up to 64 KiB\)/);
    assert.doesNotMatch(FIGURE_DEFS.bytes.excludes, /HTTP headers/, 'heads are no longer left out');
    assert.ok(FIGURE_DEFS.bytes.estimate.includes(`${HEAD_STANDIN_BYTES} B`), 'the estimate names the stand-in');
    assert.match(FIGURE_DEFS.bytesPerEvent.measures, /a response head for every answer/);
    assert.match(FIGURE_DEFS.server.measures, /response heads, chunked framing, WebSocket frame headers/);
    assert.match(FIGURE_DEFS.server.excludes, /HTTP\/2/);
    assert.ok(isEstimate('lag'), 'lag depends on the clock estimate');
    assert.ok(!isEstimate('requests'));
  });

  test('reaction times count from the delivery to the winner\'s own transport, by the server\'s clock', () => {
    for (const id of ['reaction', 'raceReaction']) {
      assert.equal(FIGURE_DEFS[id].side, id === 'reaction' ? 'server' : 'race');
      assert.match(FIGURE_DEFS[id].measures, /handed/);
      assert.match(FIGURE_DEFS[id].measures, /own transport/);
      assert.doesNotMatch(FIGURE_DEFS[id].measures, /until the server records deliveries/);
      assert.ok(!isEstimate(id), `${id}: measured by the server, not estimated`);
    }
    assert.match(FIGURE_DEFS.reaction.measures, /reaction_from/);
    assert.match(FIGURE_DEFS.reaction.measures, /from the round's start/, 'the fallback is stated');
  });
});

describe('metrics.js: windows that forget, and since-open figures from one set of samples', () => {
  test('Samples: the mean is exact and the percentile comes from a uniform sample of all values', () => {
    let seed = 1;
    const random = () => {
      seed = (seed * 48271) % 2147483647;
      return seed / 2147483647;
    };
    const s = new Samples(100, random);
    for (let i = 1; i <= 10_000; i += 1) s.add(i);
    assert.equal(s.count, 10_000);
    assert.equal(s.mean, 5000.5);
    assert.equal(s.values.length, 100, 'bounded memory');
    const p95 = s.percentile(95);
    assert.ok(p95 > 8500 && p95 <= 10_000, `p95 of 1…10000 from a uniform sample: ${p95}`);
    // The old Samples kept the *last* values only: its p95 would be ≥ 9900 here, and after a
    // slow start (large values first) its mean could exceed its p95 for no visible reason.
  });

  test('a slow start followed by fast events: the mean is not above the p95, as it was when they came from different samples', () => {
    const s = new Samples(4096);
    for (let i = 0; i < 3000; i += 1) s.add(500);
    for (let i = 0; i < 2000; i += 1) s.add(2);
    // The old figures: a lifetime mean (≈ 301) next to the p95 of the last 2000 values (2).
    assert.ok(s.mean <= s.percentile(95), `mean ${s.mean} p95 ${s.percentile(95)}`);
    // A mean above the p95 is still possible over one set of samples (a few very late events):
    const skewed = new Samples();
    for (let i = 0; i < 96; i += 1) skewed.add(2);
    for (let i = 0; i < 4; i += 1) skewed.add(1000);
    assert.ok(skewed.mean > skewed.percentile(95), 'then the page marks it (figures.js meanAndP95)');
  });

  test('WindowSamples forgets values older than the window', () => {
    let now = 0;
    const w = new WindowSamples(10_000, () => now);
    w.add(500, 0);
    w.add(500, 1000);
    now = 5000;
    w.add(100, 5000);
    assert.deepEqual(w.stats(), { count: 3, mean: 1100 / 3, p95: 500, last: 100 });
    now = 10_500;
    assert.equal(w.stats().count, 2, 'the value at t=0 left the window');
    now = 16_000;
    assert.deepEqual(w.stats(), { count: 0, mean: null, p95: null, last: null });
  });

  test('WindowCounts sums what happened in the window only', () => {
    let now = 0;
    const c = new WindowCounts(10_000, () => now);
    c.add({ events: 1, bytes: 100 }, 0);
    c.add({ requests: 2, downstreamRequests: 2, bytes: 50 }, 4000);
    now = 12_000;
    assert.deepEqual(c.sums(), { events: 0, requests: 2, downstreamRequests: 2, downstreamPolls: 0, wasted: 0, bytes: 50, reconnects: 0 });
  });

  test('percentile is nearest-rank', () => {
    assert.equal(percentile([], 95), null);
    assert.equal(percentile([3, 1, 2], 50), 2);
    assert.equal(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 95), 19);
  });

  test('a Meter shows a change of interval in its 10 s window long before its since-open mean', () => {
    const meter = new Meter('ajax');
    const realNow = performance.now;
    let fake = realNow.call(performance);
    performance.now = () => fake;
    try {
      // 60 s at a 1 s interval: lags around 500 ms…
      for (let i = 0; i < 60; i += 1) {
        fake += 1000;
        meter.eventSeen({ seq: i + 1, ts: 0 }, 'apply', 500 + (i % 3));
      }
      // …then, after the switch, 10 s at 200 ms: lags around 100 ms.
      fake += 500;
      for (let i = 0; i < 50; i += 1) {
        fake += 200;
        meter.eventSeen({ seq: 100 + i, ts: 0 }, 'apply', 100);
      }
      const s = meter.summary();
      assert.ok(s.lagMean > 300, `since open still remembers the old interval: ${s.lagMean}`);
      assert.ok(Math.abs(s.window.lagMean - 100) < 1, `the window shows the new one: ${s.window.lagMean}`);
      assert.equal(s.window.events, 50);
      assert.ok(s.window.lagMean <= s.window.lagP95);
    } finally {
      performance.now = realNow;
    }
  });
});

describe('figures.js: lags within the clock offset\'s uncertainty, and means above p95', () => {
  test('a lag within the uncertainty, or below zero, is "≈ 0", never negative', () => {
    assert.equal(formatLag(-2, 1.2), '≈ 0');
    assert.equal(formatLag(-40, 1.2), '≈ 0');
    assert.equal(formatLag(1.1, 1.2), '≈ 0');
    assert.equal(formatLag(3.4, 1.2), '3');
    assert.equal(formatLag(0.4, 0), '≈ 0', 'half a millisecond at least: ts are whole ms');
    assert.equal(formatLag(null, 1), '–');
    for (const v of [-100, -1, 0, 0.2]) assert.doesNotMatch(formatLag(v, 0.3), /-|−/);
  });

  test('a mean above the p95 is marked and explained, never silent', () => {
    const plain = meanAndP95({ mean: 5, p95: 9 }, String);
    assert.deepEqual(plain, { text: '5 / 9', note: null });
    const skewed = meanAndP95({ mean: 32, p95: 10 }, String);
    assert.equal(skewed.text, '32 / 10 *');
    assert.match(skewed.note, /95th percentile/);
    assert.deepEqual(meanAndP95({ mean: null, p95: null }, String), { text: '–', note: null });
  });
});

describe('bytes on the wire: heads counted, long polling against SSE and WebSocket', () => {
  test('a fetch weighs its Resource Timing transferSize, each entry counted once; without one, body + 300 B', () => {
    assert.equal(HEAD_STANDIN_BYTES, 300);
    assert.equal(responseWireBytes('/api/poll', 26), 326, 'no Resource Timing here (Node): the standard\'s rule by hand');
    const saved = { location: globalThis.location, get: performance.getEntriesByName };
    const entries = [
      { name: 'http://t/api/click', startTime: 5, transferSize: 350 },
      { name: 'http://t/api/click', startTime: 10, transferSize: 361 },
      { name: 'http://t/api/click', startTime: 12, transferSize: 362 },
    ];
    globalThis.location = { href: 'http://t/compare.html' };
    performance.getEntriesByName = (name) => entries.filter((e) => e.name === name);
    try {
      // Two clicks in flight at once, both started at t = 9: each gets an entry of its own, the
      // older request before t = 9 is never taken.
      assert.equal(responseWireBytes('/api/click', 62, 9), 362);
      assert.equal(responseWireBytes('/api/click', 61, 9), 361);
      assert.equal(responseWireBytes('/api/click', 60, 9), 360, 'no entry left: body + 300');
    } finally {
      globalThis.location = saved.location;
      performance.getEntriesByName = saved.get;
    }
  });

  test('a WebSocket frame header is 2 B up to 125 B of payload, 4 B up to 64 KiB, 10 B beyond; + 4 B of mask from the client', () => {
    assert.deepEqual([0, 125, 126, 65535, 65536].map((n) => wsFrameHeaderBytes(n)), [2, 2, 4, 4, 10]);
    assert.equal(wsFrameHeaderBytes(60, { masked: true }), 6);
  });

  test('the same ten events cost long polling a head each, SSE and WebSocket one head in all', () => {
    const event = '{"seq":42,"ts":1764386400904,"type":"round_won","round":4,"winner":2,"name":"Ada","reaction_ms":181,"transport":"sse","reaction_from":"delivery"}';
    const body = `{"events":[${event}],"last_seq":42}`;
    const seen = (m) => m.eventSeen({ seq: 1, ts: 0, type: 'round_won' }, 'apply', 0);
    const long = new Meter('longpoll');
    const sse = new Meter('sse');
    const ws = new Meter('websocket');
    sse.socketOpened({ label: 'open', bytes: HEAD_STANDIN_BYTES });
    ws.socketOpened({ label: 'open', bytes: HEAD_STANDIN_BYTES });
    const block = `id: 42\nevent: round_won\ndata: ${event}\n\n`;
    for (let i = 0; i < 10; i += 1) {
      long.requestDone({ method: 'GET', path: '/api/longpoll', status: 200, bytes: body.length + HEAD_STANDIN_BYTES, body: body.length, events: 1, downstream: true, ms: 1 });
      sse.frame({ dir: 'in', text: block, bytes: block.length });
      ws.frame({ dir: 'in', text: event, bytes: event.length + wsFrameHeaderBytes(event.length) });
      for (const m of [long, sse, ws]) seen(m);
    }
    const per = (m) => m.summary().bytesPerEvent;
    assert.equal(per(long), body.length + 300);
    assert.equal(per(sse), block.length + 30);
    assert.equal(per(ws), event.length + 4 + 30);
    assert.ok(per(long) > per(sse) && per(sse) > per(ws), `${per(long)} > ${per(sse)} > ${per(ws)}`);
    assert.equal(long.windowSummary().bytesPerEvent, per(long), 'the window counts the same bytes');
    assert.match(long.wire.at(-1).text, /→ 200, 1 event, \d+ B \+ 300 B head, 1 ms$/);
    assert.equal(ws.wire.at(-1).size, event.length + 4, 'a frame carries its size on the wire');
  });

  test('the Server column says ≈ when part of its bytes went over HTTP/2, and explains why', () => {
    const exact = serverBytes({ bytes_written: 5000, bytes_estimated: 0, events_delivered: 10 });
    assert.deepEqual(exact, { bytes: '4.9 KiB', bytesPerEvent: '500' });
    const mixed = serverBytes({ bytes_written: 5000, bytes_estimated: 1200, events_delivered: 10 });
    assert.equal(mixed.bytesPerEvent.text, '≈ 500');
    assert.equal(mixed.bytesPerEvent.kind, 'estimated');
    assert.match(mixed.bytesPerEvent.note, /HTTP\/2/);
    assert.deepEqual(serverBytes(null), { bytes: '–', bytesPerEvent: '–' });
  });
});

/** A probe that keeps the notes transports write to the wire inspector. */
function notesProbe() {
  const notes = [];
  return {
    notes,
    requestStarted() {},
    requestDone() {},
    streamRequest() {},
    socketOpened() {},
    socketClosed() {},
    frame() {},
    reconnecting() {},
    resumed() {},
    note(text) {
      notes.push(text);
    },
  };
}

const until = async (what, ok) => {
  for (let i = 0; i < 400; i += 1) {
    if (ok()) return;
    await new Promise((r) => setTimeout(r, 5));
  }
  throw new Error(`never: ${what}`);
};

describe('the transports\' small truths', () => {
  test('AJAX "Drop connection" cuts a poll in flight, and between polls says nothing is open', async () => {
    const saved = globalThis.fetch;
    let answer = null;
    let calls = 0;
    globalThis.fetch = (_path, { signal }) => {
      calls += 1;
      return new Promise((resolve, reject) => {
        answer = () => resolve(new Response('{"events":[],"last_seq":7}', { status: 200 }));
        signal.addEventListener('abort', () => reject(Object.assign(new Error('aborted'), { name: 'AbortError' })));
      });
    };
    const probe = notesProbe();
    const ajax = new AjaxPollingTransport({ onEvent: () => {}, probe, pollIntervalMs: () => 60_000 });
    try {
      ajax.connect(7, 'e');
      await until('the first poll', () => calls === 1);
      ajax.drop();
      assert.match(probe.notes.at(-1), /cutting the poll in flight/);
      // The cut poll is a failure: the reconnect polls again after its backoff (≤ 0.5 s).
      await until('the poll after the backoff', () => calls === 2);
      answer();
      await until('the answer handled', () => ajax.request === null && probe.notes.length === 1);
      ajax.drop();
      assert.match(probe.notes.at(-1), /nothing open/);
      assert.equal(calls, 2, 'and nothing else happened: no new poll before the interval');
    } finally {
      ajax.close();
      globalThis.fetch = saved;
    }
  });

  /** A stand-in for the browser's WebSocket: records what is sent, opens and receives on cue. */
  function fakeSockets() {
    const sockets = [];
    class FakeSocket {
      static CONNECTING = 0;
      static OPEN = 1;
      constructor(url, protocol) {
        this.url = String(url);
        this.protocol = protocol;
        this.readyState = FakeSocket.CONNECTING;
        this.sent = [];
        sockets.push(this);
      }
      send(text) {
        this.sent.push(JSON.parse(text));
      }
      close() {}
      open() {
        this.readyState = FakeSocket.OPEN;
        this.onopen();
      }
      receive(data) {
        this.onmessage({ data: JSON.stringify(data) });
      }
    }
    const saved = { WebSocket: globalThis.WebSocket, window: globalThis.window };
    globalThis.WebSocket = FakeSocket;
    globalThis.window = { location: { href: 'http://t/' } };
    return {
      sockets,
      restore() {
        globalThis.WebSocket = saved.WebSocket;
        globalThis.window = saved.window;
      },
    };
  }

  test('a WebSocket click made while the socket reconnects waits, and goes out after resume when it reopens', async () => {
    const { sockets, restore } = fakeSockets();
    const probe = notesProbe();
    const ws = new WebSocketTransport({ onEvent: () => {}, probe });
    try {
      ws.connect(41, 'e');
      await until('the socket is made', () => sockets.length === 1);
      const clicks = [ws.send({ round: 5, x: 1, y: 2 }), ws.send({ round: 5, x: 3, y: 4 })];
      assert.match(probe.notes.at(-1), /queued: the socket is reconnecting/);
      const socket = sockets[0];
      socket.open();
      assert.deepEqual(socket.sent.map((m) => m.type), ['resume', 'click', 'click'], 'resume first, then the clicks in order');
      assert.deepEqual(socket.sent.slice(1).map((m) => [m.round, m.x]), [[5, 1], [5, 3]], 'each with its own round');
      socket.receive({ type: 'click_result', id: socket.sent[1].id, result: 'hit', round: 5, reaction_ms: 180 });
      socket.receive({ type: 'click_result', id: socket.sent[2].id, result: 'late', round: 5, winner: 1, winner_name: 'Ada' });
      assert.deepEqual((await clicks[0]).result, 'hit');
      assert.deepEqual((await clicks[1]).result, 'late', 'a click that arrives after the round ended is judged late');

      // At most QUEUE_MAX wait; closing the transport refuses those still waiting.
      socket.readyState = 3;
      const waiting = Array.from({ length: QUEUE_MAX }, () => ws.send({ round: 6, x: 1, y: 1 }));
      await assert.rejects(ws.send({ round: 6, x: 1, y: 1 }), (err) => err.code === 'not_connected');
      ws.close();
      for (const click of waiting) await assert.rejects(click, (err) => err.code === 'closed');
      await assert.rejects(ws.send({ round: 6, x: 1, y: 1 }), (err) => err.code === 'not_connected', 'closed for good: refused');
    } finally {
      ws.close();
      restore();
    }
  });

  test('a WebSocket click with no answer in time is not called "not counted": a late answer still reaches the page', async () => {
    // A phone off the Wi-Fi for a few seconds: the click frame waits in the socket's buffer and
    // reaches the server when the network is back — it may well be a hit. The page must not
    // have told the student it was not counted.
    const { sockets, restore } = fakeSockets();
    const probe = notesProbe();
    const ws = new WebSocketTransport({ onEvent: () => {}, probe, clickTimeoutMs: 20 });
    try {
      ws.connect(41, 'e');
      await until('the socket is made', () => sockets.length === 1);
      const socket = sockets[0];
      socket.open();
      const click = ws.send({ round: 9, x: 5, y: 6 });
      let err = null;
      await click.catch((e) => { err = e; });
      assert.equal(err?.code, 'no_reply', 'the timeout is its own code');
      assert.doesNotMatch(err.detail, /not counted/);
      assert.match(err.detail, /may still/, 'it says the click may still count');
      assert.ok(err.late instanceof Promise, 'with a promise of the late answer');
      const id = socket.sent.find((m) => m.type === 'click').id;
      socket.receive({ type: 'click_result', id, result: 'hit', round: 9, reaction_ms: 5812 });
      assert.deepEqual(await err.late, { result: 'hit', round: 9, reaction_ms: 5812 });
      assert.match(probe.notes.at(-1), /late answer to click/);

      // A timed-out click whose socket closes has no late answer: its promise just never settles
      // and nothing is kept (the map is bounded and cleared with the socket).
      ws.send({ round: 10, x: 1, y: 1 }).catch(() => {});
      await until('the second click timed out', () => ws.late.size === 1);
      socket.onclose({ code: 1006, reason: '' });
      assert.equal(ws.late.size, 0, 'late answers are forgotten with their socket');
    } finally {
      ws.close();
      restore();
    }
  });
});

describe('race.js: a race counts exactly its rounds, each once', () => {
  const T = ['ajax', 'longpoll', 'sse', 'websocket'];
  const bots = { 11: 'ajax', 12: 'longpoll', 13: 'sse', 14: 'websocket' };
  const botOf = (id) => bots[id] ?? null;
  const won = (round, winner, reaction) => ({ type: 'round_won', round, winner, name: `p${winner}`, reaction_ms: reaction, transport: 'sse' });

  test('the round on the board at the start is nobody\'s race; N rounds after it are counted once each', () => {
    const race = new RaceTally({ transports: T, rounds: 3, startAfter: 7 });
    assert.equal(race.record(won(7, 11, 30), botOf), null, 'the live round at the start');
    assert.ok(race.record(won(8, 13, 160), botOf));
    assert.equal(race.record(won(8, 13, 160), botOf), null, 'the same end seen by another pane');
    assert.ok(race.record({ type: 'round_expired', round: 9 }, botOf));
    assert.ok(race.record(won(10, 14, 150), botOf));
    assert.ok(race.done);
    assert.equal(race.record(won(11, 11, 100), botOf), null, 'after the last round');
    assert.equal(race.total(), 3);
    assert.deepEqual(race.wins, { ajax: 0, longpoll: 0, sse: 1, websocket: 1 });
    assert.equal(race.nobody, 1);
    assert.equal(race.meanReaction('sse'), 160);
    assert.equal(race.meanReaction('ajax'), null);
    assert.deepEqual(race.span(), { first: 8, last: 10 });
  });

  test('a human winner counts as others; an unlimited race never finishes', () => {
    const race = new RaceTally({ transports: T, rounds: 0, startAfter: 0 });
    race.record(won(1, 99, 400), botOf);
    race.record(won(2, 12, 200), botOf);
    race.record(won(3, 12, 300), botOf);
    assert.equal(race.others, 1);
    assert.equal(race.meanReaction('longpoll'), 250);
    assert.equal(race.done, false);
    assert.equal(race.record({ type: 'scores_reset' }, botOf), null);
  });
});

describe('netinfo.js: which protocol, and how many connections this browser holds', () => {
  const origin = 'http://127.0.0.1:8080';
  const entry = (path, nextHopProtocol, entryType = 'resource') => ({ name: `${origin}${path}`, nextHopProtocol, entryType });

  test('protocol names from nextHopProtocol', () => {
    assert.equal(protocolName('http/1.1'), 'HTTP/1.1');
    assert.equal(protocolName('h2'), 'HTTP/2');
    assert.equal(protocolName('h3'), 'HTTP/3');
    assert.equal(protocolName(''), null);
    assert.deepEqual(schemes({ protocol: 'https:' }), { http: 'https:', ws: 'wss:' });
    assert.deepEqual(schemes({ protocol: 'http:' }), { http: 'http:', ws: 'ws:' });
  });

  test('the page\'s protocol comes from its own API requests; a pane\'s from its endpoint when it has one', () => {
    const book = new ProtocolBook(origin);
    assert.equal(book.page(), null);
    book.add([entry('/', 'http/1.1', 'navigation')]);
    assert.equal(book.page(), 'HTTP/1.1', 'the document until an API request ends');
    assert.equal(book.add([entry('/api/poll?since=3', 'h2'), { name: 'https://elsewhere.example/api/x', nextHopProtocol: 'h3', entryType: 'resource' }]), true);
    assert.equal(book.page(), 'HTTP/2');
    const where = { protocol: 'https:' };
    assert.deepEqual(book.transport('ajax', where), { protocol: 'HTTP/2', scheme: 'https:', text: 'https: · HTTP/2', measured: true });
    assert.equal(book.transport('sse', where).measured, false, 'an open stream has no entry yet');
    assert.equal(book.transport('sse', where).protocol, 'HTTP/2');
    assert.match(book.transport('websocket', where).text, /^wss: · HTTP\/1\.1 upgrade$/);
    assert.equal(book.add([entry('/app.js', 'h2')]), false, 'files are not API requests');
  });

  test('the warning: six or more held connections over HTTP/1.x, never over HTTP/2', () => {
    assert.equal(HTTP1_CONNECTIONS_PER_ORIGIN, 6);
    assert.equal(connectionWarning({ protocol: 'HTTP/1.1', held: 5 }), null);
    assert.match(connectionWarning({ protocol: 'HTTP/1.1', held: 6 }), /at most 6 per origin.*https:\/\//s);
    assert.equal(connectionWarning({ protocol: 'HTTP/2', held: 12 }), null);
    assert.equal(connectionWarning({ protocol: null, held: 12 }), null);
  });

  test('what a client holds: an open SSE stream or a parked long poll, not a WebSocket', () => {
    assert.equal(heldBy({ transportName: 'sse', connection: 'connected' }), 1);
    assert.equal(heldBy({ transportName: 'longpoll', connection: 'connected' }), 1);
    assert.equal(heldBy({ transportName: 'sse', connection: 'reconnecting' }), 0);
    assert.equal(heldBy({ transportName: 'websocket', connection: 'connected' }), 0);
    assert.equal(heldBy({ transportName: 'ajax', connection: 'connected' }), 0);
  });

  test('tabs count each other\'s held connections over a BroadcastChannel, and forget closed ones', () => {
    // A fake channel bus: what one tab posts, the others receive.
    const bus = new Set();
    class FakeChannel {
      constructor() { bus.add(this); }
      postMessage(data) { for (const other of bus) if (other !== this) other.onmessage?.({ data }); }
      close() { bus.delete(this); }
    }
    let now = 0;
    const tabs = [0, 1, 2].map(() => new ConnectionCensus({ Channel: FakeChannel, now: () => now }));
    tabs[0].set(2);
    tabs[1].set(3);
    tabs[2].set(1);
    assert.deepEqual(tabs.map((t) => t.total()), [6, 6, 6]);
    tabs[2].close();
    assert.deepEqual(tabs.slice(0, 2).map((t) => t.total()), [5, 5], 'a closed tab stops counting at once');
    now = 60_000; // tab 1 went silent (frozen, crashed)
    assert.equal(tabs[0].total(), 2);
    tabs[0].close();
    tabs[1].close();
  });
});

describe('layout.js: the list of panels the layout test checks', () => {
  test('four panes and their boards, the race tallies and running/paused are on screen; the rest are drawers', () => {
    const ids = ON_SCREEN.map((e) => e.testid);
    for (const t of ['ajax', 'longpoll', 'sse', 'websocket']) {
      assert.ok(ids.includes(`pane-${t}`) && ids.includes(`board-${t}`), t);
    }
    assert.ok(ids.includes('race-table') && ids.includes('game-state'));
    const drawers = DRAWERS.map((d) => d.id);
    assert.deepEqual(drawers, ['controls', 'figures', 'security', 'join', 'lab-switches', 'lab-log']);
    assert.deepEqual(drawerTestids(DRAWERS[2]), { drawer: 'tls-drawer', toggle: 'tls-drawer-toggle' });
    assert.deepEqual(drawerTestids(DRAWERS[0]), { drawer: 'drawer-controls', toggle: 'drawer-tab-controls' });
  });
});

describe('protocol.js: round_expired folds like the server folds it', () => {
  const snapshot = {
    seq: 10,
    ts: 1000,
    type: 'snapshot',
    epoch: 'e1',
    board: 1000,
    poll_interval_ms: 1000,
    paused: false,
    round: { number: 3, x: 100, y: 200, r: 40, started_ts: 900, winner: null, expired: false },
    players: [],
    transports: {},
  };

  test('a round ends won or expired; the fold marks it, and a snapshot without `expired` means open', () => {
    let state = stateFromSnapshot(snapshot);
    assert.equal(isRoundOpen(state.round), true);
    const expired = { seq: 11, ts: 11_000, type: 'round_expired', round: 3 };
    assert.equal(validateEvent(expired), 'ok');
    state = applyEvent(state, expired);
    assert.equal(state.round.expired, true);
    assert.equal(state.round.winner, null);
    assert.equal(isRoundOpen(state.round), false);
    state = applyEvent(state, { seq: 12, ts: 12_000, type: 'round_expired', round: 2 });
    assert.equal(state.round.number, 3, 'another round\'s end changes nothing');
    state = applyEvent(state, { seq: 13, ts: 13_000, type: 'round_started', round: 4, x: 1, y: 1, r: 40 });
    assert.deepEqual(state.round, { number: 4, x: 1, y: 1, r: 40, started_ts: 13_000, winner: null, expired: false });

    const { expired: _, ...oldRound } = snapshot.round;
    const old = { ...snapshot, round: oldRound };
    assert.equal(validateEvent(old), 'ok');
    assert.equal(stateFromSnapshot(old).round.expired, false);
    assert.equal(validateEvent({ ...snapshot, round: { ...snapshot.round, expired: 'yes' } }), 'invalid');
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'round_expired', round: -1 }), 'invalid');
  });

  test('round_won with and without reaction_from is valid; the Stream treats round_expired as any event', () => {
    const base = { seq: 11, ts: 1, type: 'round_won', round: 3, winner: 1, name: 'Ada', reaction_ms: 5, transport: 'sse' };
    assert.equal(validateEvent(base), 'ok');
    assert.equal(validateEvent({ ...base, reaction_from: 'round_start' }), 'ok');
    assert.equal(validateEvent({ ...base, reaction_from: 7 }), 'invalid');
    const stream = new Stream();
    stream.accept(snapshot);
    assert.equal(stream.accept({ seq: 11, ts: 1, type: 'round_expired', round: 3 }), 'apply');
    assert.equal(stream.missed, 0);
  });
});
