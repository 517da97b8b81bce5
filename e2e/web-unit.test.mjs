// # Unit tests of the browser client's pure modules, in Node (no browser, no server)
//
// web/js/protocol.js (validation, the fold, the Stream cursor), the reconnect loop every transport
// shares (Reconnector, Backoff, the resume classification) of web/js/transports/common.js,
// the figures of web/js/metrics.js, and what the lab's modules make of the server's answers.
// These modules use only what Node also has (TextEncoder, performance), so they are imported as
// they are served. Runs in well under a second, before the browser suites.

import assert from 'node:assert/strict';
import { describe, test } from 'node:test';

import { Stream, applyEvent, stateFromSnapshot, validateEvent } from '../web/js/protocol.js';
import { ghostLabelY, ghostText } from '../web/js/game.js';
import {
  BACKOFF_MAX_MS,
  BACKOFF_MIN_MS,
  Backoff,
  Reconnector,
  ResumeWatch,
  byteLength,
  resumeUrl,
} from '../web/js/transports/common.js';
import { Meter, Samples } from '../web/js/metrics.js';
import { bannerText, labFromStats } from '../web/js/lab.js';
import { logRowView, switchesView } from '../web/js/lab_panel.js';
import { attackerUrl } from '../web/js/lab_page.js';
import { joinCardView } from '../web/js/join_card.js';

const snapshot = (over = {}) => ({
  seq: 10,
  ts: 1000,
  type: 'snapshot',
  epoch: 'e1',
  board: 1000,
  poll_interval_ms: 1000,
  paused: false,
  round: { number: 3, x: 100, y: 200, r: 40, started_ts: 900, winner: null },
  players: [
    { id: 1, name: 'Ada', score: 2, misses: 1, transport: 'sse' },
    { id: 2, name: 'Bob', score: 1, misses: 0, transport: 'websocket' },
  ],
  transports: {
    ajax: { wins: 0, total_reaction_ms: 0 },
    longpoll: { wins: 0, total_reaction_ms: 0 },
    sse: { wins: 2, total_reaction_ms: 600 },
    websocket: { wins: 1, total_reaction_ms: 250 },
  },
  ...over,
});

