// # The Click Game in a real browser, over each of the four transports
//
// One server (fixed seed, 200 ms between rounds) and one headless Chromium for the whole file;
// each test opens its players in separate browser contexts, so each has its own session cookie.
//
// 1. For each transport: two players join and pick it; one clicks the target; both pages show
//    the winner's score as 1, the win is credited to that transport, and the click went the
//    transport's way (in-band on the WebSocket, `POST /api/click` otherwise).
// 2. One page switches through all four transports while another keeps winning rounds: it never
//    misses an event, and ends with exactly the server's state.
// 3. (First, while the scoreboard is short, for the screenshot.) The wire inspector shows the
//    selected transport's own requests and frames — and nothing of the others — with pause and
//    clear; the live figures count that transport's traffic next to the server's figures; the
//    history keeps a row per transport used. Saves the screenshot of `/` (see saveScreenshot).
//
// Run: `npm test` (after `cargo build` in the repository root, or with CLICKGAME_BIN set).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  TRANSPORTS,
  assertNoPageProblems,
  clickTarget,
  join,
  launchBrowser,
  openPlayer,
  readFigures,
  readPage,
  readWire,
  rowOf,
  saveArtifacts,
  saveScreenshot,
  selectTransport,
  sleep,
  startServer,
  waitForOwnTransport,
  waitUntil,
} from './helpers.mjs';

let server;
let browser;

