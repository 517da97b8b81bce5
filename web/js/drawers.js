// # Drawers: the panels that do not fit on the projector screen, one tab away
//
// The compare page keeps one screen for what the class watches (the four panes, the race tallies,
// running / paused); every other panel — the lecturer controls, the figures and chart, connection
// security, and what later issues add — is a *drawer*: a tab in the header opens it over the
// right-hand side of the screen below the header, one at a time. It overlays the panes instead of
// pushing them down, so the screen never scrolls; Escape, the tab again or the drawer's × closes
// it.
//
// A panel becomes a drawer by being listed in js/layout.js's DRAWERS and carrying
// `data-drawer="<id>"` in the page (mountDrawers moves it into its drawer), or by `addDrawer` from
// a script that builds its panel itself. The road not taken: `<details>` per panel (the first
// Connection security drawer): each opened in its own corner, several could overlap, and nothing
// listed them for the layout test.

import { drawerTestids } from './layout.js';

const drawers = new Map();
let bar = null;
let host = null;

/** Builds the tab bar in `tabs` and a drawer in `into` for each listed panel found in the page. */
export function mountDrawers({ tabs, into, list }) {
  bar = tabs;
  host = into;
  bar.setAttribute('role', 'toolbar');
  for (const def of list) {
    const panel = document.querySelector(`[data-drawer="${def.id}"]`);
    if (panel) addDrawer(def, panel);
  }
  // `compare.html#join`: the projector opens on the join card at the start of a lecture.
  const wanted = window.location.hash.slice(1);
  if (drawers.has(wanted)) open(wanted);
  const replace = () => {
    const id = openDrawer();
    if (id) place(drawers.get(id).drawer);
  };
  window.addEventListener('resize', replace);
  // The header can grow without the window changing: a tab's summary filled in later (the join
  // URL) wraps the tabs onto a second row. A drawer opened before (`#join`) would then cover them.
  const header = bar.closest('header');
  if (header && typeof ResizeObserver === 'function') new ResizeObserver(replace).observe(header);
  document.addEventListener('keydown', (e) => {
    if (e.key === 'Escape' && openDrawer()) {
      const id = openDrawer();
      close(id);
      drawers.get(id)?.tab.focus();
    }
  });
}

/** Adds one drawer (after mountDrawers): `def` as in DRAWERS, `panel` its content element. */
export function addDrawer(def, panel) {
  if (!bar || !host) throw new Error('mountDrawers first');
  if (drawers.has(def.id)) return drawers.get(def.id);
  const ids = drawerTestids(def);
  const drawer = document.createElement('aside');
  drawer.className = 'drawer';
  drawer.id = `drawer-${def.id}`;
  drawer.dataset.testid = ids.drawer;
  drawer.dataset.drawerId = def.id;
  drawer.hidden = true;
  drawer.setAttribute('aria-label', def.label);
  const head = document.createElement('div');
  head.className = 'drawer-head';
  const title = document.createElement('h2');
  title.textContent = def.label;
  const closeButton = document.createElement('button');
  closeButton.type = 'button';
  closeButton.className = 'secondary small drawer-close';
  closeButton.textContent = '×';
  closeButton.setAttribute('aria-label', `Close ${def.label}`);
  closeButton.addEventListener('click', () => {
    close(def.id);
    tab.focus();
  });
  head.append(title, closeButton);
  const body = document.createElement('div');
  body.className = 'drawer-body';
  panel.removeAttribute('hidden');
  body.append(panel);
  drawer.append(head, body);
  host.append(drawer);

  const tab = document.createElement('button');
  tab.type = 'button';
  tab.className = 'drawer-tab';
  tab.textContent = def.label;
  if (def.summary) {
    const summary = document.createElement('span');
    summary.dataset[def.summary.replace(/-([a-z])/g, (_, c) => c.toUpperCase())] = '';
    summary.textContent = '…';
    tab.append(': ', summary);
  }
  tab.dataset.testid = ids.toggle;
  tab.setAttribute('aria-expanded', 'false');
  tab.setAttribute('aria-controls', drawer.id);
  tab.addEventListener('click', () => (drawer.hidden ? open(def.id) : close(def.id)));
  bar.append(tab);

  const entry = { def, drawer, tab };
  drawers.set(def.id, entry);
  return entry;
}

/**
 * A drawer starts below the header, so the tabs (and running / paused) stay visible and
 * clickable while it is open. (CSSOM, not a style attribute: the CSP allows only the former.)
 */
function place(drawer) {
  const header = bar?.closest('header');
  const top = header ? Math.max(0, Math.ceil(header.getBoundingClientRect().bottom)) : 0;
  drawer.style.top = `${top}px`;
}

/** The id of the open drawer, or null. */
export function openDrawer() {
  for (const [id, { drawer }] of drawers) if (!drawer.hidden) return id;
  return null;
}

export function open(id) {
  for (const other of drawers.keys()) if (other !== id) close(other);
  const entry = drawers.get(id);
  if (!entry) return;
  place(entry.drawer);
  entry.drawer.hidden = false;
  entry.tab.setAttribute('aria-expanded', 'true');
  entry.tab.classList.add('is-open');
  document.body.dataset.drawer = id;
}

export function close(id) {
  const entry = drawers.get(id);
  if (!entry || entry.drawer.hidden) return;
  entry.drawer.hidden = true;
  entry.tab.setAttribute('aria-expanded', 'false');
  entry.tab.classList.remove('is-open');
  if (document.body.dataset.drawer === id) delete document.body.dataset.drawer;
}
