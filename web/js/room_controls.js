// # The lecturer keeps the room civil: remove a player, rename one, close or reopen joining
//
// Part of /compare.html's lecturer controls, behind the same admin token (js/admin.js):
// `POST /api/admin/kick {player}`, `POST /api/admin/rename {player, name}` (the server checks
// the new name exactly like a join's) and `POST /api/admin/joins {open}`. Nothing here changes
// what the page shows by itself: the server's `player_left` (reason `kicked`),
// `player_renamed` and `joins_changed` events reach every page, this one included, through
// the panes' own transports.
//
// The page hands us a `call(action, body, doneMessage)` (its admin caller, which shows the
// answer) and, on every render, the folded game state of one of its panes. Player names are
// untrusted: written with textContent only.

import { el } from './dom.js';

/** The player list's options: [value, label], ordered by name. Pure, for tests. */
export function playerOptions(state) {
  return [...(state?.players ?? [])]
    .sort((a, b) => a.name.localeCompare(b.name) || a.id - b.id)
    .map((p) => [String(p.id), `${p.name} (#${p.id})`]);
}

export class RoomControls {
  /**
   * @param {HTMLElement} root an empty container in the lecturer controls
   * @param {{call: (action: string, body: object, done: string) => Promise<void>}} options
   */
  constructor(root, { call }) {
    this.call = call;
    this.optionsKey = '';
    this.joinsOpen = true;
    this.select = el('select', { id: 'admin-player', dataset: { testid: 'admin-player' } });
    const kick = el('button', { type: 'button', className: 'secondary', textContent: 'Remove', dataset: { testid: 'admin-kick' } });
    this.name = el('input', {
      id: 'admin-rename-name', type: 'text', maxLength: 20, spellcheck: false, placeholder: 'new name',
      dataset: { testid: 'admin-rename-name' },
    });
    const rename = el('button', { type: 'submit', className: 'secondary', textContent: 'Rename', dataset: { testid: 'admin-rename' } });
    this.joinsState = el('span', { className: 'room-joins', dataset: { testid: 'joins-state' } });
    this.joinsButton = el('button', { type: 'button', className: 'secondary', dataset: { testid: 'admin-joins' } });
    const form = el('form', { className: 'room-row', autocomplete: 'off' }, this.name, rename);
    root.replaceChildren(el('fieldset', { className: 'room-controls' },
      el('legend', { textContent: 'Players: remove, rename, close joining' }),
      el('div', { className: 'room-row' },
        el('label', { htmlFor: 'admin-player', textContent: 'Player' }), this.select, kick),
      form,
      el('div', { className: 'room-row' }, this.joinsState, this.joinsButton)));

    kick.addEventListener('click', () => {
      const player = this.selected();
      if (player === null) return;
      this.call('kick', { player: player.id }, `Removed ${player.name}: their session has ended.`);
    });
    form.addEventListener('submit', (event) => {
      event.preventDefault();
      const player = this.selected();
      const name = this.name.value.trim();
      if (player === null || !name) return;
      this.call('rename', { player: player.id, name }, `Renamed ${player.name}.`).then(() => {
        this.name.value = '';
      });
    });
    this.joinsButton.addEventListener('click', () => {
      const open = !this.joinsOpen;
      this.call('joins', { open }, open ? 'Joining is open again.' : 'Joining is closed: new players get 403 joins_closed.');
    });
    this.render(null);
  }

  selected() {
    const id = Number(this.select.value);
    const option = this.select.selectedOptions[0];
    return Number.isSafeInteger(id) && id > 0 && option ? { id, name: option.dataset.name ?? '' } : null;
  }

  /** Mirrors `state` (a pane's folded game state): the players, and whether joining is open. */
  render(state) {
    const options = playerOptions(state);
    const key = JSON.stringify(options);
    // Rebuilt only when the list changed: rebuilding closes an open dropdown on the projector.
    if (key !== this.optionsKey) {
      this.optionsKey = key;
      const chosen = this.select.value;
      const names = new Map((state?.players ?? []).map((p) => [String(p.id), p.name]));
      this.select.replaceChildren(...options.map(([value, label]) => {
        const option = el('option', { value, textContent: label });
        option.dataset.name = names.get(value) ?? '';
        return option;
      }));
      if (options.some(([value]) => value === chosen)) this.select.value = chosen;
      this.select.disabled = options.length === 0;
    }
    this.joinsOpen = state?.joins_open !== false;
    this.joinsState.dataset.open = String(this.joinsOpen);
    this.joinsState.textContent = this.joinsOpen ? 'Joining is open.' : 'Joining is closed.';
    this.joinsButton.textContent = this.joinsOpen ? 'Close joining' : 'Reopen joining';
  }
}
