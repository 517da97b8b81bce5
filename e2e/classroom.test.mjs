// # The classroom in a real browser: the join card, the lecturer's room controls, a phone
//
// 1. /compare.html of a server started with `--lan --lan-addr 192.0.2.10 --lan-addr
//    2001:db8::10` (documentation addresses: only ever sent to loopback) shows a join card in a
//    drawer: the first plain-HTTP LAN URL in large type and its QR code as an <img> that the
//    CSP lets load; opening the drawer moves none of the panes.
// 2. The lecturer removes a player, renames one and closes joining from the compare page's
//    controls; the players' own pages follow through the server's events.
// 3. A phone (390×844, touch, mobile emulation) plays a full round with taps: the board fills
//    the width, the target answers the touch itself (pointer events, not a click after the
//    finger lifts), and the dropdown, figures and wire inspector stack below it without
//    horizontal scrolling.
//
// Run: `npm test` (after `cargo build` in the repository root, or with CLICKGAME_BIN set).

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';

import {
  assertNoPageProblems,
  join,
  launchBrowser,
  openPlayer,
  readPage,
  rowOf,
  saveArtifacts,
  saveScreenshot,
  startServer,
  waitUntil,
} from './helpers.mjs';

let browser;

before(async () => {
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
});

/** Runs `body(server)` against a fresh server; keeps screenshots of `pages()` if it fails. */
async function withServer(t, options, body) {
  const server = await startServer(options);
  const players = [];
  try {
    await body(server, players);
    for (const p of players) assertNoPageProblems(p, assert);
  } catch (err) {
    await saveArtifacts(t.name, players);
    err.message += `\n(server log tail)\n${server.stderrTail()}`;
    throw err;
  } finally {
    for (const p of players) await p.context.close();
    await server.stop();
  }
}

/** Where the panes are: what a drawer must not move. */
function paneBoxes(page) {
  return page.evaluate(() =>
    [...document.querySelectorAll('[data-testid^="pane-"]')].map((p) => {
      const r = p.getBoundingClientRect();
      return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)];
    }));
}

describe('the join card on /compare.html', () => {
  test('shows the first LAN URL in large type with its QR code, in a drawer that moves nothing', { timeout: 30_000 }, async (t) => {
    const lan = ['--lan', '--lan-addr', '192.0.2.10', '--lan-addr', '2001:db8::10'];
    await withServer(t, { tls: true, args: lan }, async (server, players) => {
      const port = new URL(server.url).port;
      const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'projector', { viewport: { width: 1280, height: 720 } });
      players.push(lecturer);
      const { page } = lecturer;
      const want = `http://192.0.2.10:${port}/`;
      // Closed, the drawer's label already says where to join.
      await waitUntil('the drawer label to name the join URL', async () => {
        const label = await page.locator('[data-testid="join-drawer-toggle"]').textContent();
        return { ok: label.includes(want), seen: label };
      });
      await waitUntil('the panes to connect', async () => {
        const states = await page.evaluate(() =>
          [...document.querySelectorAll('[data-testid^="pane-"]')].map((p) => p.dataset.connection));
        return { ok: states.length === 4 && states.every((s) => s === 'connected'), seen: states };
      });
      const before = await paneBoxes(page);
      const scroll = await page.evaluate(() => document.documentElement.scrollHeight);
      assert.equal(await page.locator('[data-testid="join-url"]').isVisible(), false, 'closed at first');

      await page.click('[data-testid="join-drawer-toggle"]');
      const url = page.locator('[data-testid="join-url"]');
      await url.waitFor({ state: 'visible' });
      assert.equal(await url.textContent(), want);
      // Large type: readable from the back of the room.
      const size = await url.evaluate((el) => parseFloat(getComputedStyle(el).fontSize));
      assert.ok(size >= 40, `the URL is ${size}px`);
      const qr = page.locator('[data-testid="join-qr"]');
      await waitUntil('the QR code image to load', async () => {
        const loaded = await qr.evaluate((img) => img.complete && img.naturalWidth > 0);
        return { ok: loaded, seen: loaded };
      });
      assert.equal(await qr.evaluate((img) => img.tagName), 'IMG');
      assert.equal(new URL(await qr.evaluate((img) => img.src)).pathname, '/api/join-qr.svg');
      const box = await qr.boundingBox();
      assert.ok(box.width >= 300 && box.y >= 0 && box.y + box.height <= 720, `QR code at ${JSON.stringify(box)}`);
      // The other name, the HTTPS URL and the fingerprint to compare are there too.
      const card = await page.locator('[data-testid="join-card"]').textContent();
      assert.ok(card.includes(`http://[2001:db8::10]:${port}/`), card);
      assert.ok(card.includes(`https://192.0.2.10:${new URL(server.httpsUrl).port}/`), card);
      const fingerprint = await page.locator('[data-testid="join-fingerprint"]').textContent();
      assert.match(fingerprint, /^([0-9A-F]{2}:){31}[0-9A-F]{2}$/);
      // An overlay: the panes stay where they were, the page grows no taller.
      assert.deepEqual(await paneBoxes(page), before);
      assert.equal(await page.evaluate(() => document.documentElement.scrollHeight), scroll);
      await saveScreenshot(page, 'compare-join-card');
      // `compare.html#join` opens the card at once: what the projector shows at the start.
      await page.goto(`${server.url}/compare.html#join`);
      await page.locator('[data-testid="join-url"]').waitFor({ state: 'visible' });
      assert.equal(await page.locator('[data-testid="join-drawer"]').isVisible(), true, 'the join drawer is open');
      assert.equal(await page.locator('[data-testid="join-drawer-toggle"]').getAttribute('aria-expanded'), 'true');
    });
  });
});

