// # e2e helpers: start the real server, drive headless Chromium, read the page like a player
//
// The server is the real binary (env CLICKGAME_BIN, default ../target/debug/clickgame) on a free
// port with a fixed seed and short round pauses; Chromium is Debian's /usr/bin/chromium driven by
// playwright-core (no bundled browser download). Pages are read only through the client's
// stable `data-testid` hooks, the way a test-writing student would.

import { spawn } from 'node:child_process';
import { existsSync } from 'node:fs';
import { mkdir, mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { setTimeout as sleep } from 'node:timers/promises';
import { chromium } from 'playwright-core';

const HERE = path.dirname(fileURLToPath(import.meta.url));
export const WEB_DIR = path.resolve(HERE, '..', 'web');
export const SERVER_BIN = process.env.CLICKGAME_BIN
  ? path.resolve(process.env.CLICKGAME_BIN)
  : path.resolve(HERE, '..', 'target', 'debug', 'clickgame');
export const CHROMIUM = process.env.CHROMIUM_BIN ?? '/usr/bin/chromium';
export const ARTIFACTS = path.join(HERE, 'artifacts');
/** Where the README's screenshots live; written only with UPDATE_SCREENSHOTS=1 (see saveScreenshot). */
export const DOC_SCREENSHOTS = path.resolve(HERE, '..', 'docs', 'screenshots');
export const TRANSPORTS = ['ajax', 'longpoll', 'sse', 'websocket'];

export { sleep };

const LISTENING = /^listening on (http:\/\/\S+)\s*$/m;
const ADMIN_TOKEN = /^admin token: (\S+)\s*$/m;

/**
 * Starts the server and resolves once it printed `listening on http://127.0.0.1:PORT` and its
 * `admin token: <hex>` line (the lecturer controls need it).
 * `--no-tls`: the tests use plain HTTP only, and without it the server would also bind the fixed
 * HTTPS port 8443. `--data-dir` a fresh temporary directory: every run starts with an empty game
 * (nothing restored from an earlier run's saved state) and leaves no files behind.
 *
 * `--join-rate 0 --join-rate-total 0`: every test joins its players from 127.0.0.1, and none is
 * about the join limits (tests/api/joins.rs is), so they are off here, as in `Config::for_tests`.
 *
 * Options, for the restart test: `addr` (default `127.0.0.1:0`, a free port), `dataDir` (reuse
 * one: the saved game is restored), `keepDataDir` (do not delete it on stop), `args` (extra flags).
 * `tls: true` serves HTTPS too, on a free port (`httpsUrl`; the certificate is self-signed, so
 * open pages in a context with `ignoreHTTPSErrors`); with `--eavesdrop` among `args` (and
 * `--eavesdrop-addr`/`--eavesdrop-tls-addr 127.0.0.1:0`) the relays' URLs are in `relays`;
 * with `--lab` (and `--lab-attacker-addr 127.0.0.1:0`) the attacker's page is `labAttacker`.
 */
export async function startServer({ addr = '127.0.0.1:0', dataDir = null, keepDataDir = false, tls = false, args: extra = [] } = {}) {
  if (!existsSync(SERVER_BIN)) {
    throw new Error(`server binary ${SERVER_BIN} not found: run \`cargo build\` in the repository root or set CLICKGAME_BIN`);
  }
  const dir = dataDir ?? (await mkdtemp(path.join(tmpdir(), 'clickgame-e2e-')));
  const args = [
    '--http-addr', addr,
    ...(tls ? ['--https-addr', '127.0.0.1:0'] : ['--no-tls']),
    '--data-dir', dir,
    '--seed', '7',
    '--round-pause-ms', '200',
    '--round-pause-jitter-ms', '0',
    '--join-rate', '0',
    '--join-rate-total', '0',
    '--web-dir', WEB_DIR,
    ...extra,
  ];
  const child = spawn(SERVER_BIN, args, { stdio: ['ignore', 'pipe', 'pipe'] });
  let stdout = '';
  let stderrTail = [];
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (chunk) => {
    stderrTail = stderrTail.concat(chunk.split('\n')).slice(-40);
  });
  const { url, adminToken } = await new Promise((resolve, reject) => {
    const timer = setTimeout(() => fail(new Error('no "listening on" and "admin token" lines within 15 s')), 15_000);
    function fail(err) {
      clearTimeout(timer);
      child.kill('SIGKILL');
      if (!dataDir) rm(dir, { recursive: true, force: true }).catch(() => {});
      reject(new Error(`${err.message}\nstdout:\n${stdout}\nstderr (tail):\n${stderrTail.join('\n')}`));
    }
    child.stdout.setEncoding('utf8');
    child.stdout.on('data', (chunk) => {
      stdout += chunk;
      const listening = LISTENING.exec(stdout);
      const token = ADMIN_TOKEN.exec(stdout);
      if (listening && token) {
        clearTimeout(timer);
        child.removeAllListeners('exit');
        resolve({ url: listening[1], adminToken: token[1] });
      }
    });
    child.once('error', fail);
    child.once('exit', (code, signal) => fail(new Error(`server exited early (code ${code}, signal ${signal})`)));
  });
  child.stdout.resume(); // keep draining so the server never blocks on a full pipe
  const httpsUrl = /^listening on (https:\/\/\S+)\s*$/m.exec(stdout)?.[1] ?? null;
  const relays = {
    plain: /^eavesdrop relay on (http:\/\/\S+)\s*$/m.exec(stdout)?.[1] ?? null,
    tls: /^eavesdrop relay on (https:\/\/\S+)\s*$/m.exec(stdout)?.[1] ?? null,
  };
  // With `--lab` (and `--lab-attacker-addr 127.0.0.1:0`): the attacker's page.
  const labAttacker = /^lab attacker site on (http:\/\/\S+)\s*$/m.exec(stdout)?.[1] ?? null;
  return {
    url,
    httpsUrl,
    relays,
    labAttacker,
    adminToken,
    dataDir: dir,
    stderrTail: () => stderrTail.join('\n'),
    /** POST /api/admin/<action> with the admin token; resolves to the Response. */
    admin(action, body) {
      return fetch(`${url}/api/admin/${action}`, {
        method: 'POST',
        headers: {
          Authorization: `Bearer ${adminToken}`,
          ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
        },
        body: body === undefined ? undefined : JSON.stringify(body),
      });
    },
    async snapshot() {
      return (await fetch(`${url}/api/snapshot`)).json();
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        const exited = new Promise((resolve) => child.once('exit', resolve));
        child.kill('SIGTERM');
        const timedOut = await Promise.race([exited.then(() => false), sleep(6000).then(() => true)]);
        if (timedOut) {
          child.kill('SIGKILL');
          await exited;
        }
      }
      if (!keepDataDir) await rm(dir, { recursive: true, force: true });
    },
  };
}

