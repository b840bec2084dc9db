/*
 * The wall's clock: one box, which each timed view places where it wants it and the next
 * drawing parks again; its caption says "Paused" and "Overtime" in big letters.
 */
import { Countdown } from "../client/clock.js";
import { $ } from "../client/dom.js";
import { t } from "../client/i18n.js";

export class WallClock {
  /** fit: fits the view to the stage again (wall.js, fitStage). */
  constructor(fit) {
    this.box = $("#screen-clock-box");
    this.caption = $("#screen-clock-caption");
    this.face = $("#screen-clock");
    this.countdown = new Countdown(this.face, { speak: true });
    this.captionText = "";
    const show = () => this.showState();
    new MutationObserver(show).observe(this.face, { attributes: true, attributeFilter: ["class"], childList: true, characterData: true, subtree: true });
    // The clock keeps its size while fitStage() zooms the view around it, so whatever makes its
    // box taller or shorter (the big "Paused" or "Overtime" caption, a six-character time) fits
    // the view again, in the same frame, before the wall shows it (docs/architecture.md).
    new ResizeObserver(fit).observe(this.box);
  }

  /** Out of sight until a view places it. */
  park() {
    this.box.hidden = true;
    document.body.append(this.box);
  }

  place(slot, caption) {
    slot.append(this.box);
    this.captionText = caption;
    this.box.hidden = false;
    this.showState();
  }

  /** Count the timer down where a view placed the clock; nothing where none did. */
  follow(timer) {
    this.countdown.set(this.box.hidden ? null : timer);
  }

  /**
   * The back of the hall cannot tell grey from white: a paused clock and a turn in
   * overtime say so in big letters over the clock. Follows the Countdown's classes, so
   * overtime shows the moment the clock passes zero. A time of six characters ("+10:05")
   * gets smaller figures, so the clock always fits its box.
   */
  showState() {
    const state = captionState(this.face, this.caption, this.captionText);
    this.box.dataset.state = state;
    this.box.classList.toggle("is-wide", this.face.textContent.length > 5);
  }
}

/**
 * A countdown's caption as its face stands: "Paused" or "Overtime" while it is (after the
 * Countdown's classes), else `captionText`; returns the state ("paused", "over" or "").
 * The wall's clock, and the stream overlay's.
 */
export function captionState(face, caption, captionText) {
  const state = face.classList.contains("is-paused") ? "paused" : face.classList.contains("is-over") ? "over" : "";
  const text = { paused: t("Paused"), over: t("Overtime") }[state] || captionText;
  if (caption.textContent !== text) caption.textContent = text;
  return state;
}
