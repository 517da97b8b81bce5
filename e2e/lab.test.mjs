// # The WSS best-practices lab in Chromium (issue 14, docs/lab.md)
//
// The server runs with `--lab`: the game, plus the attacker's site on another port of
// 127.0.0.1 (another origin, the same site; its own permissive CSP — the one the hardening
// issue's fixture `attacker.mjs` uses, compared below — so the browser's CSP stops nothing and
// any refusal is the game server's). A victim logs in to the game; the same browser profile
// visits the attacker's page and presses its buttons.
//
// 1. Cross-site WebSocket hijacking: with the Origin check on, the handshake is answered 403
//    (Chromium's own view of it), the defence log names the attacker's origin, and the victim's
//    score stays 0; switched off, the same button reads the victim's events and scores a hit in
//    the victim's name.
// 2. Poisoned server data: with input validation off the attacker's name with markup is stored;
//    a game page with server-data validation on shows it as text (and reports that to the
//    defence log); switched off, the page renders it as a (harmless, visible) element. The red
//    banner names what is off, on every page, and goes when all is on again.
// 3. /compare.html: the two lab drawers (switches, log) have tabs only with --lab, and work; their
//    layout at projector sizes is e2e/projector.test.mjs's, with every other drawer.
// 4. /lab.html: the attacker link, the switches and the log.
// 5. Over TLS: the attacker's page opened as https:// (its "over TLS" link) hijacks the
//    victim's wss:// socket and speaks a foreign sub-protocol to the game's TLS listener just
//    as over ws:// with the defence off, and is refused with the same codes with it on: TLS
//    secures the channel, not the data (the lecture's WSS slide).
//
// Run: `npm test` (after `cargo build` in the repository root, or with CLICKGAME_BIN set).

import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';

import { PERMISSIVE_CSP } from './attacker.mjs';
import { assertNoPageProblems, join, launchBrowser, openPlayer, saveArtifacts, startServer, waitUntil } from './helpers.mjs';

let server;
let plain;
let browser;

