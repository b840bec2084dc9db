"""The state of one battle: plain data that the game core reads and writes.

Everything here round-trips through JSON (``Battle.model_dump_json`` /
``Battle.model_validate_json``), so the stores keep a battle as one document and
every server process rebuilds exactly the same state from it. Times are integer
milliseconds on the server's clock; a timer is an absolute deadline, never a
countdown that someone has to keep ticking (docs/rules.md, promises: the server
owns the clock).
"""

from __future__ import annotations

import unicodedata
from typing import Annotated, Any, Literal

from pydantic import AfterValidator, BaseModel, ConfigDict, Field, StringConstraints, field_validator

from battles.wordfilter import BannedWord, default_words

Phase = Literal["lobby", "challenge", "turn", "debate", "vote", "reveal", "elimination", "final", "finished", "stance"]
Language = Literal["da", "en"]
OrderMode = Literal["roster", "rotating", "random"]
VoteMode = Literal["keep", "out"]
TieRule = Literal["runoff", "host", "engagement"]
Reaction = Literal["applause", "fire", "idea", "yawn"]
Actor = Literal["host", "cohost", "timer", "system", "battler"]
# docs/rules.md, "Who moved minds": the two stance polls, the choice beside the battlers in
# them, and how the final is decided (by its vote, or by the gain between the two polls).
Stance = Literal["opening", "closing"]
UNDECIDED = "undecided"
WinnerRule = Literal["final_vote", "gain"]
# docs/rules.md, "Hall and online": how the hall's and the online ballots make the figures
# that decide who leaves.
CombineRule = Literal["combined", "hall", "weighted"]
# What a phone may send (docs/rules.md, "The audience takes part").
SubmissionKind = Literal["challenge", "question"]

ALL_REACTIONS: tuple[Reaction, ...] = ("applause", "fire", "idea", "yawn")
# How much one reaction adds to the engagement figure (docs/rules.md, who leaves). The
# format left the weights to us; a yawn is the one signal that a vision is losing the hall.
REACTION_WEIGHT: dict[str, int] = {"applause": 1, "fire": 1, "idea": 1, "yawn": -1}

# Person-entered text is stripped and length-limited; markup is kept as typed and
# escaped wherever it is shown (pages render text, never HTML).
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=60)]
Title = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=140)]
ShortText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=140)]
LongText = Annotated[str, StringConstraints(strip_whitespace=True, max_length=2000)]


def plain_text(value: str) -> str:
    """One line of text as a person typed it, without the characters no one can see:
    control and format characters (newlines, tabs, zero-width and direction marks) go,
    runs of white space become one space. Markup stays as typed (shown as text)."""
    kept = "".join(" " if ch.isspace() else ch for ch in value if unicodedata.category(ch)[0] != "C" or ch.isspace())
    return " ".join(kept.split())


# A challenge or a question from a phone: short enough for a card on the screen.
SUBMISSION_MAX_CHARS = 200
SubmissionText = Annotated[
    str,
    StringConstraints(max_length=SUBMISSION_MAX_CHARS * 2),  # before the clean-up: a first, cheap bound
    AfterValidator(plain_text),
    StringConstraints(min_length=1, max_length=SUBMISSION_MAX_CHARS),
]
Nickname = Annotated[
    str, StringConstraints(max_length=60), AfterValidator(plain_text), StringConstraints(max_length=30)
]


# A battle's word list: at most this many words of at most 40 characters (20 KB), in every
# host update with the rules (screens and phones never get it).
MAX_BANNED_WORDS = 500


def window_delay(own_ms: int | None, default_ms: int, max_ms: int) -> int:
    """The delay a remote device's vote window is shifted by (docs/protocol.md, "Vote
    windows"): its own, else the battle's default; 0, the hall's window, when that is
    over the maximum (0 while the remote link is off). The stores decide by it, the
    Redis store in its Lua (redis._CAST_BALLOT)."""
    delay_ms = default_ms if own_ms is None else own_ms
    return delay_ms if delay_ms <= max_ms else 0


class Data(BaseModel):
    model_config = ConfigDict(extra="forbid", validate_assignment=False)