describe('the join card on the projector, at both sizes', () => {
  test('#join opens below the header\'s tabs, and the join URL stays on one line', { timeout: 30_000 }, async (t) => {
    // A realistic address (198.51.100.123: a documentation range, only ever sent to loopback)
    // and a five-digit port make a URL as long as a campus network's.
    const lan = ['--lan', '--lan-addr', '198.51.100.123'];
    await withServer(t, { args: lan }, async (server, players) => {
      const want = `http://198.51.100.123:${new URL(server.url).port}/`;
      for (const [width, height] of [[1280, 720], [1920, 1080]]) {
        const projector = await openPlayer(browser, `${server.url}/compare.html#join`, `projector-${width}`, { viewport: { width, height } });
        players.push(projector);
        const { page } = projector;
        await waitUntil(`${width}: the tab names the join URL`, async () => {
          const label = await page.locator('[data-testid="join-drawer-toggle"]').textContent();
          return { ok: label.includes(want), seen: label };
        });
        await page.locator('[data-testid="join-url"]').waitFor({ state: 'visible' });
        const seen = await page.evaluate(() => {
          const url = document.querySelector('[data-testid="join-url"]');
          const range = document.createRange();
          range.selectNodeContents(url);
          const lines = new Set([...range.getClientRects()].map((r) => Math.round(r.top))).size;
          return {
            lines,
            fontSize: parseFloat(getComputedStyle(url).fontSize),
            right: url.getBoundingClientRect().right,
            tabsBottom: document.querySelector('[data-testid="drawer-tabs"]').getBoundingClientRect().bottom,
            drawerTop: document.querySelector('[data-testid="join-drawer"]').getBoundingClientRect().top,
          };
        });
        assert.equal(seen.lines, 1, `${width}: the URL is broken over ${seen.lines} lines (${JSON.stringify(seen)})`);
        assert.ok(seen.fontSize >= 32, `${width}: the URL is still large: ${seen.fontSize}px`);
        assert.ok(seen.right <= width, `${width}: the URL fits the screen: ${JSON.stringify(seen)}`);
        assert.ok(seen.drawerTop >= seen.tabsBottom, `${width}: the drawer covers the tabs: ${JSON.stringify(seen)}`);
      }
    });
  });
});

