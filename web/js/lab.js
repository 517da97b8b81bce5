// # The lab, as every page sees it (`clickgame --lab`, docs/lab.md)
//
// With `--lab` the lecturer can switch the server's defences off one by one. Every page learns
// which are off from the public `GET /api/stats` (`"lab": {"off": [...]}`, absent without
// `--lab`) and then:
//
// * shows a red banner naming them (`data-testid="lab-banner"`) for as long as any is off;
// * writes player names through `showName`: as text, always — except while the lab's
//   `server_data` defence is off, when a page does what a naive one does and renders the name
//   as HTML. (Our CSP, `script-src 'self'`, would still stop inline script even then: a third
//   layer, which the lab leaves on.)
// * reports what it refused itself — a name with markup shown as text, an event that failed its
//   own checks — to the defence log (`POST /api/lab/report`, rule `server_data`), once each.
//
// Without `--lab` nothing changes: names are text, no banner, no reports. Self-starting on every
// page that loads it; importable in Node (the unit tests) without side effects.

/** The defences the lab can switch, in the server's order, with their names on screen. */
export const DEFENCES = Object.freeze([
  { id: 'origin', label: 'Origin check' },
  { id: 'subprotocol', label: 'sub-protocol inspection' },
  { id: 'input', label: 'input validation' },
  { id: 'auth', label: 'authentication' },
  { id: 'server_data', label: 'server-data validation' },
]);

const KNOWN = new Set(DEFENCES.map((d) => d.id));
const STATS_MS = 2000;
const ABSENT_MS = 15_000;

/** `known`: the server has answered once (before that, `present` means nothing yet). */
const state = { known: false, present: false, off: [], attackerPort: null };
const listeners = new Set();
const reported = new Set();

/**
 * The lab from an untrusted `/api/stats` answer: `{present, off, attackerPort}`. Only known
 * defence names survive; anything malformed means "no lab". Pure, for tests.
 */
export function labFromStats(stats) {
  const lab = stats?.lab;
  if (typeof lab !== 'object' || lab === null || !Array.isArray(lab.off)) {
    return { present: false, off: [], attackerPort: null };
  }
  const off = DEFENCES.map((d) => d.id).filter((id) => lab.off.includes(id));
  const port = Number.isInteger(lab.attacker_port) && lab.attacker_port > 0 && lab.attacker_port < 65536
    ? lab.attacker_port
    : null;
  return { present: true, off, attackerPort: port };
}

/** The banner's text for the defences that are off, or '' when none is. Pure, for tests. */
export function bannerText(off) {
  const names = off.filter((id) => KNOWN.has(id)).map((id) => DEFENCES.find((d) => d.id === id).label);
  if (names.length === 0) return '';
  return `LAB: defence${names.length === 1 ? '' : 's'} OFF — ${names.join(', ')}. ` +
    'This server is deliberately vulnerable right now.';
}

/** What the page knows about the lab now. */
export function labState() {
  return state;
}

/** Calls `fn(state)` whenever the lab's switches change (and once it is first known). */
export function onLabChange(fn) {
  listeners.add(fn);
}

export function defenceOff(id) {
  return state.present && state.off.includes(id);
}

/**
 * Writes a player name (or any other string from the server) into `el`. As text — unless the
 * lab's `server_data` defence is off. That branch is the vulnerability the lab demonstrates:
 * nothing outside it may ever assign server data to innerHTML.
 */
export function showName(el, name) {
  const text = String(name);
  if (defenceOff('server_data')) {
    el.innerHTML = text;
    return;
  }
  el.textContent = text;
  if (state.present && /[<>]/.test(text)) {
    reportRefusal('rendered_as_text', `a player name with markup was shown as text, not as HTML: ${text.slice(0, 120)}`);
  }
}

/**
 * Tells the defence log what this page refused itself (rule `server_data`), once per page for
 * each distinct report; only with `--lab` (the endpoint does not exist without it).
 */
export function reportRefusal(code, detail) {
  if (!state.present || typeof fetch !== 'function') return;
  const key = `${code}\u0000${detail}`;
  if (reported.has(key) || reported.size > 200) return;
  reported.add(key);
  fetch('/api/lab/report', {
    method: 'POST',
    credentials: 'same-origin',
    headers: { 'Content-Type': 'application/json' },
    body: JSON.stringify({ code, detail: String(detail).slice(0, 300) }),
  }).catch(() => {});
}

function renderBanner() {
  let banner = document.querySelector('[data-testid="lab-banner"]');
  const text = bannerText(state.off);
  if (!text) {
    banner?.remove();
    document.body.classList.remove('lab-off');
    return;
  }
  if (!banner) {
    banner = document.createElement('div');
    banner.className = 'lab-banner';
    banner.dataset.testid = 'lab-banner';
    banner.setAttribute('role', 'status');
    document.body.prepend(banner);
  }
  banner.textContent = text;
  banner.dataset.off = state.off.join(' ');
  document.body.classList.add('lab-off');
}

function update(next) {
  const changed = !state.known || next.present !== state.present ||
    next.off.join() !== state.off.join() || next.attackerPort !== state.attackerPort;
  Object.assign(state, next, { known: true });
  if (!changed) return;
  renderBanner();
  for (const fn of listeners) fn(state);
}

let timer = null;
async function poll() {
  let wait = STATS_MS;
  try {
    const res = await fetch('/api/stats', { credentials: 'omit', cache: 'no-store' });
    if (res.ok) {
      const next = labFromStats(await res.json());
      if (!next.present) wait = ABSENT_MS;
      update(next);
    } else {
      wait = ABSENT_MS;
    }
  } catch {
    // the server may be restarting
  }
  clearTimeout(timer);
  timer = setTimeout(poll, wait);
}

/** Asks the server now (after flipping a switch) instead of at the next tick. */
export function refreshLab() {
  if (typeof document !== 'undefined') poll();
}

if (typeof document !== 'undefined' && typeof window !== 'undefined') poll();