export function launchBrowser() {
  return chromium.launch({
    executablePath: CHROMIUM,
    headless: true,
    args: [
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
      '--disable-quic',
    ],
  });
}

/** The downstream endpoint each transport uses, to check the page really switched. */
const ENDPOINTS = { '/api/poll': 'ajax', '/api/longpoll': 'longpoll', '/api/sse': 'sse', '/api/ws': 'websocket' };

/**
 * A page in its own browser context (own cookie jar = own player), with what it did on the
 * network counted and its errors collected. `context` adds options of the browser context, e.g.
 * `{hasTouch: true, isMobile: true}` for a phone.
 */
export async function openPlayer(browser, baseUrl, label, { viewport = { width: 1100, height: 900 }, context: options = {} } = {}) {
  const context = await browser.newContext({ viewport, ...options });
  const page = await context.newPage();
  const player = {
    label,
    context,
    page,
    pageErrors: [],
    consoleErrors: [],
    /** Downstream requests/sockets opened, per transport. */
    downstream: Object.fromEntries(TRANSPORTS.map((t) => [t, 0])),
    clickPosts: 0,
    wsClickFrames: 0,
  };
  page.on('pageerror', (err) => player.pageErrors.push(String(err?.stack ?? err)));
  page.on('console', (msg) => {
    if (msg.type() === 'error') player.consoleErrors.push(msg.text());
  });
  page.on('request', (req) => {
    const { pathname } = new URL(req.url());
    if (pathname === '/api/click' && req.method() === 'POST') player.clickPosts += 1;
    if (ENDPOINTS[pathname] && pathname !== '/api/ws') player.downstream[ENDPOINTS[pathname]] += 1;
  });
  page.on('websocket', (ws) => {
    if (new URL(ws.url()).pathname !== '/api/ws') return;
    player.downstream.websocket += 1;
    ws.on('framesent', (frame) => {
      if (String(frame.payload).includes('"type":"click"')) player.wsClickFrames += 1;
    });
  });
  await page.goto(baseUrl);
  return player;
}