describe('the lecturer keeps the room civil', () => {
  test('removes a player, renames one and closes joining from /compare.html', { timeout: 40_000 }, async (t) => {
    await withServer(t, {}, async (server, players) => {
      const ada = await openPlayer(browser, server.url, 'ada');
      const bob = await openPlayer(browser, server.url, 'bob');
      const late = await openPlayer(browser, server.url, 'late');
      const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'lecturer', { viewport: { width: 1280, height: 900 } });
      players.push(ada, bob, late, lecturer);
      await join(ada, 'Ada');
      await join(bob, 'Rude');
      const { page } = lecturer;
      // The lecturer controls are a drawer of the projector screen (js/layout.js).
      await page.click('[data-testid="drawer-tab-controls"]');
      await page.fill('[data-testid="admin-token"]', server.adminToken);
      await waitUntil('both players in the lecturer\'s list', async () => {
        const options = await page.locator('[data-testid="admin-player"] option').allTextContents();
        return { ok: options.length === 2, seen: options };
      });
      const idOf = async (name) => (await server.snapshot()).players.find((p) => p.name === name).id;

      // Rename: the player's own page and everyone else's follow the event.
      await page.selectOption('[data-testid="admin-player"]', String(await idOf('Rude')));
      await page.fill('[data-testid="admin-rename-name"]', '<b>x</b>');
      await page.click('[data-testid="admin-rename"]');
      await waitUntil('the refused name to be explained', async () => {
        const message = await page.locator('[data-testid="admin-message"]').textContent();
        return { ok: message.includes('invalid_name'), seen: message };
      });
      await page.fill('[data-testid="admin-rename-name"]', 'Grace');
      await page.click('[data-testid="admin-rename"]');
      for (const viewer of [ada, bob]) {
        await waitUntil(`${viewer.label}: Grace on the scoreboard, Rude gone`, async () => {
          const view = await readPage(viewer);
          return { ok: rowOf(view, 'Grace') && !rowOf(view, 'Rude'), seen: view.rows };
        });
      }
      assert.equal(rowOf(await readPage(bob), 'Grace').you, true, 'Bob is still "you", under the new name');
      assert.equal(await bob.page.locator('#you-name').textContent(), 'Grace');

      // Remove: Ada's page says why and shows the join form again; her session is gone.
      await page.selectOption('[data-testid="admin-player"]', String(await idOf('Ada')));
      await page.click('[data-testid="admin-kick"]');
      await waitUntil('ada: told she was removed', async () => {
        const view = await readPage(ada);
        return { ok: /lecturer removed you/.test(view.result ?? '') && !rowOf(view, 'Ada'), seen: view };
      });
      assert.equal(await ada.page.locator('[data-testid="name"]').isVisible(), true, 'the join form is back');
      await waitUntil('the lecturer\'s list without Ada', async () => {
        const options = await page.locator('[data-testid="admin-player"] option').allTextContents();
        return { ok: options.length === 1 && options[0].startsWith('Grace'), seen: options };
      });

      // Close joining: a newcomer is refused with the reason; reopening lets them in.
      await page.click('[data-testid="admin-joins"]');
      await waitUntil('joining closed on the lecturer\'s page', async () => {
        const text = await page.locator('[data-testid="joins-state"]').textContent();
        return { ok: text === 'Joining is closed.', seen: text };
      });
      await late.page.fill('[data-testid="name"]', 'Late');
      await late.page.click('[data-testid="join"]');
      await waitUntil('late: the refusal explained', async () => {
        const error = await late.page.locator('#join-error').textContent();
        return { ok: /closed joining/.test(error), seen: error };
      });
      assert.match(await late.page.locator('#hint').textContent(), /closed joining/);
      await page.click('[data-testid="admin-joins"]');
      await waitUntil('joining open again', async () => {
        const text = await page.locator('[data-testid="joins-state"]').textContent();
        return { ok: text === 'Joining is open.', seen: text };
      });
      await join(late, 'Late');
      const names = (await server.snapshot()).players.map((p) => p.name).sort();
      assert.deepEqual(names, ['Grace', 'Late']);
    });
  });
});

