// # Cross-Site WebSocket Hijacking, tried from a real attacker page in Chromium
//
// The lecture's first WSS best practice is "check the Origin header". This file tries the
// attack it stops, the way issue 9 found it working: a victim is logged in to the game in
// Chromium; the same browser profile then visits an attacker's page served from another port of
// 127.0.0.1 (`attacker.mjs`: same site, so the SameSite=Strict session cookie rides along; its
// own permissive CSP, so the browser's CSP stops nothing). The page opens
// `ws://<game>/%61pi/ws` — the percent-encoded spelling that once slipped past the check — and
// `/api/ws` with the sub-protocol `clickgame.v1`, tries to click as the victim, and fires a
// `POST /%61pi/click`.
//
// 1. Against the real server: every attempt is answered 403 (read from Chromium's own view of
//    the handshake and the response), no WebSocket opens, and no click counts for the victim.
// 2. The control: the same page against a server started with `--allowed-origin <attacker>`
//    (the defence switched off for that origin) hijacks the victim's session and scores a hit
//    in the victim's name — so the fixture really attacks, and test 1 can fail.
//
// Run: `npm test` (after `cargo build` in the repository root, or with CLICKGAME_BIN set).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PERMISSIVE_CSP, startAttacker } from './attacker.mjs';
import { join, launchBrowser, openPlayer, saveArtifacts, startServer } from './helpers.mjs';

let attacker;
let guarded;
let open;
let browser;

before(async () => {
  attacker = await startAttacker();
  guarded = await startServer();
  open = await startServer({ args: ['--allowed-origin', attacker.origin] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await guarded?.stop();
  await open?.stop();
  await attacker?.stop();
});

/**
 * The attacker's script against the game at `gameUrl`: per WebSocket path, whether it opened
 * and the result of a click at the live target sent as the victim; then a cookie-carrying
 * `POST /%61pi/click` (`no-cors`: fire and forget, the way a CSRF page sends it).
 */
function hijackScript(gameUrl) {
  const wsBase = gameUrl.replace(/^http/, 'ws');
  return `
    const tryHijack = (path) => new Promise((resolve) => {
      const seen = { path, opened: false, events: 0, click: null, closeCode: null };
      const ws = new WebSocket(${JSON.stringify(wsBase)} + path, 'clickgame.v1');
      const done = () => { clearTimeout(timer); resolve(seen); };
      const timer = setTimeout(() => { ws.close(); done(); }, 8000);
      const click = (round, x, y) =>
        ws.send(JSON.stringify({ type: 'click', id: 1, round, x, y }));
      ws.onopen = () => {
        seen.opened = true;
        ws.send(JSON.stringify({ type: 'resume' }));
      };
      ws.onmessage = (m) => {
        const msg = JSON.parse(m.data);
        seen.events += 1;
        if (msg.type === 'snapshot' && msg.round && msg.round.winner == null) {
          click(msg.round.number, msg.round.x, msg.round.y);
        } else if (msg.type === 'round_started') {
          click(msg.round, msg.x, msg.y);
        } else if (msg.type === 'click_result' || msg.type === 'error') {
          seen.click = msg.result ?? msg.error;
          ws.close();
        }
      };
      ws.onclose = (e) => { seen.closeCode = e.code; done(); };
    });
    report('ws:/%61pi/ws', await tryHijack('/%61pi/ws'));
    report('ws:/api/ws', await tryHijack('/api/ws'));
    const post = await fetch(${JSON.stringify(gameUrl)} + '/%61pi/click', {
      method: 'POST',
      mode: 'no-cors',
      credentials: 'include',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ round: 1, x: 500, y: 500 }),
    }).then((r) => r.type, (e) => String(e));
    report('post', post);
    report('done', true);
  `;
}

/**
 * Logs a victim in to `server`, then visits the attacker's hijack page in the same browser
 * profile. Returns what the page reported and what Chromium saw on the wire.
 */
async function victimVisitsAttacker(t, server, name) {
  attacker.clear();
  const victim = await openPlayer(browser, server.url, 'victim');
  try {
    await join(victim, name);
    const page = await victim.context.newPage();
    const wire = { handshakeErrors: {}, statuses: {}, consoleErrors: [], attackerCsp: null };
    page.on('websocket', (ws) => {
      const path = new URL(ws.url()).pathname;
      ws.on('socketerror', (error) => {
        wire.handshakeErrors[path] = error;
      });
    });
    page.on('response', (res) => {
      const url = new URL(res.url());
      if (url.origin === server.url) wire.statuses[`${res.request().method()} ${url.pathname}`] = res.status();
      if (url.href === attacker.url('/hijack.html')) wire.attackerCsp = res.headers()['content-security-policy'];
    });
    page.on('console', (msg) => {
      if (msg.type() === 'error') wire.consoleErrors.push(msg.text());
    });
    attacker.page('/hijack.html', { script: hijackScript(server.url) });
    await page.goto(attacker.url('/hijack.html'));
    await attacker.waitForReport('done', { timeout: 30_000 });
    const reports = Object.fromEntries(attacker.reports().map((r) => [r.name, r.value]));
    const victimId = (await server.snapshot()).players.find((p) => p.name === name)?.id;
    return { reports, wire, victimId };
  } catch (err) {
    await saveArtifacts(t.name, [victim]);
    throw err;
  } finally {
    await victim.context.close();
  }
}

function playerOf(snapshot, id) {
  return snapshot.players.find((p) => p.id === id);
}

test('an attacker page on another port is refused 403 on every spelling and clicks nothing as the victim', async (t) => {
  const { reports, wire, victimId } = await victimVisitsAttacker(t, guarded, 'Victim');
  assert.equal(reports.error, undefined, `the attack script ran without errors: ${JSON.stringify(reports)}`);
  assert.equal(wire.attackerCsp, PERMISSIVE_CSP, 'the attacker page runs under its own permissive CSP');
  assert.deepEqual(
    wire.consoleErrors.filter((m) => /Content Security Policy/i.test(m)),
    [],
    'no CSP of the browser stopped anything',
  );
  for (const path of ['/%61pi/ws', '/api/ws']) {
    const seen = reports[`ws:${path}`];
    assert.equal(seen.opened, false, `${path}: the WebSocket never opened: ${JSON.stringify(seen)}`);
    assert.equal(seen.events, 0, `${path}: no event reached the attacker`);
    assert.match(wire.handshakeErrors[path] ?? '', /Unexpected response code: 403/, `${path}: the server answered 403`);
  }
  assert.equal(wire.statuses['POST /%61pi/click'], 403, `POST /%61pi/click: ${JSON.stringify(wire.statuses)}`);
  const victim = playerOf(await guarded.snapshot(), victimId);
  assert.deepEqual({ score: victim.score, misses: victim.misses }, { score: 0, misses: 0 }, 'no click counted for the victim');
});

test('the control: with the attacker origin allowed, the same page hijacks the session and scores as the victim', async (t) => {
  const { reports, victimId } = await victimVisitsAttacker(t, open, 'Victim');
  const seen = reports['ws:/%61pi/ws'];
  assert.equal(seen.opened, true, `the cookie rode along and the socket opened: ${JSON.stringify(reports)}`);
  assert.ok(seen.events >= 1, 'the attacker read the victim\'s events');
  assert.equal(seen.click, 'hit', 'and clicked the target in the victim\'s name');
  const victim = playerOf(await open.snapshot(), victimId);
  assert.ok(victim.score >= 1, `the win is the victim's: ${JSON.stringify(victim)}`);
});
