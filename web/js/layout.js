// # The projector screen of /compare.html: what must be on it, and what lives in drawers
//
// One list, read by the page (js/drawers.js builds a tab per drawer) and by the layout test
// (e2e/projector.test.mjs checks, at 1280 × 720 and at 1920 × 1080, that every `ON_SCREEN`
// element is inside the viewport with no scrolling, and that every drawer opens inside it).
// A later panel — the join card (issue 12), the defence log (issue 14) — is one more entry in
// `DRAWERS` and one element with its `data-drawer` id in compare.html (or `addDrawer` in
// drawers.js for a panel built in script); the test then checks it too.
//
// Pure data: Node imports it as it is served.

/** What the class must see together, at any projector size, without scrolling (data-testid). */
export const ON_SCREEN = Object.freeze([
  { testid: 'game-state', what: 'running / paused' },
  { testid: 'pane-ajax', what: 'the AJAX polling pane' },
  { testid: 'pane-longpoll', what: 'the long polling pane' },
  { testid: 'pane-sse', what: 'the SSE pane' },
  { testid: 'pane-websocket', what: 'the WebSocket pane' },
  { testid: 'board-ajax', what: 'the AJAX pane\'s board' },
  { testid: 'board-longpoll', what: 'the long polling pane\'s board' },
  { testid: 'board-sse', what: 'the SSE pane\'s board' },
  { testid: 'board-websocket', what: 'the WebSocket pane\'s board' },
  { testid: 'race-table', what: 'the race tallies' },
  { testid: 'race-toggle', what: 'Start / Stop race' },
  { testid: 'drawer-tabs', what: 'the tabs that open the drawers' },
]);

/** Shown on the screen only while the game is paused, and then as large as the rest. */
export const WHEN_PAUSED = Object.freeze([{ testid: 'pause-banner', what: 'PAUSED across the panes' }]);

/**
 * Everything else, one drawer each, in tab order. `id` matches the element's `data-drawer`;
 * `testid`/`toggleTestid` name the drawer and its tab for tests (defaults `drawer-<id>`,
 * `drawer-tab-<id>`); `summary`, if set, adds "…" after the label in a span with that data
 * attribute, for the panel's script to fill (the join URL). `compare.html#<id>` opens a drawer
 * at once.
 */
export const DRAWERS = Object.freeze([
  { id: 'controls', label: 'Lecturer controls' },
  { id: 'figures', label: 'Figures & chart' },
  { id: 'security', label: 'Connection security', testid: 'tls-drawer', toggleTestid: 'tls-drawer-toggle' },
  // Issue 12: the join card; its tab reads "Join: <url>" (js/join_card.js fills the summary).
  { id: 'join', label: 'Join', testid: 'join-drawer', toggleTestid: 'join-drawer-toggle', summary: 'join-summary' },
  // Issue 14: the lab's two panels (js/lab_panel.js), whose tabs exist only with `--lab`.
  { id: 'lab-switches', label: 'Defences' },
  { id: 'lab-log', label: 'Defence log' },
]);

export function drawerTestids(drawer) {
  return {
    drawer: drawer.testid ?? `drawer-${drawer.id}`,
    toggle: drawer.toggleTestid ?? `drawer-tab-${drawer.id}`,
  };
}
