"""What each role sees of a battle, the links of a battle, and the evening's export."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from typing import Any

from battles import game, patches
from battles.charts import Reactions
from battles.i18n import outcome_text
from battles.model import Battle, Battler, Block, Language, Persuasion, Round, Submission, VisionVersion, Vote
from battles.protocol import HOST_ROLES
from battles.security import battler_token, current_secrets, results_token
from battles.stores.base import Secrets, Tally

# What screens and phones never see of a battle: the event log is for the host's eyes
# only, and the banned words are the moderators' tool, not a list to read out to the hall.
HIDDEN_FROM_PUBLIC = ("/log", "/rules/banned_words")


def _excluded(pointers: tuple[str, ...]) -> dict[str, Any]:
    """JSON Pointers as pydantic's ``exclude``: ("/a", "/b/c") -> {"a": True, "b": {"c": True}}."""
    tree: dict[str, Any] = {}
    for pointer in pointers:
        *parents, leaf = pointer.removeprefix("/").split("/")
        node = tree
        for part in parents:
            node = node.setdefault(part, {})
        node[leaf] = True
    return tree


_PUBLIC_EXCLUDE = _excluded(HIDDEN_FROM_PUBLIC)


def battle_view(battle: Battle, role: str) -> dict[str, Any]:
    """The state as a role receives it in a ``snapshot``."""
    if role in HOST_ROLES:
        return battle.model_dump(mode="json")
    return battle.model_dump(mode="json", exclude=_PUBLIC_EXCLUDE)


def public_patch(patch: patches.Patch) -> patches.Patch:
    """A patch of the state as screens and phones get it: without the operations under
    what they never see. Exact, because ``patches.diff`` compares objects member by
    member: a hidden member changes by operations at or under its own path, never by
    one that replaces an object around it (tests/test_announcements.py)."""
    return [op for op in patch if not any(_under(op["path"], hidden) for hidden in HIDDEN_FROM_PUBLIC)]


def _under(path: str, pointer: str) -> bool:
    return path == pointer or path.startswith(pointer + "/")


def public_event(event: dict[str, Any]) -> dict[str, Any]:
    """An event as screens and phones get it: what happened, without the host's notes
    (nor the time: the update's ``server_ms`` says when)."""
    return {"action": event["action"]}


def submission_view(item: Submission) -> dict[str, Any]:
    """A submission as moderators (and the export) see it: never its device."""
    return item.model_dump(mode="json", exclude={"device"})


# The dismissed and blocked submissions a console's queue snapshot carries (the newest);
# the waiting and approved ones go whole (their number is capped: settings.md).
QUEUE_DONE_SHOWN = 50


def queue_view(items: list[Submission], blocks: list[Block]) -> list[dict[str, Any]]:
    """The moderation queue a console gets: what waits, what is approved, the newest
    others, and the submission each block was decided on (the console's blocked list)."""
    done = [item for item in items if item.status in ("dismissed", "blocked")][-QUEUE_DONE_SHOWN:]
    named = {block.submission for block in blocks}
    return [
        submission_view(item)
        for item in items
        if item.status not in ("dismissed", "blocked") or item in done or item.id in named
    ]


def my_submissions_view(items: list[Submission], battle: Battle, language: Language) -> list[dict[str, Any]]:
    """What became of a phone's own submissions, as ``your_submission`` told it, for its
    snapshot: the decided ones (approved, shown, dismissed), oldest news first. A phone is
    never told of a hold or a block (docs/protocol.md, ``your_submission``): those, like
    the ones still waiting, are not news."""
    if not items:
        return []  # most phones: no log to read (a hall reconnecting reads this once per phone)
    shown = {
        str(entry.details.get("submission")): entry.at_ms for entry in battle.log if entry.action == "show_submission"
    }
    news = []
    for item in items:
        if item.id in shown:
            outcome, at_ms = "shown", shown[item.id]
        elif item.status in ("approved", "dismissed"):
            outcome, at_ms = item.status, max((d.at_ms for d in item.decisions), default=item.at_ms)
        else:
            continue
        message = outcome_text(language, item.kind, outcome)
        news.append({"submission": item.id, "kind": item.kind, "text": item.text, "outcome": outcome,
                     "message": message, "at_ms": at_ms})  # fmt: skip
    return sorted(news, key=lambda entry: entry["at_ms"])


def shared_submissions(items: list[Submission]) -> list[Submission]:
    """The submissions of the export the results link reads: the approved ones. That link is
    made to be shared; what the moderators held back, left waiting or turned down stays with
    the host's export."""
    return [item for item in items if item.status == "approved"]