describe('protocol.js: the lecturer events fold like the server folds them', () => {
  test('game_paused, settings and scores_reset are valid events and change the state', () => {
    let state = stateFromSnapshot(snapshot());
    const events = [
      { seq: 11, ts: 1100, type: 'game_paused', paused: true },
      { seq: 12, ts: 1200, type: 'settings', poll_interval_ms: 250 },
      { seq: 13, ts: 1300, type: 'scores_reset' },
    ];
    for (const e of events) {
      assert.equal(validateEvent(e), 'ok', e.type);
      state = applyEvent(state, e);
    }
    assert.equal(state.paused, true);
    assert.equal(state.poll_interval_ms, 250);
    assert.deepEqual(state.players.map((p) => [p.score, p.misses]), [[0, 0], [0, 0]]);
    for (const t of Object.values(state.transports)) assert.deepEqual(t, { wins: 0, total_reaction_ms: 0 });
    assert.equal(state.seq, 13);
  });

  test('malformed lecturer events are rejected', () => {
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'game_paused', paused: 'yes' }), 'invalid');
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'settings', poll_interval_ms: -5 }), 'invalid');
    assert.equal(validateEvent(snapshot({ paused: 1 })), 'invalid');
  });

  test('a snapshot without `paused` (an older server) means not paused', () => {
    const { paused: _, ...old } = snapshot();
    assert.equal(validateEvent(old), 'ok');
    assert.equal(stateFromSnapshot(old).paused, false);
  });

  test('a won round keeps its winner\'s name on the board after the winner leaves (the bots, after a race)', () => {
    let state = stateFromSnapshot(snapshot());
    const won = (round, winner, name) => ({ seq: 20 + round, ts: 2000, type: 'round_won', round, winner, name, reaction_ms: 150, transport: 'sse', reaction_from: 'delivery' });
    state = applyEvent(state, { seq: 11, ts: 1100, type: 'round_started', round: 6, x: 10, y: 10, r: 40 });
    state = applyEvent(state, won(6, 2, 'Bob'));
    assert.equal(ghostText(state.round, state.players), 'Bob wins!');
    state = applyEvent(state, { seq: 30, ts: 3000, type: 'player_left', player: 2, reason: 'left' });
    assert.equal(ghostText(state.round, state.players), 'Bob wins!', 'not just "won" once Bob has left');
    // A rename reaches the board too; a player the lecturer removed loses the name there.
    state = applyEvent(state, { seq: 31, ts: 3100, type: 'round_started', round: 7, x: 10, y: 10, r: 40 });
    state = applyEvent(state, won(7, 1, 'Rude'));
    state = applyEvent(state, { seq: 40, ts: 4000, type: 'player_renamed', player: 1, name: 'Polite' });
    assert.equal(ghostText(state.round, state.players), 'Polite wins!');
    state = applyEvent(state, { seq: 41, ts: 4100, type: 'player_left', player: 1, reason: 'kicked' });
    assert.equal(ghostText(state.round, state.players), 'won', 'a removed player\'s name leaves the projector');
    assert.equal(ghostText({ ...state.round, winner: null, expired: true }, state.players), 'expired');
  });

  test('the label of an ended round clears its dashed circle at the player\'s and the projector\'s font size', () => {
    for (const size of [40, 64]) {
      const capHeight = size * 0.75;
      const middle = { x: 500, y: 400, r: 40 };
      const y = ghostLabelY(middle, size);
      assert.ok(y - capHeight >= middle.y + middle.r, `${size}: the text's top (${y - capHeight}) is below the circle`);
      const low = { x: 500, y: 940, r: 40 };
      const above = ghostLabelY(low, size);
      assert.ok(above <= low.y - low.r && above - capHeight >= 0, `${size}: above the circle near the bottom edge, inside the board: ${above}`);
    }
  });

  test('kicked, renamed and joins_changed fold like the server folds them', () => {
    let state = stateFromSnapshot(snapshot());
    assert.equal(state.joins_open, true, 'a snapshot without joins_open: open');
    const events = [
      { seq: 11, ts: 1100, type: 'player_renamed', player: 2, name: 'Grace' },
      { seq: 12, ts: 1200, type: 'player_left', player: 1, reason: 'kicked' },
      { seq: 13, ts: 1300, type: 'joins_changed', open: false },
    ];
    for (const e of events) {
      assert.equal(validateEvent(e), 'ok', e.type);
      state = applyEvent(state, e);
    }
    assert.deepEqual(state.players.map((p) => [p.id, p.name, p.score]), [[2, 'Grace', 1]]);
    assert.equal(state.joins_open, false);
    assert.equal(stateFromSnapshot(snapshot({ joins_open: false })).joins_open, false);
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'player_renamed', player: 2 }), 'invalid');
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'player_renamed', player: 2, name: 7 }), 'invalid');
    assert.equal(validateEvent({ seq: 1, ts: 1, type: 'joins_changed', open: 'no' }), 'invalid');
    assert.equal(validateEvent(snapshot({ joins_open: 'yes' })), 'invalid');
  });

  test('the Stream counts a gap as missed, but not one a snapshot explains', () => {
    const stream = new Stream();
    assert.equal(stream.accept(snapshot()), 'reset');
    assert.equal(stream.accept({ seq: 11, ts: 1, type: 'scores_reset' }), 'apply');
    assert.equal(stream.accept({ seq: 11, ts: 1, type: 'scores_reset' }), 'skip');
    assert.equal(stream.duplicates, 1);
    assert.equal(stream.accept(snapshot({ seq: 50, epoch: 'e2' })), 'reset');
    assert.equal(stream.missed, 0);
    assert.equal(stream.epoch, 'e2');
    stream.accept({ seq: 53, ts: 1, type: 'scores_reset' });
    assert.equal(stream.missed, 2);
  });
});

