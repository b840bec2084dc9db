"""The game core: every rule of docs/rules.md, with no I/O.

``apply(battle, command, context)`` takes the current state, one host command and the
facts the caller gathered (the time, who acts, a random seed, the tally of the vote
being revealed, the round's reactions) and returns the next state with the log
entries it added. It never mutates its input: a command that does not fit raises
``Refused`` and the caller still holds the untouched state.

Ballots and reactions do not pass through here: they are counted by the stores
(atomic counters), and enter the state only when the host reveals a vote.
"""

from __future__ import annotations

import random
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from typing import Any, Literal

from battles import commands as c
from battles import persuasion
from battles.errors import Fault, Refused
from battles.model import (
    REACTION_WEIGHT,
    UNDECIDED,
    Actor,
    Battle,
    BattleDraft,
    Battler,
    LogEntry,
    Proposal,
    Round,
    Rules,
    Shown,
    Stance,
    Submission,
    SubmissionKind,
    SyncCue,
    Timer,
    Turn,
    VisionVersion,
    Vote,
    VoteMode,
)
from battles.wordfilter import banned_word_in

MAX_BATTLERS = 24

# Bounds of what one battle can grow to (docs/security.md, "Bounds of one battle"). The
# state goes to the store whole at every command and to every host socket with the
# event log, so without them a co-host could grow it without end (600 edits made a
# 1.27 MB snapshot, and every command took ten times longer). A command past a bound
# is refused with ``limit_reached`` and changes nothing.
#
# Log entries: one per command. A full evening of 24 battlers, every turn paused,
# resumed and extended, takes about 1,500; past the bound only close_vote and
# end_battle are taken, so a battle can always be closed, counted and ended. With the
# bounds below on the large entries, a full log is about 1 MB of JSON at worst.
MAX_LOG_ENTRIES = 3000
# add_battler, edit_battler, remove_battler and edit_battle before round one (an
# edit_battle can carry a 2,000-character scenario: 100 of them are about 220 KB).
# It also keeps battler ids within b1..b999, what the wire schema names.
MAX_LOBBY_EDITS = 100
# reveal_challenge and show_submission as a challenge card per round (500 characters each).
MAX_CHALLENGE_CARDS = 10
# set_audience_rules per battle: each can carry a whole word list (MAX_BANNED_WORDS of
# 40 characters, 20 KB in the state; the log entry carries only its length).
MAX_AUDIENCE_RULE_EDITS = 100
# Votes per round, runoffs and voided votes included (a void carries a 300-character reason);
# and the evening's stance polls (open_stance), voided ones included.
MAX_VOTES_PER_ROUND = 10
# Ballot ids one device may have recorded in one vote (the stores keep each, so that a
# resent ballot counts once): a person changes their mind a few times, a script that
# sends new ids at its message rate would otherwise add 20 a second for as long as the
# vote is open. 200 leaves a phone of the fault tests' bursts (5 new ids a second) 40 s.
# Checked by the stores, in the ballot's own atomic step.
MAX_BALLOTS_PER_DEVICE = 200
# Versions of one vision (revise_vision): each is up to two lines of 140 characters, in
# every view. An undo gives one back. Two revisions a round in a long evening is 20.
MAX_VISION_VERSIONS = 20
# docs/rules.md, "Visions that develop": between rounds, never in a turn, the debate or a vote.
REVISION_PHASES = ("lobby", "elimination", "challenge")
LOBBY_EDITS = frozenset({"add_battler", "edit_battler", "remove_battler", "edit_battle"})
CHALLENGE_CARDS = frozenset({"reveal_challenge", "show_submission:challenge"})
ALWAYS_TAKEN = (c.CloseVote, c.EndBattle)


@dataclass(frozen=True)
class Context:
    """What the caller knows that the core must not find out for itself."""

    now_ms: int
    actor: Actor = "host"
    # The random draw for a "random" presentation order; stored in the round so every
    # process, and every replay, agrees on the order.
    seed: int = 0
    # For reveal_results and end_battle: the store's frozen tally of the closed vote.
    # For those, and for a command that ends a turn: the round's reaction counts per
    # battler and kind.
    totals: dict[str, int] | None = None
    online: dict[str, int] = field(default_factory=dict)  # the online part of ``totals``
    ballots: int = 0
    digest: str | None = None  # of the same ballots as ``totals`` (battles.receipts)
    engagement: dict[str, dict[str, int]] = field(default_factory=dict)
    # For show_submission: the stored submission it names (None: the store has none).
    submission: Submission | None = None
    # For revealing a closing stance poll: the store's counts of devices by their choices
    # in the opening and the closing poll (persuasion.Transitions), never a device.
    transitions: persuasion.Transitions | None = None
    # For a command from a battler's own link (actor "battler"): whose link it is.
    battler: str | None = None
    # For reveal_results and end_battle with the remote link on: the delay each remote
    # device keeps (None: it has none of its own), never a device (``remote_wait_ms``).
    remote_delays: tuple[int | None, ...] = ()


@dataclass(frozen=True)
class Needs:
    """What a command needs from the store besides the battle, for its ``Context``: the
    caller reads each and passes it in (battles.running)."""

    submission: str | None = None  # the submission show_submission puts on the screen
    tally: str | None = None  # the closed vote whose frozen totals it counts
    engagement: int | None = None  # the round whose reaction counts it keeps
    transitions: tuple[str, str] | None = None  # the opening and the closing poll it pairs
    remote_delays: bool = False  # the remote devices' delays, for the reveal's wait


def needs(battle: Battle, command: c.Command) -> Needs:
    """What ``command`` needs to know (see ``Context``) before it is applied to ``battle``."""
    counts = isinstance(command, (c.RevealResults, c.EndBattle))
    return replace(_needs_of_the_store(battle, command), remote_delays=battle.rules.remote and counts)


