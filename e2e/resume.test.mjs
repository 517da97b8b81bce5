// # Nothing lost: every transport resumes after dropped connections and after a server restart
//
// 1. Four spectator pages, one per transport, while a fifth page keeps winning rounds. The server
//    drops every connection twice (`POST /api/admin/disconnect`, with the admin token the server
//    printed), and each page cuts its own connection once ("Drop connection"). Every page comes
//    back by itself (backoff), resumes where it was — `recovered`, never `resynced` — and ends
//    with exactly the server's state: missed 0, same last seq, same scoreboard.
// 2. The server is stopped (SIGTERM: it saves the game) and started again on the same port and
//    data directory: a new epoch. Every page notices, gets a snapshot (`resynced`), shows the
//    scores that survived the restart, and missed stays 0.
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
  readPage,
  saveArtifacts,
  selectTransport,
  sleep,
  startServer,
  waitUntil,
} from './helpers.mjs';

let browser;
/** Faster AJAX polling than the default 1 s keeps the waits for the AJAX page short. */
const ARGS = ['--poll-interval-ms', '250'];

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Opens one spectator page per transport. */
async function openWatchers(server) {
  const watchers = [];
  for (const transport of TRANSPORTS) {
    const w = await openPlayer(browser, `${server.url}/?transport=${transport}`, `watch-${transport}`);
    w.transport = transport;
    watchers.push(w);
  }
  for (const w of watchers) await selectTransport(w, w.transport);
  return watchers;
}

/** Keeps clicking targets on `player` until `stop()`; returns {stop, problems}. */
function keepWinning(player) {
  let stopped = false;
  const problems = [];
  const loop = (async () => {
    let last = null;
    while (!stopped) {
      try {
        const { round, result } = await clickTarget(player, { notRound: last, timeout: 3000 });
        // A click sent while the socket was being dropped is not counted: try the round again.
        if (/^(Hit!|Too late)/.test(result)) last = round;
        else await sleep(200);
      } catch (err) {
        if (!stopped) problems.push(err.message);
        await sleep(100);
      }
    }
  })();
  return {
    problems,
    async stop() {
      stopped = true;
      await loop;
    },
  };
}

/** Waits until `page` shows exactly the server's state: same last seq, same scores. */
async function waitInStep(server, page) {
  return waitUntil(`${page.label}: in step with GET /api/snapshot`, async () => {
    const snapshot = await server.snapshot();
    const view = await readPage(page);
    const expected = snapshot.players.map((p) => `${p.name}:${p.score}:${p.misses}`).sort();
    const shown = view.rows.map((r) => `${r.name}:${r.score}:${r.misses}`).sort();
    const ok = view.lastSeq === snapshot.seq && JSON.stringify(shown) === JSON.stringify(expected) &&
      /: connected$/.test(view.status);
    return { ok, view, seen: { seq: [view.lastSeq, snapshot.seq], shown, expected, status: view.status } };
  }, { timeout: 15_000 });
}

async function run(t, server, players, body) {
  try {
    await body();
    for (const p of players) assertNoPageProblems(p, assert);
  } catch (err) {
    await saveArtifacts(t.name, players);
    err.message += `\n(server log tail)\n${server.stderrTail()}`;
    throw err;
  } finally {
    for (const p of players) await p.context.close();
  }
}

