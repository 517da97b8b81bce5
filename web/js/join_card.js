// # The join card: where the room joins, in large type and as a QR code (for the projector)
//
// Asks `GET /api/join-info` (src/classroom.rs): the player page's URLs under every name the
// room can use — the laptop's LAN addresses and host name with `make class` (`--lan`), the
// loopback ones without — over plain HTTP and HTTPS, the QR code's address, and the
// certificate's fingerprint. The QR code carries the first plain-HTTP URL (phones do not trust
// the laptop's certificate); it is an SVG the server draws, shown with <img>, never inserted as
// markup. The HTTPS URLs come with the fingerprint, so a student who wants TLS can compare it
// with the one their phone shows before accepting the certificate.
//
// Self-contained like js/tls_panel.js: it mounts itself on every `[data-join-card]`, and fills
// any `[data-join-summary]` with the join URL (the drawer's tab, js/drawers.js). `compare.html#join`
// opens the drawer at once (drawers.js). Everything from the server is written with textContent.

import { el } from './dom.js';

/** What the card shows, from untrusted JSON; null when it is not join info. Pure, for tests. */
export function joinCardView(info) {
  const strings = (v) => (Array.isArray(v) ? v.filter((u) => typeof u === 'string' && /^https?:\/\//.test(u)) : []);
  const urls = strings(info?.urls);
  if (urls.length === 0) return null;
  // Only a path on this server: never another origin, never a `javascript:` or `data:` URL.
  const qr = typeof info.qr === 'string' && info.qr.startsWith('/') && !info.qr.startsWith('//') ? info.qr : null;
  const others = urls.slice(1);
  return {
    url: urls[0],
    others,
    // Over TLS: the first HTTPS address not shown already (a public https:// URL is the join
    // URL itself).
    tls: strings(info.https_urls).find((u) => u !== urls[0] && !others.includes(u)) ?? null,
    fingerprint: typeof info.cert_sha256 === 'string' ? info.cert_sha256 : null,
    lan: info.lan === true,
    public: info.public === true,
    qr,
  };
}

/** Draws the card for `info` (the JSON of /api/join-info) into `root`. */
export function renderJoinCard(root, info) {
  const view = joinCardView(info);
  const head = el('h2', { textContent: 'Join the game' });
  if (!view) {
    root.replaceChildren(head, el('p', { className: 'explain', textContent: 'The server sent no address to join at.' }));
    return view;
  }
  const url = el('p', { className: 'join-url', textContent: view.url, dataset: { testid: 'join-url' } });
  // Its length sizes the type (classroom.css): as large as fits on one line, so nobody types a
  // URL broken in the middle of its port. (CSSOM: the CSP allows no style attribute.)
  url.style.setProperty('--chars', String(view.url.length));
  const text = el('div', { className: 'join-text' },
    el('p', { className: 'join-lead', textContent: 'On your phone or laptop, on this room\'s Wi-Fi, open:' }),
    url);
  if (view.others.length) {
    text.append(el('p', { className: 'join-others', textContent: `or ${view.others.join('  ·  ')}` }));
  }
  if (view.tls) {
    const https = el('div', { className: 'join-https' },
      el('p', { textContent: `Over TLS: ${view.tls} — your phone will warn about the certificate. Accept it only if its SHA-256 fingerprint is this one:` }));
    if (view.fingerprint) {
      https.append(el('p', { className: 'join-fingerprint', textContent: view.fingerprint, dataset: { testid: 'join-fingerprint' } }));
    }
    text.append(https);
  }
  if (!view.lan && !view.public) {
    text.append(el('p', { className: 'join-note', textContent: 'These are this computer\'s own addresses: start the server with `make class` (--lan) so that phones on the room\'s network can join.' }));
  }
  const children = [head];
  if (view.qr) {
    const img = el('img', { className: 'join-qr', src: view.qr, alt: `QR code for ${view.url}`, width: 256, height: 256 });
    img.dataset.testid = 'join-qr';
    children.push(el('div', { className: 'join-body' }, img, text));
  } else {
    children.push(el('div', { className: 'join-body' }, text));
  }
  root.replaceChildren(...children);
  return view;
}

/** Fetches /api/join-info and renders it; a failure is shown as a message, never thrown. */
export async function mountJoinCard(root) {
  try {
    const res = await fetch('/api/join-info', { cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    const view = renderJoinCard(root, await res.json());
    for (const label of document.querySelectorAll('[data-join-summary]')) label.textContent = view ? view.url : '';
  } catch (err) {
    root.replaceChildren(
      el('h2', { textContent: 'Join the game' }),
      el('p', { className: 'explain', textContent: `Could not ask the server where to join (${err.message}).` }),
    );
  }
}

if (typeof document !== 'undefined') {
  for (const root of document.querySelectorAll('[data-join-card]')) mountJoinCard(root);
}
