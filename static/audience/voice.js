/*
 * Challenges and questions from the phone for the moderators (docs/rules.md, "The audience
 * takes part"), and what became of this phone's own.
 */
import { currentRound, nameOf, speakerOf } from "../client/battle.js";
import { $, setText } from "../client/dom.js";
import { plural, t } from "../client/i18n.js";

/** What this phone may send now: the same windows as game.submission_target. */
function voiceKind(battle) {
  const round = currentRound(battle);
  const rules = battle.rules;
  const beforeCard = battle.phase === "challenge" && round && !round.challenge;
  if (rules.audience_challenges && (["lobby", "elimination"].includes(battle.phase) || beforeCard)) return "challenge";
  if (rules.audience_questions && ["turn", "debate"].includes(battle.phase)) return "question";
  return null;
}

// What became of this phone's own challenges and questions (docs/protocol.md, `your_submission`):
// the server says it in this socket's language; the newest news stays until the next. A phone
// that was away when it was decided finds it in its snapshot (`my_submissions`, oldest first).
function showVoiceNews(news) {
  const box = $("#voice-news");
  box.hidden = false;
  box.dataset.outcome = news.outcome;
  box.textContent = `${news.message} “${news.text}”`;
}

export class Voice {
  /** phone: what the phone's panels share (static/audience.js). */
  constructor({ live, reactions }) {
    this.live = live;
    this.reactions = reactions;
    this.box = $("#voice-box");
    this.text = $("#voice-text");
    this.status = $("#voice-status");
    this.until = 0; // the device's cool-down, as the server last told it
    this.text.addEventListener("input", () => this.renderCount());
    $("#voice-form").addEventListener("submit", (event) => {
      event.preventDefault();
      this.send();
    });
    live.on("your_submission", showVoiceNews);
    live.on("snapshot", (snapshot) => {
      const told = snapshot.my_submissions || [];
      if (told.length) showVoiceNews(told[told.length - 1]);
    });
  }

  render() {
    const battle = this.live.battle;
    const kind = battle ? voiceKind(battle) : null;
    this.box.hidden = !kind;
    if (!kind) return;
    this.box.dataset.kind = kind;
    const speaker = speakerOf(battle);
    setText($("#voice-title"), kind === "challenge" ? "Challenge the battlers" : "Ask a question");
    $("#voice-hint").textContent =
      kind === "challenge"
        ? t("Suggest a challenge for the next round. The host picks one for the screen.")
        : speaker
          ? t("Your question goes to {name}. The host picks which ones reach the screen.", { name: nameOf(battle, speaker) })
          : t("Your question goes to the battlers in the debate. The host picks which ones reach the screen.");
    setText($("#voice-label"), kind === "challenge" ? "Your challenge" : "Your question");
    this.renderCount();
  }

  /** The longest text the server takes (docs/protocol.md, welcome's limits); null before a welcome. */
  limit() {
    const limits = this.live.welcome && this.live.welcome.limits;
    return limits && typeof limits.submission_max_chars === "number" ? limits.submission_max_chars : null;
  }

  renderCount() {
    const limit = this.limit();
    if (limit !== null) this.text.maxLength = limit;
    const left = limit === null ? null : limit - this.text.value.length;
    $("#voice-count").textContent = left === null ? "" : plural(left, "1 character left", "{n} characters left");
    $("#voice-send").disabled = Date.now() < this.until;
  }

  say(text, kind) {
    this.status.dataset.kind = kind;
    this.status.textContent = text;
  }

  send() {
    const live = this.live;
    const kind = live.battle && voiceKind(live.battle);
    const text = this.text.value.trim();
    if (!kind || !text) return;
    const message = { type: "submit", kind, text, anonymous: $("#voice-anonymous").checked };
    if (kind === "question" && live.battle.phase === "debate" && this.reactions.target) message.battler = this.reactions.target;
    const sent = live.request(message, (reply) => {
      if (reply.type === "error") {
        if (reply.reason === "too_soon" && reply.params && reply.params.wait_ms) this.startCooldown(reply.params.wait_ms);
        this.say(reply.message, "error");
        return;
      }
      this.text.value = "";
      this.say(t("Thank you! Sent for review."), "ok");
      this.startCooldown(this.cooldownMs());
    });
    if (!sent) this.say(t("Not connected: nothing was sent. Try again in a moment."), "error");
    else this.say(t("Sending…"), "busy");
  }

  cooldownMs() {
    const limits = this.live.welcome && this.live.welcome.limits;
    return limits && typeof limits.submission_cooldown_ms === "number" ? limits.submission_cooldown_ms : 0;
  }

  startCooldown(ms) {
    this.until = Date.now() + ms;
    this.renderCount();
    window.setTimeout(() => this.renderCount(), ms + 20);
  }
}