before(async () => {
  server = await startServer({ tls: true, args: ['--lab', '--lab-attacker-addr', '127.0.0.1:0'] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
  await plain?.stop();
});

async function defences(body) {
  const res = await fetch(`${server.url}/api/admin/lab`, {
    method: body ? 'POST' : 'GET',
    headers: { Authorization: `Bearer ${server.adminToken}`, ...(body ? { 'Content-Type': 'application/json' } : {}) },
    body: body ? JSON.stringify(body) : undefined,
  });
  assert.equal(res.status, 200);
  return (await res.json()).defences;
}

async function defenceLog() {
  const res = await fetch(`${server.url}/api/admin/lab/log?since=0`, { headers: { Authorization: `Bearer ${server.adminToken}` } });
  return (await res.json()).entries;
}

function scoreOf(snapshot, name) {
  return snapshot.players.find((p) => p.name === name)?.score;
}

/** Presses attack `n`'s button and waits for its outcome (succeeded, refused, failed). */
async function runAttack(page, n) {
  await page.click(`[data-testid="attack-${n}"]`);
  const box = page.locator(`[data-testid="result-${n}"]`);
  await page.waitForFunction(
    (k) => ['succeeded', 'refused', 'failed'].includes(document.querySelector(`[data-testid="result-${k}"]`)?.dataset.outcome),
    n,
    { timeout: 30_000 },
  );
  return { outcome: await box.getAttribute('data-outcome'), text: await box.textContent() };
}

/** The attacker's page in the victim's browser profile, with what Chromium saw on the wire. */
async function visitAttacker(victim, url = server.labAttacker) {
  const page = await victim.context.newPage();
  const wire = { handshakeErrors: [], csp: null, dialogs: 0 };
  page.on('websocket', (ws) => ws.on('socketerror', (e) => wire.handshakeErrors.push(e)));
  page.on('response', (res) => {
    if (res.url().endsWith('/attacker.html')) wire.csp = res.headers()['content-security-policy'];
  });
  page.on('dialog', (d) => {
    wire.dialogs += 1;
    d.dismiss();
  });
  await page.goto(url);
  await page.waitForFunction(() => document.body.dataset.ready === 'true');
  return { page, wire };
}

test('the attacker page hijacks the victim\'s WebSocket with the Origin check off and is refused 403 with it on', { timeout: 90_000 }, async (t) => {
  const victim = await openPlayer(browser, server.url, 'victim');
  try {
    await join(victim, 'Victim');
    const { page, wire } = await visitAttacker(victim);
    assert.equal(wire.csp, PERMISSIVE_CSP, 'the attacker\'s own permissive CSP, the fixture\'s');
    assert.equal(new URL(server.labAttacker).hostname, '127.0.0.1');
    assert.notEqual(new URL(server.labAttacker).origin, server.url, 'another origin');

    const refused = await runAttack(page, 1);
    assert.equal(refused.outcome, 'refused', refused.text);
    assert.ok(wire.handshakeErrors.some((e) => /Unexpected response code: 403/.test(e)), JSON.stringify(wire.handshakeErrors));
    const entry = (await defenceLog()).find((e) => e.rule === 'origin' && e.code === 403);
    assert.equal(entry?.origin, new URL(server.labAttacker).origin, 'logged with the attacker\'s origin');
    assert.equal(scoreOf(await server.snapshot(), 'Victim'), 0);

    assert.equal((await defences({ origin: false })).origin, false);
    const hijacked = await runAttack(page, 1);
    assert.equal(hijacked.outcome, 'succeeded', hijacked.text);
    const report = await page.evaluate(() => window.__reports.filter((r) => r.name === 'attack-1').at(-1).value);
    assert.match(report.lines.join('\n'), /Victim/, 'the attacker read the victim\'s game');
    await waitUntil('the hijacked click scored for the victim', async () => {
      const score = scoreOf(await server.snapshot(), 'Victim');
      return { ok: score >= 1, seen: score };
    });
    assert.equal(wire.dialogs, 0);
  } catch (err) {
    await saveArtifacts(t.name, [victim]);
    throw err;
  } finally {
    await defences({ origin: true });
    await victim.context.close();
  }
});

async function banner(page) {
  return page.evaluate(() => {
    const b = document.querySelector('[data-testid="lab-banner"]');
    return b ? { text: b.textContent, off: b.dataset.off, visible: b.getBoundingClientRect().height > 0 } : null;
  });
}

async function nameCell(page, prefix) {
  return page.evaluate((p) => {
    const cells = [...document.querySelectorAll('[data-testid="scoreboard"] [data-col="name"]')];
    const cell = cells.find((c) => c.textContent.includes(p) || c.querySelector('mark'));
    if (!cell) return null;
    const mark = cell.querySelector('mark[data-testid="lab-marker"]');
    return {
      text: cell.textContent,
      markup: Boolean(mark),
      markVisible: mark ? mark.getBoundingClientRect().width > 0 : false,
      scripts: cell.querySelectorAll('script').length,
    };
  }, prefix);
}

test('a hostile name renders as markup only with server-data validation off, and the banner comes and goes', { timeout: 90_000 }, async (t) => {
  const viewer = await openPlayer(browser, server.url, 'viewer');
  const visitor = await openPlayer(browser, server.url, 'visitor');
  try {
    assert.equal(await banner(viewer.page), null, 'no banner while every defence is on');

    await defences({ input: false });
    const shown = await waitUntil('the banner naming input validation', async () => {
      const b = await banner(viewer.page);
      return { ok: b?.visible && b.off === 'input', seen: b, b };
    });
    assert.match(shown.b.text, /input validation/);

    const { page } = await visitAttacker(visitor);
    const poisoned = await runAttack(page, 6);
    assert.equal(poisoned.outcome, 'succeeded', poisoned.text);

    // server_data on: the page writes the name as text, and tells the defence log it did.
    const asText = await waitUntil('the hostile name in the scoreboard, as text', async () => {
      const cell = await nameCell(viewer.page, '<mark');
      return { ok: cell && !cell.markup && cell.text.includes('<mark data-testid="lab-marker">hacked'), seen: cell };
    });
    assert.ok(asText.ok);
    await waitUntil('the page\'s server_data report in the defence log', async () => {
      const entries = await defenceLog();
      return { ok: entries.some((e) => e.rule === 'server_data' && e.error === 'rendered_as_text'), seen: entries.length };
    });

    // server_data off: the same name becomes an element — the injection.
    await defences({ server_data: false });
    const asMarkup = await waitUntil('the hostile name rendered as a <mark> element', async () => {
      const cell = await nameCell(viewer.page, 'hacked');
      return { ok: cell?.markup && cell.markVisible, seen: cell, cell };
    });
    assert.equal(asMarkup.cell.scripts, 0, 'a marker element, no script');
    assert.match(asMarkup.cell.text, /^hacked \d+$/);
    const both = await banner(viewer.page);
    assert.equal(both.off, 'input server_data');

    // Everything on again: text again, and no banner.
    await defences({ server_data: true, input: true });
    await waitUntil('the name back to text and the banner gone', async () => {
      const cell = await nameCell(viewer.page, '<mark');
      const b = await banner(viewer.page);
      return { ok: cell && !cell.markup && b === null, seen: { cell, b } };
    });
    assertNoPageProblems(viewer, assert);
  } catch (err) {
    await saveArtifacts(t.name, [viewer, visitor]);
    throw err;
  } finally {
    await defences({ server_data: true, input: true });
    await viewer.context.close();
    await visitor.context.close();
  }
});

/** Where the four panes are: what a drawer must not move. */
async function paneBoxes(page) {
  return page.evaluate(() => [...document.querySelectorAll('.pane')].map((p) => {
    const r = p.getBoundingClientRect();
    return [Math.round(r.x), Math.round(r.y), Math.round(r.width), Math.round(r.height)];
  }));
}

/** Opens a drawer of /compare.html by its tab (js/layout.js DRAWERS), unless it is open. */
async function openDrawer(page, id) {
  const open = await page.evaluate(() => document.body.dataset.drawer ?? null);
  if (open !== id) await page.click(`[data-testid="drawer-tab-${id}"]`);
}

// The layout of every drawer at 1280 × 720 and 1920 × 1080 is e2e/projector.test.mjs's (its
// server runs with --lab, and the lab's drawers are in js/layout.js's DRAWERS); this is what
// they do.
test('on /compare.html the switches and the log are drawers that work, and have no tab without --lab', { timeout: 90_000 }, async (t) => {
  const lecturer = await openPlayer(browser, `${server.url}/compare.html`, 'projector', { viewport: { width: 1280, height: 720 } });
  try {
    const { page } = lecturer;
    await openDrawer(page, 'controls');
    await page.fill('[data-testid="admin-token"]', server.adminToken);
    const panes = await paneBoxes(page);

    await openDrawer(page, 'lab-switches');
    await page.waitForSelector('[data-testid="lab-switches"][data-loaded="true"]');
    assert.deepEqual(await paneBoxes(page), panes, 'the panes did not move');
    // Switching from the drawer: the server hears it, and the page's banner says so.
    await page.uncheck('[data-testid="lab-switch-subprotocol"]');
    await waitUntil('the server\'s subprotocol defence off', async () => {
      const d = await defences();
      return { ok: d.subprotocol === false, seen: d };
    });
    await waitUntil('the banner on the compare page', async () => {
      const b = await banner(page);
      return { ok: b?.off === 'subprotocol', seen: b };
    });
    await page.check('[data-testid="lab-switch-subprotocol"]');
    await waitUntil('the subprotocol defence on again', async () => {
      const d = await defences();
      return { ok: d.subprotocol === true, seen: d };
    });

    await openDrawer(page, 'lab-log');
    assert.equal(await page.locator('[data-testid="drawer-lab-switches"]').isVisible(), false, 'one drawer at a time');
    await fetch(`${server.url}/api/poll`, { headers: { Origin: 'https://evil.example' } });
    await waitUntil('the foreign origin in the log drawer', async () => {
      const rows = await page.locator('[data-testid="lab-log"] tr[data-rule="origin"]').count();
      return { ok: rows > 0, seen: rows };
    });
    const row = await page.locator('[data-testid="lab-log"] tr[data-rule="origin"]').first().textContent();
    assert.match(row, /403/);
    assert.match(row, /https:\/\/evil\.example/);
    assertNoPageProblems(lecturer, assert);
  } catch (err) {
    await saveArtifacts(t.name, [lecturer]);
    throw err;
  } finally {
    await defences({ subprotocol: true });
    await lecturer.context.close();
  }

  // Without --lab there is nothing to open.
  plain = await startServer();
  const other = await openPlayer(browser, `${plain.url}/compare.html`, 'plain', { viewport: { width: 1280, height: 720 } });
  try {
    await other.page.waitForSelector('[data-testid="drawer-tab-controls"]');
    await waitUntil('the lab tabs gone without --lab', async () => {
      const shown = await other.page.evaluate(() => ['lab-switches', 'lab-log'].map(
        (id) => document.querySelector(`[data-testid="drawer-tab-${id}"]`)?.checkVisibility() ?? false));
      return { ok: shown.every((v) => v === false), seen: shown };
    });
    assert.equal(await other.page.locator('[data-testid="drawer-tab-controls"]').isVisible(), true, 'the others stay');
    assert.equal(await banner(other.page), null);
  } finally {
    await other.context.close();
  }
});

test('/lab.html links to the attacker\'s page and shows the switches and the log', { timeout: 60_000 }, async (t) => {
  const lecturer = await openPlayer(browser, `${server.url}/lab.html`, 'lab');
  try {
    const { page } = lecturer;
    await page.fill('[data-testid="admin-token"]', server.adminToken);
    await waitUntil('the attacker link', async () => {
      const href = await page.locator('[data-testid="attacker-link"]').getAttribute('href');
      return { ok: href === `${server.labAttacker}`, seen: href };
    });
    await page.waitForSelector('[data-testid="lab-switches"][data-loaded="true"]', { timeout: 10_000 });
    const boxes = await page.evaluate(() => Object.fromEntries(
      [...document.querySelectorAll('[data-testid^="lab-switch-"]')].map((b) => [b.dataset.testid, b.checked])));
    assert.deepEqual(boxes, {
      'lab-switch-origin': true, 'lab-switch-subprotocol': true, 'lab-switch-input': true, 'lab-switch-auth': true, 'lab-switch-server_data': true,
    });
    await fetch(`${server.url}/api/ws`, { headers: { Upgrade: 'websocket' } }).catch(() => {});
    await fetch(`${server.url}/api/join`, { method: 'POST', headers: { 'Content-Type': 'application/json' }, body: JSON.stringify({ name: '<b>' }) });
    await waitUntil('an input refusal in the log', async () => {
      const n = await page.locator('[data-testid="lab-log"] tr[data-rule="input"]').count();
      return { ok: n > 0, seen: n };
    });
    const tally = await page.locator('[data-testid="lab-tally"] li[data-rule="input"]').getAttribute('data-count');
    assert.ok(Number(tally) >= 1, tally);
    assert.equal(await page.locator('[data-testid="lab-absent"]').isVisible(), false);
    assertNoPageProblems(lecturer, assert);
  } catch (err) {
    await saveArtifacts(t.name, [lecturer]);
    throw err;
  } finally {
    await lecturer.context.close();
  }
});

test('over TLS the attacker\'s https: page hijacks the victim\'s wss:// socket with the Origin check off and is refused 403 with it on, and so on for the sub-protocol', { timeout: 120_000 }, async (t) => {
  // The student plays over https:// (the game's self-signed certificate, accepted), and visits
  // the attacker's page in the same profile.
  const victim = await openPlayer(browser, server.httpsUrl, 'tls-victim', { context: { ignoreHTTPSErrors: true } });
  try {
    await join(victim, 'TlsVictim');
    const plain = await visitAttacker(victim);
    const tlsPage = await plain.page.getAttribute('[data-testid="over-tls"]', 'href');
    assert.match(tlsPage, /^https:\/\/127\.0\.0\.1:\d+\/attacker\.html$/, 'the "over TLS" link');
    await plain.page.close();
    const { page, wire } = await visitAttacker(victim, tlsPage);
    const attacker = new URL(tlsPage).origin;
    const wss = server.httpsUrl.replace(/^https:/, 'wss:');
    assert.equal(wire.csp, PERMISSIVE_CSP);
    assert.equal(await page.evaluate(() => document.body.dataset.tls), 'true');
    assert.equal(await page.locator('[data-testid="tls-lesson"]').isVisible(), true);
    assert.match(await page.textContent('[data-testid="game-url"]'), new RegExp(`${server.httpsUrl} and ${wss}`));

    // 1. On: Chromium sees 403 on the wss:// handshake; the log names the https: attacker.
    const refused = await runAttack(page, 1);
    assert.equal(refused.outcome, 'refused', refused.text);
    assert.match(refused.text, new RegExp(`socket: ${wss}/api/ws`));
    assert.ok(wire.handshakeErrors.some((e) => /Unexpected response code: 403/.test(e)), JSON.stringify(wire.handshakeErrors));
    const entry = (await defenceLog()).find((e) => e.rule === 'origin' && e.code === 403 && e.origin === attacker);
    assert.ok(entry, 'logged with the attacker\'s https: origin');
    assert.equal(scoreOf(await server.snapshot(), 'TlsVictim'), 0);

    // Off: the same button, through TLS, reads the victim's game and clicks as the victim.
    await defences({ origin: false });
    const hijacked = await runAttack(page, 1);
    assert.equal(hijacked.outcome, 'succeeded', hijacked.text);
    assert.match(hijacked.text, /inside TLS, and it made no difference/);
    const report = await page.evaluate(() => window.__reports.filter((r) => r.name === 'attack-1').at(-1).value);
    assert.match(report.lines.join('\n'), /TlsVictim/, 'the attacker read the victim\'s game');
    await waitUntil('the hijacked click scored for the victim', async () => {
      const score = scoreOf(await server.snapshot(), 'TlsVictim');
      return { ok: score >= 1, seen: score };
    });
    await defences({ origin: true });

    // 3. Run by the attacker's server against the game's wss:// listener: 400 on, upgraded off.
    const noProtocol = await runAttack(page, 3);
    assert.equal(noProtocol.outcome, 'refused', noProtocol.text);
    assert.match(noProtocol.text, new RegExp(`target: ${server.httpsUrl} \\(TLS`));
    assert.match(noProtocol.text, /HTTP 400 before any upgrade/);
    await defences({ subprotocol: false });
    const foreign = await runAttack(page, 3);
    assert.equal(foreign.outcome, 'succeeded', foreign.text);
    assert.match(foreign.text, /Sec-WebSocket-Protocol: stomp\.v12/);
    assert.equal(wire.dialogs, 0);
  } catch (err) {
    await saveArtifacts(t.name, [victim]);
    throw err;
  } finally {
    await defences({ origin: true, subprotocol: true });
    await victim.context.close();
  }
});
