"""The docs hold every message and every setting (after datasette's tests/test_docs.py)."""

from __future__ import annotations

import ast
import json
import re
import typing
from pathlib import Path
from typing import Any

import jsonpatch
import pytest
from pydantic import TypeAdapter
from starlette.routing import Route

from battles import announcements, game, hub, protocol, views
from battles.app import ROUTES
from battles.commands import Command
from battles.i18n import REASONS
from battles.model import BattleDraft, Rules
from battles.settings import Settings
from battles.stores import embedded
from tests.helpers import FOUR, to_the_vote
from tests.inprocess import InProcess

DOCS = Path(__file__).resolve().parents[1] / "docs"


def headings(page: str) -> set[str]:
    return set(re.findall(r"^#{2,5} `([a-z_]+)`$", (DOCS / page).read_text(), re.MULTILINE))


@pytest.mark.parametrize("message", protocol.CLIENT_MESSAGES + protocol.SERVER_MESSAGES)
def test_every_message_type_has_a_section_with_an_example(message: str) -> None:
    text = (DOCS / "protocol.md").read_text()
    assert message in headings("protocol.md"), f"docs/protocol.md has no heading for `{message}`"
    section = text.split(f"`{message}`\n", 1)[1].split("\n#", 1)[0]
    assert f'"type": "{message}"' in section, f"the `{message}` section has no JSON example"


def test_every_refusal_reason_is_listed() -> None:
    text = (DOCS / "protocol.md").read_text()
    missing = [reason for reason in REASONS if f"`{reason}`" not in text]
    assert not missing, f"docs/protocol.md does not list: {missing}"


# How docs/protocol.md's HTTP table writes a route's parameters where it does not just say
# the name in capitals (`/api/battles/CODE/export.json`, `.../charts/NAME.svg`).
ROUTE_PARAMS = {"format": "json", "chart": "NAME"}


@pytest.mark.parametrize("route", [route.path for route in ROUTES if isinstance(route, Route)])
def test_every_http_route_is_in_the_http_table(route: str) -> None:
    path = re.sub(r"\{(\w+):\w+\}", lambda m: ROUTE_PARAMS.get(m[1], m[1].upper()), route)
    table = (DOCS / "protocol.md").read_text().split("\n## HTTP\n", 1)[1].split("\n### ", 1)[0]
    assert re.search(rf"`(GET |POST )?{re.escape(path)}`", table), f"docs/protocol.md, HTTP, has no row for {path}"


@pytest.mark.parametrize("setting", sorted(Settings.model_fields))
def test_every_setting_is_documented(setting: str) -> None:
    assert f"| `{setting}` |" in (DOCS / "settings.md").read_text()


@pytest.mark.parametrize("rule", sorted(Rules.model_fields))
def test_every_rule_is_mapped_in_rules_md(rule: str) -> None:
    assert f"`{rule}`" in (DOCS / "rules.md").read_text()


@pytest.mark.parametrize("bound", sorted(name for name in vars(game) if name.startswith("MAX_")))
def test_every_bound_of_a_battle_is_listed_with_its_value(bound: str) -> None:
    text = (DOCS / "security.md").read_text()
    assert f"| `{bound}` | {getattr(game, bound)} |" in text, (
        f"docs/security.md does not list {bound} = {getattr(game, bound)}"
    )


# --- the refusals of each message, derived from the code -----------------------------------


