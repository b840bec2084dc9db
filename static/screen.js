/*
 * The projector at /screen/CODE#TOKEN: read-only, dark, readable from the back of a hall.
 * This module wires the parts under static/screen/ to the live connection.
 */
import { currentRound, openVote, phaseLabel } from "./client/battle.js";
import { $, fill, setText } from "./client/dom.js";
import { onLanguageChange, t } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken } from "./client/page.js";
import { WallClock } from "./screen/clock.js";
import { Closing } from "./screen/closing.js";
import { Engagement } from "./screen/reactions.js";
import { Reveal } from "./screen/reveal.js";
import { ScenarioPages } from "./screen/scenario.js";
import { SyncCue } from "./screen/sync.js";
import { joinUrl, phaseView, renderTally } from "./screen/views.js";
import { TITLE_SIZES, fitStage, sized } from "./screen/wall.js";

const token = fragmentToken();
const stage = $("#screen-stage");
const problem = $("#screen-problem");
const fit = () => fitStage(stage);

const live = new Live({ role: "screen", protocols: () => [PROTOCOL, `auth.${token}`] });
// What the views share: the live connection, the stage and its fit, the clock a timed view
// places, and the parts that keep state from one drawing to the next (the scenario's page,
// the reveal already built, the closing view's turns).
const wall = { live, stage, fit, clock: new WallClock(fit), scenario: new ScenarioPages(stage), reveal: new Reveal(), closing: new Closing(fit) };
const engagement = new Engagement(wall);
const syncCue = new SyncCue($("#sync-cue"));

function renderPresence() {
  const audience = live.presence ? live.presence.audience || 0 : 0;
  for (const node of document.querySelectorAll("[data-audience-count]")) node.textContent = String(audience);
}

function render() {
  const battle = live.battle;
  if (!battle) return;
  const round = currentRound(battle);
  document.body.dataset.phase = battle.phase;
  document.body.classList.toggle("is-vote-open", Boolean(openVote(battle)));
  setText($("#phase-label"), null);
  $("#phase-label").textContent = phaseLabel(battle.phase);
  $("#round-label").textContent = round && battle.phase !== "lobby" ? (round.final ? t("Final round") : t("Round {n}", { n: round.number })) : "";
  $("#battle-title").textContent = battle.title;
  $("#battle-title").className = `screen-title${sized(battle.title, TITLE_SIZES)}`;
  wall.clock.park();
  fill(stage, phaseView(wall, battle, round));
  wall.clock.follow(battle.timer);
  renderTally(live);
  engagement.render();
  renderPresence();
  syncCue.follow(battle);
  fit();
}

for (const node of document.querySelectorAll("[data-join-url]")) node.textContent = joinUrl;
window.addEventListener("resize", fit);

if (!token) {
  problem.hidden = false;
  setText(problem, "This screen link is incomplete: open the full screen link from the host console.");
} else {
  live.on("state", render);
  live.on("tally", () => {
    renderTally(live);
    fit(); // the live bars' figures widen as the votes come in
  });
  live.on("engagement", () => {
    engagement.render();
    engagement.floatNew();
  });
  live.on("presence", renderPresence);
  live.on("close", ({ opened }) => {
    if (!live.everOpened && !opened && live.attempts >= 3) {
      problem.hidden = false;
      setText(problem, "Cannot connect. Check that the screen link is complete and the server is running.");
    }
  });
  live.on("open", () => {
    problem.hidden = true;
  });
  onLanguageChange(render);
  live.start();
}
