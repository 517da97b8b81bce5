// # TLS you can see, in a real browser (issue 13)
//
// One server with HTTPS and the eavesdropping relays (`--eavesdrop`, all on free ports) and one
// headless Chromium for the file.
//
// 1. The "Connection security" panel on `/` over HTTPS shows what Chromium negotiated (TLS 1.3,
//    a TLS_* suite, ALPN h2, the SNI `localhost`, the certificate's fingerprint as the server
//    logged it); over plain HTTP it shows the warning and links to the eavesdropper. On
//    /compare.html it sits in a drawer that adds no height to the page.
// 2. `/eavesdrop.html` lists records while a second page plays through the plain relay (its
//    name, in clear) and a third through the TLS relay (a ClientHello with SNI, ciphertext);
//    tamper mode makes the next join through the plain relay arrive as "Mallory-…", and the
//    page that joined shows that name.
// The pure helpers of js/tls_panel.js and js/eavesdrop.js are checked in Node first.
//
// Run: `npm test` (after `cargo build`), or with CLICKGAME_BIN set.

import assert from 'node:assert/strict';
import { mkdir, writeFile } from 'node:fs/promises';
import path from 'node:path';
import { after, before, describe, test } from 'node:test';

import {
  ARTIFACTS,
  DOC_SCREENSHOTS,
  assertNoPageProblems,
  clickTarget,
  join,
  launchBrowser,
  openPlayer,
  saveArtifacts,
  selectTransport,
  startServer,
  waitUntil,
} from './helpers.mjs';
import { certificateRows, connectionRows } from '../web/js/tls_panel.js';
import { groupHex, maskSecrets, matchesFilter, tlsLine } from '../web/js/eavesdrop.js';

