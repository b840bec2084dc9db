/* The console's event log, newest first: every command, who gave it and when. */
import { $, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { actionLabel, actorLabel, formatTime, logDetails } from "../console.js";

// The panel lists this many entries, the newest.
const SHOWN_ENTRIES = 200;

export class LogPanel {
  constructor(live) {
    this.live = live;
    this.shownKey = ""; // the log length (and language) the list was built for
  }

  render() {
    const battle = this.live.battle;
    const log = battle.log || [];
    const key = `${log.length}:${t("Host")}`;
    if (key === this.shownKey) return;
    this.shownKey = key;
    fill(
      $("#event-log"),
      log
        .slice(-SHOWN_ENTRIES)
        .reverse()
        .map((entry) =>
          h(
            "li",
            { class: "log-entry" },
            h("time", { class: "log-time", datetime: new Date(entry.at_ms).toISOString() }, formatTime(entry.at_ms)),
            h("span", { class: "log-actor" }, actorLabel(entry.actor)),
            h("span", { class: "log-action" }, actionLabel(entry.action)),
            h("span", { class: "log-details" }, logDetails(battle, entry)),
          ),
        ),
    );
  }
}