def _needs_of_the_store(battle: Battle, command: c.Command) -> Needs:
    shown = command.submission if isinstance(command, c.ShowSubmission) else None
    if battle.poll is not None and isinstance(command, (c.RevealResults, c.EndBattle)):
        return Needs(shown, tally=battle.poll.id, transitions=_stance_pair(battle, battle.poll))
    vote = battle.round.vote if battle.round else None
    if isinstance(command, (c.RevealResults, c.EndBattle)) and vote is not None and battle.round is not None:
        # The vote is closed (``applied_first``), so its tally no longer moves: what is read is final.
        return Needs(shown, tally=vote.id, engagement=battle.round.number, transitions=_stance_pair(battle, vote))
    if battle.phase == "turn" and battle.round is not None:
        # A command that ends the turn keeps the speaker's reactions with it (model.Turn).
        return Needs(shown, engagement=battle.round.number)
    return Needs(shown)


def applied_first(battle: Battle, command: c.Command) -> c.Command | None:
    """A command that must be applied, and committed, before ``command``: ending the battle
    closes an open vote first, so that its tally is frozen before it is counted (a ballot
    acknowledged between reading the tally and the end would be lost)."""
    if isinstance(command, c.EndBattle) and battle.open_vote is not None:
        return c.CloseVote(type="close_vote")
    return None


@dataclass(frozen=True)
class Outcome:
    battle: Battle
    events: list[LogEntry]


@dataclass(frozen=True)
class BallotGate:
    """What a store needs to accept or refuse a ballot atomically, without the state."""

    vote_id: str
    open: bool
    deadline_ms: int  # 0 while the vote's timer is paused: no deadline
    choices: tuple[str, ...]
    opened_ms: int
    # When the hall's vote closed, while remote windows may still take ballots (closed,
    # neither revealed, voided nor ended); else 0.
    closed_ms: int


def window_refusal(gate: BallotGate, delay_ms: int, now_ms: int) -> str | None:
    """Why a ballot at ``now_ms`` is outside its device's vote window, or None when it is
    inside (docs/protocol.md, "Vote windows"). The hall's window (``delay_ms`` 0) is the
    vote open and before its deadline; a remote device's is the hall's shifted by its
    delay: from ``opened_ms + delay`` to the hall's close (its deadline, or the close on
    the record) ``+ delay``. The Redis store's Lua does the same (redis._CAST_BALLOT)."""
    if delay_ms <= 0:
        shut = not gate.open or (gate.deadline_ms and now_ms >= gate.deadline_ms)
        return "vote_closed" if shut else None
    if not gate.open and not gate.closed_ms:
        return "vote_closed"
    if now_ms < gate.opened_ms + delay_ms:
        return "vote_not_open"
    close_ms = gate.deadline_ms if gate.open else gate.closed_ms  # a deadline of 0: paused, no close yet
    return "vote_closed" if close_ms and now_ms >= close_ms + delay_ms else None


def remote_wait_ms(battle: Battle, delays: tuple[int | None, ...], now_ms: int) -> int:
    """How long a closed vote's remote windows still run (docs/protocol.md, "Vote
    windows"): until its close plus the longest delay a remote device has, or would have
    by default; 0 when none runs. ``delays``: each remote device's own (None: none)."""
    gate = ballot_gate(battle)
    longest = max(battle.rules.remote_delay_ms(own) for own in (None, *delays))
    if gate is None or not gate.closed_ms or not longest:
        return 0  # no remote window runs past the hall's close (and no clock is compared)
    return max(0, gate.closed_ms + longest - now_ms)


def create(code: str, draft: BattleDraft, now_ms: int) -> Battle:
    """A new battle in the lobby, its battlers numbered b1, b2, ... in roster order."""
    battlers = [Battler(id=f"b{i}", **d.model_dump()) for i, d in enumerate(draft.battlers, start=1)]
    battle = Battle(
        code=code,
        created_ms=now_ms,
        battlers=battlers,
        battlers_added=len(battlers),
        **draft.model_dump(exclude={"battlers"}),
    )
    battle.log.append(LogEntry(at_ms=now_ms, actor="host", action="create", details={"title": battle.title}))
    return battle


def apply(battle: Battle, command: c.Command, context: Context) -> Outcome:
    handler = _HANDLERS[type(command)]
    if not isinstance(command, ALWAYS_TAKEN):
        _within(len(battle.log), MAX_LOG_ENTRIES, "log_entries")
    new = battle.model_copy(deep=True)
    details = handler(new, command, context) or {}
    _question_follows_the_floor(new)
    new.version += 1
    entry = LogEntry(at_ms=context.now_ms, actor=context.actor, action=command.type, details=details)
    new.log.append(entry)
    return Outcome(new, [entry])


def due(battle: Battle, now_ms: int) -> bool:
    """True when the server must act on its own: a vote whose deadline has passed."""
    return battle.open_vote is not None and battle.timer is not None and battle.timer.expired(now_ms)


def next_deadline(battle: Battle) -> int | None:
    """When ``due`` will next become true, for the stores' timer index."""
    if battle.open_vote is not None and battle.timer is not None:
        return battle.timer.deadline_ms
    return None


def tick(battle: Battle, now_ms: int) -> Outcome | None:
    """Close a vote whose time is up (docs/rules.md, promises: even if the host's laptop sleeps)."""
    if not due(battle, now_ms):
        return None
    return apply(battle, c.CloseVote(type="close_vote"), Context(now_ms=now_ms, actor="timer"))


def _stance_pair(battle: Battle, closing: Vote) -> tuple[str, str] | None:
    """The polls whose devices a reveal of ``closing`` pairs: the opening stance poll's and its."""
    opening = persuasion.stance_poll(battle, "opening")
    return (opening.id, closing.id) if closing.stance == "closing" and opening is not None else None


