// # "Connection security": this page's own TLS connection, and the certificate's anatomy
//
// Asks `GET /api/tls`, which describes the connection the request itself came over (see
// src/tls_info.rs): over HTTPS the negotiated version, the cipher suite with its four parts
// spelled out, the key-exchange group, ALPN, resumption, SNI, and the certificate as the
// lecture's slide draws it; over plain HTTP `{tls: false}`, which the panel turns into a plain
// warning with a link to the eavesdropper demo.
//
// The module mounts itself on every element with `data-tls-panel` (the player page and the
// compare page's drawer), so the pages' own scripts need not know it. Everything from the
// server is written with textContent, never as HTML.

import { el } from './dom.js';

/** Rows of the connection table: [label, value, data-field, explanation]. Pure, for tests. */
export function connectionRows(info) {
  const parts = info.cipher_parts ?? {};
  const alpn = info.alpn === 'h2' ? 'h2 (HTTP/2)' : info.alpn === 'http/1.1' ? 'http/1.1 (HTTP/1.1)' : info.alpn ?? 'none';
  const group = info.group ? ` over ${info.group}` : '';
  return [
    ['Protocol', info.protocol, 'protocol', 'The TLS version both sides agreed on.'],
    ['Cipher suite', info.cipher_iana && info.cipher_iana !== info.cipher ? `${info.cipher} (${info.cipher_iana})` : info.cipher, 'cipher',
      'OpenSSL\'s name for the suite; the IANA name in brackets when it differs.'],
    ['Key exchange', `${parts.key_exchange ?? '–'}${group}`, 'key-exchange',
      'How both sides agreed on the session keys. Ephemeral (EC)DHE: a recorded session stays secret even if the server\'s key leaks later (forward secrecy).'],
    ['Authentication', parts.authentication ?? '–', 'authentication', 'How the server proved it holds the certificate\'s private key: it signs the handshake.'],
    ['Bulk cipher', `${parts.bulk_cipher ?? '–'}${parts.aead ? ' (AEAD: encrypts and authenticates every record)' : ''}`, 'bulk-cipher',
      'What encrypts the records carrying HTTP and WebSocket frames.'],
    ['Integrity / hash', `${parts.mac ?? '–'}${parts.hash ? `, handshake hash ${parts.hash}` : ''}`, 'hash',
      'AEAD ciphers detect any changed byte themselves; the hash drives the key derivation.'],
    ['ALPN', alpn, 'alpn', 'The application protocol chosen inside the TLS handshake.'],
    ['Session resumed', info.resumed ? 'yes (abbreviated handshake)' : 'no (full handshake)', 'resumed', 'Whether an earlier session\'s keys were reused.'],
    ['SNI', info.sni ?? 'none (the address is an IP, so the browser sent no server name)', 'sni',
      'The server name the browser sent in its ClientHello — in clear, before any encryption.'],
  ];
}

/** Rows of the certificate table: [label, value, data-field, explanation?]. Pure, for tests. */
export function certificateRows(cert) {
  const key = cert.public_key ?? {};
  const keyText = [key.type, key.curve, key.bits ? `${key.bits} bits` : null].filter(Boolean).join(', ');
  const days = Number.isFinite(cert.days_left)
    ? cert.days_left < 0 ? `expired ${-cert.days_left} days ago` : `${cert.days_left} days left`
    : '';
  return [
    ['Subject', cert.subject, 'subject'],
    ['Issuer', cert.issuer, 'issuer'],
    ['Serial', cert.serial, 'serial'],
    ['Valid', `${cert.not_before} → ${cert.not_after}${days ? ` (${days})` : ''}`, 'validity'],
    ['Public key', keyText, 'public-key'],
    ['Signature', cert.signature_algorithm, 'signature'],
    ['Names (SAN)', (cert.san ?? []).join(', ') || 'none', 'san',
      'The browser compares the host in its address bar with this list (not with the subject\'s CN); a host that is not in it fails the name check, however trusted the signer.'],
    ['SHA-256', cert.sha256, 'sha256'],
    ['Trust', cert.self_signed
      ? 'self-signed: no CA vouches for it, so the browser asks you (compare this fingerprint with the one the server logged)'
      : `issued by a CA: ${cert.issuer}`, 'trust'],
  ];
}

function table(rows, testid) {
  const dl = el('dl', { className: 'tls-facts' });
  dl.dataset.testid = testid;
  for (const [label, value, field, title] of rows) {
    const dt = el('dt', { textContent: label });
    if (title) dt.title = title;
    dl.append(dt, el('dd', { textContent: value ?? '–', dataset: { field } }));
  }
  return dl;
}

/** Draws `info` (the JSON of /api/tls) into `root`. */
export function renderTlsPanel(root, info) {
  const head = el('h2', { textContent: 'Connection security' });
  if (!info?.tls) {
    const warn = el('p', { className: 'tls-status tls-status--plain' },
      'Not encrypted. This page and every request, event and frame of the game travel as plain text: anyone on the network path can read your name, your clicks and your session token — and change them.');
    warn.dataset.testid = 'tls-status';
    warn.dataset.tls = 'false';
    const link = el('a', { href: 'eavesdrop.html', textContent: 'See what an eavesdropper sees →' });
    link.dataset.testid = 'tls-eavesdrop-link';
    const https = el('p', { className: 'explain' },
      'Open the same page over https:// (the server\'s TLS port) to see the handshake it negotiates.');
    root.replaceChildren(head, warn, el('p', {}, link), https);
    return;
  }
  const status = el('p', { className: 'tls-status tls-status--tls' },
    `Encrypted with ${info.protocol}. TLS protects the channel — not the data: the server still checks every click.`);
  status.dataset.testid = 'tls-status';
  status.dataset.tls = 'true';
  const children = [head, status, table(connectionRows(info), 'tls-connection')];
  if (info.certificate) {
    const cert = info.certificate;
    const details = el('details', { className: 'tls-cert' }, el('summary', { textContent: 'The certificate' }),
      table(certificateRows(cert), 'tls-certificate'));
    if (cert.chain?.length) {
      const chain = el('ol', { className: 'tls-chain' });
      for (const c of cert.chain) chain.append(el('li', { textContent: `${c.subject} — issued by ${c.issuer}` }));
      details.append(el('p', { className: 'explain', textContent: 'Chain sent after it, towards a root the browser trusts:' }), chain);
    }
    children.push(details);
  }
  root.replaceChildren(...children);
}

/** Fetches /api/tls and renders it; a failure is shown as a message, never thrown. */
export async function mountTlsPanel(root) {
  try {
    const res = await fetch('/api/tls', { cache: 'no-store', credentials: 'omit' });
    if (!res.ok) throw new Error(`HTTP ${res.status}`);
    renderTlsPanel(root, await res.json());
  } catch (err) {
    root.replaceChildren(
      el('h2', { textContent: 'Connection security' }),
      el('p', { className: 'explain', textContent: `Could not ask the server about this connection (${err.message}).` }),
    );
  }
}

if (typeof document !== 'undefined') {
  for (const root of document.querySelectorAll('[data-tls-panel]')) mountTlsPanel(root);
}