describe('common.js: reconnecting', () => {
  test('backoff: 0.5 s doubling to a 10 s cap, each wait in [d/2, d]', () => {
    for (const r of [0, 0.5, 0.999999]) {
      const backoff = new Backoff({ random: () => r });
      const waits = Array.from({ length: 8 }, () => backoff.next());
      const ceilings = [500, 1000, 2000, 4000, 8000, 10_000, 10_000, 10_000];
      waits.forEach((w, i) => {
        assert.ok(w >= ceilings[i] / 2 && w <= ceilings[i], `attempt ${i}: ${w} outside [${ceilings[i] / 2}, ${ceilings[i]}]`);
      });
      assert.equal(backoff.attempt, 8);
      backoff.reset();
      assert.ok(backoff.next() <= BACKOFF_MIN_MS);
    }
    assert.equal(BACKOFF_MAX_MS, 10_000);
  });

  test('backoff never overflows after very many attempts', () => {
    const backoff = new Backoff({ random: () => 1 });
    for (let i = 0; i < 2000; i += 1) backoff.next();
    assert.equal(backoff.next(), BACKOFF_MAX_MS);
  });

  test('a resume is recovered or resynced, decided once per reconnect by the first answer', () => {
    const seen = [];
    const watch = new ResumeWatch({ resumed: (kind) => seen.push(kind) });
    watch.settle({ seq: 1, type: 'round_started' }); // not armed: no reconnect happened
    watch.arm();
    watch.settle({ seq: 2, type: 'round_started' });
    watch.settle({ seq: 3, type: 'snapshot' }); // already settled
    watch.arm();
    watch.settle({ seq: 9, type: 'snapshot' });
    watch.arm();
    watch.settle(null); // an empty poll answer: nothing was missed
    assert.deepEqual(seen, ['recovered', 'resynced', 'recovered']);
  });

  test('resume URLs leave out what is unknown', () => {
    assert.equal(resumeUrl('/api/poll', null, null), '/api/poll');
    assert.equal(resumeUrl('/api/sse', 0, 'ab', { ticket: 't1' }), '/api/sse?since=0&epoch=ab&ticket=t1');
  });

  test('bytes are UTF-8 bytes, not characters', () => {
    assert.equal(byteLength('abc'), 3);
    assert.equal(byteLength('Zoë'), 4);
    assert.equal(byteLength('→'), 3);
  });
});

/** Timers the test fires by hand: `due()` lists the waits, `fire()` runs the next one. */
function manualTimers() {
  let next = 1;
  const pending = new Map();
  return {
    setTimeout(fn, ms) {
      pending.set(next, { fn, ms });
      return next++;
    },
    clearTimeout(id) {
      pending.delete(id);
    },
    due() {
      return [...pending.values()].map((t) => t.ms);
    },
    fire() {
      const [id, { fn }] = pending.entries().next().value;
      pending.delete(id);
      fn();
    },
  };
}

/** A Reconnector over a fake transport: every open() hands its link to the test. */
function harness() {
  const seen = { statuses: [], events: [], reconnecting: [], resumed: [], links: [] };
  const timers = manualTimers();
  const probe = {
    reconnecting: (r) => seen.reconnecting.push(r),
    resumed: (kind) => seen.resumed.push(kind),
  };
  const reconnect = new Reconnector({
    open: (link) => {
      seen.links.push({ link, position: { ...link.position } });
    },
    onEvent: (e) => seen.events.push(e.seq),
    onStatus: (state, detail) => seen.statuses.push(detail ? `${state}: ${detail}` : state),
    probe,
    retryLabel: 'next try',
    backoff: new Backoff({ random: () => 0 }),
    timers,
  });
  const link = () => seen.links.at(-1).link;
  return { seen, timers, reconnect, link };
}