def ballot_gate(battle: Battle) -> BallotGate | None:
    # The newest poll: a stance poll in its phase, and after it until a round has a vote
    # (the opening poll until round one's vote; the closing one after the final's).
    latest = battle.stances[-1] if battle.stances else None
    vote = battle.round.vote if battle.round else None
    if latest is not None and (battle.phase == "stance" or vote is None or latest.stance == "closing"):
        vote = latest
    if vote is None:
        return None
    is_open = battle.open_vote is vote
    deadline = battle.timer.deadline_ms if is_open and battle.timer else None
    closing = vote.status == "closed" and battle.phase in ("vote", "stance")
    closed_ms = (vote.closed_ms or 0) if closing else 0
    return BallotGate(vote.id, is_open, deadline or 0, tuple(vote.choices), vote.opened_ms, closed_ms)


def engagement_score(counts: dict[str, int]) -> int:
    return sum(REACTION_WEIGHT.get(kind, 0) * n for kind, n in counts.items())


def reaction_target(battle: Battle, kind: str, battler_id: str | None) -> str:
    """Whom a reaction counts for, or ``Refused`` (docs/rules.md, phases: reactions in a turn and the debate)."""
    if kind not in battle.rules.reactions:
        raise Refused("reaction_off")
    if battle.phase == "turn":
        speaker = battle.speaker
        assert speaker is not None
        if battler_id not in (None, speaker):
            raise Refused("not_speaking")
        return speaker
    if battle.phase == "debate":
        target = battle.battler(battler_id or "")
        if target is None or target.status != "in":
            raise Refused("unknown_battler")
        return target.id
    raise Refused("no_reactions_now")


def submission_target(battle: Battle, kind: SubmissionKind, battler_id: str | None) -> str | None:
    """Whether a phone may send a ``kind`` now, and whom a question is for; else ``Refused``.

    docs/rules.md, "The audience takes part": challenges between rounds (the lobby, an
    elimination, a round's challenge phase until its card is up), questions during the
    turns and the debate; each only while its rule is on.
    """
    if kind == "challenge":
        if not battle.rules.audience_challenges:
            raise Refused("submissions_off")
        before_card = battle.phase == "challenge" and battle.round is not None and battle.round.challenge is None
        if battle.phase not in ("lobby", "elimination") and not before_card:
            raise Refused("submissions_closed")
        return None
    if not battle.rules.audience_questions:
        raise Refused("submissions_off")
    if battle.phase not in ("turn", "debate"):
        raise Refused("submissions_closed")
    if battler_id is None:
        return battle.speaker
    target = battle.battler(battler_id)
    if target is None or target.status != "in":
        raise Refused("unknown_battler")
    return target.id


def submission(
    battle: Battle, kind: SubmissionKind, text: str, nickname: str, battler_id: str | None, device: str, now_ms: int
) -> Submission:
    """A phone's challenge or question as the store takes it (its id and numbering are the
    store's), or ``Refused`` when it may not be sent now (``submission_target``). Held for a
    moderator when the word filter matches the text or the nickname, which goes on the
    screen with it (docs/rules.md, "The audience takes part")."""
    target = submission_target(battle, kind, battler_id)
    held_for = banned_word_in(text, battle.rules.banned_words) or banned_word_in(nickname, battle.rules.banned_words)
    return Submission(
        id="s0", kind=kind, text=text, nickname=nickname, battler=target,
        round=battle.round.number if battle.round else 0, at_ms=now_ms,
        status="held" if held_for else "pending", held_for=held_for, device=device,
    )  # fmt: skip


def _question_follows_the_floor(b: Battle) -> None:
    """A question on the screen goes when its turn or the debate it was put in ends."""
    question = b.question
    if question is None:
        return
    floor = b.turn_index if b.phase == "turn" else None
    if b.phase not in ("turn", "debate") or question.turn != floor:
        b.question = None


# --- the handlers: each mutates its own copy or raises before returning -----------------

Details = dict[str, Any] | None


def _within(count: int, most: int, limit: str) -> None:
    """Refuse what would make ``count`` go past ``most`` (see MAX_LOG_ENTRIES)."""
    if count >= most:
        raise Refused("limit_reached", limit=limit, most=most)


def _lobby_edit(b: Battle) -> None:
    _phase(b, "lobby")
    _within(sum(entry.action in LOBBY_EDITS for entry in b.log), MAX_LOBBY_EDITS, "lobby_edits")


def _phase(battle: Battle, *phases: str) -> None:
    if battle.phase not in phases:
        raise Refused("wrong_phase", phase=battle.phase)


def _current_round(battle: Battle) -> Round:
    if battle.round is None:
        raise Fault(f"phase {battle.phase} without a round")
    return battle.round


def _start_round(b: Battle, cmd: c.StartRound, ctx: Context) -> Details:
    _phase(b, "lobby", "elimination")
    ids = [x.id for x in b.remaining]
    if len(ids) < 2:
        raise Refused("too_few_battlers")
    number = len(b.rounds) + 1
    seed = None
    if b.rules.order == "rotating" and b.round is not None:
        # The next opener is whoever followed the last opener in the roster and is still in,
        # so an elimination never makes the rotation jump.
        roster = [x.id for x in b.battlers]
        last = roster.index(b.round.order[0])
        following = roster[last + 1 :] + roster[: last + 1]
        opener = next(bid for bid in following if bid in ids)
        shift = ids.index(opener)
        ids = ids[shift:] + ids[:shift]
    elif b.rules.order == "random":
        seed = ctx.seed
        random.Random(seed).shuffle(ids)
    final = len(ids) <= b.rules.final_size
    b.rounds.append(Round(number=number, final=final, challenge=cmd.challenge, order=ids, seed=seed))
    b.phase, b.turn_index, b.timer = "challenge", None, None
    return {"round": number, "final": final, "order": ids, "seed": seed, "challenge": cmd.challenge}


def _reveal_challenge(b: Battle, cmd: c.RevealChallenge, ctx: Context) -> Details:
    _challenge_card(b)
    rnd = _current_round(b)
    rnd.challenge, rnd.challenge_from = cmd.text, None
    return {"text": cmd.text}


def _challenge_card(b: Battle) -> None:
    """Whether a challenge card may go up now (MAX_CHALLENGE_CARDS a round)."""
    _phase(b, "challenge", "turn", "debate")
    since_start = next(n for n, entry in enumerate(reversed(b.log)) if entry.action == "start_round")
    cards = sum(_card_action(entry) in CHALLENGE_CARDS for entry in b.log[len(b.log) - since_start :])
    _within(cards, MAX_CHALLENGE_CARDS, "challenge_cards")


