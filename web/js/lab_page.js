// # /lab.html: the lab's own page (docs/lab.md)
//
// The panels (switches, log) mount themselves (js/lab_panel.js); this adds the admin token
// field, the link to the attacker's site on this host, and a scoreboard that writes player
// names through js/lab.js's `showName` — as text, or as HTML while `server_data` is off, so the
// projector shows attack 6 landing.

import { loadAdminToken, saveAdminToken } from './admin.js';
import { labState, onLabChange, showName } from './lab.js';

const SCORES_MS = 1000;
const $ = (sel) => document.querySelector(sel);

/** The attacker's page on this page's own host name (so the victim's cookie is for the same host). */
export function attackerUrl(hostname, port) {
  return port ? `http://${hostname}:${port}/attacker.html` : null;
}

function renderLab(lab) {
  $('[data-testid="lab-absent"]').hidden = lab.present;
  const link = $('[data-testid="attacker-link"]');
  const url = attackerUrl(window.location.hostname, lab.attackerPort);
  link.textContent = url ?? '(no attacker\'s site: the lab is off)';
  if (url) link.href = url;
  else link.removeAttribute('href');
}

let players = [];
function renderScores() {
  const rows = [...players].sort((a, b) => b.score - a.score || a.id - b.id).map((p) => {
    const tr = document.createElement('tr');
    tr.dataset.player = String(p.id);
    const name = document.createElement('td');
    name.dataset.col = 'name';
    showName(name, p.name);
    const score = document.createElement('td');
    score.textContent = String(p.score);
    const misses = document.createElement('td');
    misses.textContent = String(p.misses);
    tr.append(name, score, misses);
    return tr;
  });
  $('[data-testid="lab-scoreboard"]').replaceChildren(...rows);
}

async function pollScores() {
  try {
    const res = await fetch('/api/snapshot', { credentials: 'omit', cache: 'no-store' });
    if (res.ok) {
      const snap = await res.json();
      if (Array.isArray(snap.players)) {
        players = snap.players.filter((p) => Number.isSafeInteger(p?.id) && typeof p.name === 'string' &&
          Number.isSafeInteger(p.score) && Number.isSafeInteger(p.misses));
        renderScores();
      }
    }
  } catch {
    // the server may be restarting
  }
  setTimeout(pollScores, SCORES_MS);
}

if (typeof document !== 'undefined') {
  const token = $('#admin-token');
  token.value = loadAdminToken();
  token.addEventListener('input', () => saveAdminToken(token.value.trim()));
  $('#admin-token-form').addEventListener('submit', (e) => e.preventDefault());
  renderLab(labState());
  onLabChange((lab) => {
    renderLab(lab);
    renderScores();
  });
  pollScores();
}