describe('common.js: the Reconnector every transport reconnects through', () => {
  test('a failed attempt is retried after the backoff, the wait grows, and success resets it', () => {
    const { seen, timers, reconnect, link } = harness();
    reconnect.start(null, null);
    link().closed('refused');
    assert.deepEqual(timers.due(), [250]);
    timers.fire();
    link().closed('refused again');
    assert.deepEqual(timers.due(), [500], 'the second wait is longer');
    timers.fire();
    link().opened();
    link().opened(); // idempotent
    link().closed('dropped');
    assert.deepEqual(timers.due(), [250], 'after a success the backoff starts over');
    assert.deepEqual(seen.statuses, [
      'connecting',
      'reconnecting: next try in 0.3 s (attempt 1): refused',
      'reconnecting: next try in 0.5 s (attempt 2): refused again',
      'connected',
      'reconnecting: next try in 0.3 s (attempt 1): dropped',
    ]);
    assert.deepEqual(
      seen.reconnecting.map((r) => [r.wait, r.attempt, r.reason]),
      [[250, 1, 'refused'], [500, 2, 'refused again'], [250, 1, 'dropped']],
    );
  });

  test('each attempt resumes where the last one got to, and the first answer says recovered or resynced', () => {
    const { seen, timers, reconnect, link } = harness();
    reconnect.start(3, 'e1');
    assert.deepEqual(seen.links[0].position, { since: 3, epoch: 'e1' });
    link().opened();
    link().event({ seq: 4, type: 'round_started' });
    link().event({ seq: 5, type: 'round_won' });
    link().closed('stream ended');
    timers.fire();
    assert.deepEqual(seen.links[1].position, { since: 5, epoch: 'e1' });
    link().event({ seq: 6, type: 'round_started' });
    link().closed('stream ended');
    timers.fire();
    link().event({ seq: 40, type: 'snapshot', epoch: 'e2' });
    link().closed('stream ended');
    timers.fire();
    assert.deepEqual(seen.links[3].position, { since: 40, epoch: 'e2' });
    // A poll that answers nothing after a reconnect: nothing was missed.
    assert.equal(link().answered([], 44), true);
    assert.deepEqual(seen.resumed, ['recovered', 'resynced', 'recovered']);
    assert.equal(reconnect.position.since, 44, "a poll's last_seq moves the position");
    assert.deepEqual(seen.events, [4, 5, 6, 40]);
  });

  test('stop() ends the attempt and cancels the pending retry; a dead link reports nothing', () => {
    const { seen, timers, reconnect, link } = harness();
    reconnect.start(null, null);
    const first = link();
    first.closed('refused');
    assert.equal(first.alive, false);
    assert.equal(first.signal.aborted, true, 'its fetches are cancelled');
    timers.fire();
    const second = link();
    first.event({ seq: 1, type: 'round_started' });
    first.closed('late report');
    first.opened();
    assert.deepEqual(seen.events, [], 'a dead link delivers nothing');
    assert.deepEqual(timers.due(), [], 'and schedules no retry');
    second.closed('refused');
    assert.deepEqual(timers.due(), [500]);
    reconnect.stop();
    assert.deepEqual(timers.due(), [], 'the retry is cancelled');
    assert.equal(seen.statuses.at(-1), 'closed');
    assert.equal(seen.links.length, 2, 'nothing opens after stop()');
    second.closed('after stop');
    assert.deepEqual(timers.due(), []);
  });

  test('a phone back on the network retries at once instead of sitting out the backoff', () => {
    // A student's phone off the Wi-Fi for half a minute has backed off to 5–10 s between
    // attempts; when the browser says it is online again, the next attempt is now.
    const network = new EventTarget();
    const timers = manualTimers();
    let opens = 0;
    const statuses = [];
    const reconnect = new Reconnector({
      open: () => { opens += 1; },
      onEvent: () => {},
      onStatus: (state) => statuses.push(state),
      probe: { reconnecting() {}, resumed() {} },
      backoff: new Backoff({ random: () => 0 }),
      timers,
      network,
    });
    reconnect.start(5, 'e1');
    for (let i = 0; i < 5; i += 1) {
      reconnect.link.closed('offline');
      timers.fire();
    }
    reconnect.link.closed('offline');
    assert.equal(opens, 6);
    assert.deepEqual(timers.due(), [5000], 'backed off to the cap (10 s, half of it with no jitter)');
    network.dispatchEvent(new Event('online'));
    assert.equal(opens, 7, 'online: the next attempt at once');
    assert.deepEqual(timers.due(), [], 'and the backoff timer is gone');
    network.dispatchEvent(new Event('online'));
    assert.equal(opens, 7, 'online while an attempt runs changes nothing');
    reconnect.link.opened();
    assert.equal(statuses.at(-1), 'connected');
    reconnect.stop();
    network.dispatchEvent(new Event('online'));
    assert.equal(opens, 7, 'stopped: online wakes nothing');
  });

  test('an open() that throws or rejects is a failed attempt like any other', async () => {
    const timers = manualTimers();
    const reasons = [];
    let calls = 0;
    const reconnect = new Reconnector({
      open: () => {
        calls += 1;
        if (calls === 1) throw new Error('no EventSource here');
        return Promise.reject(new Error('ticket refused'));
      },
      onEvent: () => {},
      probe: { reconnecting: (r) => reasons.push(r.reason), resumed() {} },
      backoff: new Backoff({ random: () => 0 }),
      timers,
    });
    reconnect.start(null, null);
    timers.fire();
    await new Promise((resolve) => setImmediate(resolve));
    assert.deepEqual(reasons, ['no EventSource here', 'ticket refused']);
    reconnect.stop();
  });

  test('an answer stops delivering as soon as the link dies mid-batch', () => {
    const { seen, reconnect, link } = harness();
    const stopAt = 2;
    reconnect.onEvent = (e) => {
      seen.events.push(e.seq);
      if (e.seq === stopAt) reconnect.stop();
    };
    reconnect.start(0, 'e1');
    assert.equal(link().answered([{ seq: 1 }, { seq: 2 }, { seq: 3 }], 3), false);
    assert.deepEqual(seen.events, [1, 2], 'nothing after close()');
  });
});