/**
 * Polls `probe` until it returns `{ok: true}`; fails with `what` and the last thing seen.
 * (playwright-core has no `expect`; this is the one retrying assertion we need.)
 */
export async function waitUntil(what, probe, { timeout = 10_000, interval = 100 } = {}) {
  const deadline = Date.now() + timeout;
  let last = 'nothing yet';
  for (;;) {
    try {
      const result = await probe();
      if (result.ok) return result;
      last = result.seen;
    } catch (err) {
      last = `error: ${err.message}`;
    }
    if (Date.now() > deadline) {
      throw new Error(`timed out after ${timeout} ms waiting for ${what}; last seen: ${JSON.stringify(last)}`);
    }
    await sleep(interval);
  }
}

/** Everything the page shows that the tests check, read through the data-testid hooks. */
export async function readPage(player) {
  return player.page.evaluate(() => {
    const text = (id) => document.querySelector(`[data-testid="${id}"]`)?.textContent ?? null;
    const rows = [...document.querySelectorAll('[data-testid="scoreboard"] tr')].map((tr) => ({
      id: Number(tr.dataset.player),
      // The first text node is the name; a "you" badge may follow it.
      name: tr.querySelector('[data-col="name"]')?.firstChild?.textContent ?? '',
      score: Number(tr.querySelector('[data-col="score"]')?.textContent),
      misses: Number(tr.querySelector('[data-col="misses"]')?.textContent),
      transport: tr.querySelector('[data-col="transport"]')?.textContent ?? '',
      you: tr.classList.contains('you'),
    }));
    const wins = Object.fromEntries(
      [...document.querySelectorAll('[data-testid="summary"] li')].map((li) => [
        li.dataset.transport,
        parseInt(li.querySelector('[data-col="wins"]')?.textContent ?? '', 10),
      ]),
    );
    return {
      status: text('status'),
      lastSeq: Number(text('last-seq')),
      missed: Number(text('missed')),
      recovered: Number(text('recovered')),
      resynced: Number(text('resynced')),
      result: text('result'),
      transportSelect: document.querySelector('[data-testid="transport"]')?.value,
      rows,
      wins,
    };
  });
}

export function rowOf(view, name) {
  return view.rows.find((r) => r.name === name);
}

/** Picks a transport in the dropdown and waits until the page reports it connected. */
export async function selectTransport(player, transport) {
  await player.page.selectOption('[data-testid="transport"]', transport);
  await waitUntil(`${player.label}: status "${transport}: connected"`, async () => {
    const view = await readPage(player);
    return { ok: view.status?.includes(transport) && view.status.includes('connected'), seen: view.status };
  });
}

/** Joins under `name` and waits for the own row ("you") in the scoreboard. */
export async function join(player, name) {
  await player.page.fill('[data-testid="name"]', name);
  await player.page.click('[data-testid="join"]');
  await waitUntil(`${player.label}: own row "${name}" in the scoreboard`, async () => {
    const view = await readPage(player);
    const row = rowOf(view, name);
    return { ok: row?.you === true, seen: view.rows };
  });
  player.name = name;
}

/** Waits until the page shows the player's transport as `transport` in the scoreboard. */
export async function waitForOwnTransport(player, viewer, transport) {
  await waitUntil(`${viewer.label}: ${player.name}'s transport shown as ${transport}`, async () => {
    const row = rowOf(await readPage(viewer), player.name);
    return { ok: row?.transport === transport, seen: row };
  });
}

/**
 * Clicks the centre of the live target of a round other than `notRound`, and returns the round
 * and the result text the page shows.
 */