class Rules(Data):
    """The rules a host sets per battle (docs/rules.md, "Rules a host sets")."""

    turn_seconds: int = Field(90, ge=5, le=3600)
    debate_seconds: int = Field(0, ge=0, le=3600)
    vote_seconds: int = Field(45, ge=5, le=3600)
    runoff_seconds: int = Field(30, ge=5, le=3600)
    order: OrderMode = "roster"
    vote_mode: VoteMode = "keep"
    eliminations_per_round: int = Field(1, ge=1, le=10)
    final_size: int = Field(2, ge=2, le=10)
    ties: TieRule = "runoff"
    live_totals: bool = False
    reactions: list[Reaction] = Field(default_factory=lambda: list(ALL_REACTIONS))
    # docs/rules.md, "The audience takes part": what phones may send, and the words that
    # hold a submission back for a moderator (defaults: battles/words/da.txt and en.txt).
    audience_challenges: bool = True
    audience_questions: bool = True
    banned_words: list[BannedWord] = Field(default_factory=default_words, max_length=MAX_BANNED_WORDS)
    # docs/rules.md, "Visions that develop": whether a vision may be revised between rounds.
    vision_revisions: bool = True
    # docs/rules.md, "Who moved minds": an opening and a closing stance poll; with the
    # ``gain`` rule the final's vote is the closing poll, and the largest gain wins.
    stance_polls: bool = False
    winner: WinnerRule = "final_vote"
    # docs/rules.md, "A remote audience": the remote join link (/watch/CODE), the stream
    # delay a remote phone has until it measures its own, and the longest delay a remote
    # vote window is shifted by (a device over it gets the hall's window).
    remote: bool = False
    remote_delay_seconds: int = Field(0, ge=0, le=120)
    max_delay_seconds: int = Field(60, ge=0, le=120)
    # docs/rules.md, "Hall and online": how the two parts of a tally decide, and the online
    # ballots' share of the decision under ``weighted``.
    combine: CombineRule = "combined"
    online_share: int = Field(50, ge=0, le=100)

    @property
    def max_delay_ms(self) -> int:
        """The longest delay a remote window is shifted by; 0 while the remote link is off."""
        return self.max_delay_seconds * 1000 if self.remote else 0

    def remote_delay_ms(self, own_ms: int | None) -> int:
        """The delay a remote device's vote window is shifted by (``window_delay``)."""
        return window_delay(own_ms, self.remote_delay_seconds * 1000, self.max_delay_ms)

    @property
    def takes_stances(self) -> bool:
        """Whether the evening has stance polls: asked for, or needed by the ``gain`` rule."""
        return self.stance_polls or self.winner == "gain"

    @field_validator("reactions")
    @classmethod
    def _unique(cls, value: list[Reaction]) -> list[Reaction]:
        return list(dict.fromkeys(value))

    @field_validator("banned_words")
    @classmethod
    def _unique_words(cls, value: list[str]) -> list[str]:
        return list(dict.fromkeys(value))


class BattlerDraft(Data):
    """A battler as the host enters one."""

    name: Name
    vision: Title
    affiliation: ShortText = ""


class VisionVersion(Data):
    """One version of a battler's vision (docs/rules.md, "Visions that develop"): its title,
    the "what changed" line that came with it, the first round it stands in, who sent it
    (host, cohost or the battler's own link) and when. Version 1 is the vision as the
    roster gave it (no line, no sender)."""

    vision: Title
    changed: ShortText = ""
    round: int
    by: Actor | None = None
    at_ms: int | None = None


class Battler(BattlerDraft):
    id: str
    status: Literal["in", "eliminated", "winner"] = "in"
    eliminated_in_round: int | None = None
    # Every version of the vision, oldest first, once it was revised (empty until then:
    # version 1 is ``vision``); the last one is ``vision``, version n is versions[n - 1].
    versions: list[VisionVersion] = Field(default_factory=list)
    # Bumped by revoke_battler: the battler link of the current generation is the only one
    # accepted (battles.security.battler_token), and sockets of an earlier one are closed.
    link_generation: int = 0

    @property
    def version(self) -> int:
        """The number of the vision's current version (1 until it is revised)."""
        return max(1, len(self.versions))

    def version_in(self, round_number: int) -> int:
        """The version of the vision that stood in round ``round_number``: the newest one
        whose first round is not later (a vision never changes during a round)."""
        return max((n for n, v in enumerate(self.versions, start=1) if v.round <= round_number), default=1)


class Timer(Data):
    """A clock that runs to an absolute deadline, or stands still while paused.

    ``duration_ms`` is the length the rules give (what a reset starts again from);
    an extension moves the deadline only.
    """

    duration_ms: int
    deadline_ms: int | None = None
    paused_remaining_ms: int | None = None

    @property
    def paused(self) -> bool:
        return self.deadline_ms is None

    def remaining_ms(self, now_ms: int) -> int:
        if self.deadline_ms is None:
            return self.paused_remaining_ms or 0
        return self.deadline_ms - now_ms

    def expired(self, now_ms: int) -> bool:
        return self.deadline_ms is not None and now_ms >= self.deadline_ms


class Turn(Data):
    battler: str
    started_ms: int
    ended_ms: int | None = None
    skipped: bool = False
    # The speaker's reactions by kind when the turn ended: a battler speaks once a round and
    # the debate comes after every turn, so the round's count then is this turn's. None while
    # the turn runs, and in battles recorded before turns kept their count.
    reactions: dict[str, int] | None = None