describe('the pure helpers', () => {
  test('tokens, tickets and Bearer values are masked, keeping a recognisable prefix', () => {
    const token = `7.${'0123456789abcdef'.repeat(2)}`;
    const text = `{"token":"${token}"} Authorization: Bearer ${token} ?ticket=t${'a'.repeat(32)}`;
    const masked = maskSecrets(text);
    assert.ok(!masked.includes(token), masked);
    assert.ok(masked.includes('7.0123••••••••'), masked);
    assert.ok(masked.includes(`ticket=taaaa••••••••`), masked);
    assert.equal(maskSecrets('name Ada'), 'name Ada');
    assert.equal(groupHex('160301'), '16 03 01');
    const hello = { seq: 1, conn: 1, dir: 'client_to_server', kind: 'tls_record', bytes: 5, tls: { content_type: 'handshake', record_version: 'TLS 1.0', length: 0, handshake_type: 'ClientHello' } };
    assert.ok(matchesFilter(hello, ''));
    assert.ok(matchesFilter(hello, 'nothing | clienthello'));
    assert.ok(!matchesFilter(hello, 'api/join'));
    assert.equal(
      tlsLine({ content_type: 'handshake', record_version: 'TLS 1.0', length: 512, handshake_type: 'ClientHello', sni: 'localhost' }),
      'handshake · record says TLS 1.0 · length 512 · ClientHello · SNI localhost',
    );
  });

  test('the panel spells out a TLS 1.3 suite and the certificate', () => {
    const rows = Object.fromEntries(
      connectionRows({
        protocol: 'TLSv1.3',
        cipher: 'TLS_AES_128_GCM_SHA256',
        cipher_iana: 'TLS_AES_128_GCM_SHA256',
        cipher_parts: { key_exchange: 'ECDHE', authentication: 'ECDSA', bulk_cipher: 'AES-128-GCM', aead: true, mac: 'AEAD', hash: 'SHA-256' },
        group: 'X25519',
        alpn: 'h2',
        resumed: false,
        sni: null,
      }).map(([, value, field]) => [field, value]),
    );
    assert.equal(rows.cipher, 'TLS_AES_128_GCM_SHA256');
    assert.equal(rows['key-exchange'], 'ECDHE over X25519');
    assert.match(rows['bulk-cipher'], /^AES-128-GCM \(AEAD/);
    assert.equal(rows.alpn, 'h2 (HTTP/2)');
    assert.match(rows.sni, /^none/);
    const cert = Object.fromEntries(
      certificateRows({
        subject: 'CN=localhost',
        issuer: 'CN=localhost',
        not_before: '2026-01-01T00:00:00Z',
        not_after: '2026-04-01T00:00:00Z',
        days_left: -3,
        public_key: { type: 'EC', curve: 'P-256', bits: 256 },
        san: ['DNS:localhost'],
        self_signed: true,
      }).map(([, value, field]) => [field, value]),
    );
    assert.equal(cert['public-key'], 'EC, P-256, 256 bits');
    assert.match(cert.validity, /expired 3 days ago/);
    assert.match(cert.trust, /^self-signed/);
  });
});

let server;
let browser;

before(async () => {
  server = await startServer({
    tls: true,
    args: ['--eavesdrop', '--eavesdrop-addr', '127.0.0.1:0', '--eavesdrop-tls-addr', '127.0.0.1:0'],
  });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** `https://127.0.0.1:PORT` → `https://localhost:PORT`, so Chromium sends an SNI. */
const byName = (url) => url.replace('127.0.0.1', 'localhost');

/** A page in its own context that accepts the self-signed certificate. */
async function openTrusting(url, label, viewport = { width: 1280, height: 900 }) {
  const context = await browser.newContext({ viewport, ignoreHTTPSErrors: true });
  const page = await context.newPage();
  const player = { label, context, page, pageErrors: [], consoleErrors: [], downstream: {} };
  page.on('pageerror', (err) => player.pageErrors.push(String(err?.stack ?? err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') player.consoleErrors.push(msg.text());
  });
  await page.goto(url);
  return player;
}

/** The panel's fields as the page shows them: {field: text}, plus its status. */
async function readPanel(page, scope = 'body') {
  return page.evaluate((scope) => {
    const root = document.querySelector(`${scope} [data-testid="tls-panel"]`);
    if (!root) return null;
    const fields = Object.fromEntries(
      [...root.querySelectorAll('dd[data-field]')].map((dd) => [dd.dataset.field, dd.textContent]),
    );
    const status = root.querySelector('[data-testid="tls-status"]');
    return { tls: status?.dataset.tls ?? null, status: status?.textContent ?? '', fields, link: root.querySelector('[data-testid="tls-eavesdrop-link"]')?.getAttribute('href') ?? null };
  }, scope);
}

/** A screenshot of one element into artifacts/screenshots/ (and docs/screenshots/ when updating). */
async function saveElementScreenshot(locator, name) {
  const buffer = await locator.screenshot({ type: 'png' });
  const dirs = [path.join(ARTIFACTS, 'screenshots')];
  if (process.env.UPDATE_SCREENSHOTS === '1') dirs.push(DOC_SCREENSHOTS);
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `${name}.png`), buffer);
  }
}

describe('the connection security panel', () => {
  test('over HTTPS it shows the TLS version, cipher, ALPN, SNI and the certificate Chromium got', { timeout: 30_000 }, async (t) => {
    assert.ok(server.httpsUrl, 'the server printed its HTTPS URL');
    const p = await openTrusting(`${byName(server.httpsUrl)}/`, 'https');
    try {
      const { view } = await waitUntil('the panel filled in over HTTPS', async () => {
        const view = await readPanel(p.page);
        return { ok: view?.tls === 'true' && Boolean(view.fields.cipher), view, seen: view };
      });
      assert.equal(view.fields.protocol, 'TLSv1.3');
      assert.match(view.fields.cipher, /^TLS_(AES_128_GCM_SHA256|AES_256_GCM_SHA384|CHACHA20_POLY1305_SHA256)$/);
      assert.match(view.fields['key-exchange'], /^(ECDHE|hybrid ECDHE \+ ML-KEM) over /);
      assert.equal(view.fields.authentication, 'ECDSA');
      assert.equal(view.fields.alpn, 'h2 (HTTP/2)');
      assert.equal(view.fields.sni, 'localhost');
      assert.match(view.status, /Encrypted with TLSv1\.3/);
      // The certificate's fingerprint is the one the server serves.
      const api = await p.page.evaluate(async () => (await fetch('/api/tls')).json());
      assert.equal(view.fields.sha256, api.certificate.sha256);
      assert.match(view.fields['public-key'], /^EC, P-256, 256 bits$/);
      assert.match(view.fields.trust, /^self-signed/);
      await p.page.locator('[data-testid="tls-panel"] details summary').click();
      await p.page.locator('[data-testid="tls-panel"]').scrollIntoViewIfNeeded();
      await saveElementScreenshot(p.page.locator('[data-testid="tls-panel"]'), 'tls-panel');
      assertNoPageProblems(p, assert);
    } catch (err) {
      await saveArtifacts(t.name, [p]);
      throw err;
    } finally {
      await p.context.close();
    }
  });

  test('over plain HTTP it warns that nothing is encrypted and links to the eavesdropper', { timeout: 20_000 }, async (t) => {
    const p = await openPlayer(browser, server.url, 'http');
    try {
      const { view } = await waitUntil('the plain-HTTP warning', async () => {
        const view = await readPanel(p.page);
        return { ok: view?.tls === 'false', view, seen: view };
      });
      assert.match(view.status, /^Not encrypted\./);
      assert.equal(view.link, 'eavesdrop.html');
      assert.deepEqual(view.fields, {}, 'no TLS facts over HTTP');
      assertNoPageProblems(p, assert);
    } catch (err) {
      await saveArtifacts(t.name, [p]);
      throw err;
    } finally {
      await p.context.close();
    }
  });

  test('on /compare.html the panel is a drawer that adds no height to the page, and the page says HTTP/2', { timeout: 30_000 }, async (t) => {
    const p = await openTrusting(`${byName(server.httpsUrl)}/compare.html`, 'compare', { width: 1280, height: 720 });
    try {
      const height = () => p.page.evaluate(() => document.documentElement.scrollHeight);
      await waitUntil('the drawer panel filled in', async () => {
        const view = await readPanel(p.page, '[data-testid="tls-drawer"]');
        return { ok: view?.tls === 'true', seen: view };
      });
      const closed = await height();
      assert.equal(await p.page.locator('[data-testid="tls-panel"]').isVisible(), false, 'closed by default');
      await p.page.click('[data-testid="tls-drawer-toggle"]');
      const view = await readPanel(p.page, '[data-testid="tls-drawer"]');
      assert.equal(await p.page.locator('[data-testid="tls-panel"]').isVisible(), true);
      assert.equal(view.fields.protocol, 'TLSv1.3');
      assert.equal(await height(), closed, 'opening the drawer does not lengthen the page');
      const box = await p.page.locator('[data-testid="tls-drawer"]').boundingBox();
      assert.ok(box.y + box.height <= 720 && box.x + box.width <= 1280, `the open drawer fits the screen: ${JSON.stringify(box)}`);

      // Which protocol: over HTTPS the page's API requests and the HTTP panes say HTTP/2, the
      // WebSocket pane wss: (Resource Timing's nextHopProtocol, read by the page).
      await waitUntil('HTTP/2 labels on the page and its panes', async () => {
        const seen = await p.page.evaluate(() => ({
          page: { ...document.querySelector('[data-testid="page-protocol"]').dataset },
          panes: Object.fromEntries([...document.querySelectorAll('.pane')].map((el) => [el.dataset.transport, [el.dataset.protocol, el.dataset.scheme]])),
        }));
        const ok = seen.page.protocol === 'HTTP/2' && seen.page.http === 'https:' && seen.page.ws === 'wss:' &&
          ['ajax', 'longpoll', 'sse'].every((t) => seen.panes[t]?.[0] === 'HTTP/2' && seen.panes[t]?.[1] === 'https:') &&
          seen.panes.websocket?.[1] === 'wss:';
        return { ok, seen };
      });
      assert.equal(await p.page.locator('[data-testid="conn-warning"]').isVisible(), false, 'no connection-limit warning over HTTP/2');
      assertNoPageProblems(p, assert);
    } catch (err) {
      await saveArtifacts(t.name, [p]);
      throw err;
    } finally {
      await p.context.close();
    }
  });
});

/** The eavesdropper page's items of one column: [{kind, dir, text, tls, tampered}]. */
async function readFeed(page, relay) {
  return page.evaluate((relay) =>
    [...document.querySelectorAll(`[data-testid="feed-${relay}"] li`)].map((li) => ({
      kind: li.dataset.kind,
      dir: li.dataset.dir,
      tampered: li.dataset.tampered === 'true',
      text: li.querySelector('.rec-text')?.textContent ?? '',
      tls: li.querySelector('.rec-tls')?.textContent ?? '',
    })), relay);
}

describe('the eavesdropper', () => {
  test('/eavesdrop.html lists records while other pages play through the relays; tamper mode renames a joining player', { timeout: 60_000 }, async (t) => {
    assert.ok(server.relays.plain && server.relays.tls, `relay URLs printed: ${JSON.stringify(server.relays)}`);
    const lecturer = await openPlayer(browser, `${server.url}/eavesdrop.html`, 'lecturer', { viewport: { width: 1280, height: 900 } });
    const players = [lecturer];
    try {
      await lecturer.page.fill('[data-testid="admin-token"]', server.adminToken);
      await waitUntil('the feed to answer', async () => {
        const s = await lecturer.page.textContent('[data-testid="eavesdrop-status"]');
        return { ok: s === 'listening', seen: s };
      });

      // A player through the plain relay: join, switch to WebSocket, win a round.
      const plain = await openPlayer(browser, server.relays.plain, 'plain-player');
      players.push(plain);
      await join(plain, 'Eve Watches Me');
      await selectTransport(plain, 'websocket');
      await clickTarget(plain);
      const plainFeed = await waitUntil('the plain column: the name in a request, WebSocket frames', async () => {
        const feed = await readFeed(lecturer.page, 'plain');
        const ok = feed.some((r) => r.kind === 'http_request' && r.text.includes('"name":"Eve Watches Me"'))
          && feed.some((r) => r.kind === 'ws_frame' && r.dir === 'client_to_server' && r.text.includes('"type":"click"'))
          && feed.some((r) => r.kind === 'http_response' && r.text.includes('••••••••'));
        return { ok, feed, seen: feed.slice(0, 5) };
      }, { timeout: 15_000 });
      assert.ok(!plainFeed.feed.some((r) => /\b\d+\.[0-9a-f]{32}\b/.test(r.text)), 'session tokens are masked until revealed');

      // A player through the TLS relay (Chromium accepts the self-signed certificate).
      const tls = await openTrusting(`${byName(server.relays.tls)}/`, 'tls-player');
      players.push(tls);
      await join(tls, 'Hidden Behind TLS');
      await waitUntil('the TLS column: a ClientHello with SNI and application data', async () => {
        const feed = await readFeed(lecturer.page, 'tls');
        const ok = feed.some((r) => r.tls.includes('ClientHello') && r.tls.includes('SNI localhost'))
          && feed.some((r) => r.tls.startsWith('application_data'));
        return { ok, seen: feed.slice(0, 5) };
      }, { timeout: 15_000 });
      const tlsFeed = await readFeed(lecturer.page, 'tls');
      assert.ok(tlsFeed.every((r) => r.kind === 'tls_record'), 'only TLS records through the TLS relay');
      assert.ok(!tlsFeed.some((r) => r.text.includes('Hidden Behind TLS')), 'the TLS player\'s name is not readable');
      // The filter narrows both columns to what a lecture points at: the name, the hellos.
      await lecturer.page.fill('[data-testid="eavesdrop-filter"]', 'Eve Watches Me|Hello');
      const shown = await lecturer.page.evaluate(() =>
        [...document.querySelectorAll('.feed li')].filter((li) => !li.hidden).map((li) => li.textContent));
      assert.ok(shown.length > 0 && shown.every((text) => /Eve Watches Me|Hello/i.test(text)), 'the filter hides the rest');
      await saveElementScreenshot(lecturer.page.locator('main'), 'eavesdrop');
      await lecturer.page.fill('[data-testid="eavesdrop-filter"]', '');

      // Tamper mode: the next join through the plain relay arrives as Mallory's.
      await lecturer.page.click('[data-testid="tamper-toggle"]');
      await waitUntil('tamper mode on', async () => {
        const pressed = await lecturer.page.getAttribute('[data-testid="tamper-toggle"]', 'aria-pressed');
        return { ok: pressed === 'true', seen: pressed };
      });
      const victim = await openPlayer(browser, server.relays.plain, 'victim');
      players.push(victim);
      await victim.page.fill('[data-testid="name"]', 'Alice');
      await victim.page.click('[data-testid="join"]');
      await waitUntil('the victim\'s own page shows the changed name', async () => {
        const you = await victim.page.evaluate(() => document.querySelector('[data-testid="scoreboard"] tr.you [data-col="name"]')?.firstChild?.textContent ?? null);
        return { ok: you === 'Mallory-Alice', seen: you };
      });
      await waitUntil('the rewritten join marked as tampered', async () => {
        const feed = await readFeed(lecturer.page, 'plain');
        return { ok: feed.some((r) => r.tampered && r.text.includes('Mallory-Alice')), seen: feed.filter((r) => r.tampered) };
      });
      await lecturer.page.click('[data-testid="tamper-toggle"]');
      for (const p of players) assertNoPageProblems(p, assert);
    } catch (err) {
      await saveArtifacts(t.name, players);
      throw err;
    } finally {
      for (const p of players) await p.context.close();
    }
  });
});