describe('resuming after dropped connections', () => {
  test('server-side and client-side drops: every page recovers and misses nothing', { timeout: 45_000 }, async (t) => {
    const server = await startServer({ args: ARGS });
    const players = [];
    try {
      const winner = await openPlayer(browser, server.url, 'winner');
      players.push(winner);
      const watchers = await openWatchers(server);
      players.push(...watchers);
      await join(winner, 'Winner');
      await selectTransport(winner, 'websocket');

      await run(t, server, players, async () => {
        const winning = keepWinning(winner);
        try {
          for (let drop = 1; drop <= 3; drop += 1) {
            const seqBefore = (await server.snapshot()).seq;
            if (drop <= 2) {
              const res = await server.admin('disconnect');
              assert.equal(res.status, 200, 'POST /api/admin/disconnect with the admin token');
            } else {
              for (const w of watchers) await w.page.click('[data-testid="drop"]');
            }
            // Every page is back and has seen events that happened after the drop.
            for (const w of watchers) {
              await waitUntil(`${w.label}: back and past seq ${seqBefore} after drop ${drop}`, async () => {
                const view = await readPage(w);
                return { ok: /: connected$/.test(view.status) && view.lastSeq > seqBefore + 1, seen: view };
              }, { timeout: 12_000 });
            }
          }
        } finally {
          await winning.stop();
        }
        assert.deepEqual(winning.problems.filter((m) => !/timed out|Timeout/.test(m)), [], 'the winner kept playing');

        for (const w of [...watchers, winner]) {
          const { view } = await waitInStep(server, w);
          assert.equal(view.missed, 0, `${w.label}: missed must stay 0`);
          assert.equal(view.resynced, 0, `${w.label}: a short drop resumes without a snapshot`);
        }
        // Streams are cut by every drop; a long poll is answered 204 by the server's drop (no
        // reconnect needed) and cut by ours; AJAX polling holds nothing open between polls.
        for (const w of watchers) {
          const view = await readPage(w);
          if (w.transport === 'sse' || w.transport === 'websocket') {
            assert.ok(view.recovered >= 3, `${w.label}: recovered after each of the 3 drops (${view.recovered})`);
          }
          if (w.transport === 'longpoll') assert.ok(view.recovered >= 1, `${w.label}: recovered after its own drop`);
        }
      });
    } finally {
      await server.stop();
    }
  });

  test('a server restart: every page resyncs to the new epoch and the scores survive', { timeout: 45_000 }, async (t) => {
    let server = await startServer({ keepDataDir: true, args: ARGS });
    const { dataDir } = server;
    const addr = new URL(server.url).host;
    const players = [];
    try {
      const winner = await openPlayer(browser, server.url, 'winner');
      players.push(winner);
      const watchers = await openWatchers(server);
      players.push(...watchers);
      await join(winner, 'Keeper');
      await selectTransport(winner, 'sse');

      await run(t, server, players, async () => {
        let last = null;
        for (let i = 0; i < 2; i += 1) ({ round: last } = await clickTarget(winner, { notRound: last }));
        for (const w of watchers) await waitInStep(server, w);
        const before = await server.snapshot();
        assert.equal(before.players.find((p) => p.name === 'Keeper')?.score, 2);

        await server.stop();
        server = await startServer({ addr, dataDir, keepDataDir: true, args: ARGS });
        const afterRestart = await server.snapshot();
        assert.notEqual(afterRestart.epoch, before.epoch, 'a restarted server has a new epoch');
        assert.equal(afterRestart.players.find((p) => p.name === 'Keeper')?.score, 2, 'the score survived the restart');

        for (const w of [...watchers, winner]) {
          const { view } = await waitInStep(server, w);
          assert.equal(view.missed, 0, `${w.label}: missed must stay 0`);
          assert.ok(view.resynced >= 1, `${w.label}: resynced after the restart (${view.resynced})`);
          assert.equal(view.rows.find((r) => r.name === 'Keeper')?.score, 2, `${w.label}: shows the surviving score`);
        }
        // …and the game goes on over the new server.
        const { result } = await clickTarget(winner, { timeout: 8000 });
        assert.match(result, /^Hit!/);
      });
    } finally {
      await server.stop();
      const { rm } = await import('node:fs/promises');
      await rm(dataDir, { recursive: true, force: true });
    }
  });
});

describe('a phone away for longer than the player timeout', () => {
  test('comes back as itself: the server rejoins it with its score, and the page knows it is still "you"', { timeout: 45_000 }, async (t) => {
    // A student's phone off the Wi-Fi for more than a minute: the server lets the player go
    // (player_left, idle) and welcomes them back on their next request with their session
    // cookie (player_rejoined, score kept). The page must not then offer the join form to a
    // player the scoreboard still lists — typing the same name would be "taken" by themselves.
    const server = await startServer({ args: [...ARGS, '--player-timeout-ms', '1500'] });
    const phone = await openPlayer(browser, server.url, 'phone', {
      viewport: { width: 390, height: 844 },
      context: { hasTouch: true, isMobile: true },
    });
    try {
      await selectTransport(phone, 'ajax');
      await join(phone, 'Roamer');
      await clickTarget(phone);
      const before = (await server.snapshot()).players.find((p) => p.name === 'Roamer');
      await phone.context.setOffline(true);
      await waitUntil('the server let Roamer go', async () => {
        const s = await server.snapshot();
        return { ok: !s.players.some((p) => p.name === 'Roamer'), seen: s.players };
      });
      await sleep(500);
      await phone.context.setOffline(false);
      await waitUntil('Roamer back in the game, as "you" on the page, score kept', async () => {
        const view = await readPage(phone);
        const row = view.rows.find((r) => r.name === 'Roamer');
        return { ok: row?.you === true && row.score === before.score, seen: view.rows };
      });
      assert.equal(await phone.page.locator('[data-testid="join"]').isVisible(), false, 'no join form for a player in the game');
      const { result } = await clickTarget(phone);
      assert.match(result, /^(Hit!|Too late|Missed)/, 'and a click counts again');
      // Errors the browser logs while offline (failed polls) are expected here.
      phone.consoleErrors = phone.consoleErrors.filter((m) => !/ERR_INTERNET_DISCONNECTED/.test(m));
      assertNoPageProblems(phone, assert);
    } catch (err) {
      await saveArtifacts(t.name, [phone]);
      err.message += `\n(server log tail)\n${server.stderrTail()}`;
      throw err;
    } finally {
      await phone.context.close();
      await server.stop();
    }
  });
});
