// # The lecturer's comparison page in a real browser
//
// One server and one headless Chromium for the file. /compare.html opens four spectators, one
// per transport; race mode joins one bot per transport (with `credentials: 'omit'`, Bearer tokens
// and one-time tickets) that clicks the target 150 ms after its own pane showed it.
//
// 1. All four panes receive every event (missed 0, in step with the server), the summary table
//    and the chart (in the Figures drawer) fill in, and race mode produces wins — credited by
//    the server to the bots' own transports.
// 2. The lecturer controls work from their drawer: a wrong token is refused and its error goes
//    once the right one is typed; a simulated delay on one transport shows up in that pane's
//    last-10-s delivery lag within seconds; a shorter AJAX interval makes the AJAX pane poll
//    faster at once; pause stops new rounds on every pane; stopping the race removes the bots.
// (The projector layout, race fairness, fixed-length races, reset, expiry, keyboard play and
// the protocol labels: projector.test.mjs.)
//
// Run: `npm test` (after `cargo build` in the repository root, or with CLICKGAME_BIN set).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  TRANSPORTS,
  assertNoPageProblems,
  launchBrowser,
  openPlayer,
  readPane,
  saveArtifacts,
  saveScreenshot,
  sleep,
  startServer,
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

const BOTS = { ajax: 'Bot AJAX', longpoll: 'Bot LongPoll', sse: 'Bot SSE', websocket: 'Bot WebSocket' };

async function readCompare(page) {
  return page.evaluate(() => {
    const wins = Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="race-wins-"]')].map((el) => [
        el.dataset.testid.replace('race-wins-', ''),
        Number(el.textContent),
      ]),
    );
    const summary = Object.fromEntries(
      [...document.querySelectorAll('[data-testid="summary-table"] tbody tr')].map((tr) => [
        tr.dataset.transport,
        Object.fromEntries([...tr.querySelectorAll('td')].map((td) => [td.dataset.col, td.textContent])),
      ]),
    );
    const drawerOpen = document.body.dataset.drawer ?? null;
    const dots = Object.fromEntries(
      [...document.querySelectorAll('[data-testid="lag-chart"] .series')].map((g) => [
        g.dataset.transport,
        g.querySelectorAll('circle').length,
      ]),
    );
    return {
      wins,
      summary,
      dots,
      drawerOpen,
      gameState: document.querySelector('[data-testid="game-state"]')?.dataset.state,
      adminMessage: document.querySelector('[data-testid="admin-message"]')?.textContent ?? '',
      raceToggle: document.querySelector('[data-testid="race-toggle"]')?.textContent,
    };
  });
}

/** Opens a drawer by its tab (js/layout.js DRAWERS), unless it is open already. */
async function openDrawer(page, id) {
  const open = await page.evaluate(() => document.body.dataset.drawer ?? null);
  if (open !== id) await page.click(`[data-testid="drawer-tab-${id}"]`);
}

/** A pane's figure cell, e.g. figure(page, 'ajax', 'requests') → "12 (9 polls)" (since open). */
function figure(page, transport, name, side = 'client') {
  return page
    .locator(`[data-testid="pane-${transport}"] tr[data-figure="${name}"] td[data-side="${side}"]`)
    .textContent();
}

async function allPanes(page) {
  const panes = {};
  for (const t of TRANSPORTS) panes[t] = await readPane(page, t);
  return panes;
}