def refusals_in(module: object) -> dict[str, tuple[set[str], set[str]]]:
    """Per function or method of ``module``'s source: the reasons it raises itself
    (``Refused("reason", ...)``), and the names of the functions it calls."""
    source = Path(str(module.__file__)).read_text()
    found: dict[str, tuple[set[str], set[str]]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
            continue
        reasons, calls = found.setdefault(node.name, (set(), set()))
        for call in (sub for sub in ast.walk(node) if isinstance(sub, ast.Call)):
            name = call.func.id if isinstance(call.func, ast.Name) else getattr(call.func, "attr", "")
            if name == "Refused" and call.args and isinstance(call.args[0], ast.Constant):
                reasons.add(str(call.args[0].value))
            else:
                calls.add(name)
    return found


def reachable(functions: dict[str, tuple[set[str], set[str]]], name: str, seen: set[str] | None = None) -> set[str]:
    """The reasons ``name`` raises, itself or through the functions of the module it calls."""
    seen = set() if seen is None else seen
    if name in seen or name not in functions:
        return set()
    seen.add(name)
    reasons, calls = functions[name]
    return reasons.union(*(reachable(functions, callee, seen) for callee in calls))


def section(message: str) -> str:
    text = (DOCS / "protocol.md").read_text()
    return text.split(f"#### `{message}`\n", 1)[1].split("\n#", 1)[0]


def listed(text: str) -> set[str]:
    return set(re.findall(r"`([a-z_]+)`", text))


GAME = refusals_in(game)
# What every host command may be refused with: said once, above the commands.
COMMON = listed((DOCS / "protocol.md").read_text().split("### Host and co-host commands\n", 1)[1].split("\n####", 1)[0])


def command_type(command: type) -> str:
    return str(typing.get_args(command.model_fields["type"].annotation)[0])  # type: ignore[attr-defined]


@pytest.mark.parametrize("command", sorted(game._HANDLERS, key=command_type), ids=command_type)
def test_every_refusal_of_a_host_command_is_listed_where_it_is_documented(command: type) -> None:
    reasons = reachable(GAME, game._HANDLERS[command].__name__) | reachable(GAME, "apply")
    missing = reasons - listed(section(command_type(command))) - COMMON
    assert not missing, (
        f"docs/protocol.md, `{command_type(command)}`, does not say it can be refused with {sorted(missing)}"
    )


def test_the_common_refusals_of_host_commands_are_the_ones_every_command_shares() -> None:
    assert {"conflict", "limit_reached", "not_allowed", "seq_required", "link_revoked", "store_unavailable"} <= COMMON


def test_every_refusal_of_a_reaction_is_listed() -> None:
    hub_functions = refusals_in(hub)
    handlers = [name for name, (_, calls) in hub_functions.items() if "reaction_target" in calls]
    assert handlers, "no function of battles.hub checks reactions with game.reaction_target"
    reasons = reachable(GAME, "reaction_target").union(*(reachable(hub_functions, name) for name in handlers))
    missing = reasons - listed(section("react"))
    assert not missing, f"docs/protocol.md, `react`, does not say it can be refused with {sorted(missing)}"


def test_every_refusal_of_a_ballot_is_listed() -> None:
    reasons = reachable(refusals_in(embedded), "cast_ballot")
    assert reasons, "the embedded store's cast_ballot refuses nothing: has it moved?"
    missing = reasons - listed(section("vote"))
    assert not missing, f"docs/protocol.md, `vote`, does not say it can be refused with {sorted(missing)}"


def test_every_refusal_of_a_submission_is_listed() -> None:
    hub_functions = refusals_in(hub)
    reasons = (
        reachable(GAME, "submission_target")
        | reachable(GAME, "submission")
        | reachable(hub_functions, "_submit")
        | reachable(refusals_in(embedded), "submit")
    )
    assert {"submissions_closed", "device_blocked", "too_soon"} <= reasons, "the submission's checks have moved"
    missing = reasons - listed(section("submit"))
    assert not missing, f"docs/protocol.md, `submit`, does not say it can be refused with {sorted(missing)}"
    moderation = reachable(refusals_in(embedded), "moderate") - listed(section("moderate"))
    assert not moderation, f"docs/protocol.md, `moderate`, does not say it can be refused with {sorted(moderation)}"


# --- the map of the code -------------------------------------------------------------------


PACKAGE = Path(__file__).resolve().parents[1] / "src" / "battles"


def part(text: str, heading: str) -> str:
    return text.split(heading + "\n", 1)[1].split("\n#", 1)[0]


@pytest.mark.parametrize("module", sorted(p.name for p in PACKAGE.glob("*.py") if p.name != "__init__.py"))
def test_every_module_is_in_the_readme_layout_and_the_architecture_map(module: str) -> None:
    readme = (DOCS.parent / "README.md").read_text()
    assert module in part(readme, "## Layout"), f"README.md's Layout does not list {module}"
    modules = part((DOCS / "architecture.md").read_text(), "## Modules")
    assert f"`{module}`" in modules, f"docs/architecture.md's Modules does not say what {module} does"


@pytest.mark.parametrize("module", sorted(p.name for p in (PACKAGE / "stores").glob("*.py") if p.name != "__init__.py"))
def test_every_store_module_is_in_the_architecture_map(module: str) -> None:
    assert f"`{module}`" in part((DOCS / "architecture.md").read_text(), "## Modules")


def test_the_project_cites_only_what_it_holds() -> None:
    # The rules are docs/rules.md; nothing in the repository may send a reader elsewhere for them.
    root = DOCS.parent
    files = [
        p for folder in ("src", "static", "templates", "tests", "docs", "bench") for p in (root / folder).rglob("*")
    ]
    citing = [
        str(p.relative_to(root))
        for p in [*files, root / "README.md"]
        if p.is_file() and p.suffix in (".py", ".js", ".html", ".css", ".md") and "GAME" + ".md" in p.read_text()
    ]
    assert citing == []


def examples(message: str) -> list[Any]:
    """The JSON examples of a message's section in docs/protocol.md, decoded, in order."""
    return [json.loads(block) for block in re.findall(r"```json\n(.*?)\n```", section(message), re.DOTALL)]


def test_the_update_example_applies_and_is_what_the_engine_sends() -> None:
    update, before, after, host_update = examples("update")
    # A client written from the docs, with an RFC 6902 library: the example's patch turns
    # the example's battle of version `base` into the one of `seq`.
    assert {op["op"] for op in update["patch"]} <= {"add", "remove", "replace"}
    assert (update["base"], update["seq"]) == (before["version"], after["version"])
    assert jsonpatch.apply_patch(before, update["patch"]) | {"version": update["seq"]} == after
    # And the engine sends exactly this for that change: the same evening, played in the core.
    draft = BattleDraft(title="The future", battlers=[{"name": "Ada", "vision": "A"}, {"name": "Bo", "vision": "B"}])
    battle = game.create("K7RM2Q", draft, 1764190000000)
    steps = [("start_round", {}), ("next", {}), ("next", {"b1": {"applause": 4}})]
    for number, (kind, engagement) in enumerate(steps, start=1):
        context = game.Context(now_ms=1764190000000 + 30000 * number, engagement=engagement)
        outcome = game.apply(battle, TypeAdapter(Command).validate_python({"type": kind}), context)
        announced = announcements.committed(battle, outcome.battle)
        battle = outcome.battle
    assert views.public_patch(announced.patch) == update["patch"]
    assert [views.public_event(e.model_dump(mode="json")) for e in announced.events] == update["events"]
    assert [e.model_dump(mode="json") for e in announced.events] == host_update["events"]
    assert (host_update["seq"], host_update["base"]) == (update["seq"], update["base"])


async def test_the_welcome_example_has_every_field_a_phone_gets(app: InProcess) -> None:
    (example,) = examples("welcome")
    code = app.create_battle(title="T", battlers=FOUR)["code"]
    phone = await app.connect("audience", code)
    assert example.keys() == phone.welcome.keys()
    assert example["limits"].keys() == phone.welcome["limits"].keys()
    assert example["limits"]["submission_max_chars"] == phone.welcome["limits"]["submission_max_chars"]
    assert example["close_codes"] == phone.welcome["close_codes"]


async def test_the_ballot_tally_and_receipt_examples_have_every_field_the_engine_sends(app: InProcess) -> None:
    (ballot,) = examples("ballot")
    open_tally, closed_tally = examples("tally")
    created = app.create_battle(title="T", battlers=FOUR)
    host = await app.connect("host", created["code"], created["host_token"])
    phone = await app.connect("audience", created["code"])
    vote_id = await to_the_vote(host)
    sent = await phone.vote(vote_id, "b2")
    assert ballot.keys() == sent.keys() and len(ballot["receipt"]) == len(sent["receipt"])
    assert open_tally.keys() == (await host.expect("tally", lambda m: m["ballots"] == 1)).keys()
    await host.run("close_vote")
    counted = await host.expect("tally", lambda m: m["digest"] is not None)
    assert closed_tally.keys() == counted.keys() and len(closed_tally["digest"]) == len(counted["digest"])
    again = await app.connect("audience", created["code"], device=phone.device)
    (snapshot,) = examples("snapshot")
    assert again.my_ballot is not None and snapshot["my_ballot"].keys() == again.my_ballot.keys()
    # Checking a receipt: the route and the answer as the section shows them.
    text = part((DOCS / "protocol.md").read_text(), "### Checking a receipt")
    found = json.loads(re.findall(r"```json\n(.*?)\n```", text, re.DOTALL)[0])
    answer = app.get(f"/api/battles/{created['code']}/votes/{vote_id}/receipts/{sent['receipt']}").json()
    assert found.keys() == answer.keys()
    assert "`GET /api/battles/CODE/votes/VOTE/receipts/RECEIPT`" in (DOCS / "protocol.md").read_text()
    # The flags as the console gets them, and every flag the core can raise, documented.
    none, raised = examples("flags")
    resynced = await host.request({"type": "resync"})
    assert none.keys() - {"type"} == resynced["flags"].keys() == raised.keys() - {"type"}
    assert snapshot.keys() - {"my_ballot", "my_submissions"} <= host.snapshot.keys()
    for flag in raised["flags"]:
        assert f"`{flag['flag']}`" in section("flags")
        assert f'"{flag["flag"]}"' in (PACKAGE / "anomalies.py").read_text()
