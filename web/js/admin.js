// # Lecturer controls: POST /api/admin/* with `Authorization: Bearer <admin token>`
//
// The token is printed by the server at start-up (`admin token: <hex>`) or set with
// `--admin-token` / `CLICKGAME_ADMIN_TOKEN`. The page keeps it in sessionStorage (gone when the
// tab closes; never in localStorage, never in a URL) and sends it only in this header.

const TOKEN_KEY = 'clickgame.adminToken';

export function loadAdminToken() {
  try {
    return sessionStorage.getItem(TOKEN_KEY) ?? '';
  } catch {
    return '';
  }
}

export function saveAdminToken(token) {
  try {
    if (token) sessionStorage.setItem(TOKEN_KEY, token);
    else sessionStorage.removeItem(TOKEN_KEY);
  } catch {
    // Storage disabled: the token then lives only in the input field.
  }
}

/**
 * One request with the admin token: resolves to `{status, body}` (`body` the parsed JSON or
 * null) or, when it could not be sent, `{status: 0, message}` — never throws. Shared by the
 * lecturer's controls (below) and the lab's switches (lab_panel.js).
 */
export async function adminRequest(token, method, path, body) {
  let res;
  try {
    res = await fetch(path, {
      method,
      credentials: 'omit',
      cache: 'no-store',
      headers: {
        Authorization: `Bearer ${token}`,
        ...(body === undefined ? {} : { 'Content-Type': 'application/json' }),
      },
      body: body === undefined ? undefined : JSON.stringify(body),
    });
  } catch (err) {
    return { status: 0, message: `Could not reach the server (${err.message}).` };
  }
  let parsed = null;
  try {
    parsed = await res.json();
  } catch {
    parsed = null;
  }
  return { status: res.status, statusText: res.statusText, body: parsed };
}

/**
 * Calls one control. Resolves to `{ok: true, body}` or `{ok: false, message}` — never throws,
 * the page just shows the message.
 */
export async function adminPost(token, action, body) {
  if (!token) return { ok: false, message: 'Enter the admin token first (printed by the server at start-up).' };
  const res = await adminRequest(token, 'POST', `/api/admin/${action}`, body);
  if (res.status === 0) return { ok: false, message: res.message };
  const parsed = res.body;
  if (res.status >= 200 && res.status < 300) return { ok: true, body: parsed };
  if (res.status === 403 || res.status === 401) {
    return { ok: false, message: 'The server refused the admin token (admin_required).' };
  }
  const detail = typeof parsed?.detail === 'string' ? parsed.detail : res.statusText;
  const code = typeof parsed?.error === 'string' ? parsed.error : `http_${res.status}`;
  return { ok: false, message: `${action}: ${code}${detail ? ` — ${detail}` : ''}` };
}