describe('the comparison page', () => {
  test('four panes follow the game, race mode produces wins, the lecturer controls work', { timeout: 60_000 }, async (t) => {
    const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'lecturer', {
      viewport: { width: 1280, height: 800 },
    });
    const { page } = lecturer;
    try {
      await waitUntil('all four panes connected', async () => {
        const panes = await allPanes(page);
        return { ok: TRANSPORTS.every((tr) => panes[tr]?.connection === 'connected'), seen: panes };
      });

      // ---- race mode: four bots, identical reflexes, until stopped ----
      await page.fill('[data-testid="race-rounds"]', '0');
      await page.click('[data-testid="race-toggle"]');
      const { view } = await waitUntil('race wins and events on every pane', async () => {
        const view = await readCompare(page);
        const panes = await allPanes(page);
        const botWins = TRANSPORTS.reduce((sum, tr) => sum + view.wins[tr], 0);
        const ok = botWins >= 6 && TRANSPORTS.every((tr) => panes[tr].events >= 8);
        return { ok, view, seen: { wins: view.wins, panes } };
      }, { timeout: 20_000 });
      assert.equal(view.raceToggle, 'Stop race');
      assert.equal(view.wins.others, 0, 'nobody but the bots played');
      // Pushed transports see a target first; they should win most rounds.
      assert.ok(view.wins.websocket + view.wins.sse + view.wins.longpoll > view.wins.ajax,
        `push transports should win more rounds than AJAX polling: ${JSON.stringify(view.wins)}`);

      // The server credits every bot's wins to the bot's own transport (tickets and Bearer
      // tokens identified them), and the page's tally agrees with the server's.
      const snapshot = await server.snapshot();
      for (const tr of TRANSPORTS) {
        const bot = snapshot.players.find((p) => p.name === BOTS[tr]);
        assert.ok(bot, `${BOTS[tr]} is in the game`);
        assert.equal(bot.transport, tr, `${BOTS[tr]} plays over ${tr}`);
      }
      await openDrawer(page, 'figures');
      const { shown } = await waitUntil('the summary in the Figures drawer filled in', async () => {
        const shown = await readCompare(page);
        const lag = /^(\d+|≈ 0) \/ (\d+|≈ 0)( \*)?$/;
        const ok = TRANSPORTS.every((tr) => lag.test(shown.summary[tr]?.['lag-window']) && lag.test(shown.summary[tr]?.['lag-total']));
        return { ok, shown, seen: shown.summary };
      });
      for (const tr of TRANSPORTS) {
        assert.ok(snapshot.transports[tr].wins >= view.wins[tr], `server's ${tr} wins ≥ the page's earlier count`);
        assert.ok(shown.dots[tr] > 0, `${tr}: dots in the lag chart`);
      }
      assert.match(shown.summary.websocket['wasted-window'], /^n\/a$/);
      assert.match(shown.summary.ajax['rpe-total'], /^\d+\.\d\d$/);
      assert.match(shown.summary.ajax['bpe-window'], /^\d+$/);

      // ---- lecturer controls, in their drawer ----
      await openDrawer(page, 'controls');
      await page.fill('[data-testid="admin-token"]', 'not-the-token');
      await page.click('[data-testid="admin-pause"]');
      await waitUntil('a wrong token is refused', async () => {
        const v = await readCompare(page);
        return { ok: /refused/.test(v.adminMessage), seen: v.adminMessage };
      });
      await page.fill('[data-testid="admin-token"]', server.adminToken);
      assert.equal((await readCompare(page)).adminMessage, '', 'the old token\'s error goes once another is typed');

      // 300 ms simulated delay on the WebSocket: its pane's lag follows.
      await page.locator('[data-testid="admin-delay-websocket"]').evaluate((input) => {
        input.value = '300';
        input.dispatchEvent(new Event('input', { bubbles: true }));
        input.dispatchEvent(new Event('change', { bubbles: true }));
      });
      await waitUntil('a success message replaces the error', async () => {
        const v = await readCompare(page);
        return { ok: /300 ms delay/.test(v.adminMessage), seen: v.adminMessage };
      });
      // Within seconds in the last-10-s figure, while the since-open mean still remembers the
      // fast minutes before.
      await waitUntil('the WebSocket pane\'s last-10-s lag shows the 300 ms delay', async () => {
        const lag = await figure(page, 'websocket', 'lag', 'window');
        const total = await figure(page, 'websocket', 'lag');
        return { ok: Number(lag.split(' / ')[0]) >= 250, seen: { lag, total } };
      }, { timeout: 12_000 });
      const [windowLag, totalLag] = await Promise.all([figure(page, 'websocket', 'lag', 'window'), figure(page, 'websocket', 'lag')]);
      const mean = (text) => Number(text.split(' / ')[0].replace('≈ 0', '0'));
      assert.ok(mean(totalLag) < mean(windowLag), `since open still averages in the fast rounds: ${totalLag} vs ${windowLag}`);
      const stats = await (await fetch(`${server.url}/api/stats`)).json();
      assert.equal(stats.admin.delay_ms.websocket, 300, 'the server applies the delay');
      await page.locator('[data-testid="admin-delay-websocket"]').evaluate((input) => {
        input.value = '0';
        input.dispatchEvent(new Event('change', { bubbles: true }));
      });

      // A 200 ms AJAX interval: the AJAX pane adopts it at once.
      await page.fill('[data-testid="admin-poll-interval"]', '200');
      await page.click('[data-testid="admin-poll-apply"]');
      await waitUntil('the server reports the new interval', async () => {
        const s = await (await fetch(`${server.url}/api/stats`)).json();
        return { ok: s.admin.poll_interval_ms === 200, seen: s.admin };
      });
      await sleep(600); // the poll that brings the `settings` event
      const polls = async () => Number(/\((\d+) polls?\)/.exec(await figure(page, 'ajax', 'requests'))?.[1]);
      const before = await polls();
      await sleep(2000);
      const fast = (await polls()) - before;
      assert.ok(fast >= 6, `AJAX pane polled ${fast} times in 2 s at a 200 ms interval`);
      await page.fill('[data-testid="admin-poll-interval"]', '1000');
      await page.click('[data-testid="admin-poll-apply"]');

      // Pause: every pane shows it, and no new round starts.
      await page.click('[data-testid="admin-pause"]');
      await waitUntil('the page shows the game paused', async () => {
        const v = await readCompare(page);
        const banner = await page.locator('[data-testid="pause-banner"]').isVisible();
        return { ok: v.gameState === 'paused' && banner, seen: { state: v.gameState, banner } };
      });
      await sleep(300); // a round live at the pause may still be won; no new one may start
      const pausedAt = (await server.snapshot()).round?.number ?? 0;
      await sleep(1000);
      assert.equal((await server.snapshot()).round?.number ?? 0, pausedAt, 'no new rounds while paused');
      await page.click('[data-testid="admin-resume"]');
      await waitUntil('running again', async () => {
        const v = await readCompare(page);
        const banner = await page.locator('[data-testid="pause-banner"]').isVisible();
        return { ok: v.gameState === 'running' && !banner, seen: v.gameState };
      });

      // The screenshot for the README: the projector screen at 1280 × 720 mid-race — panes with
      // their boards and "+N ms" labels, the race tallies — with no drawer open.
      await page.keyboard.press('Escape');
      await page.setViewportSize({ width: 1280, height: 720 });
      await waitUntil('a live target on the screen', async () => {
        const live = await page.evaluate(() => document.querySelectorAll('.pane[data-round-state="live"]').length);
        return { ok: live >= 3, seen: live };
      });
      await saveScreenshot(page, 'compare');

      // Stopping the race: the bots leave the game.
      await page.click('[data-testid="race-toggle"]');
      await waitUntil('the bots left', async () => {
        const s = await server.snapshot();
        return { ok: !s.players.some((p) => p.name.startsWith('Bot ')), seen: s.players.map((p) => p.name) };
      });

      const panes = await allPanes(page);
      for (const tr of TRANSPORTS) assert.equal(panes[tr].missed, 0, `${tr} pane missed events`);
      assertNoPageProblems(lecturer, assert);
    } catch (err) {
      await saveArtifacts(t.name, [lecturer]);
      err.message += `\n(server log tail)\n${server.stderrTail()}`;
      throw err;
    } finally {
      await lecturer.context.close();
    }
  });
});

