// # The projector tells the right lesson (issue 11), in a real browser
//
// One server (rounds expire after 2 s, so idle rounds end quickly; with `--lab`, so the lab's
// two drawers are on the page too, every defence on) and one headless Chromium.
//
// 1. The projector screen: at 1280 × 720 and 1920 × 1080 every element js/layout.js lists as
//    ON_SCREEN is inside the viewport with no scrolling, boards are big, tallies and labels are
//    legible, pause is on the screen, and every drawer in DRAWERS opens inside the viewport.
// 2. Race fairness: a race started while a round is live leaves that round alone and starts with
//    the next, fresh one; a race of N rounds counts exactly N; reset zeroes every tally.
// 3. Round expiry is visible on `/` and on every pane.
// 4. Keyboard play; the dropdown switches on commit, not per arrow key.
// 5. The protocol labels, and the warning at six held connections over HTTP/1.1.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import { DRAWERS, ON_SCREEN, WHEN_PAUSED, drawerTestids } from '../web/js/layout.js';
import {
  TRANSPORTS,
  assertNoPageProblems,
  join,
  launchBrowser,
  openPlayer,
  readPage,
  readPane,
  saveArtifacts,
  sleep,
  startServer,
  waitUntil,
} from './helpers.mjs';

const ROUND_TIMEOUT_MS = 2000;

let server;
let browser;