describe('a phone', () => {
  test('plays a full round with taps on a page that fits 390×844', { timeout: 40_000 }, async (t) => {
    await withServer(t, {}, async (server, players) => {
      const phone = await openPlayer(browser, server.url, 'phone', {
        viewport: { width: 390, height: 844 },
        context: { hasTouch: true, isMobile: true, deviceScaleFactor: 3 },
      });
      players.push(phone);
      const { page } = phone;
      await page.tap('[data-testid="name"]');
      await page.fill('[data-testid="name"]', 'Pocket');
      await page.tap('[data-testid="join"]');
      await waitUntil('phone: own row in the scoreboard', async () => {
        const row = rowOf(await readPage(phone), 'Pocket');
        return { ok: row?.you === true, seen: row };
      });

      // The layout: the board fills the width; the dropdown, figures and wire inspector come
      // below it; nothing is wider than the screen.
      const layout = await page.evaluate(() => {
        const box = (sel) => {
          const r = document.querySelector(sel).getBoundingClientRect();
          return { top: r.top + window.scrollY, bottom: r.bottom + window.scrollY, left: r.left, right: r.right, width: r.width };
        };
        return {
          scrollWidth: document.documentElement.scrollWidth,
          innerWidth: window.innerWidth,
          board: box('[data-testid="board"]'),
          dropdown: box('[data-testid="transport"]'),
          figures: box('[data-testid="figures"]'),
          wire: box('[data-testid="wire"]'),
          widest: Math.max(...[...document.querySelectorAll('body *')]
            .filter((el) => !el.closest('.table-scroll'))
            .map((el) => el.getBoundingClientRect().right)),
        };
      });
      assert.equal(layout.innerWidth, 390);
      assert.ok(layout.scrollWidth <= layout.innerWidth, `the page scrolls sideways: ${layout.scrollWidth}px wide`);
      assert.ok(layout.widest <= layout.innerWidth + 0.5, `an element reaches ${layout.widest}px`);
      assert.ok(layout.board.width >= 0.9 * layout.innerWidth, `the board is ${layout.board.width}px wide`);
      assert.ok(layout.board.bottom <= 844, `the board ends at ${layout.board.bottom}px, below the first screen`);
      for (const part of ['dropdown', 'figures', 'wire']) {
        assert.ok(layout[part].top >= layout.board.bottom, `${part} is not below the board: ${JSON.stringify(layout[part])}`);
        assert.ok(layout[part].right <= layout.innerWidth + 0.5, `${part} is wider than the screen`);
      }

      // A full round: a tap beside the target is a miss, a tap on it wins the round, and the
      // next round's target appears.
      const target = page.locator('[data-testid="target"]');
      await page.waitForFunction(() => {
        const t = document.querySelector('[data-testid="target"]');
        return t && !t.classList.contains('is-hidden') && t.dataset.round;
      });
      const round = Number(await target.getAttribute('data-round'));
      const board = await page.locator('[data-testid="board"]').boundingBox();
      const [tx, ty] = [Number(await target.getAttribute('data-x')), Number(await target.getAttribute('data-y'))];
      // The board point farthest from the target, in CSS pixels.
      const far = { x: tx < 500 ? 950 : 50, y: ty < 500 ? 950 : 50 };
      await page.touchscreen.tap(board.x + (far.x / 1000) * board.width, board.y + (far.y / 1000) * board.height);
      await waitUntil('phone: the miss', async () => {
        const view = await readPage(phone);
        return { ok: /^Miss/.test(view.result ?? ''), seen: view.result };
      });
      // The finger touches the target and has not lifted yet: the click is already on its way
      // (pointerdown), where a `click` handler would still be waiting for the finger to lift.
      const frames = phone.wsClickFrames;
      const centre = await target.boundingBox();
      const finger = { x: centre.x + centre.width / 2, y: centre.y + centre.height / 2 };
      const cdp = await phone.context.newCDPSession(page);
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchStart', touchPoints: [finger] });
      await waitUntil('phone: the hit, before the finger lifts', async () => {
        const view = await readPage(phone);
        return { ok: /^Hit!/.test(view.result ?? ''), seen: view.result };
      });
      await cdp.send('Input.dispatchTouchEvent', { type: 'touchEnd', touchPoints: [] });
      assert.equal(phone.wsClickFrames - frames, 1, 'one touch, one click');
      await waitUntil('phone: a point and a miss on the scoreboard', async () => {
        const row = rowOf(await readPage(phone), 'Pocket');
        return { ok: row?.score === 1 && row?.misses === 1, seen: row };
      });
      await page.waitForFunction((prev) => {
        const t = document.querySelector('[data-testid="target"]');
        return t && !t.classList.contains('is-hidden') && Number(t.dataset.round) > prev;
      }, round);
      const onServer = (await server.snapshot()).players.find((p) => p.name === 'Pocket');
      assert.deepEqual([onServer.score, onServer.misses], [1, 1]);
      await saveScreenshot(page, 'phone');
    });
  });
});