before(async () => {
  server = await startServer();
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Runs `body` with the players it opens; saves screenshots if it fails; closes them after. */
async function withPlayers(t, labels, body) {
  const players = [];
  for (const label of labels) players.push(await openPlayer(browser, server.url, label));
  try {
    await body(...players);
    for (const p of players) assertNoPageProblems(p, assert);
  } catch (err) {
    await saveArtifacts(t.name, players);
    err.message += `\n(server log tail)\n${server.stderrTail()}`;
    throw err;
  } finally {
    for (const p of players) await p.context.close();
  }
}

describe('what the page shows about its transport', () => {
  // Per transport: a request/frame the inspector must show once the transport runs, and one it
  // must show after a click (events flowing).
  const EXPECT = {
    ajax: {
      // The body, then the head as Resource Timing counts it (transferSize = body + 300 B).
      idle: /^GET \/api\/poll\?since=\d+&epoch=\w+ → 200, \d+ events?, \d+ B \+ 300 B head, \d+ ms$/,
      event: /^GET \/api\/poll\?since=\d+&epoch=\w+ → 200, [1-9]\d* events?, \d+ B/,
      click: /^POST \/api\/click → 200, \d+ B/,
    },
    longpoll: {
      // A long poll shows up only when answered: while parked there is nothing to show yet.
      idle: null,
      event: /^GET \/api\/longpoll\?since=\d+&epoch=\w+ → 200, [1-9]\d* events?, \d+ B/,
      click: /^POST \/api\/click → 200, \d+ B/,
    },
    sse: {
      idle: /^GET \/api\/sse\?since=\d+&epoch=\w+ \(EventSource\)$/,
      event: /^id: \d+\nevent: round_won\ndata: \{"seq":\d+,/,
      click: /^POST \/api\/click → 200, \d+ B/,
    },
    websocket: {
      idle: /^\{"type":"resume","since":\d+,"epoch":"\w+"\}$/,
      event: /^\{"seq":\d+,"ts":\d+,"type":"round_won"/,
      click: /^\{"type":"click","id":\d+,"round":\d+/,
    },
  };
  // Requests of the *other* transports must not appear once the inspector switched.
  const FOREIGN = {
    ajax: /\/api\/(longpoll|sse|ws)\b/,
    longpoll: /\/api\/(poll|sse|ws)\b/,
    sse: /\/api\/(poll|longpoll|ws)\b/,
    websocket: /\/api\/(poll|longpoll|sse)\b/,
  };

  test('the wire inspector and the live figures follow the selected transport', { timeout: 30_000 }, async (t) => {
    await withPlayers(t, ['inspector'], async (p) => {
      await p.page.setViewportSize({ width: 1280, height: 1024 });
      await join(p, 'Inspector');
      let lastRound = null;
      for (const transport of TRANSPORTS) {
        await selectTransport(p, transport);
        await waitForOwnTransport(p, p, transport);
        const expect = EXPECT[transport];
        if (expect.idle) {
          await waitUntil(`${transport}: the inspector shows the transport at work`, async () => {
            const wire = await readWire(p);
            return { ok: wire.some((w) => expect.idle.test(w.text)), seen: wire.slice(0, 3) };
          });
        }
        const { round } = await clickTarget(p, { notRound: lastRound });
        lastRound = round;
        const { wire } = await waitUntil(`${transport}: the click and the win on the wire`, async () => {
          const wire = await readWire(p);
          const ok = wire.some((w) => expect.event.test(w.text)) && wire.some((w) => expect.click.test(w.text));
          return { ok, wire, seen: wire.slice(0, 6) };
        });
        const foreign = wire.filter((w) => FOREIGN[transport].test(w.text));
        assert.deepEqual(foreign, [], `${transport}: the inspector shows another transport's traffic`);
        if (transport === 'websocket') {
          assert.ok(wire.some((w) => w.dir === 'up') && wire.some((w) => w.dir === 'down'), 'frames in both directions');
        }

        // The figures count this transport's own traffic, next to the server's.
        const { figures } = await waitUntil(`${transport}: figures filled in`, async () => {
          const figures = await readFigures(p);
          // mean / p95; a lag within the clock offset's uncertainty reads "≈ 0", never negative.
          const lag = /^(\d+|≈ 0) \/ (\d+|≈ 0)( \*)?$/;
          const ok = lag.test(figures.lag.client) && lag.test(figures.lag.window) &&
            /^\d+ \/ \d+( \*)?$/.test(figures.latency.client) && /^\d+$/.test(figures.requests.server);
          return { ok, figures, seen: figures };
        });
        assert.match(figures.requests.client, /^[1-9]\d* \(\d+ /, `${transport}: requests counted`);
        assert.match(figures.bytes.client, /^[1-9][\d.]* (B|KiB)$/, `${transport}: bytes counted`);
        if (transport === 'sse' || transport === 'websocket') {
          assert.equal(figures.wasted.client, 'n/a');
          assert.equal(figures.open.client, '1', `${transport}: one open connection`);
        } else {
          assert.match(figures.wasted.client, /^\d+ of \d+ \(\d+ %\)$/);
        }
        if (transport === 'sse') {
          // The server's column fills in too (GET /api/stats, refreshed every 2 s).
          await waitUntil('server figures for sse next to the client figures', async () => {
            const f = await readFigures(p);
            return { ok: Number(f.events.server) > 0 && f.open.server !== '0', seen: f };
          }, { timeout: 5000 });
          await saveScreenshot(p.page, 'index');
        }
      }

      // Pause freezes the list; Resume shows what came meanwhile; Clear empties it.
      await p.page.click('[data-testid="wire-pause"]');
      const frozen = await readWire(p);
      await clickTarget(p, { notRound: lastRound });
      await sleep(400);
      assert.deepEqual(await readWire(p), frozen, 'a paused inspector does not change');
      await p.page.click('[data-testid="wire-pause"]');
      await waitUntil('the inspector shows the click after resuming', async () => {
        const wire = await readWire(p);
        return { ok: JSON.stringify(wire) !== JSON.stringify(frozen), seen: wire.length };
      });
      await p.page.click('[data-testid="wire-pause"]'); // pause again, so nothing refills it
      await p.page.click('[data-testid="wire-clear"]');
      assert.equal((await readWire(p)).length, 0, 'Clear empties the inspector');
      await p.page.click('[data-testid="wire-pause"]');

      // The history keeps one row per transport used.
      const history = await p.page.$$eval('[data-testid="history"] tr[data-transport]', (rows) => rows.map((r) => r.dataset.transport));
      assert.deepEqual(history.sort(), [...TRANSPORTS].sort(), 'a history row per transport');
      assert.equal((await readPage(p)).missed, 0);
    });
  });
});

describe('the live figures on a laptop screen', () => {
  test('every column of the figures table is visible at 1280 × 720 and 1100 × 900, for every transport', { timeout: 40_000 }, async (t) => {
    // A student's laptop: the side column is about 450 px wide. A table wider than its panel
    // scrolls sideways inside it, which nobody notices: the Server column was cut in half.
    for (const viewport of [{ width: 1280, height: 720 }, { width: 1100, height: 900 }]) {
      const player = await openPlayer(browser, server.url, `laptop-${viewport.width}`, { viewport });
      try {
        await join(player, `Lap${viewport.width}`);
        for (const transport of TRANSPORTS) {
          await selectTransport(player, transport);
          await sleep(2500); // the server column refreshes every 2 s
          const fit = await player.page.evaluate(() => {
            const table = document.querySelector('[data-testid="figures"]');
            return { table: table.scrollWidth, box: table.parentElement.clientWidth };
          });
          assert.ok(fit.table <= fit.box, `${viewport.width}, ${transport}: the table is ${fit.table} px in a ${fit.box} px box`);
        }
        assertNoPageProblems(player, assert);
      } catch (err) {
        await saveArtifacts(t.name, [player]);
        throw err;
      } finally {
        await player.context.close();
      }
    }
  });
});

describe('one round over each transport', () => {
  for (const transport of TRANSPORTS) {
    test(`a hit over ${transport} scores 1 on both players' pages`, { timeout: 20_000 }, async (t) => {
      await withPlayers(t, [`${transport}-ada`, `${transport}-bob`], async (ada, bob) => {
        await join(ada, `Ada-${transport}`);
        await join(bob, `Bob-${transport}`);
        await selectTransport(ada, transport);
        await selectTransport(bob, transport);
        // The server notes a player's transport at their first contact over it; wait until both
        // pages show that, so the win below is credited to this transport.
        for (const viewer of [ada, bob]) {
          await waitForOwnTransport(ada, viewer, transport);
          await waitForOwnTransport(bob, viewer, transport);
        }
        const winsBefore = (await readPage(ada)).wins[transport];
        const posts = ada.clickPosts;
        const frames = ada.wsClickFrames;

        const { round, result } = await clickTarget(ada);
        assert.match(result, /^Hit!/, `${ada.label}: clicking the target of round ${round} should hit`);

        for (const viewer of [ada, bob]) {
          const { view } = await waitUntil(`${viewer.label}: Ada's score 1 and a ${transport} win`, async () => {
            const view = await readPage(viewer);
            const ok = rowOf(view, ada.name)?.score === 1 && view.wins[transport] === winsBefore + 1;
            return { ok, view, seen: { ada: rowOf(view, ada.name), wins: view.wins } };
          });
          assert.equal(rowOf(view, bob.name)?.score, 0, `${viewer.label}: Bob did not score`);
          assert.equal(view.missed, 0, `${viewer.label}: missed events`);
          assert.ok(view.status.includes(transport), `${viewer.label}: status "${view.status}" names ${transport}`);
        }

        // The click travelled the transport's way up.
        if (transport === 'websocket') {
          assert.equal(ada.clickPosts - posts, 0, 'a WebSocket click must not POST /api/click');
          assert.equal(ada.wsClickFrames - frames, 1, 'one click frame on the WebSocket');
        } else {
          assert.equal(ada.clickPosts - posts, 1, `a ${transport} click is one POST /api/click`);
          assert.equal(ada.wsClickFrames - frames, 0, 'no click frame on a WebSocket');
        }
        // ...and events came down the transport's way.
        for (const p of [ada, bob]) {
          assert.ok(p.downstream[transport] > 0, `${p.label}: no ${transport} request/socket was opened`);
        }
      });
    });
  }
});

describe('switching transports while the game goes on', () => {
  test('a page that switches through all four transports misses nothing and ends in step with the server', { timeout: 40_000 }, async (t) => {
    await withPlayers(t, ['switcher', 'winner'], async (switcher, winner) => {
      await join(switcher, 'Switcher');
      await join(winner, 'Winner');
      await selectTransport(winner, 'websocket');
      const startSeq = (await readPage(switcher)).lastSeq;

      // The winner keeps hitting targets so events flow on every transport.
      let stop = false;
      const winnerProblems = [];
      const winning = (async () => {
        let last = null;
        while (!stop) {
          try {
            const { round, result } = await clickTarget(winner, { notRound: last, timeout: 3000 });
            last = round;
            if (!/^Hit!/.test(result)) winnerProblems.push(`round ${round}: ${result}`);
          } catch (err) {
            if (!stop) winnerProblems.push(err.message);
          }
        }
      })();

      try {
        for (const transport of ['ajax', 'longpoll', 'sse', 'websocket']) {
          await selectTransport(switcher, transport);
          await waitForOwnTransport(switcher, switcher, transport);
          const before = await readPage(switcher);
          const scoreBefore = rowOf(before, 'Winner').score;
          await sleep(2000);
          const { view } = await waitUntil(`switcher on ${transport}: sees Winner win more rounds`, async () => {
            const view = await readPage(switcher);
            return { ok: rowOf(view, 'Winner').score > scoreBefore, view, seen: rowOf(view, 'Winner') };
          }, { timeout: 5000 });
          assert.equal(view.missed, 0, `switcher missed events while on ${transport}`);
          assert.ok(view.lastSeq > before.lastSeq, `last-seq did not advance on ${transport}`);
          assert.ok(switcher.downstream[transport] > 0, `no ${transport} request/socket was opened`);
        }
      } finally {
        stop = true;
        await winning;
      }
      assert.deepEqual(winnerProblems, [], 'the winner should hit every round it clicked');

      // Quiet now: the page's fold of all those events must equal the server's own state.
      await waitUntil('switcher page equal to GET /api/snapshot at the same seq', async () => {
        const snapshot = await (await fetch(`${server.url}/api/snapshot`)).json();
        const view = await readPage(switcher);
        const expected = snapshot.players
          .map((p) => ({ id: p.id, name: p.name, score: p.score, misses: p.misses, transport: p.transport ?? '–' }))
          .sort((a, b) => a.id - b.id);
        const shown = view.rows
          .map(({ id, name, score, misses, transport }) => ({ id, name, score, misses, transport }))
          .sort((a, b) => a.id - b.id);
        const wins = Object.fromEntries(Object.entries(snapshot.transports).map(([k, v]) => [k, v.wins]));
        const ok =
          view.lastSeq === snapshot.seq &&
          JSON.stringify(shown) === JSON.stringify(expected) &&
          JSON.stringify(view.wins) === JSON.stringify(wins);
        return { ok, seen: { seq: [view.lastSeq, snapshot.seq], shown, expected, wins: [view.wins, wins] } };
      }, { timeout: 5000 });

      const end = await readPage(switcher);
      assert.equal(end.missed, 0, 'switcher: missed must stay 0');
      assert.ok(end.lastSeq > startSeq, 'switcher: last-seq advanced');
      assert.equal(rowOf(end, 'Switcher').transport, 'websocket', 'switcher shows its own transport');
      assert.ok(rowOf(end, 'Winner').score >= 4, 'the winner won a round on each of the four stretches');
      assert.equal((await readPage(winner)).missed, 0, 'winner: missed must stay 0');
    });
  });
});