before(async () => {
  server = await startServer({
    args: ['--round-timeout-ms', String(ROUND_TIMEOUT_MS), '--lab', '--lab-attacker-addr', '127.0.0.1:0'],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Opens `path` in its own context at `viewport`, runs `body(player)`, saves artifacts on failure. */
async function withPage(t, path, viewport, body, label = 'page') {
  const player = await openPlayer(browser, `${server.url}${path}`, label, { viewport });
  try {
    await body(player);
    assertNoPageProblems(player, assert);
  } catch (err) {
    await saveArtifacts(t.name, [player]);
    err.message += `\n(server log tail)\n${server.stderrTail()}`;
    throw err;
  } finally {
    await player.context.close();
  }
}

async function panesConnected(page) {
  await waitUntil('all four panes connected', async () => {
    const panes = await Promise.all(TRANSPORTS.map((t) => readPane(page, t)));
    return { ok: panes.every((p) => p?.connection === 'connected'), seen: panes };
  });
}

/** The race table's data attributes and its numbers. */
async function readRace(page) {
  return page.evaluate(() => {
    const table = document.querySelector('[data-testid="race-table"]');
    const wins = Object.fromEntries(
      [...table.querySelectorAll('[data-testid^="race-wins-"]')].map((el) => [el.dataset.testid.slice('race-wins-'.length), Number(el.textContent)]),
    );
    return { ...table.dataset, wins, status: document.querySelector('[data-testid="race-status"]').textContent };
  });
}

async function startRace(page, rounds) {
  await page.fill('[data-testid="race-rounds"]', String(rounds));
  await page.click('[data-testid="race-toggle"]');
}

/** Every event still in the server's history (a spectator's poll from seq 0). */
async function history() {
  return (await (await fetch(`${server.url}/api/poll?since=0`)).json()).events;
}

async function adminToken(page) {
  await page.click('[data-testid="drawer-tab-controls"]');
  await page.fill('[data-testid="admin-token"]', server.adminToken);
}

/** Where each testid is and whether it lies inside the viewport. */
async function placements(page, testids) {
  return page.evaluate((ids) => ids.map((id) => {
    const el = document.querySelector(`[data-testid="${id}"]`);
    if (!el) return { id, missing: true };
    const r = el.getBoundingClientRect();
    const visible = r.width > 0 && r.height > 0 && getComputedStyle(el).visibility !== 'hidden';
    const inside = r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth + 0.5 && r.bottom <= window.innerHeight + 0.5;
    return { id, visible, inside, box: [Math.round(r.left), Math.round(r.top), Math.round(r.right), Math.round(r.bottom)] };
  }), testids);
}

describe('the projector screen', () => {
  for (const [width, height] of [[1280, 720], [1920, 1080]]) {
    test(`at ${width} × ${height} the panes, boards, race tallies and running/paused fit without scrolling; drawers open inside`, { timeout: 40_000 }, async (t) => {
      await withPage(t, '/compare.html', { width, height }, async ({ page }) => {
        await panesConnected(page);
        const scroll = await page.evaluate(() => ({
          height: document.documentElement.scrollHeight,
          width: document.documentElement.scrollWidth,
        }));
        assert.ok(scroll.height <= height && scroll.width <= width, `no scrolling: ${JSON.stringify(scroll)}`);
        const placed = await placements(page, ON_SCREEN.map((e) => e.testid));
        for (const p of placed) {
          assert.ok(!p.missing, `${p.id} is on the page`);
          assert.ok(p.visible && p.inside, `${p.id} visible inside the ${width} × ${height} viewport: ${JSON.stringify(p)}`);
        }

        // Boards large enough for the back of the room: at least a quarter of the pane's width
        // (in fact nearly all of it).
        const sizes = await page.evaluate(() => [...document.querySelectorAll('.pane')].map((pane) => ({
          pane: pane.getBoundingClientRect().width,
          board: pane.querySelector('.mini-board').getBoundingClientRect().width,
        })));
        for (const { pane, board } of sizes) assert.ok(board >= 0.8 * pane, `board ${board} px in a ${pane} px pane`);

        // Legible: no text under 12 px on the screen, and no tally or label that wraps.
        const text = await page.evaluate(() => {
          const small = [];
          const wrapped = [];
          for (const el of document.querySelectorAll('.race-strip *, .pane-head *, .pane-stats, .top *')) {
            if (!el.childNodes.length || ![...el.childNodes].some((n) => n.nodeType === 3 && n.textContent.trim())) continue;
            const r = el.getBoundingClientRect();
            if (r.width === 0) continue;
            const size = parseFloat(getComputedStyle(el).fontSize);
            if (size < 12) small.push(`${el.tagName}.${el.className}: ${size}px`);
          }
          for (const el of document.querySelectorAll('.race-table th, .race-table td, .pane-title, .pane-proto')) {
            // The lines its text occupies (text nodes only: a colour swatch sits a little lower).
            const lines = new Set();
            const walker = document.createTreeWalker(el, NodeFilter.SHOW_TEXT);
            for (let node = walker.nextNode(); node; node = walker.nextNode()) {
              const range = document.createRange();
              range.selectNodeContents(node);
              for (const r of range.getClientRects()) if (r.width > 0) lines.add(Math.round(r.top));
            }
            if (lines.size > 1) wrapped.push(el.textContent);
          }
          // Cut off with an ellipsis: "ws: · HTTP/1.1 up…" hides the very point of the label.
          const cut = [...document.querySelectorAll('.pane-title, .pane-proto')]
            .filter((el) => el.scrollWidth > el.clientWidth)
            .map((el) => el.textContent);
          return { small, wrapped, cut };
        });
        assert.deepEqual(text.small, [], 'text smaller than 12 px');
        assert.deepEqual(text.wrapped, [], 'tallies and labels that wrap');
        assert.deepEqual(text.cut, [], 'pane titles and protocol labels cut off');

        // Every drawer opens inside the viewport, over the panes, without lengthening the page.
        for (const drawer of DRAWERS) {
          const ids = drawerTestids(drawer);
          await page.click(`[data-testid="${ids.toggle}"]`);
          const [box] = await placements(page, [ids.drawer]);
          assert.ok(box.visible && box.inside, `drawer ${drawer.id} inside the viewport: ${JSON.stringify(box)}`);
          const after = await page.evaluate(() => document.documentElement.scrollHeight);
          assert.ok(after <= height, `opening ${drawer.id} does not make the page scroll`);
          if (drawer.id === 'figures') {
            const ticks = await page.evaluate(() =>
              [...document.querySelectorAll('[data-testid="lag-chart"] .tick')].map((t) => t.getBoundingClientRect().height));
            assert.ok(ticks.length > 0 && Math.min(...ticks) >= 12, `chart labels ≥ 12 px tall: ${ticks.map(Math.round)}`);
          }
          await page.keyboard.press('Escape');
          assert.equal(await page.locator(`[data-testid="${ids.drawer}"]`).isVisible(), false, `Escape closes ${drawer.id}`);
        }

        // Paused: on the screen, next to everything else, impossible to miss.
        await server.admin('pause');
        await waitUntil('the pause banner', async () => {
          const state = await page.locator('[data-testid="game-state"]').getAttribute('data-state');
          return { ok: state === 'paused' && (await page.locator('[data-testid="pause-banner"]').isVisible()), seen: state };
        });
        const paused = await placements(page, [...ON_SCREEN, ...WHEN_PAUSED].map((e) => e.testid));
        for (const p of paused) assert.ok(p.visible && p.inside, `paused: ${p.id} inside the viewport: ${JSON.stringify(p)}`);
        const banner = await page.locator('[data-testid="pause-banner"]').evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
        assert.ok(banner >= 28, `the banner is large: ${banner}px`);
        await server.admin('resume');
        await waitUntil('running again', async () => ({
          ok: (await page.locator('[data-testid="game-state"]').getAttribute('data-state')) === 'running',
          seen: 'paused',
        }));
      });
    });
  }
});

describe('race mode is fair and counts exactly its rounds', () => {
  test('a race started while a round is live leaves that round alone and starts with the next, fresh one', { timeout: 40_000 }, async (t) => {
    await withPage(t, '/compare.html', { width: 1280, height: 720 }, async ({ page }) => {
      await panesConnected(page);
      // A fresh round nobody has clicked: it is live when the race starts.
      const { live } = await waitUntil('a round just started', async () => {
        const snap = await server.snapshot();
        const r = snap.round;
        const age = r ? Date.now() - r.started_ts : Infinity;
        return { ok: r && r.winner === null && !r.expired && age < 500, live: r?.number, seen: { r, age } };
      });
      await startRace(page, 2);
      const race = (await waitUntil('the race is over', async () => {
        const race = await readRace(page);
        return { ok: race.state === 'over', race, seen: race };
      }, { timeout: 20_000 })).race;
      assert.equal(Number(race.startAfter), live, 'the live round is not the race\'s');
      assert.equal(Number(race.first), live + 1, 'the race starts with the next round');
      // Nobody played the live round: it ended by itself, not by a bot's click fired at once.
      const events = await history();
      const end = events.find((e) => (e.type === 'round_won' || e.type === 'round_expired') && e.round === live);
      assert.equal(end?.type, 'round_expired', `round ${live} was left alone: ${JSON.stringify(end)}`);
      const firstWin = events.find((e) => e.type === 'round_won' && e.round === live + 1);
      assert.ok(firstWin?.name.startsWith('Bot '), 'a bot won the first race round, which all bots saw arrive');
    });
  });

  test('a race of 3 rounds counts exactly those 3, the bots leave, and reset zeroes every tally', { timeout: 40_000 }, async (t) => {
    await withPage(t, '/compare.html', { width: 1280, height: 720 }, async ({ page }) => {
      await panesConnected(page);
      await startRace(page, 3);
      const race = (await waitUntil('the race is over', async () => {
        const race = await readRace(page);
        return { ok: race.state === 'over', race, seen: race };
      }, { timeout: 25_000 })).race;
      const cells = Object.values(race.wins).reduce((a, b) => a + b, 0);
      assert.equal(cells, 3, `every counted round in exactly one cell: ${JSON.stringify(race.wins)}`);
      assert.equal(Number(race.played), 3);
      assert.equal(Number(race.last) - Number(race.first), 2, 'three consecutive rounds');
      // The table agrees with the server's own record of those rounds.
      const events = await history();
      for (let round = Number(race.first); round <= Number(race.last); round += 1) {
        assert.ok(events.some((e) => e.round === round && (e.type === 'round_won' || e.type === 'round_expired')), `round ${round} ended`);
      }
      const botWins = events.filter((e) => e.type === 'round_won' && e.round >= Number(race.first) && e.round <= Number(race.last));
      for (const transport of TRANSPORTS) {
        const wins = botWins.filter((e) => e.name === { ajax: 'Bot AJAX', longpoll: 'Bot LongPoll', sse: 'Bot SSE', websocket: 'Bot WebSocket' }[transport]);
        assert.equal(race.wins[transport], wins.length, `${transport}: the page's wins are the server's`);
        if (wins.length) {
          const mean = wins.reduce((a, e) => a + e.reaction_ms, 0) / wins.length;
          const shown = await page.locator(`[data-testid="race-mean-${transport}"]`).textContent();
          assert.equal(shown, `${Math.round(mean)} ms`, `${transport}: mean of the server's reaction_ms`);
        }
      }
      await waitUntil('the bots left', async () => {
        const s = await server.snapshot();
        return { ok: !s.players.some((p) => p.name.startsWith('Bot ')), seen: s.players.map((p) => p.name) };
      });

      await adminToken(page);
      await page.click('[data-testid="admin-reset"]');
      await waitUntil('every tally on the page is 0', async () => {
        const after = await readRace(page);
        const sum = Object.values(after.wins).reduce((a, b) => a + b, 0);
        const means = await page.evaluate(() => [...document.querySelectorAll('[data-testid^="race-mean-"]')].map((e) => e.textContent));
        return { ok: sum === 0 && after.total === '0' && means.every((m) => m === '' || m === '–'), seen: { after, means } };
      });
      const snap = await server.snapshot();
      for (const transport of TRANSPORTS) assert.equal(snap.transports[transport].wins, 0, `server's ${transport} tally`);
    });
  });
});

describe('round expiry, keyboard play, the dropdown', () => {
  test('a round nobody hits expires: the target disappears on / and every pane says so', { timeout: 30_000 }, async (t) => {
    const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'lecturer', { viewport: { width: 1280, height: 720 } });
    const student = await openPlayer(browser, server.url, 'student');
    try {
      const { round } = await waitUntil('/ shows a round expired', async () => {
        const state = await student.page.locator('[data-testid="round-status"]').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
        return { ok: state.state === 'expired', round: Number(state.round), seen: state };
      }, { timeout: ROUND_TIMEOUT_MS + 5000 });
      assert.match(await student.page.locator('[data-testid="round-status"]').textContent(), /expired: nobody hit it/);
      assert.equal(await student.page.locator('[data-testid="target"]').isVisible(), false, 'the target is gone');
      await waitUntil('every pane marks it expired', async () => {
        const panes = await lecturer.page.evaluate(() => [...document.querySelectorAll('.pane')].map((p) => ({
          state: p.dataset.roundState,
          round: Number(p.dataset.round),
          last: p.querySelector('[data-role="last-event"]').textContent,
        })));
        const ok = panes.every((p) => p.round > round || (p.state === 'expired' && /expired/.test(p.last)));
        return { ok, seen: panes };
      }, { timeout: 5000 });
      for (const p of [lecturer, student]) assertNoPageProblems(p, assert);
    } catch (err) {
      await saveArtifacts(t.name, [lecturer, student]);
      throw err;
    } finally {
      await lecturer.context.close();
      await student.context.close();
    }
  });

  test('the target is reachable by Tab, and Enter or Space hits its centre', { timeout: 30_000 }, async (t) => {
    await withPage(t, '/', { width: 1100, height: 900 }, async (player) => {
      const { page } = player;
      await join(player, 'Keys');
      // Keyboard only: Tab until the board (or its target) has the focus.
      let focused = null;
      for (let i = 0; i < 40 && !['target', 'board'].includes(focused); i += 1) {
        await page.keyboard.press('Tab');
        focused = await page.evaluate(() => document.activeElement?.dataset?.testid ?? null);
      }
      assert.ok(['target', 'board'].includes(focused), `Tab reaches the board: ${focused}`);
      let previous = null;
      for (const key of ['Enter', ' ']) {
        // The focus stays on the board from round to round (a hidden target hands it back).
        const handle = await page.waitForFunction((prev) => {
          const target = document.querySelector('[data-testid="target"]');
          const live = target && !target.classList.contains('is-hidden') && target.dataset.round !== prev;
          return live ? target.dataset.round : false;
        }, previous);
        previous = await handle.jsonValue();
        assert.ok(['target', 'board'].includes(await page.evaluate(() => document.activeElement?.dataset?.testid)), 'still focused');
        await page.evaluate(() => {
          document.querySelector('[data-testid="result"]').textContent = '';
        });
        await page.keyboard.press(key);
        const { view } = await waitUntil(`${JSON.stringify(key)}: a hit`, async () => {
          const view = await readPage(player);
          return { ok: Boolean(view.result), view, seen: view.result };
        });
        assert.match(view.result, /^Hit! Round \d+/);
      }
      const me = (await server.snapshot()).players.find((p) => p.name === 'Keys');
      assert.equal(me.score, 2, 'two rounds won by keyboard');
      assert.equal(me.misses, 0, 'at the centre: never a miss');
    });
  });

  test('arrow keys walk the transport dropdown without starting a transport per key; it switches once they settle', { timeout: 30_000 }, async (t) => {
    await withPage(t, '/?transport=websocket', { width: 1100, height: 900 }, async (player) => {
      const { page } = player;
      await waitUntil('connected over the WebSocket', async () => {
        const view = await readPage(player);
        return { ok: view.status === 'websocket: connected', seen: view.status };
      });
      const before = { ...player.downstream };
      await page.focus('[data-testid="transport"]');
      for (let i = 0; i < 3; i += 1) await page.keyboard.press('ArrowUp'); // → sse → longpoll → ajax
      assert.equal(await page.locator('[data-testid="transport"]').inputValue(), 'ajax');
      await sleep(300);
      assert.equal((await readPage(player)).status, 'websocket: connected', 'nothing switched while the keys moved');
      await waitUntil('switched to AJAX once the keys settled', async () => {
        const view = await readPage(player);
        return { ok: view.status === 'ajax: connected', seen: view.status };
      }, { timeout: 4000 });
      assert.equal(player.downstream.sse, before.sse, 'no SSE run was started on the way');
      assert.equal(player.downstream.longpoll, before.longpoll, 'no long polling run either');
      const runs = await page.$$eval('[data-testid="history"] tr[data-transport]', (rows) => rows.map((r) => r.dataset.transport).sort());
      assert.deepEqual(runs, ['ajax', 'websocket'], 'one run per transport actually used');
      // Enter commits at once.
      await page.keyboard.press('ArrowDown');
      await page.keyboard.press('Enter');
      await waitUntil('Enter switches at once', async () => {
        const view = await readPage(player);
        return { ok: view.status === 'longpoll: connected', seen: view.status };
      }, { timeout: 800 });
    });
  });
});

describe('which protocol am I on', () => {
  test('over plain HTTP every page and pane says HTTP/1.1, http: and ws:', { timeout: 30_000 }, async (t) => {
    await withPage(t, '/compare.html', { width: 1280, height: 720 }, async ({ page }) => {
      await panesConnected(page);
      const label = await waitUntil('the page\'s protocol label', async () => {
        const d = await page.locator('[data-testid="page-protocol"]').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
        return { ok: d.protocol === 'HTTP/1.1', d, seen: d };
      });
      assert.deepEqual([label.d.http, label.d.ws], ['http:', 'ws:']);
      assert.match(label.d.text, /^HTTP\/1\.1 · http: · ws:$/);
      await waitUntil('each pane\'s label', async () => {
        const panes = await page.evaluate(() => Object.fromEntries([...document.querySelectorAll('.pane')].map((p) => [
          p.dataset.transport, { protocol: p.dataset.protocol, scheme: p.dataset.scheme, text: p.querySelector('[data-role="proto"]').textContent },
        ])));
        const ok = ['ajax', 'longpoll', 'sse'].every((t) => panes[t].protocol === 'HTTP/1.1' && panes[t].scheme === 'http:') &&
          panes.websocket.scheme === 'ws:' && /upgrade/.test(panes.websocket.text);
        return { ok, seen: panes };
      });
    });
    await withPage(t, '/', { width: 1100, height: 900 }, async ({ page }) => {
      await waitUntil('/ says it too', async () => {
        const d = await page.locator('[data-testid="page-protocol"]').evaluate((el) => ({ ...el.dataset, text: el.textContent }));
        return { ok: d.protocol === 'HTTP/1.1' && d.http === 'http:' && d.ws === 'ws:' && /websocket over ws:/.test(d.text), seen: d };
      });
    });
  });

  test('six SSE streams over HTTP/1.1, in six tabs: every tab warns that the per-origin limit is reached', { timeout: 60_000 }, async (t) => {
    const context = await browser.newContext({ viewport: { width: 900, height: 700 } });
    const pages = [];
    try {
      const open = async () => {
        const page = await context.newPage();
        await page.goto(`${server.url}/?transport=sse`);
        await waitUntil(`tab ${pages.length + 1} streaming`, async () => {
          const status = await page.locator('[data-testid="status"]').textContent();
          return { ok: status === 'sse: connected', seen: status };
        }, { timeout: 15_000 });
        pages.push(page);
      };
      for (let i = 0; i < 5; i += 1) await open();
      await sleep(2500); // a census heartbeat
      assert.equal(await pages[0].locator('[data-testid="conn-warning"]').isVisible(), false, 'five streams: no warning yet');
      await open();
      for (const [i, page] of [[0, pages[0]], [5, pages[5]]]) {
        await waitUntil(`tab ${i + 1} warns`, async () => {
          const text = await page.locator('[data-testid="conn-warning"]').textContent();
          const visible = await page.locator('[data-testid="conn-warning"]').isVisible();
          return { ok: visible && /holds 6 connections.*at most 6 per origin.*https:\/\//s.test(text), seen: { visible, text } };
        }, { timeout: 8000 });
      }
    } catch (err) {
      err.message += `\n(server log tail)\n${server.stderrTail()}`;
      throw err;
    } finally {
      await context.close();
    }
  });
});
