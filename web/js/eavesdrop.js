// # The eavesdropper's view: GET /api/admin/eavesdrop, side by side for ws:// and wss://
//
// Polls the feed of the server's two relays (`clickgame --eavesdrop`, see
// src/eavesdrop/mod.rs) with the lecturer's admin token, and lists each record in the column
// of its relay, newest first: HTTP messages, SSE events and WebSocket frames in clear on the
// plain relay; TLS records on the TLS relay. Session tokens are masked until the lecturer
// ticks "Reveal" — the lesson is that they *are* readable, not that the projector should show
// them. Tamper mode is a POST with the same token.
//
// The token lives in sessionStorage like on /compare.html (js/admin.js). Everything the server
// sends is written with textContent: these records are attacker-visible bytes and may contain
// anything a client sent.

import { adminPost, loadAdminToken, saveAdminToken } from './admin.js';

/** Poll period while the feed answers. */
const POLL_MS = 500;
/** Back-off after an error. */
const RETRY_MS = 2000;
/** Records kept per column on the page. */
const MAX_SHOWN = 300;

const DIRS = { client_to_server: 'browser → server', server_to_client: 'server → browser' };

/**
 * Masks what authenticates someone: session tokens (`<id>.<32 hex>`), one-time tickets
 * (`t<32 hex>`) and any Bearer value — keeping enough to see that it is there. Pure.
 */
