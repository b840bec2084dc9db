/*
 * The lobby editor: the battlers and the battle's settings, editable until the first round
 * (docs/rules.md). A row or form the host is editing is not overwritten by the updates.
 */
import { battlerOf } from "../client/battle.js";
import { $, fill, h } from "../client/dom.js";
import { t } from "../client/i18n.js";
import { ask, battlerInputs, fillBattleFields, readBattleFields } from "../console.js";

export class LobbyEditor {
  /** desk: what the console's panels share (static/host.js). */
  constructor({ live, commands }) {
    this.live = live;
    this.commands = commands;
    this.status = $("#editor-status");
    this.editor = $("#battler-editor");
    this.battleForm = $("#battle-form");
    this.battleFormDirty = false;
    this.wireAddForm();
    this.wireBattleForm();
  }

  run(type, fields, then) {
    this.commands.run(type, fields, { where: this.status, then });
  }

  render() {
    const battle = this.live.battle;
    const lobby = battle.phase === "lobby";
    $("#lobby-editor").hidden = !lobby;
    if (!lobby) return;
    const rows = new Map([...this.editor.children].map((row) => [row.dataset.id, row]));
    for (const battler of battle.battlers) {
      let row = rows.get(battler.id);
      if (!row) row = this.battlerRow(battler);
      else if (!row.dataset.dirty) {
        for (const input of row.querySelectorAll("input")) {
          if (document.activeElement !== input) input.value = battler[input.name] || "";
        }
      }
      rows.delete(battler.id);
      this.editor.append(row); // in roster order
    }
    for (const gone of rows.values()) gone.remove();
    if (!this.battleFormDirty) fillBattleFields(this.battleForm, battle);
  }

  battlerRow(battler) {
    const key = `edit-${battler.id}`;
    const row = h(
      "li",
      { class: "battler-row", dataset: { id: battler.id } },
      h(
        "form",
        { class: "fieldset-inner" },
        h("div", { class: "field-grid" }, battlerInputs(battler, key)),
        h(
          "div",
          { class: "button-row" },
          h("button", { type: "submit", class: "btn btn-small", dataset: { i18n: "Save" } }, t("Save")),
          h("button", { type: "button", class: "btn btn-small btn-danger-quiet", dataset: { remove: "", i18n: "Remove…" } }, t("Remove…")),
        ),
      ),
    );
    const form = row.querySelector("form");
    form.addEventListener("input", () => {
      row.dataset.dirty = "1";
    });
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      const value = (name) => form.querySelector(`[name="${name}"]`).value.trim();
      const fields = { battler: battler.id, name: value("name"), vision: value("vision"), affiliation: value("affiliation") };
      this.run("edit_battler", fields, () => delete row.dataset.dirty);
    });
    row.querySelector("[data-remove]").addEventListener("click", async () => {
      const current = battlerOf(this.live.battle, battler.id);
      const yes = await ask({
        title: t("Remove {name}?", { name: current ? current.name : battler.id }),
        message: t("The battler leaves the roster. You can add them again before the first round."),
        confirm: t("Remove"),
      });
      if (yes) this.run("remove_battler", { battler: battler.id });
    });
    return row;
  }

  wireAddForm() {
    const addForm = $("#add-battler-form");
    fill($("#add-battler-fields"), battlerInputs({}, "add"));
    addForm.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!addForm.reportValidity()) return;
      const value = (name) => addForm.querySelector(`[name="${name}"]`).value.trim();
      this.run("add_battler", { name: value("name"), vision: value("vision"), affiliation: value("affiliation") }, () => {
        addForm.reset();
        addForm.querySelector("input").focus();
      });
    });
  }

  wireBattleForm() {
    const form = this.battleForm;
    const edited = () => (this.battleFormDirty = true);
    form.addEventListener("input", edited);
    form.addEventListener("change", edited);
    form.addEventListener("submit", (event) => {
      event.preventDefault();
      if (!form.reportValidity()) return;
      this.run("edit_battle", readBattleFields(form), () => (this.battleFormDirty = false));
    });
    $("#battle-revert").addEventListener("click", () => {
      this.battleFormDirty = false;
      if (this.live.battle) fillBattleFields(form, this.live.battle);
    });
  }
}