def block_view(block: Block) -> dict[str, Any]:
    """A blocked device as the consoles see it: the decision, never the device."""
    return block.model_dump(mode="json", exclude={"device"})


def tally_view(battle: Battle, tally: Tally, role: str) -> dict[str, Any] | None:
    """Live totals of the vote under way; screens and phones get the totals only when the
    rules show them (docs/rules.md, `live_totals`: by default totals appear at the reveal), else the count."""
    vote = battle.current_vote
    if vote is None or vote.status not in ("open", "closed"):
        return None
    shown = role in HOST_ROLES or battle.rules.live_totals
    return {
        "vote_id": vote.id,
        "ballots": tally.ballots,
        "totals": {c: tally.totals.get(c, 0) for c in vote.choices} if shown else None,
        # docs/rules.md, "Hall and online": the online part of the totals, with them.
        "online": {c: tally.online.get(c, 0) for c in vote.choices} if shown and battle.rules.remote else None,
        # The consoles' check before the reveal (docs/security.md, "Receipts and digests").
        "digest": tally.digest if role in HOST_ROLES else None,
    }


def engagement_view(reactions: dict[str, dict[str, int]]) -> dict[str, Any]:
    return {
        battler: {"counts": counts, "score": game.engagement_score(counts)}
        for battler, counts in sorted(reactions.items())
    }


def links(base_url: str, code: str, tokens: Secrets | None = None) -> dict[str, str]:
    """The public join link, and with the tokens the secret ones (token in the fragment,
    which browsers never send to a server)."""
    base = base_url.rstrip("/")
    result = {"join": f"{base}/join/{code}"}
    if tokens is not None:
        result |= {
            "host": f"{base}/host/{code}#{tokens.host}",
            "cohost": f"{base}/host/{code}#{tokens.cohost}",
            "screen": f"{base}/screen/{code}#{tokens.screen}",
            "overlay": f"{base}/overlay/{code}#{tokens.screen}",  # the screen's token: the same view
            "results": f"{base}/results/{code}#{results_token(tokens)}",
        }
    return result


def watch_link(base_url: str, code: str) -> str:
    """The remote join link, for the stream's audience (docs/protocol.md, "The remote audience")."""
    return f"{base_url.rstrip('/')}/watch/{code}"


def persuasion_view(matrix: Persuasion) -> dict[str, Any]:
    """A persuasion matrix as the export has it: counts, each battler's gain and conversion
    rate with them (docs/rules.md, "Who moved minds")."""
    document = matrix.model_dump(mode="json")
    for figures, minds in zip(document["battlers"], matrix.battlers, strict=True):
        figures |= {"gain": minds.gain, "conversion": minds.conversion}
    return document


def battler_links(base_url: str, code: str, tokens: Secrets, battlers: list[Battler]) -> dict[str, str]:
    """Each battler's own link, by battler id (docs/security.md): the token of its current
    link generation in the fragment, as the other secret links."""
    base = base_url.rstrip("/")
    return {b.id: f"{base}/battler/{code}#{battler_token(tokens, b.id, b.link_generation)}" for b in battlers}


def staff_links(base_url: str, battle: Battle, tokens: Secrets, role: str) -> dict[str, Any]:
    """What a console's snapshot and the ack of a revoke carry: the battle's ``links``, the
    co-host's of its current generation, and ``battler_links``, each battler's own. A
    co-host runs the show but cannot hand out the host's own link, nor the results."""
    now = current_secrets(tokens, battle.cohost_generation)
    shown = links(base_url, battle.code, now)
    if role == "cohost":
        del shown["host"], shown["results"]
    return {"links": shown, "battler_links": battler_links(base_url, battle.code, now, battle.battlers)}


def vision_history(battle: Battle, reactions: Reactions) -> dict[str, list[dict[str, Any]]]:
    """Each battler's vision, version by version (docs/rules.md, "Visions that develop"): its
    title, "what changed" line, first round, sender and time, the rounds it stood in, and the
    engagement and the votes it drew there (a vision never changes during a round, so each
    round's figures are its version's). Version 1 of a vision never revised included."""
    history: dict[str, list[dict[str, Any]]] = {}
    for battler in battle.battlers:
        versions = battler.versions or [VisionVersion(vision=battler.vision, round=1)]
        history[battler.id] = []
        for number, version in enumerate(versions, start=1):
            stood = [
                rnd for rnd in battle.rounds if battler.id in rnd.order and battler.version_in(rnd.number) == number
            ]
            counts: dict[str, int] = {}
            for rnd in stood:
                for kind, count in reactions.get(rnd.number, {}).get(battler.id, {}).items():
                    counts[kind] = counts.get(kind, 0) + count
            votes = [
                {"vote": vote.id, "round": rnd.number, "votes": vote.totals[battler.id], "ballots": vote.ballots}
                for rnd in stood
                for vote in rnd.votes
                if vote.status != "voided" and vote.totals is not None and battler.id in vote.totals
            ]
            history[battler.id].append(
                {"version": number, **version.model_dump(mode="json"), "rounds": [rnd.number for rnd in stood],
                 "engagement": {"counts": counts, "score": game.engagement_score(counts)}, "votes": votes}
            )  # fmt: skip
    return history