describe('the comparison page without --lab', () => {
  test('with the admin token typed in, it asks nothing of the lab: no 404s in the network tab', { timeout: 30_000 }, async (t) => {
    // The lecturer shows the network tab while explaining polling; a red 404 for
    // /api/admin/lab every 3 s there is noise, and wrong: the page knows from /api/stats that
    // this server has no lab.
    const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'lecturer', { viewport: { width: 1280, height: 720 } });
    const { page } = lecturer;
    const failed = [];
    page.on('response', (res) => {
      if (res.status() >= 400) failed.push(`${res.status()} ${new URL(res.url()).pathname}`);
    });
    try {
      await openDrawer(page, 'controls');
      await page.fill('[data-testid="admin-token"]', server.adminToken);
      await page.keyboard.press('Escape');
      await sleep(4000); // longer than the switches' 3 s refresh
      assert.deepEqual(failed, [], 'requests that failed');
      for (const id of ['lab-switches', 'lab-log']) {
        assert.equal(await page.locator(`[data-testid="drawer-tab-${id}"]`).isVisible(), false, `no ${id} tab without --lab`);
      }
      assertNoPageProblems(lecturer, assert);
    } catch (err) {
      await saveArtifacts(t.name, [lecturer]);
      throw err;
    } finally {
      await lecturer.context.close();
    }
  });
});
