/*
 * The phone's notice line: what became of a tap ("Sent: Applause", a refusal), shown for a
 * few seconds and no longer than the part of the show it is about.
 */
import { currentRound } from "../client/battle.js";
import { $ } from "../client/dom.js";

/** Which part of the show this is: a notice ("Sent: Applause") ends with it. */
function moment(battle) {
  const round = currentRound(battle);
  return battle ? `${battle.phase}:${round ? round.number : 0}:${battle.turn_index}` : "";
}

export class Notice {
  /** live: the phone's Live. */
  constructor(live) {
    this.live = live;
    this.line = $("#notice");
    this.timer = 0;
    this.moment = "";
  }

  show(text) {
    this.line.textContent = text;
    this.moment = moment(this.live.battle);
    window.clearTimeout(this.timer);
    this.timer = window.setTimeout(() => (this.line.textContent = ""), 4000);
  }

  /** Clear a notice about a part of the show that is over. */
  follow(battle) {
    if (this.line.textContent && moment(battle) !== this.moment) this.line.textContent = "";
  }
}