def _card_action(entry: LogEntry) -> str:
    return f"{entry.action}:{entry.details.get('show_as')}" if entry.action == "show_submission" else entry.action


def _show_submission(b: Battle, cmd: c.ShowSubmission, ctx: Context) -> Details:
    item = ctx.submission
    if item is None or item.id != cmd.submission:
        raise Refused("unknown_submission")
    if item.status != "approved":
        # docs/rules.md: nothing reaches the screen that a moderator did not approve.
        raise Refused("not_approved")
    show_as = cmd.show_as or item.kind
    shown = Shown(submission=item.id, kind=item.kind, text=item.text, nickname=item.nickname)
    if show_as == "challenge":
        _challenge_card(b)
        rnd = _current_round(b)
        rnd.challenge, rnd.challenge_from = item.text, shown
    else:
        _phase(b, "turn", "debate")
        addressee = b.speaker if b.phase == "turn" else item.battler
        b.question = shown.model_copy(update={"battler": addressee, "turn": b.turn_index})
    return {"submission": item.id, "show_as": show_as, "kind": item.kind, "text": item.text, "nickname": item.nickname}


def _hide_submission(b: Battle, cmd: c.HideSubmission, ctx: Context) -> Details:
    rnd = b.round
    if b.question is not None and b.question.submission == cmd.submission:
        b.question = None
        return {"submission": cmd.submission, "show_as": "question"}
    if rnd is not None and rnd.challenge_from is not None and rnd.challenge_from.submission == cmd.submission:
        rnd.challenge, rnd.challenge_from = None, None
        return {"submission": cmd.submission, "show_as": "challenge"}
    raise Refused("not_shown")


def _begin_turn(b: Battle, index: int, now_ms: int) -> None:
    rnd = _current_round(b)
    b.phase, b.turn_index = "turn", index
    rnd.turns.append(Turn(battler=rnd.order[index], started_ms=now_ms))
    b.timer = _timer(b.rules.turn_seconds, now_ms)


def _timer(seconds: int, now_ms: int) -> Timer:
    return Timer(duration_ms=seconds * 1000, deadline_ms=now_ms + seconds * 1000)


def _leave_turn(b: Battle, now_ms: int, skipped: bool, engagement: dict[str, dict[str, int]]) -> dict[str, Any]:
    """End the current turn and go on to the next one, the debate, or the vote."""
    rnd = _current_round(b)
    turn = rnd.turns[-1]
    turn.ended_ms, turn.skipped = now_ms, skipped
    turn.reactions = dict(engagement.get(turn.battler, {}))
    assert b.turn_index is not None
    if b.turn_index + 1 < len(rnd.order):
        _begin_turn(b, b.turn_index + 1, now_ms)
    elif b.rules.debate_seconds > 0:
        b.phase, b.turn_index = "debate", None
        b.timer = _timer(b.rules.debate_seconds, now_ms)
    else:
        b.phase, b.turn_index, b.timer = "vote", None, None
    return {"battler": turn.battler, "skipped": skipped, "next_phase": b.phase}


def _next(b: Battle, cmd: c.Next, ctx: Context) -> Details:
    _phase(b, "challenge", "turn", "debate")
    if b.phase == "challenge":
        _begin_turn(b, 0, ctx.now_ms)
        return {"next_phase": "turn"}
    if b.phase == "turn":
        return _leave_turn(b, ctx.now_ms, skipped=False, engagement=ctx.engagement)
    b.phase, b.timer = "vote", None
    return {"next_phase": "vote"}


def _skip_turn(b: Battle, cmd: c.SkipTurn, ctx: Context) -> Details:
    _phase(b, "turn")
    return _leave_turn(b, ctx.now_ms, skipped=True, engagement=ctx.engagement)


def _running_timer(b: Battle, now_ms: int) -> Timer:
    _phase(b, "turn", "debate", "vote", "stance")
    if b.phase in ("vote", "stance") and (b.open_vote is None or due(b, now_ms)):
        raise Refused("vote_not_open")
    if b.timer is None:
        raise Refused("no_timer")
    return b.timer


def _pause_timer(b: Battle, cmd: c.PauseTimer, ctx: Context) -> Details:
    timer = _running_timer(b, ctx.now_ms)
    if timer.paused:
        raise Refused("timer_paused")
    timer.paused_remaining_ms = max(0, timer.remaining_ms(ctx.now_ms))
    timer.deadline_ms = None
    return {"remaining_ms": timer.paused_remaining_ms}


def _resume_timer(b: Battle, cmd: c.ResumeTimer, ctx: Context) -> Details:
    timer = _running_timer(b, ctx.now_ms)
    if not timer.paused:
        raise Refused("timer_running")
    timer.deadline_ms = ctx.now_ms + (timer.paused_remaining_ms or 0)
    timer.paused_remaining_ms = None
    return {"deadline_ms": timer.deadline_ms}


def _extend_timer(b: Battle, cmd: c.ExtendTimer, ctx: Context) -> Details:
    timer = _running_timer(b, ctx.now_ms)
    extra = cmd.seconds * 1000
    if timer.paused:
        timer.paused_remaining_ms = (timer.paused_remaining_ms or 0) + extra
    else:
        # A turn already in overtime gets the extra time from now, not from the past deadline.
        assert timer.deadline_ms is not None
        timer.deadline_ms = max(timer.deadline_ms, ctx.now_ms) + extra
    return {"seconds": cmd.seconds, "remaining_ms": timer.remaining_ms(ctx.now_ms)}


def _reset_timer(b: Battle, cmd: c.ResetTimer, ctx: Context) -> Details:
    timer = _running_timer(b, ctx.now_ms)
    if timer.paused:
        timer.paused_remaining_ms = timer.duration_ms
    else:
        timer.deadline_ms = ctx.now_ms + timer.duration_ms
    return {"remaining_ms": timer.remaining_ms(ctx.now_ms)}


