// # The attacker's site: a second origin for browser tests of cross-origin attacks
//
// A small Node HTTP server on another port of 127.0.0.1. To the browser it is a different
// *origin* from the game server (the port differs) but the same *site* (ports do not count for
// SameSite), so a victim's SameSite=Strict session cookie for 127.0.0.1 rides along on every
// request its pages make to the game — exactly the position from which Cross-Site WebSocket
// Hijacking works, and in which only the game server's Origin check can say no.
//
// Every response carries the attacker's *own*, deliberately permissive Content-Security-Policy
// (inline script, eval, connections anywhere): the browser's CSP must never be the thing that
// stops an attack in these tests, so a refusal we observe is the server's.
//
// Tests put pages on it, open them in the victim's browser context, and read what the pages
// saw through `report(name, value)` (a helper every page gets): reports are POSTed back to this
// server and also kept in `window.__reports` for `page.evaluate`.
//
//   const attacker = await startAttacker();
//   attacker.page('/hijack.html', { script: `report('opened', await tryIt());` });
//   await page.goto(attacker.url('/hijack.html'));
//   const { value } = await attacker.waitForReport('opened');
//   await attacker.stop();
//
// Nothing here knows about the game: the lab's six attacks (issue 14) reuse it with their own
// pages, and `route()` serves anything else (images, scripts, a JSON file, a redirect).

import http from 'node:http';

/** The attacker's CSP: everything allowed, so only the target server can refuse an attack. */
export const PERMISSIVE_CSP =
  "default-src * data: blob: 'unsafe-inline' 'unsafe-eval'; " +
  "script-src * data: blob: 'unsafe-inline' 'unsafe-eval'; " +
  'connect-src * ws: wss: http: https: data: blob:; ' +
  "img-src * data: blob:; style-src * 'unsafe-inline'; form-action *; frame-src *";

const KIT_PATH = '/__attacker-kit.js';
const REPORT_PATH = '/__report';

// Loaded first by every page made with `page()`: `report(name, value)` records a finding, and
// uncaught errors are reported as `error` so a broken attack script fails loudly, not silently.
const KIT = `
window.__reports = [];
window.report = function report(name, value) {
  const entry = { name: String(name), value: value === undefined ? null : value, at: Date.now() };
  window.__reports.push(entry);
  return fetch(${JSON.stringify(REPORT_PATH)}, {
    method: 'POST',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify(entry),
  }).catch(() => {});
};
window.addEventListener('error', (e) => report('error', String(e.message)));
window.addEventListener('unhandledrejection', (e) => report('error', String(e.reason)));
`;

/**
 * Starts the attacker's server on `host:port` (default 127.0.0.1 and a free port).
 * Resolves to the handle described at the top of this file.
 */
export async function startAttacker({ host = '127.0.0.1', port = 0 } = {}) {
  /** path → {status, type, body, headers} or a function (req, res, body) => void */
  const routes = new Map();
  const reports = [];
  const waiters = new Set();
  const requests = [];

  function record(entry) {
    reports.push(entry);
    for (const w of [...waiters]) {
      if (w.name === entry.name) {
        waiters.delete(w);
        w.resolve(entry);
      }
    }
  }

  const server = http.createServer(async (req, res) => {
    const chunks = [];
    for await (const c of req) chunks.push(c);
    const body = Buffer.concat(chunks).toString('utf8');
    const { pathname } = new URL(req.url, 'http://attacker.invalid');
    requests.push({ method: req.method, path: pathname });
    const send = (status, type, payload, headers = {}) => {
      res.writeHead(status, {
        'Content-Type': type,
        'Content-Security-Policy': PERMISSIVE_CSP,
        'Cache-Control': 'no-store',
        ...headers,
      });
      res.end(payload);
    };
    if (pathname === REPORT_PATH && req.method === 'POST') {
      try {
        const entry = JSON.parse(body);
        record({ name: String(entry.name), value: entry.value ?? null, at: entry.at ?? Date.now() });
        send(204, 'text/plain', '');
      } catch {
        send(400, 'text/plain', 'a report is JSON {name, value}');
      }
      return;
    }
    if (pathname === KIT_PATH) {
      send(200, 'text/javascript; charset=utf-8', KIT);
      return;
    }
    const route = routes.get(pathname);
    if (typeof route === 'function') {
      try {
        await route(req, res, body);
      } catch (err) {
        if (!res.headersSent) send(500, 'text/plain', String(err));
      }
      return;
    }
    if (route) {
      send(route.status ?? 200, route.type ?? 'text/html; charset=utf-8', route.body ?? '', route.headers);
      return;
    }
    send(404, 'text/plain', `the attacker serves nothing at ${pathname}`);
  });

  await new Promise((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, resolve);
  });
  const address = server.address();
  const origin = `http://${address.family === 'IPv6' ? `[${address.address}]` : address.address}:${address.port}`;

  return {
    /** `http://127.0.0.1:<port>`: what the browser sends as `Origin` from these pages. */
    origin,
    port: address.port,
    url: (path = '/') => `${origin}${path}`,

    /**
     * Serves anything at `path`: `{status, type, body, headers}` (the permissive CSP is added
     * unless `headers` overrides it), or `(req, res, body) => …` for full control.
     */
    route(path, handler) {
      routes.set(path, handler);
    },

    /**
     * An HTML page at `path` that loads the report kit and then runs `script` (the body of an
     * async function: `await` works, and a thrown error is reported as `error`). `html` goes in
     * the body before the script.
     */
    page(path, { script = '', html = '', title = 'A perfectly innocent page' } = {}) {
      const scriptPath = `${path.replace(/\.html$/, '')}.attack.js`;
      routes.set(scriptPath, {
        type: 'text/javascript; charset=utf-8',
        body: `(async () => {\n${script}\n})().catch((e) => report('error', String(e && e.stack || e)));\n`,
      });
      routes.set(path, {
        body: `<!doctype html><html><head><meta charset="utf-8"><title>${title}</title>` +
          `<script src="${KIT_PATH}"></script></head><body>${html}` +
          `<script src="${scriptPath}"></script></body></html>`,
      });
      return `${origin}${path}`;
    },

    /** Every report so far, oldest first: `{name, value, at}`. */
    reports: () => [...reports],

    /** The first report called `name` (already made, or the next one), within `timeout` ms. */
    waitForReport(name, { timeout = 10_000 } = {}) {
      const done = reports.find((r) => r.name === name);
      if (done) return Promise.resolve(done);
      return new Promise((resolve, reject) => {
        const waiter = { name, resolve };
        waiters.add(waiter);
        setTimeout(() => {
          if (waiters.delete(waiter)) {
            reject(new Error(`no report "${name}" within ${timeout} ms; reports: ${JSON.stringify(reports)}`));
          }
        }, timeout).unref();
      });
    },

    /** Forgets reports and the request log (between attacks on one fixture). */
    clear() {
      reports.length = 0;
      requests.length = 0;
    },

    /** Requests the attacker's server received: `{method, path}`. */
    requests: () => [...requests],

    async stop() {
      for (const w of waiters) w.resolve(null);
      waiters.clear();
      server.closeAllConnections?.();
      await new Promise((resolve) => server.close(() => resolve()));
    },
  };
}