describe('metrics.js: the figures', () => {
  test('percentiles are nearest-rank over the window; the mean is over everything', () => {
    const s = new Samples(100);
    for (let v = 1; v <= 100; v += 1) s.add(v);
    assert.equal(s.percentile(95), 95);
    assert.equal(s.percentile(50), 50);
    assert.equal(s.mean, 50.5);
    s.add(1000);
    assert.equal(s.values.length, 100, 'window bounded');
    assert.equal(s.count, 101);
    assert.equal(s.max, 1000);
  });

  test('a Meter counts requests, wasted polls, frames and reconnects as documented', () => {
    const m = new Meter('ajax');
    m.requestStarted();
    assert.equal(m.open, 1);
    m.requestDone({ method: 'GET', path: '/api/poll?since=1', status: 200, bytes: 26, events: 0, downstream: true, ms: 3, error: null });
    m.requestStarted();
    m.requestDone({ method: 'GET', path: '/api/poll?since=1', status: 200, bytes: 230, events: 2, downstream: true, ms: 3, error: null });
    m.requestStarted();
    m.requestDone({ method: 'POST', path: '/api/click', status: 200, bytes: 44, events: null, downstream: false, ms: 9, error: null });
    m.reconnecting({ wait: 400, attempt: 1, reason: 'test' });
    m.resumed('recovered');
    assert.deepEqual(
      [m.open, m.requests, m.downstreamRequests, m.downstreamPolls, m.wasted, m.bytes, m.reconnects, m.recovered],
      [0, 3, 2, 2, 1, 256, 1, 1],
    );
    // Only the polls' bytes: what delivering events took, not the click's answer.
    m.eventSeen({ seq: 5, ts: 1000, type: 'round_started' }, 'apply', 1040);
    m.eventSeen({ seq: 5, ts: 1000, type: 'round_started' }, 'skip', 1050);
    m.eventSeen(snapshot(), 'reset', 1060);
    assert.deepEqual([m.events, m.snapshots, m.lag.last], [1, 1, 40]);
    assert.equal(m.summary().requestsPerEvent, 2, 'per event: event-fetching requests only');
    assert.equal(m.wire.length, 5);
    assert.match(m.wire[0].text, /^GET \/api\/poll\?since=1 → 200, 0 events, 26 B, 3 ms$/);
  });

  test('the wire log keeps the last 50 items', () => {
    const m = new Meter('websocket');
    for (let i = 0; i < 120; i += 1) m.frame({ dir: 'in', text: `{"seq":${i}}`, bytes: 10 });
    assert.equal(m.wire.length, 50);
    assert.equal(m.wire.at(-1).text, '{"seq":119}');
    assert.equal(m.bytes, 1200);
  });
});