def _open_vote(b: Battle, cmd: c.OpenVote, ctx: Context) -> Details:
    rnd = _current_round(b) if b.rounds else None
    runoff = b.phase == "reveal" and rnd is not None and rnd.proposal is not None and rnd.proposal.method == "runoff"
    if not runoff:
        # Opening the vote from the last turn or the debate ends that segment first.
        if b.phase == "turn" and rnd is not None and b.turn_index == len(rnd.order) - 1:
            _leave_turn(b, ctx.now_ms, skipped=False, engagement=ctx.engagement)
            b.phase, b.timer = "vote", None
        elif b.phase == "debate":
            b.phase, b.timer = "vote", None
        _phase(b, "vote")
        if rnd is None or rnd.vote is not None:
            raise Refused("vote_exists")
    assert rnd is not None
    _within(len(rnd.votes), MAX_VOTES_PER_ROUND, "votes")
    stance, choices, seconds = _vote_choices(b, rnd, runoff)
    mode: VoteMode = "keep" if rnd.final else b.rules.vote_mode
    vote = Vote(
        id=f"r{rnd.number}v{len(rnd.votes) + 1}",
        choices=choices,
        runoff=runoff,
        mode=mode,
        opened_ms=ctx.now_ms,
        stance=stance,
        versions=_versions(b, choices),
    )
    rnd.votes.append(vote)
    b.phase, b.timer = "vote", _timer(seconds, ctx.now_ms)
    details = {"vote_id": vote.id, "choices": choices, "runoff": runoff, "mode": mode, "seconds": seconds}
    return details | ({"stance": stance} if stance else {})


def _vote_choices(b: Battle, rnd: Round, runoff: bool) -> tuple[Stance | None, list[str], int]:
    """What a round's vote asks (a stance poll or not), among whom, for how long."""
    if runoff:
        assert rnd.proposal is not None
        return None, list(rnd.proposal.tied), b.rules.runoff_seconds
    if rnd.final and b.rules.winner == "gain":
        # docs/rules.md, "Who moved minds": under the ``gain`` rule the final's vote is the closing stance poll.
        return "closing", persuasion.stance_choices(b), b.rules.vote_seconds
    return None, list(rnd.order), b.rules.vote_seconds


def _open_stance(b: Battle, cmd: c.OpenStance, ctx: Context) -> Details:
    """docs/rules.md, "Who moved minds": the opening poll in the lobby, the closing one once
    the final has a winner (under the ``gain`` rule the final's vote is the closing poll)."""
    if not b.rules.takes_stances:
        raise Refused("stance_off")
    _phase(b, "lobby" if cmd.stance == "opening" else "final")
    if persuasion.stance_poll(b, cmd.stance) is not None:
        raise Refused("stance_taken")
    _within(len(b.stances), MAX_VOTES_PER_ROUND, "votes")
    choices = persuasion.stance_choices(b)
    poll = Vote(
        id=f"{cmd.stance}{len(b.stances) + 1}",
        choices=choices,
        mode="keep",
        opened_ms=ctx.now_ms,
        stance=cmd.stance,
        versions=_versions(b, choices),
    )
    b.stances.append(poll)
    b.phase, b.timer = "stance", _timer(b.rules.vote_seconds, ctx.now_ms)
    return {"vote_id": poll.id, "stance": cmd.stance, "choices": poll.choices, "seconds": b.rules.vote_seconds}


def _after_stance(b: Battle, poll: Vote) -> None:
    """Back to where the stance poll was opened from: the lobby, or the final."""
    b.phase, b.timer = "lobby" if poll.stance == "opening" else "final", None


def _close_vote(b: Battle, cmd: c.CloseVote, ctx: Context) -> Details:
    vote = b.open_vote
    if vote is None:
        raise Refused("vote_not_open")
    vote.status, vote.closed_ms = "closed", ctx.now_ms
    b.timer = None
    return {"vote_id": vote.id}


def _void_vote(b: Battle, cmd: c.VoidVote, ctx: Context) -> Details:
    _phase(b, "vote", "stance")
    if b.poll is not None:
        poll = b.poll
        poll.status, poll.void_reason = "voided", cmd.reason
        poll.closed_ms = poll.closed_ms or ctx.now_ms
        _after_stance(b, poll)
        return {"vote_id": poll.id, "reason": cmd.reason}
    vote = _current_round(b).vote
    if vote is None or vote.status not in ("open", "closed"):
        raise Refused("no_vote")
    vote.status, vote.void_reason = "voided", cmd.reason
    vote.closed_ms = vote.closed_ms or ctx.now_ms
    b.timer = None
    # A voided runoff leaves the reveal (and its pending runoff) as it was.
    b.phase = "reveal" if vote.runoff else "vote"
    return {"vote_id": vote.id, "reason": cmd.reason}


def _reveal_results(b: Battle, cmd: c.RevealResults, ctx: Context) -> Details:
    _phase(b, "vote", "stance")
    poll = b.poll
    vote = poll if poll is not None else _current_round(b).vote
    if vote is None or vote.status != "closed":
        raise Refused("vote_not_closed")
    _remote_windows_over(b, ctx)
    totals = _count(b, vote, ctx, "reveal_results")
    scores = decisive(vote)
    vote.status = "revealed"
    minds = _minds(b, vote, ctx)
    if poll is not None:
        _after_stance(b, poll)
        return {"vote_id": vote.id, "totals": totals, "ballots": ctx.ballots, "digest": ctx.digest, "minds": minds}
    rnd = _current_round(b)
    rnd.engagement = {bid: dict(ctx.engagement.get(bid, {})) for bid in rnd.order}
    fewest_leave = vote.mode == "keep"
    if vote.runoff:
        earlier = rnd.proposal
        assert earlier is not None
        sure, tied, need = _cut(scores, earlier.tied, earlier.need, fewest_leave)
        # docs/rules.md, who leaves: a runoff that ties again falls back to the host.
        rnd.proposal = Proposal(
            leaving=earlier.leaving + sure,
            tied=tied,
            need=need,
            method="host" if need else "decided",
            decided_by="runoff",
        )
    elif vote.stance == "closing":
        # docs/rules.md, "the gain rule": the finalist with the largest gain wins.
        scores = persuasion.gains(b.minds, rnd.order) if b.minds else dict.fromkeys(rnd.order, 0)
        rnd.proposal = _propose(b, rnd, scores, fewest_leave)
    else:
        rnd.proposal = _propose(b, rnd, scores, fewest_leave)
    b.phase, b.timer = "reveal", None
    proposal = rnd.proposal.model_dump()
    details = {"vote_id": vote.id, "totals": totals, "ballots": ctx.ballots, "digest": ctx.digest, "proposal": proposal}
    return details | _parts(vote, scores) | ({"minds": minds} if vote.stance else {})


