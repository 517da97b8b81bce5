// # The lecturer's lab panels: the defence switches and the defence log (docs/lab.md)
//
// Two self-contained panels, like js/tls_panel.js and js/join_card.js: each mounts itself on
// every element marked `[data-lab-switches]` or `[data-lab-log]` — on /lab.html, and on
// /compare.html as two drawers of the shared mechanism (js/drawers.js; listed in js/layout.js's
// DRAWERS as `lab-switches` and `lab-log`). Both need the admin token, which they read from
// where the page's own token field keeps it (js/admin.js, sessionStorage), at every request.
//
// * Switches: `GET /api/admin/lab` → one checkbox per defence; a change is
//   `POST /api/admin/lab {"<defence>": bool}`. Every page then learns the new set from
//   `/api/stats` (js/lab.js): the banner appears or goes.
// * Log: `GET /api/admin/lab/log?since=N`, once a second, newest first: every refusal with its
//   rule, code, origin and client address, and a tally per rule.
//
// Without `--lab` the panels hide themselves — on /compare.html, their drawers' tabs — as soon as
// `/api/stats` says so (js/lab.js): the lab does not exist then. They ask the lab's endpoints only
// once `/api/stats` has said it exists: otherwise each refresh is a 404 in the network tab, which
// the lecturer shows while explaining polling. Everything from the server is written with
// textContent.

import { adminRequest, loadAdminToken } from './admin.js';
import { close as closeDrawer } from './drawers.js';
import { DEFENCES, labState, onLabChange, refreshLab } from './lab.js';
import { el } from './dom.js';

const LOG_MS = 1000;
const SWITCHES_MS = 3000;
/** Rows the log keeps on screen. */
export const LOG_ROWS = 80;
/** The refusal rules, in the order of the tally. */
export const RULES = Object.freeze(['origin', 'subprotocol', 'input', 'auth', 'rate_limit', 'size', 'server_data']);

/** What each defence protects, for the switch's caption. */
const WHAT = {
  origin: 'refuses pages of other origins (403): stops cross-site WebSocket hijacking and cross-site clicks',
  subprotocol: 'refuses a WebSocket without clickgame.v1 (400)',
  input: 'refuses bad names (400) and oversized frames (1009), reads no binary frames (1003)',
  auth: 'who clicks comes from the session: a click naming another player is 403 impersonation',
  server_data: 'the pages write names as text and ignore events that fail their checks',
};

async function call(method, path, body) {
  const token = loadAdminToken();
  if (!token) return { ok: false, status: 0, message: 'Enter the admin token (printed by the server at start-up).' };
  const res = await adminRequest(token, method, path, body);
  if (res.status === 0) return { ok: false, status: 0, message: res.message };
  const parsed = res.body;
  if (res.status >= 200 && res.status < 300) return { ok: true, status: res.status, body: parsed };
  if (res.status === 404) return { ok: false, status: 404, message: 'The lab is off: start the server with --lab.' };
  if (res.status === 403) return { ok: false, status: 403, message: 'The server refused the admin token.' };
  return { ok: false, status: res.status, message: `${parsed?.error ?? res.status}: ${parsed?.detail ?? ''}` };
}

/**
 * Shows `root` — in a drawer (js/drawers.js), that drawer's tab — only while the lab exists. A
 * drawer's tab is there from the start and goes only once the server has said there is no lab,
 * so on a lab server it never flickers.
 */
function showLab(root, present) {
  const drawer = root.closest('.drawer');
  if (!drawer) {
    root.hidden = !present;
    return;
  }
  const tab = document.querySelector(`[aria-controls="${drawer.id}"]`);
  if (tab) tab.hidden = !present;
  if (!present) closeDrawer(drawer.dataset.drawerId);
}

/** Whether the server runs with --lab, as /api/stats said (js/lab.js); false until it has. */
const labExists = () => labState().known && labState().present;

/** Shows `root` exactly while the server runs with --lab, once /api/stats has said (js/lab.js). */
function followLab(root) {
  const follow = (lab) => {
    if (lab.known) showLab(root, lab.present);
  };
  follow(labState());
  onLabChange(follow);
}

/** `{defences: {...}}` from the server, as `[[id, on]]` for the known defences. Pure, for tests. */
export function switchesView(body) {
  const d = body?.defences;
  if (typeof d !== 'object' || d === null) return null;
  return DEFENCES.filter((x) => typeof d[x.id] === 'boolean').map((x) => [x.id, d[x.id]]);
}

export class SwitchesPanel {
  constructor(root) {
    this.root = root;
    this.boxes = new Map();
    const list = el('ul', { className: 'lab-switches' });
    for (const d of DEFENCES) {
      // Unknown until the server answers: unticked and disabled, not a guess.
      const box = el('input', { type: 'checkbox', id: `lab-switch-${d.id}`, checked: false, disabled: true, dataset: { testid: `lab-switch-${d.id}` } });
      box.addEventListener('change', () => this.flip(d.id, box.checked));
      this.boxes.set(d.id, box);
      list.append(el('li', { dataset: { defence: d.id } },
        box,
        el('label', { htmlFor: box.id }, el('strong', { textContent: d.label }), el('span', { className: 'lab-what', textContent: ` — ${WHAT[d.id]}` }))));
    }
    this.message = el('p', { className: 'lab-message', dataset: { testid: 'lab-switches-message' }, role: 'status' });
    followLab(root);
    root.replaceChildren(
      el('h2', { textContent: 'Defences' }),
      el('p', { className: 'explain', textContent: 'Ticked = on (the default at every start). Untick one, run its attack on the attacker\'s page, tick it again and run the same attack.' }),
      list,
      this.message,
    );
    this.load();
    onLabChange((lab) => {
      if (lab.present) this.load();
    });
    setInterval(() => this.load(), SWITCHES_MS);
    // The page's own token field (js/admin.js keeps what is typed): ask again as soon as it changes.
    document.getElementById('admin-token')?.addEventListener('input', () => this.load());
  }