export function maskSecrets(text) {
  return text
    .replace(/\b(\d+)\.([0-9a-f]{4})[0-9a-f]{28}\b/g, '$1.$2••••••••')
    .replace(/\bt([0-9a-f]{4})[0-9a-f]{28}\b/g, 't$1••••••••')
    .replace(/(Bearer\s+)([^\s"]{4})[^\s"]*/gi, '$1$2••••••••');
}

/** `16030100f4…` → `16 03 01 00 f4 …`, for reading bytes. Pure. */
export function groupHex(hex) {
  return (hex.match(/../g) ?? []).join(' ');
}

/** The one-line summary of a record. Pure. */
export function recordMeta(r) {
  const parts = [`#${r.seq}`, `conn ${r.conn}`, DIRS[r.dir] ?? r.dir, r.kind.replaceAll('_', ' '), `${r.bytes} B`];
  return parts.join(' · ');
}

/** The TLS record header as read, or null. Pure. */
export function tlsLine(t) {
  if (!t) return null;
  const parts = [t.content_type, `record says ${t.record_version}`];
  if (t.negotiated) parts.push(`negotiated ${t.negotiated}`);
  parts.push(`length ${t.length}`);
  if (t.handshake_type) parts.push(t.handshake_type);
  if (t.sni) parts.push(`SNI ${t.sni}`);
  return parts.join(' · ');
}

/**
 * Whether a record matches the filter: any of its `|`-separated terms, case-insensitive, in
 * its summary, TLS line or text. An empty filter matches everything. Pure.
 */
export function matchesFilter(r, filter) {
  const terms = filter.split('|').map((t) => t.trim().toLowerCase()).filter(Boolean);
  if (terms.length === 0) return true;
  const hay = [recordMeta(r), tlsLine(r.tls) ?? '', r.text ?? ''].join('\n').toLowerCase();
  return terms.some((t) => hay.includes(t));
}

const $ = (id) => document.getElementById(id);

const page = {
  lastSeq: 0,
  count: 0,
  tamper: false,
  paused: false,
  timer: null,
  /** relay → records shown (newest last), for re-rendering when "reveal" changes. */
  shown: { plain: [], tls: [] },

  token() {
    return $('admin-token').value.trim();
  },

  status(text, state) {
    const s = $('feed-status');
    s.textContent = text;
    s.dataset.state = state;
  },

  message(text, ok = true) {
    const m = $('eavesdrop-message');
    m.textContent = text;
    m.dataset.ok = String(ok);
  },

  setTamper(on) {
    this.tamper = on;
    const b = $('tamper');
    b.textContent = on ? 'Tamper mode: ON' : 'Tamper mode: off';
    b.setAttribute('aria-pressed', String(on));
    b.classList.toggle('danger', on);
  },

  item(r) {
    const li = document.createElement('li');
    li.dataset.kind = r.kind;
    li.dataset.dir = r.dir;
    li.dataset.relay = r.relay;
    li.dataset.seq = String(r.seq);
    li.hidden = !matchesFilter(r, $('feed-filter').value);
    if (r.tampered) li.dataset.tampered = 'true';
    const meta = document.createElement('div');
    meta.className = 'rec-meta';
    meta.textContent = recordMeta(r);
    if (r.tampered) {
      const badge = document.createElement('span');
      badge.className = 'badge tampered';
      badge.textContent = 'tampered';
      meta.append(' ', badge);
    }
    li.append(meta);
    const tls = tlsLine(r.tls);
    if (tls) {
      const t = document.createElement('div');
      t.className = 'rec-tls';
      t.textContent = tls;
      li.append(t);
    }
    if (typeof r.text === 'string') {
      const text = $('reveal').checked ? r.text : maskSecrets(r.text);
      const wrap = document.createElement('div');
      wrap.className = 'rec-text';
      // An HTTP message: the head scrolls in a small box, the body (names, tokens) stands out.
      const cut = r.kind.startsWith('http_') ? text.indexOf('\r\n\r\n') : -1;
      const parts = cut >= 0 ? [[text.slice(0, cut + 4), 'rec-head'], [text.slice(cut + 4), 'rec-body']] : [[text, 'rec-body']];
      for (const [part, cls] of parts) {
        if (!part) continue;
        const pre = document.createElement('pre');
        pre.className = cls;
        pre.textContent = part;
        wrap.append(pre);
      }
      li.append(wrap);
    }
    if (r.hex) {
      const hex = document.createElement('div');
      hex.className = 'rec-hex';
      hex.textContent = groupHex(r.hex) + (r.bytes * 2 > r.hex.length ? ' …' : '');
      li.append(hex);
    }
    return li;
  },

  add(records) {
    for (const r of records) {
      const relay = r.relay === 'tls' ? 'tls' : 'plain';
      const list = $(relay === 'tls' ? 'feed-tls' : 'feed-plain');
      this.shown[relay].push(r);
      list.prepend(this.item(r));
      while (this.shown[relay].length > MAX_SHOWN) {
        this.shown[relay].shift();
        list.lastElementChild?.remove();
      }
      this.count += 1;
    }
    $('feed-count').textContent = String(this.count);
    $('feed-seq').textContent = this.lastSeq ? String(this.lastSeq) : '–';
  },

  rerender() {
    for (const relay of ['plain', 'tls']) {
      const list = $(relay === 'tls' ? 'feed-tls' : 'feed-plain');
      list.replaceChildren(...[...this.shown[relay]].reverse().map((r) => this.item(r)));
    }
  },

  clear() {
    this.shown = { plain: [], tls: [] };
    this.count = 0;
    this.rerender();
    $('feed-count').textContent = '0';
  },

  schedule(ms) {
    clearTimeout(this.timer);
    this.timer = setTimeout(() => this.poll(), ms);
  },

  async poll() {
    const token = this.token();
    if (!token) {
      this.status('enter the admin token', 'closed');
      return;
    }
    if (this.paused) return;
    let res;
    try {
      res = await fetch(`/api/admin/eavesdrop?since=${this.lastSeq}`, {
        cache: 'no-store',
        credentials: 'omit',
        headers: { Authorization: `Bearer ${token}` },
      });
    } catch (err) {
      this.status(`server unreachable (${err.message})`, 'reconnecting');
      this.schedule(RETRY_MS);
      return;
    }
    if (res.status === 403) {
      this.status('admin token refused', 'closed');
      return; // until the token changes
    }
    if (res.status === 404) {
      this.status('the eavesdropper is off: start the server with --eavesdrop', 'closed');
      this.schedule(RETRY_MS * 5);
      return;
    }
    let body = null;
    try {
      body = await res.json();
    } catch {
      body = null;
    }
    if (!res.ok || !Array.isArray(body?.records)) {
      this.status(`feed error (HTTP ${res.status})`, 'reconnecting');
      this.schedule(RETRY_MS);
      return;
    }
    this.status('listening', 'connected');
    if (typeof body.tamper === 'boolean' && body.tamper !== this.tamper) this.setTamper(body.tamper);
    const fresh = body.records.filter((r) => Number.isInteger(r?.seq) && r.seq > this.lastSeq);
    if (Number.isInteger(body.last_seq)) this.lastSeq = Math.max(this.lastSeq, body.last_seq);
    if (fresh.length) this.add(fresh);
    // A full page means more is waiting: ask again at once.
    this.schedule(body.records.length >= 500 ? 0 : POLL_MS);
  },

  setup() {
    const token = $('admin-token');
    token.value = loadAdminToken();
    token.addEventListener('input', () => {
      saveAdminToken(token.value.trim());
      this.schedule(0);
    });
    $('admin-token-form').addEventListener('submit', (e) => e.preventDefault());
    $('tamper').addEventListener('click', async () => {
      const want = !this.tamper;
      const result = await adminPost(this.token(), 'eavesdrop', { tamper: want });
      if (result.ok) {
        this.setTamper(Boolean(result.body?.tamper));
        this.message(want
          ? 'Tamper mode on: joins through the plain relay get a new name; TLS connections through the TLS relay break.'
          : 'Tamper mode off: the relays only listen.');
      } else {
        this.message(result.message, false);
      }
    });
    $('reveal').addEventListener('change', () => this.rerender());
    $('feed-filter').addEventListener('input', () => this.rerender());
    $('show-hex').addEventListener('change', () => {
      document.body.classList.toggle('hide-hex', !$('show-hex').checked);
    });
    $('feed-pause').addEventListener('click', () => {
      this.paused = !this.paused;
      const b = $('feed-pause');
      b.textContent = this.paused ? 'Resume' : 'Pause';
      b.setAttribute('aria-pressed', String(this.paused));
      if (this.paused) this.status('paused', 'idle');
      else this.schedule(0);
    });
    $('feed-clear').addEventListener('click', () => this.clear());
    this.poll();
  },
};

if (typeof document !== 'undefined') page.setup();