class Vote(Data):
    id: str
    choices: list[str]
    runoff: bool = False
    # Final votes crown a winner: they are always "vote for the vision you keep".
    mode: VoteMode
    status: Literal["open", "closed", "voided", "revealed"] = "open"
    opened_ms: int
    closed_ms: int | None = None
    void_reason: str | None = None
    totals: dict[str, int] | None = None
    ballots: int | None = None
    # A stance poll (docs/rules.md, "Who moved minds"): it eliminates no one, and its
    # choices are every battler of the evening and UNDECIDED.
    stance: Stance | None = None
    # The digest of the counted ballots (battles.receipts), set with the totals.
    digest: str | None = None
    # The version of each choice's vision while the vote ran (docs/rules.md, "Visions that
    # develop": a vision never changes during a vote), so a ballot names the version it chose.
    versions: dict[str, int] = Field(default_factory=dict)
    # With the remote link on, set with the totals (docs/rules.md, "Hall and online"): the
    # online part of each choice's total (the hall's is the rest), and the rule, with its
    # online share, by which the two decided.
    online: dict[str, int] | None = None
    combine: CombineRule | None = None
    online_share: int | None = None


class Minds(Data):
    """One battler's figures between two polls (docs/rules.md, "Who moved minds"): devices
    that came to them (``won``), left them (``lost``), stayed (``held``), and how many
    were not theirs at the first poll (``of``: what ``won`` is out of)."""

    battler: str
    won: int = 0
    lost: int = 0
    held: int = 0
    of: int = 0

    @property
    def gain(self) -> int:
        return self.won - self.lost

    @property
    def conversion(self) -> float | None:
        return round(self.won / self.of, 4) if self.of else None


class Flow(Data):
    """How many devices went from one choice at the first poll to one at the second."""

    before: str
    after: str
    devices: int


class Persuasion(Data):
    """The persuasion matrix between two polls, counts only (no device, no one's choice):
    the two polls, each battler's figures, the flows, and the devices counted apart
    because they took part in only one of the two."""

    before: str  # a vote id
    after: str
    round: int | None = None  # None: the evening's stance polls; N: round N-1's vote to round N's
    battlers: list[Minds] = Field(default_factory=list)
    flows: list[Flow] = Field(default_factory=list)
    paired: int = 0
    only_before: int = 0
    only_after: int = 0


class Proposal(Data):
    """Who the rules say leaves (or, in the final, who does not win).

    ``leaving`` is decided; ``need`` more must still be picked from ``tied``,
    by a runoff vote or by the host, as ``method`` says.
    """

    leaving: list[str]
    tied: list[str] = Field(default_factory=list)
    need: int = 0
    method: Literal["decided", "runoff", "host"] = "decided"
    decided_by: Literal["votes", "engagement", "runoff", "host"] = "votes"


class Shown(Data):
    """An approved submission from a phone that the host put on the screen: its words
    and, unless the sender chose to stay anonymous, its nickname. Never a device id."""

    submission: str
    kind: SubmissionKind
    text: str
    nickname: str = ""  # "": anonymous
    battler: str | None = None  # a question's addressee: the speaker it was put to
    turn: int | None = None  # a question's turn (Battle.turn_index); None: put in the debate


SubmissionStatus = Literal["pending", "held", "approved", "dismissed", "blocked"]
# What a moderator does to one (docs/rules.md, "The audience takes part"); "unblock" undoes
# the block of the submission's device.
Moderation = Literal["approve", "dismiss", "block", "unblock"]
Moderator = Literal["host", "cohost"]
# The decisions one submission keeps on the record (Submission.decisions): a moderator who
# goes on turning one over is refused (limit_reached) rather than growing its row for ever.
MAX_DECISIONS = 20


class Decision(Data):
    """One moderator's decision that changed a submission: what, who (host or co-host,
    never a device) and when (the server's clock)."""

    action: Moderation
    by: Moderator
    at_ms: int


class Block(Data):
    """A device blocked for the evening, and the decision behind it."""

    device: str  # never sent to any client, never exported
    submission: str  # the submission the moderator blocked the device on
    by: Moderator
    at_ms: int


