// # Two nodes, one game, in a real browser (issue 16)
//
// A throw-away redis-server on a free port and two `clickgame --redis-url … --node-id` nodes.
// The page is opened on one node (a browser needs one origin; `make cluster` puts haproxy in
// front, which these tests leave out).
//
// 1. /compare.html says which node each pane is connected to and which node runs the game, and
//    the projector screen still fits 1280 × 720 with those labels on it.
// 2. Playing on the node that does *not* run the game works: a click is forwarded to the other
//    node and its answer comes back; every pane sees the event with nothing missed.

import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { mkdtemp, rm } from 'node:fs/promises';
import { Socket, createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import { ON_SCREEN } from '../web/js/layout.js';
import {
  TRANSPORTS,
  assertNoPageProblems,
  clickTarget,
  join,
  launchBrowser,
  openPlayer,
  readPane,
  saveArtifacts,
  startServer,
  waitUntil,
} from './helpers.mjs';

let redis;
let redisDir;
let nodes;
let browser;

/** A free TCP port on loopback (redis-server cannot pick one itself: `--port 0` turns TCP off). */
function freePort() {
  return new Promise((resolve, reject) => {
    const probe = createServer();
    probe.once('error', reject);
    probe.listen(0, '127.0.0.1', () => {
      const { port } = probe.address();
      probe.close(() => resolve(port));
    });
  });
}

async function startRedis() {
  redisDir = await mkdtemp(path.join(tmpdir(), 'clickgame-e2e-redis-'));
  const port = await freePort();
  const child = spawn('redis-server', [
    '--port', String(port), '--bind', '127.0.0.1', '--save', '', '--appendonly', 'no',
    '--dir', redisDir,
  ], { stdio: 'ignore' });
  // Ready when it answers PING.
  await waitUntil('redis-server answers', async () => {
    const ok = await new Promise((resolve) => {
      const socket = new Socket();
      socket.once('error', () => resolve(false));
      socket.connect(port, '127.0.0.1', () => socket.write('PING\r\n'));
      socket.once('data', (d) => {
        socket.destroy();
        resolve(String(d).startsWith('+PONG'));
      });
    });
    return { ok, seen: ok };
  }, { timeout: 5000, interval: 50 });
  return { child, url: `redis://127.0.0.1:${port}` };
}

async function stats(node) {
  return (await fetch(`${node.url}/api/stats`)).json();
}

before(async () => {
  redis = await startRedis();
  const node = (id) => startServer({
    args: ['--redis-url', redis.url, '--node-id', id, '--lease-ttl-ms', '1000', '--no-persist', '--round-timeout-ms', '3000'],
  });
  // a first, so that it runs the game.
  const a = await node('a');
  await waitUntil('node a runs the game', async () => {
    const s = await stats(a);
    return { ok: s.node?.authority === true, seen: s.node };
  });
  const b = await node('b');
  await waitUntil('node b knows a runs it', async () => {
    const s = await stats(b);
    return { ok: s.node?.authority_node === 'a', seen: s.node };
  });
  nodes = { a, b };
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  for (const node of Object.values(nodes ?? {})) await node.stop();
  redis?.child.kill('SIGKILL');
  if (redisDir) await rm(redisDir, { recursive: true, force: true });
});

async function withPage(t, url, viewport, body, label) {
  const player = await openPlayer(browser, url, label, { viewport });
  try {
    await body(player);
    assertNoPageProblems(player, assert);
  } catch (err) {
    await saveArtifacts(t.name, [player]);
    err.message += `\n(node a log tail)\n${nodes.a.stderrTail()}\n(node b log tail)\n${nodes.b.stderrTail()}`;
    throw err;
  } finally {
    await player.context.close();
  }
}

/** Each pane's node label, as shown. */
async function nodeLabels(page) {
  return page.evaluate((ts) => Object.fromEntries(ts.map((t) => {
    const pane = document.querySelector(`[data-testid="pane-${t}"]`);
    const label = pane?.querySelector('[data-role="node"]');
    return [t, { node: pane?.dataset.node ?? '', text: label?.hidden ? '' : label?.textContent ?? '' }];
  })), TRANSPORTS);
}

describe('a cluster on /compare.html', () => {
  for (const [on, star] of [['b', ''], ['a', ' ★']]) {
    test(`opened on node ${on}, every pane says node ${on}${star ? ' (★ runs the game)' : ''} and the header says the game is on a; 1280 × 720 still fits`, { timeout: 40_000 }, async (t) => {
      await withPage(t, `${nodes[on].url}/compare.html`, { width: 1280, height: 720 }, async ({ page }) => {
        await waitUntil('every pane names its node', async () => {
          const labels = await nodeLabels(page);
          const ok = TRANSPORTS.every((tr) => labels[tr].node === on && labels[tr].text === `node ${on}${star}`);
          return { ok, seen: labels };
        });
        await waitUntil('the header names the node running the game', async () => {
          const line = await page.evaluate(() => {
            const el = document.querySelector('[data-testid="cluster-line"]');
            return { hidden: el.hidden, text: el.textContent, authority: el.dataset.authority };
          });
          return { ok: !line.hidden && line.authority === 'a' && line.text.includes('node a'), seen: line };
        });
        const scroll = await page.evaluate(() => ({
          height: document.documentElement.scrollHeight,
          width: document.documentElement.scrollWidth,
        }));
        assert.ok(scroll.height <= 720 && scroll.width <= 1280, `no scrolling: ${JSON.stringify(scroll)}`);
        const ids = [...ON_SCREEN.map((e) => e.testid), 'cluster-line'];
        const placed = await page.evaluate((list) => list.map((id) => {
          const el = document.querySelector(`[data-testid="${id}"]`);
          const r = el.getBoundingClientRect();
          const inside = r.left >= 0 && r.top >= 0 && r.right <= window.innerWidth + 0.5 && r.bottom <= window.innerHeight + 0.5;
          return { id, inside, visible: r.width > 0 && r.height > 0 };
        }), ids);
        for (const p of placed) assert.ok(p.visible && p.inside, `${p.id} inside 1280 × 720: ${JSON.stringify(p)}`);
        const labelBoxes = await page.evaluate(() => [...document.querySelectorAll('.pane')].map((pane) => {
          const label = pane.querySelector('[data-role="node"]').getBoundingClientRect();
          const box = pane.getBoundingClientRect();
          return label.left >= box.left && label.right <= box.right + 0.5 && label.width > 0;
        }));
        assert.ok(labelBoxes.every(Boolean), 'every node label lies within its pane');
        // Beside the badge the title still fits whole: "Server-Sent Ev…" hides which pane it is.
        const cut = await page.evaluate(() => [...document.querySelectorAll('.pane-title, .pane-proto')]
          .filter((el) => el.scrollWidth > el.clientWidth)
          .map((el) => `${el.textContent} (${el.scrollWidth} > ${el.clientWidth} px)`));
        assert.deepEqual(cut, [], 'pane titles and protocol labels cut off beside the node badge');
      }, `compare on ${on}`);
    });
  }

  test('a player on the node that does not run the game joins and wins a round; every pane sees it, nothing missed', { timeout: 40_000 }, async (t) => {
    const viewer = await openPlayer(browser, `${nodes.a.url}/compare.html`, 'compare on a', { viewport: { width: 1280, height: 720 } });
    try {
      await withPage(t, `${nodes.b.url}/`, { width: 1100, height: 900 }, async (player) => {
        await join(player, 'Ada');
        const { round, result } = await clickTarget(player, { timeout: 10_000 });
        assert.match(result, /hit|won|late|miss/i, `a result for round ${round}: ${result}`);
        for (const transport of TRANSPORTS) {
          await waitUntil(`the ${transport} pane on a sees round ${round} end`, async () => {
            const pane = await readPane(viewer.page, transport);
            const ended = await viewer.page.evaluate(
              ([tr, r]) => document.querySelector(`[data-testid="pane-${tr}"]`).dataset.round !== String(r) ||
                document.querySelector(`[data-testid="pane-${tr}"]`).dataset.roundState !== 'live',
              [transport, round],
            );
            return { ok: ended && pane.missed === 0, seen: pane };
          });
        }
      }, 'player on b');
      assertNoPageProblems(viewer, assert);
    } finally {
      await viewer.context.close();
    }
  });
});
