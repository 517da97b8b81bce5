// # Drawing the board (and nothing else)
//
// The board is an SVG with `viewBox="0 0 1000 1000"`, so it is drawn in the game's own units and
// the browser scales it to any screen: no resize handling, and the target is a real element
// (`<circle data-testid="target">`) that tests and screen readers can find. This module knows
// no transport and sends nothing: main.js tells it the state and asks it for click positions.
//
// The keyboard is a way to play, not a cheat: the target is focusable (Tab), and Enter or Space
// hits it — a click at the target's centre at the moment of the key press, exactly what a mouse
// click on its centre would send. A round that ended shows its target dashed: "won by …" or
// "expired" (nobody hit it within the round timeout).

import { BOARD } from './protocol.js';

const SVG_NS = 'http://www.w3.org/2000/svg';
/** How long the mark of a click stays on the board. */
const MARK_MS = 900;

/**
 * The label of a round that ended: "<winner> wins!" — the player's current name, or the one
 * round_won carried once they have left — "won" when no name is known, or "expired". Pure.
 */
export function ghostText(round, players) {
  if (round.winner === null || round.winner === undefined) return 'expired';
  const name = players.find((p) => p.id === round.winner)?.name ?? round.winner_name;
  return typeof name === 'string' && name !== '' ? `${name} wins!` : 'won';
}

/**
 * Where the ended round's label goes (its baseline, board units) for a font of `size` units:
 * clear of the dashed circle — below it, or above it near the bottom edge. The projector's panes
 * use a larger font (64) than the player's board (40), so the gap scales with it. Pure.
 */
export function ghostLabelY(round, size) {
  const below = round.y + round.r + size * 1.25 < BOARD;
  return below ? round.y + round.r + size * 1.05 : round.y - round.r - size * 0.4;
}

export class Board {
  /** @param {SVGSVGElement} svg the board element, with a `[data-testid=target]` circle inside */
  constructor(svg) {
    this.svg = svg;
    this.target = svg.querySelector('.target');
    /** Optional: a larger ring around the target, so a small board shows it from far away. */
    this.halo = svg.querySelector('.target-halo');
    this.ghost = svg.querySelector('.ghost');
    this.ghostCircle = this.ghost.querySelector('circle');
    this.ghostLabel = this.ghost.querySelector('text');
    this.waiting = svg.querySelector('.waiting');
    this.marks = svg.querySelector('.marks');
  }

  /** Draws the current round: the live target, or the ended one with its winner or "expired". */
  render(state) {
    const round = state?.round ?? null;
    const live = round !== null && round.winner === null && round.expired !== true;
    this.target.classList.toggle('is-hidden', !live);
    if (this.halo) {
      this.halo.classList.toggle('is-hidden', !live);
      if (round) {
        this.halo.setAttribute('cx', String(round.x));
        this.halo.setAttribute('cy', String(round.y));
        this.halo.setAttribute('r', String(Math.max(round.r * 2.5, 110)));
      }
    }
    if (round) {
      this.target.setAttribute('cx', String(round.x));
      this.target.setAttribute('cy', String(round.y));
      this.target.setAttribute('r', String(round.r));
      this.target.dataset.round = String(round.number);
      this.target.dataset.x = String(round.x);
      this.target.dataset.y = String(round.y);
    } else {
      delete this.target.dataset.round;
    }
    this.target.setAttribute('aria-hidden', live ? 'false' : 'true');
    if (live) this.target.setAttribute('aria-label', `Target of round ${round.number}: press Enter or Space to hit it`);
    // A hidden element cannot keep the focus: hand it to the board, where Enter still works.
    if (!live && document.activeElement === this.target) this.svg.focus();

    const ended = round !== null && !live;
    const won = ended && round.winner !== null;
    this.ghost.classList.toggle('is-hidden', !ended);
    this.ghost.classList.toggle('ghost--expired', ended && !won);
    if (ended) {
      this.ghostCircle.setAttribute('cx', String(round.x));
      this.ghostCircle.setAttribute('cy', String(round.y));
      this.ghostCircle.setAttribute('r', String(round.r));
      // Player names are untrusted: SVG text via textContent, never markup.
      this.ghostLabel.textContent = ghostText(round, state.players);
      // Label below the target, or above it near the bottom edge; kept whole on the board.
      let size = 40;
      try {
        size = parseFloat(getComputedStyle(this.ghostLabel).fontSize) || 40;
      } catch {
        size = 40;
      }
      this.ghostLabel.setAttribute('y', String(ghostLabelY(round, size)));
      this.placeLabel(round.x);
    }
    this.waiting.classList.toggle('is-hidden', round !== null);
  }