class Submission(Data):
    """A challenge or a question a phone sent, as the store keeps it (its own row, not in
    the battle document: a hall of phones must not grow what every socket is sent).

    ``held``: the word filter matched ``held_for``; it waits for a moderator apart from
    the clean ones. ``blocked``: dismissed because its device was blocked (an unblock
    puts it back to ``pending``, or ``held`` when the filter held it). ``rev``
    orders the changes of the battle's queue, so a console keeps the newest of each.
    """

    id: str  # s1, s2, ... in the order the store took them
    kind: SubmissionKind
    text: str
    nickname: str = ""  # "": sent anonymously
    battler: str | None = None  # a question's addressee, when it named one
    round: int = 0  # the round it was sent in; 0 before the first
    at_ms: int
    status: SubmissionStatus = "pending"
    held_for: str | None = None
    device: str  # for blocking; never sent to any client, never exported
    rev: int = 0
    # Every decision that changed it, oldest first (at most MAX_DECISIONS).
    decisions: list[Decision] = Field(default_factory=list)


class Round(Data):
    number: int
    final: bool = False
    challenge: str | None = None
    # Set when the round's challenge card is an audience challenge (show_submission).
    challenge_from: Shown | None = None
    order: list[str]
    seed: int | None = None
    turns: list[Turn] = Field(default_factory=list)
    votes: list[Vote] = Field(default_factory=list)
    engagement: dict[str, dict[str, int]] = Field(default_factory=dict)
    proposal: Proposal | None = None
    eliminated: list[str] = Field(default_factory=list)
    override_reason: str | None = None

    @property
    def vote(self) -> Vote | None:
        """The vote this round is on: the newest one that was not voided."""
        for vote in reversed(self.votes):
            if vote.status != "voided":
                return vote
        return None


class SyncCue(Data):
    """The sync cue on the screen (docs/protocol.md, "The remote audience"): its number,
    counting from 1 in the battle, and when it went up on the server's clock."""

    n: int
    at_ms: int


class LogEntry(Data):
    at_ms: int
    actor: Actor
    action: str
    details: dict[str, Any] = Field(default_factory=dict)


class BattleDraft(Data):
    """A battle as the host sets it up (POST /api/battles, ``battles serve --demo``)."""

    title: Title
    topic: ShortText = ""
    scenario: LongText = ""
    language: Language = "en"
    rules: Rules = Field(default_factory=Rules)
    battlers: list[BattlerDraft] = Field(default_factory=list, max_length=24)


class Battle(Data):
    """One evening (docs/rules.md, vocabulary: battle)."""

    code: str
    version: int = 0
    created_ms: int
    title: Title
    topic: ShortText = ""
    scenario: LongText = ""
    language: Language = "en"
    rules: Rules = Field(default_factory=Rules)
    battlers: list[Battler]
    battlers_added: int = 0  # how many ids b1, b2, ... were handed out
    phase: Phase = "lobby"
    rounds: list[Round] = Field(default_factory=list)
    turn_index: int | None = None
    timer: Timer | None = None
    winner: str | None = None
    ended_reason: str | None = None
    # Bumped by revoke_cohost: the co-host token of the current generation is the only
    # one accepted (battles.security.cohost_token), and co-host sockets opened under an
    # earlier generation are closed.
    cohost_generation: int = 0
    # An audience question on the screen (show_submission): it goes with the turn or
    # the debate it was put in (game.apply).
    question: Shown | None = None
    # docs/rules.md, "Who moved minds": the stance polls opened with open_stance (a closing
    # poll that is the final's vote is in that round's votes), and the matrix between the
    # opening and the closing poll, kept when the closing one is revealed.
    stances: list[Vote] = Field(default_factory=list)
    minds: Persuasion | None = None
    # The newest sync cue (sync_cue): remote phones measure their stream delay from it.
    sync_cue: SyncCue | None = None
    log: list[LogEntry] = Field(default_factory=list)

    @property
    def round(self) -> Round | None:
        return self.rounds[-1] if self.rounds else None

    @property
    def remaining(self) -> list[Battler]:
        return [b for b in self.battlers if b.status == "in"]

    def battler(self, battler_id: str) -> Battler | None:
        return next((b for b in self.battlers if b.id == battler_id), None)

    @property
    def poll(self) -> Vote | None:
        """The stance poll this phase is on (open, closed, or voided and back where it came from)."""
        return self.stances[-1] if self.phase == "stance" and self.stances else None

    @property
    def current_vote(self) -> Vote | None:
        """The vote this phase is on: the stance poll in its phase, else the round's vote."""
        if self.phase == "stance":
            return self.poll
        return self.round.vote if self.round else None

    @property
    def open_vote(self) -> Vote | None:
        """The vote (or stance poll) that takes ballots now, if any."""
        if self.phase == "stance":
            return self.poll if self.poll is not None and self.poll.status == "open" else None
        current = self.round.vote if self.round else None
        if self.phase == "vote" and current is not None and current.status == "open":
            return current
        return None

    @property
    def speaker(self) -> str | None:
        if self.phase == "turn" and self.round and self.turn_index is not None:
            return self.round.order[self.turn_index]
        return None