def export(
    battle: Battle,
    reactions: Reactions,
    submissions: list[Submission] | None = None,
    minds: list[Persuasion] | None = None,
) -> dict[str, Any]:
    """The whole evening (docs/rules.md, vocabulary: after the show): roster, every round with
    its votes' totals, engagement per turn, overrides, the host's event log with times, every
    challenge and question the audience sent, with what the moderators did with it, each
    vision's history (``vision_history``), and who moved minds (``minds``: the store's
    ``persuasion``, counts only)."""
    document = battle.model_dump(mode="json")
    for number, rnd in enumerate(document["rounds"], start=1):
        rnd["engagement"] = engagement_view(reactions.get(number, {}))
    shown = [submission_view(item) for item in submissions or []]
    persuasion = [persuasion_view(matrix) for matrix in minds or []]
    return {
        "format": "future-battles-export/1", "battle": document, "submissions": shown,
        "visions": vision_history(battle, reactions), "persuasion": persuasion,
    }  # fmt: skip


# A cell a spreadsheet would run as a formula (OWASP, "CSV Injection"): a name such as
# =HYPERLINK(...) typed by a battler or a co-host would run on the host's laptop.
FORMULA_START = ("=", "+", "-", "@", "\t", "\r")


def spreadsheet_safe(value: Any) -> Any:
    """Text that a spreadsheet would take for a formula, quoted with a leading ' so it is
    shown as typed (docs/protocol.md, export.csv); numbers and other text unchanged."""
    return f"'{value}" if isinstance(value, str) and value.startswith(FORMULA_START) else value


CSV_COLUMNS = ("section", "round", "vote", "battler", "name", "field", "value", "at_ms", "actor")


Row = tuple[str, dict[str, Any]]  # a section, and its cells by column


def export_csv(
    battle: Battle,
    reactions: Reactions,
    submissions: list[Submission] | None = None,
    minds: list[Persuasion] | None = None,
) -> str:
    """The export as one table; ``section`` says what a row is (battle, battler, version, vote,
    engagement, turn, elimination, minds, flow, submission, log). A submission's rows: its
    kind, its text (``value``) and its status, each with its id in ``vote`` and its nickname in
    ``name``; then a ``decision`` row per moderator's decision, with its time and who (host or
    cohost). A vision's version: ``v2`` in ``vote``, its first round. The ``minds`` and
    ``flow`` rows: docs/protocol.md, export.csv."""
    out = io.StringIO()
    writer = csv.DictWriter(out, CSV_COLUMNS, extrasaction="raise")
    writer.writeheader()
    names = {b.id: b.name for b in battle.battlers}
    rows = [
        *_battle_rows(battle),
        *(row for poll in battle.stances for row in _vote_rows(poll, {"round": None}, names)),
        *_version_rows(vision_history(battle, reactions), names),
        *(row for rnd in battle.rounds for row in _round_rows(rnd, reactions.get(rnd.number, {}), names)),
        *(row for matrix in minds or [] for row in _minds_rows(matrix, names)),
        *_submission_rows(submissions or []),
        *(
            (
                "log",
                {
                    "field": e.action,
                    "value": json.dumps(e.details, ensure_ascii=False),
                    "at_ms": e.at_ms,
                    "actor": e.actor,
                },
            )
            for e in battle.log
        ),
    ]
    for section, cells in rows:
        writer.writerow({"section": section, **{column: spreadsheet_safe(value) for column, value in cells.items()}})
    return out.getvalue()


def _battle_rows(battle: Battle) -> Iterator[Row]:
    for field in ("code", "title", "topic", "scenario", "language", "winner", "ended_reason"):
        yield "battle", {"field": field, "value": getattr(battle, field)}
    yield "battle", {"field": "rules", "value": battle.rules.model_dump_json()}
    for b in battle.battlers:
        yield "battler", {"battler": b.id, "name": b.name, "field": "vision", "value": b.vision}
        yield (
            "battler",
            {"battler": b.id, "name": b.name, "field": "status", "value": b.status, "round": b.eliminated_in_round},
        )