  /**
   * Centres the ghost's label on `x` but inside the board, whatever the font size: measured
   * when the browser can (getComputedTextLength), else anchored by which third `x` lies in.
   */
  placeLabel(x) {
    const label = this.ghostLabel;
    let length = 0;
    try {
      length = label.getComputedTextLength();
    } catch {
      length = 0;
    }
    if (length > 0) {
      const margin = 12;
      const start = Math.min(Math.max(x - length / 2, margin), BOARD - margin - length);
      label.setAttribute('text-anchor', 'start');
      label.setAttribute('x', String(Math.max(margin, start)));
      return;
    }
    const anchor = x < 200 ? 'start' : x > BOARD - 200 ? 'end' : 'middle';
    label.setAttribute('text-anchor', anchor);
    label.setAttribute('x', String(x));
  }

  /**
   * Calls `handler(event)` when the board is pressed with the primary button, a finger or a
   * pen: on `pointerdown`, the moment of contact. `click` would do for a mouse, but on a touch
   * screen it comes only after the finger lifts (and not at all if it moved a little), which
   * costs a phone player the race; pointer events are one code path for all three.
   */
  onTap(handler) {
    this.svg.addEventListener('pointerdown', (event) => {
      if (!event.isPrimary || event.button !== 0) return;
      // No text selection, no emulated mouse events after a touch: this press is the click.
      event.preventDefault();
      handler(event);
    });
  }

  /** The board position (in board units, 0…1000) of a mouse or touch event. */
  pointFromEvent(event) {
    // getScreenCTM maps board units to screen pixels, including the viewBox scaling, any
    // letterboxing and page zoom; its inverse maps the click back.
    const matrix = this.svg.getScreenCTM();
    let x;
    let y;
    if (matrix) {
      const p = new DOMPoint(event.clientX, event.clientY).matrixTransform(matrix.inverse());
      x = p.x;
      y = p.y;
    } else {
      const rect = this.svg.getBoundingClientRect();
      x = ((event.clientX - rect.left) / rect.width) * BOARD;
      y = ((event.clientY - rect.top) / rect.height) * BOARD;
    }
    const clamp = (v) => Math.min(BOARD, Math.max(0, Math.round(v * 10) / 10));
    return { x: clamp(x), y: clamp(y) };
  }

  /**
   * Makes the board and its target focusable; Enter or Space on either calls `onKey()`, which
   * hits the live target's centre as the game knows it at that moment (main.js).
   */
  enableKeyboard(onKey) {
    this.target.setAttribute('tabindex', '0');
    this.target.setAttribute('role', 'button');
    this.svg.setAttribute('tabindex', '0');
    this.svg.addEventListener('keydown', (event) => {
      if (event.key !== 'Enter' && event.key !== ' ') return;
      // Space would scroll the page; Enter on a focused SVG does nothing else.
      event.preventDefault();
      if (!event.repeat) onKey();
    });
  }

  /** A short-lived mark where the player clicked, coloured by the result. */
  markClick(point, result) {
    const mark = document.createElementNS(SVG_NS, 'circle');
    mark.setAttribute('cx', String(point.x));
    mark.setAttribute('cy', String(point.y));
    mark.setAttribute('r', '12');
    mark.setAttribute('class', `mark mark--${result}`);
    this.marks.append(mark);
    setTimeout(() => mark.remove(), MARK_MS);
  }
}