  async load() {
    if (!labExists()) return;
    const answer = await call('GET', '/api/admin/lab');
    if (answer.status === 404) showLab(this.root, false);
    if (answer.ok) {
      if (!this.root.dataset.loaded) this.message.textContent = '';
      this.show(answer.body);
    } else {
      this.message.textContent = answer.message;
    }
  }

  show(body) {
    const view = switchesView(body);
    if (!view) return;
    for (const [id, on] of view) {
      const box = this.boxes.get(id);
      box.checked = on;
      box.disabled = false;
      box.closest('li').dataset.state = on ? 'on' : 'off';
    }
    this.root.dataset.loaded = 'true';
  }

  async flip(id, on) {
    const answer = await call('POST', '/api/admin/lab', { [id]: on });
    if (answer.ok) {
      this.show(answer.body);
      const label = DEFENCES.find((d) => d.id === id).label;
      this.message.textContent = on ? `${label} is on again.` : `${label} is OFF: the server is vulnerable to it now.`;
      refreshLab();
    } else {
      this.message.textContent = answer.message;
      this.load();
    }
  }
}

/** One log entry from untrusted JSON, as the strings a row shows; null if malformed. Pure. */
export function logRowView(e) {
  if (typeof e !== 'object' || e === null || !Number.isSafeInteger(e.seq) || e.seq < 1 || !RULES.includes(e.rule)) return null;
  const time = Number.isSafeInteger(e.ts) ? new Date(e.ts).toLocaleTimeString() : '';
  return {
    seq: e.seq,
    time,
    rule: e.rule,
    code: Number.isInteger(e.code) && e.code > 0 ? String(e.code) : '—',
    error: typeof e.error === 'string' ? e.error : '',
    detail: typeof e.detail === 'string' ? e.detail : '',
    origin: typeof e.origin === 'string' ? e.origin : '(none)',
    peer: typeof e.peer === 'string' ? e.peer : '',
  };
}

export class LogPanel {
  constructor(root) {
    this.root = root;
    this.since = 0;
    this.rows = [];
    this.tally = Object.fromEntries(RULES.map((r) => [r, 0]));
    this.tallyList = el('ul', { className: 'lab-tally', dataset: { testid: 'lab-tally' } });
    this.body = el('tbody', { dataset: { testid: 'lab-log' } });
    this.status = el('p', { className: 'lab-message', role: 'status' });
    followLab(root);
    const head = el('tr', {}, ...['time', 'rule', 'code', 'what', 'origin', 'client'].map((h) => el('th', { scope: 'col', textContent: h })));
    root.replaceChildren(
      el('h2', { textContent: 'Defence log' }),
      el('p', { className: 'explain', textContent: 'Every refusal, newest first: which defence, the status or close code, the origin it came from and the client\'s address.' }),
      this.tallyList,
      el('div', { className: 'table-scroll lab-log-scroll' }, el('table', { className: 'lab-log' }, el('thead', {}, head), this.body)),
      this.status,
    );
    this.renderTally();
    this.tick();
  }

  async tick() {
    if (!labExists()) {
      setTimeout(() => this.tick(), LOG_MS);
      return;
    }
    const answer = await call('GET', `/api/admin/lab/log?since=${this.since}`);
    if (answer.status === 404) showLab(this.root, false);
    if (answer.ok) {
      this.status.textContent = '';
      this.add(answer.body);
    } else {
      this.status.textContent = answer.message;
    }
    setTimeout(() => this.tick(), answer.status === 404 ? 15_000 : LOG_MS);
  }

  add(body) {
    const entries = Array.isArray(body?.entries) ? body.entries : [];
    const fresh = entries.map(logRowView).filter((v) => v && v.seq > this.since);
    if (Number.isSafeInteger(body?.last_seq) && body.last_seq >= this.since) this.since = body.last_seq;
    if (fresh.length === 0) return;
    for (const v of fresh) this.tally[v.rule] += 1;
    this.rows = [...fresh.reverse(), ...this.rows].slice(0, LOG_ROWS);
    this.body.replaceChildren(...this.rows.map((v) => {
      const tr = el('tr', { dataset: { rule: v.rule, seq: String(v.seq) } });
      tr.append(
        el('td', { textContent: v.time }),
        el('td', { className: 'lab-rule', textContent: v.rule }),
        el('td', { textContent: v.code }),
        el('td', { className: 'lab-detail', textContent: v.error ? `${v.error}: ${v.detail}` : v.detail }),
        el('td', { textContent: v.origin }),
        el('td', { textContent: v.peer }),
      );
      return tr;
    }));
    this.renderTally();
  }

  renderTally() {
    this.tallyList.replaceChildren(...RULES.map((r) => el('li', { dataset: { rule: r, count: String(this.tally[r]) } },
      el('span', { className: 'lab-rule', textContent: r }), ` ${this.tally[r]}`)));
  }
}

if (typeof document !== 'undefined') {
  for (const root of document.querySelectorAll('[data-lab-switches]')) new SwitchesPanel(root);
  for (const root of document.querySelectorAll('[data-lab-log]')) new LogPanel(root);
}
