"""Danish and English for every text a person sees.

The texts live in gettext catalogs (``battles/locale/LANG/LC_MESSAGES/battles.po``),
read with Babel. The message ids are the English texts, so the English catalog may
leave a translation empty. Pages get both catalogs (a person may switch language
without a reload); the server translates refusals into the connection's language.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable
from functools import cache
from importlib.resources import files
from typing import Any

from babel.messages.pofile import read_po
from starlette.requests import HTTPConnection

from battles.model import Language

LANGUAGES: tuple[Language, ...] = ("da", "en")


def N_(text: str) -> str:
    """Marks a text for the catalogs where it is defined, not where it is shown."""
    return text


# Every reason a ``Refused`` can carry, in the words a host or a phone will read.
REASONS: dict[str, str] = {
    "bad_json": N_("That message is not a JSON object."),
    "binary_frame": N_("Send messages as text frames: the server reads JSON text only."),
    "unknown_type": N_("Unknown message type."),
    "bad_message": N_("That message is not valid: {detail}"),
    "not_allowed": N_("Your role ({role}) may not send that."),
    "seq_required": N_("Host commands must say which version they were decided on (seq)."),
    "conflict": N_("The battle changed while you decided (now at version {version}). Look again and retry."),
    "store_unavailable": N_(
        "The server cannot reach its storage right now, so this may not be recorded. Try again in a moment."
    ),
    "wrong_phase": N_("That is not possible in this phase ({phase})."),
    "too_few_battlers": N_("A round needs at least two battlers."),
    "too_many_battlers": N_("A battle can have at most {most} battlers."),
    "unknown_battler": N_("No such battler in this battle."),
    "not_speaking": N_("That battler is not speaking now."),
    "reaction_off": N_("That reaction is switched off."),
    "no_reactions_now": N_("Reactions are open during turns and the debate."),
    "cooldown": N_("Easy! One reaction at a time."),
    "no_timer": N_("No clock is running."),
    "timer_paused": N_("The clock is already paused."),
    "timer_running": N_("The clock is already running."),
    "vote_exists": N_("This round already has a vote. Void it to vote again."),
    "vote_not_open": N_("No vote is open."),
    "vote_closed": N_("The vote has closed."),
    "wrong_vote": N_("That vote is over; a new one is open."),
    "bad_choice": N_("That battler is not in this vote."),
    "no_vote": N_("There is no vote to void."),
    "vote_not_closed": N_("Close the vote before revealing it."),
    "runoff_pending": N_("The tie goes to a runoff: open the runoff vote, or override."),
    "pick_from_tied": N_("Pick {need} of the tied battlers."),
    "not_the_proposal": N_("That is not who the rules picked; use override with a reason."),
    "bad_override": N_("That override would leave too few battlers."),
    "no_battle": N_("No battle has that code."),
    "rate_limited": N_("Too many requests. Wait a moment."),
    "link_revoked": N_("The host revoked this link. Ask the host for the new one."),
    "limit_reached": N_("This battle has reached one of its limits (at most {most} of these). Nothing was changed."),
    "submissions_off": N_("The audience cannot send that tonight."),
    "submissions_closed": N_("Not now: challenges are for between the rounds, questions for the turns and the debate."),
    "too_soon": N_("Thank you! You can send the next one in a moment."),
    "device_blocked": N_("The host has stopped this phone from sending challenges and questions tonight."),
    "unknown_submission": N_("No such challenge or question in this battle."),
    "not_approved": N_("Approve it before putting it on the screen."),
    "not_shown": N_("That is not on the screen."),
    "not_blocked": N_("That phone is not blocked."),
    "stance_off": N_("This battle has no stance polls: switch them on in the rules."),
    "stance_taken": N_("That stance poll has already been taken tonight."),
    "not_your_vision": N_("A battler's link revises its own vision only."),
    "revisions_off": N_("The host has switched revisions of the visions off in this battle."),
    "battler_out": N_("Only a battler still in the battle may revise their vision."),
    "no_revision": N_("That vision has not been revised."),
    "revision_stood": N_("That version has stood in a round already: it stays on the record."),
    # A cue from the crew's desk (battles.cues; docs/protocol.md, "Cues from the crew's desk").
    "bad_token": N_("That token opens no console of this battle: send the host's or the co-host's."),
    "not_a_cue": N_("A cue sends a host command; moderation and the rest stay at the console."),
    "remote_off": N_("The remote audience is switched off in this battle."),
    "not_remote": N_("Only a phone of the stream's audience has a stream delay."),
    "delay_locked": N_("Your delay can change again once the vote is counted."),
    "remote_wait": N_("The stream's viewers can still vote for {seconds} s: reveal then."),
    "internal": N_("Something went wrong on the server. Nothing was changed."),
}


# The codes a refusal's params may carry, in the words of the pages (static/client/battle.js
# PHASES, console.js ACTORS, the presence list of templates/host.html): the message says
# "in this phase (Vote)", while ``params`` keeps the code for a program (docs/protocol.md, error).
PHASE_LABELS: dict[str, str] = {
    "lobby": N_("Lobby"),
    "challenge": N_("Challenge"),
    "turn": N_("Presentation"),
    "debate": N_("Debate"),
    "vote": N_("Vote"),
    "reveal": N_("Results"),
    "elimination": N_("Out"),
    "final": N_("Final"),
    "finished": N_("Finished"),
    "stance": N_("Stance poll"),
}
ROLE_LABELS: dict[str, str] = {
    "audience": N_("Audience"),
    "screen": N_("Screen"),
    "host": N_("Host"),
    "cohost": N_("Co-host"),
    "battler": N_("Battler"),
    # who else may be the actor of a command (model.Actor)
    "timer": N_("Timer"),
    "system": N_("System"),
}
PARAM_LABELS: dict[str, dict[str, str]] = {"phase": PHASE_LABELS, "role": ROLE_LABELS}


# What a phone is told of its own challenge or question (docs/protocol.md, ``your_submission``).
OUTCOMES: dict[tuple[str, str], str] = {
    ("challenge", "approved"): N_("Your challenge was approved: it may become a round's challenge card."),
    ("challenge", "shown"): N_("Your challenge is on the screen."),
    ("challenge", "dismissed"): N_("Your challenge was not taken up this time."),
    ("question", "approved"): N_("Your question was approved: it may be put on the screen."),
    ("question", "shown"): N_("Your question is on the screen."),
    ("question", "dismissed"): N_("Your question was not taken up this time."),
}


@cache
def catalog(language: Language) -> dict[str, str]:
    """msgid -> translation, with empty translations left out."""
    source = files("battles").joinpath(f"locale/{language}/LC_MESSAGES/battles.po")
    with source.open("rb") as po:
        # A catalog that does not parse (a merge that lost a msgstr) stops the server at once.
        messages = read_po(po, locale=language, abort_invalid=True)
    return {str(m.id): str(m.string) for m in messages if m.id and m.string}


@cache
def catalogs_json() -> tuple[str, str]:
    """Both catalogs as the pages get them (a file the browser keeps, not inline in every
    page), and a digest of them that names the file: a changed catalog is a new address."""
    body = json.dumps({language: catalog(language) for language in LANGUAGES}, ensure_ascii=False, sort_keys=True)
    return body, hashlib.sha256(body.encode()).hexdigest()[:12]


def gettext(language: Language) -> Callable[[str], str]:
    table = catalog(language)
    return lambda text: table.get(text, text)


def plural(_: Callable[[str], str], n: int, one: str, many: str, **params: Any) -> str:
    """One text for 1, another for any other number (Danish and English count alike), {n}
    filled in: the server's side of plural() in static/client/i18n.js."""
    return _(one if n == 1 else many).format(n=n, **params)


def outcome_text(language: Language, kind: str, outcome: str) -> str:
    return gettext(language)(OUTCOMES[(kind, outcome)])


def _in_words(_: Callable[[str], str], name: str, value: Any) -> Any:
    """A code among a refusal's params (a phase, a role) as the pages say it; anything else as is."""
    labels = PARAM_LABELS.get(name, {})
    return _(labels[value]) if isinstance(value, str) and value in labels else value


def refusal_text(language: Language, reason: str, params: dict[str, Any]) -> str:
    _ = gettext(language)
    template = _(REASONS.get(reason, reason))
    words = {name: _in_words(_, name, value) for name, value in params.items()}
    try:
        return template.format(**words)
    except (KeyError, IndexError, ValueError):
        return template


def language_of(request: HTTPConnection, default: Language) -> Language:
    """The language a page or a chart is asked for in (``?lang=da``), else ``default``."""
    wanted = request.query_params.get("lang")
    return next((lang for lang in LANGUAGES if lang == wanted), default)