def _vote_rows(vote: Vote, at: dict[str, Any], names: dict[str, str]) -> Iterator[Row]:
    """A vote's, or a stance poll's (round empty; its choices include ``undecided``), rows."""
    yield "vote", {**at, "vote": vote.id, "field": "status", "value": vote.status}
    if vote.ballots is not None:
        yield "vote", {**at, "vote": vote.id, "field": "ballots", "value": vote.ballots}
    if vote.digest is not None:
        yield "vote", {**at, "vote": vote.id, "field": "digest", "value": vote.digest}
    if vote.combine is not None:
        # docs/rules.md, "Hall and online": the rule that decided, and the two parts below.
        yield "vote", {**at, "vote": vote.id, "field": "combine", "value": vote.combine}
        yield "vote", {**at, "vote": vote.id, "field": "online_share", "value": vote.online_share}
    for battler, count in (vote.totals or {}).items():
        online = (vote.online or {}).get(battler, 0)
        parts = [("votes", count)] + ([("hall", count - online), ("online", online)] if vote.online is not None else [])
        for field, value in parts:
            row = {**at, "vote": vote.id, "battler": battler, "name": names.get(battler), "field": field}
            yield "vote", row | {"value": value}


def _version_rows(history: dict[str, list[dict[str, Any]]], names: dict[str, str]) -> Iterator[Row]:
    for battler, versions in history.items():
        for v in versions:
            at = {"round": v["round"], "vote": f"v{v['version']}", "battler": battler, "name": names.get(battler)}
            yield "version", {**at, "field": "vision", "value": v["vision"], "at_ms": v["at_ms"], "actor": v["by"]}
            yield "version", {**at, "field": "changed", "value": v["changed"]}
            yield "version", {**at, "field": "rounds", "value": " ".join(map(str, v["rounds"]))}
            yield "version", {**at, "field": "engagement", "value": v["engagement"]["score"]}
            for vote in v["votes"]:
                yield "version", {**at, "field": f"votes:{vote['vote']}", "value": vote["votes"]}


def _round_rows(rnd: Round, reactions: dict[str, dict[str, int]], names: dict[str, str]) -> Iterator[Row]:
    at = {"round": rnd.number}
    for vote in rnd.votes:
        yield from _vote_rows(vote, at, names)
    for battler, figures in engagement_view(reactions).items():
        who = {**at, "battler": battler, "name": names.get(battler)}
        for kind, count in figures["counts"].items():
            yield "engagement", {**who, "field": kind, "value": count}
        yield "engagement", {**who, "field": "score", "value": figures["score"]}
    for turn in rnd.turns:
        # A turn's reactions as kept when it ended (model.Turn), at the time it began.
        for kind, count in (turn.reactions or {}).items():
            yield (
                "turn",
                {
                    **at,
                    "battler": turn.battler,
                    "name": names.get(turn.battler),
                    "field": kind,
                    "value": count,
                    "at_ms": turn.started_ms,
                },
            )
    for battler in rnd.eliminated:
        yield (
            "elimination",
            {
                **at,
                "battler": battler,
                "name": names.get(battler),
                "field": "override",
                "value": rnd.override_reason or "",
            },
        )


def _minds_rows(matrix: Persuasion, names: dict[str, str]) -> Iterator[Row]:
    """One persuasion matrix: its counts apart, each battler's figures, and each flow (the
    choice at the first poll in ``battler``, at the second in ``field`` after ``to:``)."""
    at = {"round": matrix.round, "vote": f"{matrix.before}>{matrix.after}"}
    for field in ("paired", "only_before", "only_after"):
        yield "minds", {**at, "field": field, "value": getattr(matrix, field)}
    for minds in matrix.battlers:
        who = {**at, "battler": minds.battler, "name": names.get(minds.battler)}
        for field in ("won", "lost", "held", "of", "gain", "conversion"):
            yield "minds", {**who, "field": field, "value": getattr(minds, field)}
    for flow in matrix.flows:
        yield "flow", {**at, "battler": flow.before, "name": names.get(flow.before), "field": f"to:{flow.after}",
                       "value": flow.devices}  # fmt: skip


def _submission_rows(submissions: list[Submission]) -> Iterator[Row]:
    for item in submissions:
        cells = {
            "round": item.round,
            "vote": item.id,
            "battler": item.battler,
            "name": item.nickname,
            "at_ms": item.at_ms,
        }
        for field, value in (
            ("kind", item.kind),
            ("text", item.text),
            ("status", item.status),
            ("held_for", item.held_for),
        ):
            if value is not None:
                yield "submission", {**cells, "field": field, "value": value}
        for decision in item.decisions:
            yield (
                "submission",
                {**cells, "field": "decision", "value": decision.action, "at_ms": decision.at_ms, "actor": decision.by},
            )