export async function clickTarget(player, { notRound = null, timeout = 5000 } = {}) {
  const { page } = player;
  await page.waitForFunction(
    (prev) => {
      const t = document.querySelector('[data-testid="target"]');
      return t && !t.classList.contains('is-hidden') && t.dataset.round && t.dataset.round !== prev;
    },
    notRound === null ? null : String(notRound),
    { timeout },
  );
  const target = page.locator('[data-testid="target"]');
  const round = Number(await target.getAttribute('data-round'));
  await page.evaluate(() => {
    document.querySelector('[data-testid="result"]').textContent = '';
  });
  await target.click({ timeout });
  const { result } = await waitUntil(`${player.label}: a click result for round ${round}`, async () => {
    const view = await readPage(player);
    return { ok: Boolean(view.result), result: view.result, seen: view.result };
  }, { timeout });
  return { round, result };
}

/** Saves a screenshot and the page text of each player, for a failed test. */
export async function saveArtifacts(testName, players) {
  await mkdir(ARTIFACTS, { recursive: true });
  const slug = testName.replace(/[^a-z0-9]+/gi, '-').toLowerCase();
  for (const p of players) {
    try {
      await p.page.screenshot({ path: path.join(ARTIFACTS, `${slug}-${p.label}.png`), fullPage: true });
      const view = await readPage(p);
      await writeFile(
        path.join(ARTIFACTS, `${slug}-${p.label}.json`),
        JSON.stringify({ view, pageErrors: p.pageErrors, consoleErrors: p.consoleErrors, downstream: p.downstream }, null, 2),
      );
    } catch {
      // The page may be gone; the error message is what matters.
    }
  }
}

/** Page errors and CSP violations are bugs in the client, whatever the test checks. */
export function assertNoPageProblems(player, assert) {
  assert.deepEqual(player.pageErrors, [], `${player.label}: uncaught errors in the page`);
  const csp = player.consoleErrors.filter((m) => /Content Security Policy/i.test(m));
  assert.deepEqual(csp, [], `${player.label}: CSP violations`);
}

/** The live figures table of `/`: {figure: {window, client, server}} as the page shows them (client = since picked). */
export async function readFigures(player) {
  return player.page.evaluate(() =>
    Object.fromEntries(
      [...document.querySelectorAll('[data-testid="figures"] tr[data-figure]')].map((tr) => [
        tr.dataset.figure,
        {
          window: tr.querySelector('[data-side="window"]')?.textContent ?? '',
          client: tr.querySelector('[data-side="client"]')?.textContent ?? '',
          server: tr.querySelector('[data-side="server"]')?.textContent ?? '',
        },
      ]),
    ));
}

/** The wire inspector's items, newest first: [{dir, text}]. */
export async function readWire(player) {
  return player.page.evaluate(() =>
    [...document.querySelectorAll('[data-testid="wire"] li')].map((li) => ({
      dir: li.dataset.dir,
      text: li.querySelector('.wire-text')?.textContent ?? '',
    })));
}

/** One pane of /compare.html, as plain numbers from its data attributes. */
export async function readPane(page, transport) {
  return page.evaluate((t) => {
    const pane = document.querySelector(`[data-testid="pane-${t}"]`);
    if (!pane) return null;
    const d = pane.dataset;
    return {
      connection: d.connection,
      lastSeq: d.lastSeq === '' ? null : Number(d.lastSeq),
      missed: Number(d.missed),
      events: Number(d.events),
      reconnects: Number(d.reconnects),
      recovered: Number(d.recovered),
      resynced: Number(d.resynced),
    };
  }, transport);
}

/**
 * A screenshot of the page as it is now (viewport only, scrolled to the top): always into
 * artifacts/screenshots/, and into docs/screenshots/ when UPDATE_SCREENSHOTS=1 (`npm run
 * screenshots`), so an ordinary test run leaves the repository unchanged.
 */
export async function saveScreenshot(page, name) {
  await page.evaluate(() => window.scrollTo(0, 0));
  const buffer = await page.screenshot({ type: 'png' });
  const dirs = [path.join(ARTIFACTS, 'screenshots')];
  if (process.env.UPDATE_SCREENSHOTS === '1') dirs.push(DOC_SCREENSHOTS);
  for (const dir of dirs) {
    await mkdir(dir, { recursive: true });
    await writeFile(path.join(dir, `${name}.png`), buffer);
  }
}
