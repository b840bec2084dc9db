/*
 * The host console at /host/CODE#TOKEN (the co-host link opens the same page): this module
 * wires the panels under static/host/ to the live connection.
 */
import { $, setText } from "./client/dom.js";
import { onLanguageChange } from "./client/i18n.js";
import { Live, PROTOCOL } from "./client/live.js";
import { fragmentToken } from "./client/page.js";
import { wireActions } from "./host/actions.js";
import { AudienceRules } from "./host/audience-rules.js";
import { CommandRunner } from "./host/commands.js";
import { Flags } from "./host/flags.js";
import { Controls } from "./host/controls.js";
import { HallQueue } from "./host/hall.js";
import { LinksPanel } from "./host/links.js";
import { LobbyEditor } from "./host/lobby.js";
import { LogPanel } from "./host/log.js";
import { renderEngagement, renderPresence, renderRoster } from "./host/room.js";
import { ShowPanels } from "./host/show.js";
import { StreamPanel } from "./host/stream.js";
import { VisionsPanel } from "./host/visions.js";

const token = fragmentToken();
const problem = $("#host-problem");
const commandStatus = $("#command-status");

// A co-host link is /host/CODE#TOKEN too: the server knows the co-host by the token.
const live = new Live({ role: "host", protocols: () => [PROTOCOL, `auth.${token}`] });
const commands = new CommandRunner(live, { where: commandStatus, onBusy: () => controls.update() });
const controls = new Controls(live, commands);
// What the panels share, the console's whole state besides each panel's own: the live
// connection, the one command at a time, and the controls that follow both.
const desk = { live, commands, controls };
wireActions(desk);

const show = new ShowPanels(desk);
const links = new LinksPanel(desk);
const visions = new VisionsPanel(desk, token);
const log = new LogPanel(live);
const flags = new Flags(live);
const lobby = new LobbyEditor(desk);
const hall = new HallQueue(desk);
const audienceRules = new AudienceRules(desk, hall.status);
const stream = new StreamPanel(desk);

function render() {
  if (!live.battle) return;
  show.render();
  flags.render();
  renderEngagement(live);
  renderRoster(live);
  links.render();
  visions.render();
  log.render();
  lobby.render();
  renderPresence(live);
  hall.render();
  audienceRules.render();
  stream.render();
  controls.update();
}

function stop(message) {
  commands.release();
  problem.hidden = false;
  setText(problem, message);
}

if (!token) {
  stop("This console link is incomplete: it needs the secret part after the #.");
} else {
  live.on("state", render);
  live.on("tally", () => show.renderVote());
  live.on("engagement", () => renderEngagement(live));
  live.on("presence", () => renderPresence(live));
  live.on("submissions", (queue) => hall.takeQueue(queue));
  live.on("submission", (message) => hall.takeItem(message));
  live.on("status", () => controls.update());
  live.on("open", () => {
    problem.hidden = true;
  });
  // The welcome says who this link is (a co-host link may open /ws/host/CODE too).
  live.on("welcome", (welcome) => {
    const chip = $("#role-chip");
    chip.hidden = false;
    setText(chip, welcome.role === "host" ? "Host" : "Co-host");
  });
  live.on("revoked", () => stop("The host revoked this co-host link. Ask the host for the new one."));
  live.on("close", ({ opened }) => {
    commands.release();
    if (!live.everOpened && !opened && live.attempts >= 2) {
      stop("Cannot connect. Check that the console link is complete and the server is running.");
    }
  });
  onLanguageChange(() => {
    for (const where of [commandStatus, lobby.status]) if (where.dataset.kind !== "error") where.textContent = "";
    render();
  });
  live.start();
}