def _parts(vote: Vote, scores: dict[str, int]) -> dict[str, Any]:
    """A reveal's log of the hall and online parts and of how they decided (docs/rules.md)."""
    if vote.online is None:
        return {}
    parts = {"online": vote.online, "combine": vote.combine, "online_share": vote.online_share}
    return parts | ({"scores": scores} if scores != vote.totals else {})


def _remote_windows_over(b: Battle, ctx: Context) -> None:
    """docs/protocol.md, "Vote windows": a closed vote is counted once no remote device
    may still vote in it, so that every ballot its window took is in the count."""
    wait_ms = remote_wait_ms(b, ctx.remote_delays, ctx.now_ms)
    if wait_ms:
        raise Refused("remote_wait", wait_ms=wait_ms, seconds=-(-wait_ms // 1000))


def _count(b: Battle, vote: Vote, ctx: Context, command: str) -> dict[str, int]:
    """Put a closed vote's frozen tally, and the digest of the same ballots, on the record."""
    if ctx.totals is None:
        raise Fault(f"{command} needs the tally of the vote it counts")
    vote.totals = {choice: int(ctx.totals.get(choice, 0)) for choice in vote.choices}
    vote.ballots, vote.digest = ctx.ballots, ctx.digest
    if b.rules.remote:
        # docs/rules.md, "Hall and online": the two parts, and the rule that decides, on the record.
        vote.online = {choice: int(ctx.online.get(choice, 0)) for choice in vote.choices}
        vote.combine, vote.online_share = b.rules.combine, b.rules.online_share
    return vote.totals


def decisive(vote: Vote) -> dict[str, int]:
    """The figures that decide who leaves (docs/rules.md, "Hall and online"): the totals, the
    hall's part under ``hall``, or under ``weighted`` each choice's share of the hall's
    ballots weighted (100 - s) and of the online ballots weighted s, scaled to integers:
    (100 - s) * hall * O + s * online * H, with H and O the two parts' ballots (one part
    without ballots: the other's counts). Equal figures tie, as equal totals do."""
    totals = vote.totals or {}
    if vote.online is None or vote.combine in (None, "combined"):
        return dict(totals)
    online = {choice: vote.online.get(choice, 0) for choice in vote.choices}
    hall = {choice: totals.get(choice, 0) - online[choice] for choice in vote.choices}
    hall_ballots, online_ballots = sum(hall.values()), sum(online.values())
    if vote.combine == "hall" or not online_ballots:
        return hall
    if not hall_ballots:
        return online
    share = vote.online_share if vote.online_share is not None else 50
    return {
        choice: (100 - share) * hall[choice] * online_ballots + share * online[choice] * hall_ballots
        for choice in vote.choices
    }


def _minds(b: Battle, vote: Vote, ctx: Context) -> dict[str, Any] | None:
    """Keep the persuasion matrix when the closing stance poll is revealed (None without an opening poll)."""
    if vote.stance != "closing":
        return None
    opening = persuasion.stance_poll(b, "opening")
    if opening is None or ctx.transitions is None:
        b.minds = None
        return None
    b.minds = persuasion.matrix(opening, vote, ctx.transitions)
    return {"paired": b.minds.paired, "most": persuasion.most_minds(b.minds)}


def _propose(b: Battle, rnd: Round, totals: dict[str, int], fewest_leave: bool) -> Proposal:
    candidates = list(rnd.order)
    if rnd.final:
        leaving_count = len(candidates) - 1  # everyone but the winner
    else:
        leaving_count = min(b.rules.eliminations_per_round, len(candidates) - b.rules.final_size)
    sure, tied, need = _cut(totals, candidates, leaving_count, fewest_leave)
    if not need:
        return Proposal(leaving=sure)
    if b.rules.ties == "runoff":
        return Proposal(leaving=sure, tied=tied, need=need, method="runoff")
    if b.rules.ties == "engagement":
        # docs/rules.md, who leaves: the higher engagement in this round stays.
        scores = {bid: engagement_score(rnd.engagement.get(bid, {})) for bid in tied}
        more, still_tied, still_need = _cut(scores, tied, need, fewest_leave=True)
        method: Literal["decided", "host"] = "host" if still_need else "decided"
        return Proposal(leaving=sure + more, tied=still_tied, need=still_need, method=method, decided_by="engagement")
    return Proposal(leaving=sure, tied=tied, need=need, method="host")


def _cut(
    scores: dict[str, int], candidates: list[str], count: int, fewest_leave: bool
) -> tuple[list[str], list[str], int]:
    """Pick ``count`` leavers: (sure to leave, tied at the cut, how many of the tied must go)."""
    if count >= len(candidates):
        return list(candidates), [], 0

    def badness(bid: str) -> int:
        return -scores.get(bid, 0) if fewest_leave else scores.get(bid, 0)

    ordered = sorted(candidates, key=badness, reverse=True)
    threshold = badness(ordered[count - 1])
    sure = [bid for bid in ordered if badness(bid) > threshold]
    tied = [bid for bid in ordered if badness(bid) == threshold]
    need = count - len(sure)
    if need == len(tied):
        return sure + tied, [], 0
    return sure, tied, need


def _confirm_elimination(b: Battle, cmd: c.ConfirmElimination, ctx: Context) -> Details:
    _phase(b, "reveal")
    proposal = _current_round(b).proposal
    assert proposal is not None
    if proposal.method == "runoff":
        raise Refused("runoff_pending")
    picked = list(dict.fromkeys(cmd.battlers or []))
    if proposal.method == "host":
        if len(picked) != proposal.need or not set(picked) <= set(proposal.tied):
            raise Refused("pick_from_tied", need=proposal.need)
        leaving = proposal.leaving + picked
    else:
        if picked and set(picked) != set(proposal.leaving):
            raise Refused("not_the_proposal")
        leaving = proposal.leaving
    return _eliminate(b, leaving, picked=picked)


def _override_elimination(b: Battle, cmd: c.OverrideElimination, ctx: Context) -> Details:
    _phase(b, "reveal")
    rnd = _current_round(b)
    leaving = list(dict.fromkeys(cmd.battlers))
    if not set(leaving) <= set(rnd.order):
        raise Refused("unknown_battler")
    staying = len(rnd.order) - len(leaving)
    # The final's override names everyone but the winner; a round's leaves at least two.
    allowed = staying == 1 if rnd.final else staying >= 2
    if not allowed:
        raise Refused("bad_override")
    rnd.override_reason = cmd.reason
    return _eliminate(b, leaving, reason=cmd.reason)


def _eliminate(b: Battle, leaving: list[str], **details: Any) -> dict[str, Any]:
    rnd = _current_round(b)
    for bid in leaving:
        battler = _stored_battler(b, bid)
        battler.status, battler.eliminated_in_round = "eliminated", rnd.number
    rnd.eliminated = list(leaving)
    if rnd.final:
        (winner,) = [bid for bid in rnd.order if bid not in leaving]
        _stored_battler(b, winner).status = "winner"
        b.winner, b.phase = winner, "final"
    else:
        b.phase = "elimination"
    return {"round": rnd.number, "eliminated": leaving, "winner": b.winner, **details}


def _undo_elimination(b: Battle, cmd: c.UndoElimination, ctx: Context) -> Details:
    _phase(b, "elimination", "final")
    rnd = _current_round(b)
    for bid in rnd.eliminated + ([b.winner] if b.winner else []):
        battler = _stored_battler(b, bid)
        battler.status, battler.eliminated_in_round = "in", None
    undone = rnd.eliminated
    rnd.eliminated, rnd.override_reason, b.winner = [], None, None
    b.phase = "reveal"
    return {"round": rnd.number, "restored": undone}


def _battler(b: Battle, battler_id: str) -> Battler:
    """The battler a command names, or ``Refused``."""
    battler = b.battler(battler_id)
    if battler is None:
        raise Refused("unknown_battler")
    return battler


def _versions(b: Battle, choices: list[str]) -> dict[str, int]:
    """The version of each chosen battler's vision as a vote opens (docs/rules.md, "Visions
    that develop"): a ballot names the version it chose; ``undecided`` has none."""
    return {bid: _stored_battler(b, bid).version for bid in choices if bid != UNDECIDED}


def _stored_battler(b: Battle, battler_id: str) -> Battler:
    """A battler the state itself names (a round's order, its eliminated): always there."""
    battler = b.battler(battler_id)
    if battler is None:
        raise Fault(f"battle {b.code} names a battler {battler_id} it does not have")
    return battler


def _add_battler(b: Battle, cmd: c.AddBattler, ctx: Context) -> Details:
    _lobby_edit(b)
    if len(b.battlers) >= MAX_BATTLERS:
        raise Refused("too_many_battlers", most=MAX_BATTLERS)
    # Ids are never reused, so the log never names two people with one id.
    b.battlers_added += 1
    battler = Battler(id=f"b{b.battlers_added}", name=cmd.name, vision=cmd.vision, affiliation=cmd.affiliation)
    b.battlers.append(battler)
    return {"battler": battler.model_dump()}


def _edit_battler(b: Battle, cmd: c.EditBattler, ctx: Context) -> Details:
    _lobby_edit(b)
    battler = _battler(b, cmd.battler)
    changes = cmd.model_dump(exclude={"type", "battler"}, exclude_none=True)
    for name, value in changes.items():
        setattr(battler, name, value)
    if "vision" in changes and battler.versions:
        battler.versions[-1].vision = battler.vision  # a lobby edit of the current version
    return {"battler": cmd.battler, "changes": changes}


def _revise_vision(b: Battle, cmd: c.ReviseVision, ctx: Context) -> Details:
    # docs/rules.md, "Visions that develop": a battler's link revises its own vision only.
    if ctx.actor == "battler" and cmd.battler != ctx.battler:
        raise Refused("not_your_vision")
    _phase(b, *REVISION_PHASES)
    if not b.rules.vision_revisions:
        raise Refused("revisions_off")
    battler = _battler(b, cmd.battler)
    if battler.status != "in":
        raise Refused("battler_out")
    _within(battler.version, MAX_VISION_VERSIONS, "vision_versions")
    first_round = _next_round(b)
    if not battler.versions:
        battler.versions.append(VisionVersion(vision=battler.vision, round=1))
    revision = VisionVersion(vision=cmd.vision, changed=cmd.changed, round=first_round, by=ctx.actor, at_ms=ctx.now_ms)
    battler.versions.append(revision)
    battler.vision = cmd.vision
    return {
        "battler": battler.id,
        "version": battler.version,
        **revision.model_dump(include={"vision", "changed", "round"}),
    }


def _undo_revision(b: Battle, cmd: c.UndoRevision, ctx: Context) -> Details:
    if ctx.actor not in ("host", "cohost"):
        raise Refused("not_allowed", role=ctx.actor)
    _phase(b, *REVISION_PHASES)
    battler = _battler(b, cmd.battler)
    if not battler.versions:
        raise Refused("no_revision")
    if battler.versions[-1].round < _next_round(b):
        # It has stood in a round: the record of that round names it (docs/rules.md).
        raise Refused("revision_stood")
    undone = battler.versions.pop()
    battler.vision = battler.versions[-1].vision
    if len(battler.versions) == 1:
        battler.versions.clear()  # back to the roster's vision, never revised
    return {"battler": battler.id, "version": battler.version, "undone": undone.vision}


def _next_round(b: Battle) -> int:
    """The round a revision made now first stands in: the current one in its challenge
    phase (before its first turn), else the next one."""
    return len(b.rounds) + (0 if b.phase == "challenge" else 1)


def _revoke_battler(b: Battle, cmd: c.RevokeBattler, ctx: Context) -> Details:
    # As revoke_cohost: only the host, in any phase.
    if ctx.actor != "host":
        raise Refused("not_allowed", role=ctx.actor)
    battler = _battler(b, cmd.battler)
    battler.link_generation += 1
    return {"battler": battler.id, "generation": battler.link_generation}


def _remove_battler(b: Battle, cmd: c.RemoveBattler, ctx: Context) -> Details:
    _lobby_edit(b)
    battler = _battler(b, cmd.battler)
    b.battlers.remove(battler)
    return {"battler": cmd.battler, "name": battler.name}


def _edit_battle(b: Battle, cmd: c.EditBattle, ctx: Context) -> Details:
    _lobby_edit(b)
    # Only what the command names changes, in the rules too (docs/protocol.md,
    # edit_battle): a rule left out keeps its value, it does not go back to its default.
    changes = cmd.model_dump(exclude={"type"}, exclude_none=True, exclude_unset=True)
    for name in changes.keys() - {"rules"}:
        setattr(b, name, getattr(cmd, name))
    if "rules" in changes:
        b.rules = Rules.model_validate(b.rules.model_dump() | changes["rules"])
    return {"changes": changes}


def _end_battle(b: Battle, cmd: c.EndBattle, ctx: Context) -> Details:
    if b.phase == "finished":
        raise Refused("wrong_phase", phase=b.phase)
    _remote_windows_over(b, ctx)
    early = b.phase != "final"
    details: dict[str, Any] = {}
    vote = b.poll or (b.round.vote if b.round else None)
    if b.phase in ("vote", "stance") and vote is not None and vote.status in ("open", "closed"):
        # docs/rules.md: an open vote is closed and counted, and so is a closed one
        # never revealed: every acknowledged ballot stays in the record (state, export).
        totals = _count(b, vote, ctx, "end_battle")
        vote.status = "closed"
        vote.closed_ms = vote.closed_ms or ctx.now_ms
        details["counted"] = {"vote_id": vote.id, "totals": totals, "ballots": ctx.ballots, "digest": ctx.digest}
    b.ended_reason = cmd.reason or ("ended_early" if early else "completed")
    b.phase, b.timer, b.turn_index = "finished", None, None
    return {"early": early, "reason": b.ended_reason, **details}


def _set_audience_rules(b: Battle, cmd: c.SetAudienceRules, ctx: Context) -> Details:
    if b.phase == "finished":
        raise Refused("wrong_phase", phase=b.phase)
    _within(
        sum(entry.action == "set_audience_rules" for entry in b.log), MAX_AUDIENCE_RULE_EDITS, "audience_rule_edits"
    )
    changes = cmd.model_dump(exclude={"type"}, exclude_none=True)
    b.rules = Rules.model_validate(b.rules.model_dump() | changes)
    if "banned_words" in changes:
        # The list itself is in the rules (and the export); the log says how long it became.
        changes["banned_words"] = len(b.rules.banned_words)
    return {"changes": changes}


def _sync_cue(b: Battle, cmd: c.SyncCue, ctx: Context) -> Details:
    """docs/protocol.md, "The remote audience": the screen shows the cue's number, and a
    remote phone's viewer taps when their stream shows it."""
    if not b.rules.remote:
        raise Refused("remote_off")
    if b.phase == "finished":
        raise Refused("wrong_phase", phase=b.phase)
    b.sync_cue = SyncCue(n=b.sync_cue.n + 1 if b.sync_cue else 1, at_ms=ctx.now_ms)
    return {"n": b.sync_cue.n}


def _revoke_cohost(b: Battle, cmd: c.RevokeCohost, ctx: Context) -> Details:
    # Only the host: a co-host must not lock out the host's other helpers (or itself
    # mint a link the host never saw). Any phase: a leaked link is urgent at any time.
    if ctx.actor != "host":
        raise Refused("not_allowed", role=ctx.actor)
    b.cohost_generation += 1
    # The log names the generation, never a token (the export holds the log).
    return {"generation": b.cohost_generation}


_HANDLERS: dict[type, Callable[[Battle, Any, Context], Details]] = {
    c.StartRound: _start_round,
    c.RevealChallenge: _reveal_challenge,
    c.Next: _next,
    c.SkipTurn: _skip_turn,
    c.PauseTimer: _pause_timer,
    c.ResumeTimer: _resume_timer,
    c.ExtendTimer: _extend_timer,
    c.ResetTimer: _reset_timer,
    c.OpenVote: _open_vote,
    c.OpenStance: _open_stance,
    c.CloseVote: _close_vote,
    c.VoidVote: _void_vote,
    c.RevealResults: _reveal_results,
    c.ConfirmElimination: _confirm_elimination,
    c.OverrideElimination: _override_elimination,
    c.UndoElimination: _undo_elimination,
    c.AddBattler: _add_battler,
    c.EditBattler: _edit_battler,
    c.RemoveBattler: _remove_battler,
    c.EditBattle: _edit_battle,
    c.EndBattle: _end_battle,
    c.RevokeCohost: _revoke_cohost,
    c.ShowSubmission: _show_submission,
    c.HideSubmission: _hide_submission,
    c.SetAudienceRules: _set_audience_rules,
    c.ReviseVision: _revise_vision,
    c.UndoRevision: _undo_revision,
    c.RevokeBattler: _revoke_battler,
    c.SyncCue: _sync_cue,
}
