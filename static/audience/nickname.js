/* The phone's nickname: kept on the phone, sent with every new connection. */
import { $, setText } from "../client/dom.js";
import { store, stored } from "../client/page.js";

const NICKNAME_KEY = "battles.nickname";

export class Nickname {
  /** live: the phone's Live. */
  constructor(live) {
    this.live = live;
    const input = $("#nickname");
    input.value = stored(NICKNAME_KEY) || "";
    $("#nickname-form").addEventListener("submit", (event) => {
      event.preventDefault();
      const nickname = input.value.trim().slice(0, 30);
      store(NICKNAME_KEY, nickname || null);
      const status = $("#nickname-status");
      const sent = live.request({ type: "set_nickname", nickname }, (reply) => {
        if (reply.type === "error") status.textContent = reply.message;
        else setText(status, "Saved");
      });
      if (!sent) setText(status, "Saved here; it is sent when the connection is back.");
    });
  }

  /** Tell a new connection the nickname this phone keeps. */
  resend() {
    const nickname = stored(NICKNAME_KEY);
    if (nickname) this.live.send({ type: "set_nickname", nickname });
  }
}
