/*
 * The console's anomaly flags beside the count (docs/security.md, "Anomaly flags"): how
 * many devices had joined before the vote opened, and what looks unlike a hall of people.
 * They only inform; the host may void the vote as always.
 */
import { currentVote, percent } from "../client/battle.js";
import { $, fill, h } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";

function flagText(flag) {
  if (flag.flag === "late_devices") return t("{n} ballots from devices first seen after the vote opened.", { n: flag.ballots });
  if (flag.flag === "inhuman_pace") return t("{n} ballots came faster than a person taps.", { n: flag.ballots });
  if (flag.flag === "pageless") return t("{n} ballots from connections that never loaded the join page.", { n: flag.ballots });
  if (flag.flag === "address_share") {
    return t("One network address sent {vote} of the ballots, with {hall} of the hall.", { vote: percent(flag.vote_share), hall: percent(flag.hall_share) });
  }
  return flag.flag;
}

export class Flags {
  /** live: the console's Live; the flags come in its snapshot and as `flags` messages. */
  constructor(live) {
    this.live = live;
    this.latest = null;
    live.on("snapshot", (snapshot) => this.take(snapshot.flags));
    live.on("flags", (message) => this.take(message));
  }

  take(flags) {
    this.latest = flags || null;
    this.render();
  }

  render() {
    const box = $("#tally-flags");
    const vote = this.live.battle && currentVote(this.live.battle);
    const flags = this.latest && vote && this.latest.vote_id === vote.id && ["open", "closed"].includes(vote.status) ? this.latest : null;
    if (!flags) {
      fill(box);
      return;
    }
    fill(
      box,
      h("p", { class: "hint" }, plural(flags.joined_before, "1 device had joined before the vote opened.", "{n} devices had joined before the vote opened.")),
      flags.flags.length
        ? h(
            "div",
            { class: "warning flag-list" },
            h("ul", { class: "plain-list" }, flags.flags.map((flag) => h("li", { dataset: { flag: flag.flag } }, flagText(flag)))),
            h("p", {}, t("Flags only inform: every ballot counts unless you void the vote.")),
          )
        : null,
    );
  }
}
