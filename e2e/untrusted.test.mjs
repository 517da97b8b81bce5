// # Validate server data: the page treats everything from the server as untrusted
//
// The lecture's fifth WSS best practice, checked in a real browser: a (simulated) compromised
// server sends a snapshot and events whose player names are HTML with script in it, plus events
// of the wrong shape and of an unknown type. The page must render names as text (no element is
// created, no script runs), ignore what it does not understand, and keep working.
//
// The server is replaced by Playwright routes here: `GET /api/snapshot` and the WebSocket are
// answered by the test, so the hostile data cannot be refused upstream (the real server refuses
// such names at join; see tests/api/bad_input.rs).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { launchBrowser, startServer, waitUntil } from './helpers.mjs';

const EVIL = '<img src=x onerror="window.__pwned=1">';
const EPOCH = '00000000000000aa';

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

function snapshot() {
  return {
    seq: 10,
    ts: Date.now(),
    type: 'snapshot',
    epoch: EPOCH,
    board: 1000,
    poll_interval_ms: 1000,
    paused: false,
    round: { number: 3, x: 500, y: 500, r: 40, started_ts: Date.now(), winner: null },
    players: [{ id: 1, name: EVIL, score: 2, misses: 0, transport: 'websocket' }],
    transports: {
      ajax: { wins: 0, total_reaction_ms: 0 },
      longpoll: { wins: 0, total_reaction_ms: 0 },
      sse: { wins: 0, total_reaction_ms: 0 },
      websocket: { wins: 2, total_reaction_ms: 400 },
    },
  };
}

test('hostile names from the server render as text, and malformed or unknown events are ignored', async () => {
  const context = await browser.newContext();
  const page = await context.newPage();
  const errors = [];
  page.on('pageerror', (e) => errors.push(String(e)));
  await page.route('**/api/snapshot', (route) =>
    route.fulfill({ status: 200, contentType: 'application/json', body: JSON.stringify(snapshot()) }),
  );
  await page.routeWebSocket('**/api/ws', (ws) => {
    ws.onMessage((text) => {
      if (!String(text).includes('"resume"')) return;
      const ts = Date.now();
      ws.send(JSON.stringify(snapshot()));
      ws.send(JSON.stringify({ seq: 11, ts, type: 'player_joined', player: 2, name: `<script>window.__pwned=2</script>` }));
      ws.send(JSON.stringify({ seq: 12, ts, type: 'player_joined', player: 3, name: 42 }));
      ws.send(JSON.stringify({ seq: 13, ts, type: 'definitely_not_an_event', html: EVIL }));
      ws.send('{"this is": not json');
      ws.send(JSON.stringify({ seq: 14, ts, type: 'player_joined', player: 4, name: 'Plain Bob' }));
    });
  });
  await page.goto(server.url);

  const { names: rows } = await waitUntil('the scoreboard shows the hostile name and Bob', async () => {
    const names = await page.$$eval('[data-testid="scoreboard"] tr [data-col="name"]', (cells) => cells.map((c) => c.textContent));
    return { ok: names.some((n) => n.includes("Plain Bob")), seen: names, names };
  });
  assert.ok(rows.some((n) => n.includes(EVIL)), `the name is shown literally: ${JSON.stringify(rows)}`);
  assert.ok(rows.some((n) => n.includes('<script>')), `the script tag is shown as text: ${JSON.stringify(rows)}`);
  assert.ok(!rows.some((n) => n === '42'), 'an event of the wrong shape is ignored');
  assert.equal(await page.$$eval('[data-testid="scoreboard"] img, [data-testid="scoreboard"] script', (els) => els.length), 0, 'no element was created from server data');
  assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no script ran');
  assert.deepEqual(errors, [], 'the page kept working');
  await context.close();
});