describe('lab.js and lab_panel.js: the lab, read from untrusted answers', () => {
  test('the lab exists only when /api/stats says so, and only known defences count as off', () => {
    assert.deepEqual(labFromStats({ uptime_s: 1 }), { present: false, off: [], attackerPort: null });
    assert.deepEqual(labFromStats({ lab: 'yes' }).present, false);
    assert.deepEqual(
      labFromStats({ lab: { off: ['server_data', 'origin', '<img>', 7], attacker_port: 8666 } }),
      { present: true, off: ['origin', 'server_data'], attackerPort: 8666 },
    );
    assert.equal(labFromStats({ lab: { off: [], attacker_port: 70000 } }).attackerPort, null);
  });

  test('the banner names what is off, and nothing when all is on', () => {
    assert.equal(bannerText([]), '');
    assert.equal(bannerText(['bogus']), '');
    assert.match(bannerText(['origin']), /^LAB: defence OFF — Origin check\./);
    assert.match(bannerText(['input', 'server_data']), /defences OFF — input validation, server-data validation/);
  });

  test('switch and log answers are checked before they are shown', () => {
    assert.equal(switchesView(null), null);
    assert.deepEqual(
      switchesView({ defences: { origin: false, auth: 'no', input: true, extra: true } }),
      [['origin', false], ['input', true]],
    );
    assert.equal(logRowView({ seq: 1, rule: 'firewall' }), null);
    assert.equal(logRowView({ seq: -1, rule: 'origin' }), null);
    const row = logRowView({ seq: 4, ts: 0, rule: 'server_data', code: 0, error: 'rendered_as_text', detail: '<b>', peer: '127.0.0.1:1' });
    assert.equal(row.code, '—', 'a page\'s report has no wire code');
    assert.equal(row.origin, '(none)');
    assert.equal(row.detail, '<b>', 'kept as text; the panel writes it with textContent');
    assert.equal(attackerUrl('127.0.0.1', 8666), 'http://127.0.0.1:8666/attacker.html');
    assert.equal(attackerUrl('localhost', null), null);
  });
});

describe('the join card (js/join_card.js)', () => {
  test('behind --public-url the public URL leads, is not offered twice over TLS, and the card knows it is public', () => {
    const view = joinCardView({
      urls: ['https://class.example/', 'http://127.0.0.1:8080/'],
      https_urls: ['https://class.example/', 'https://127.0.0.1:8443/'],
      qr: '/api/join-qr.svg',
      cert_sha256: 'AB:CD',
      lan: false,
      public: true,
    });
    assert.equal(view.url, 'https://class.example/');
    assert.deepEqual(view.others, ['http://127.0.0.1:8080/']);
    assert.equal(view.tls, 'https://127.0.0.1:8443/');
    assert.equal(view.public, true);
  });

  test('without it: the first HTTPS URL, not public; junk and foreign QR paths are dropped', () => {
    const view = joinCardView({
      urls: ['http://192.168.1.23:8080/', 'javascript:alert(1)'],
      https_urls: ['https://192.168.1.23:8443/'],
      qr: '//evil.example/qr.svg',
      lan: true,
      public: 'yes',
    });
    assert.deepEqual(view.others, []);
    assert.equal(view.tls, 'https://192.168.1.23:8443/');
    assert.equal(view.public, false);
    assert.equal(view.qr, null);
    assert.equal(joinCardView({ urls: [] }), null);
  });
});
