"""The host's commands: what the console (or a co-host) may ask the game to do.

Each command is a small schema; the same models validate the wire messages of the
host socket (``battles.protocol``), so a field's limits are written once. The game
core (``battles.game``) turns a command, the current state and a ``Context`` into the
next state.
"""

from __future__ import annotations

from typing import Annotated, Literal

from pydantic import Field, StringConstraints

from battles.model import (
    MAX_BANNED_WORDS,
    Data,
    Language,
    LongText,
    Name,
    Rules,
    ShortText,
    Stance,
    SubmissionKind,
    Title,
)
from battles.wordfilter import BannedWord

Reason = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=300)]
ChallengeText = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=500)]
BattlerId = Annotated[str, StringConstraints(pattern=r"^b[0-9]{1,3}$")]
SubmissionId = Annotated[str, StringConstraints(pattern=r"^s[0-9]{1,9}$")]


class StartRound(Data):
    """Begin the next round (from the lobby or after an elimination)."""

    type: Literal["start_round"]
    challenge: ChallengeText | None = None


class RevealChallenge(Data):
    type: Literal["reveal_challenge"]
    text: ChallengeText


class Next(Data):
    """Move the round on: challenge -> first turn -> next turn -> debate -> vote."""

    type: Literal["next"]


class SkipTurn(Data):
    type: Literal["skip_turn"]


class PauseTimer(Data):
    type: Literal["pause_timer"]


class ResumeTimer(Data):
    type: Literal["resume_timer"]


class ExtendTimer(Data):
    type: Literal["extend_timer"]
    seconds: int = Field(30, ge=1, le=600)


class ResetTimer(Data):
    type: Literal["reset_timer"]


class OpenVote(Data):
    type: Literal["open_vote"]


class OpenStance(Data):
    """Open the opening (in the lobby) or the closing (once the final has a winner) stance
    poll (docs/rules.md, "Who moved minds"); closed, voided and revealed like a vote."""

    type: Literal["open_stance"]
    stance: Stance


class CloseVote(Data):
    type: Literal["close_vote"]


class VoidVote(Data):
    type: Literal["void_vote"]
    reason: Reason


class RevealResults(Data):
    type: Literal["reveal_results"]


class ConfirmElimination(Data):
    """Carry out the proposal; ``battlers`` names the host's pick where the rules left one."""

    type: Literal["confirm_elimination"]
    battlers: list[BattlerId] | None = Field(None, max_length=10)


class OverrideElimination(Data):
    type: Literal["override_elimination"]
    battlers: list[BattlerId] = Field(min_length=1, max_length=10)
    reason: Reason


class UndoElimination(Data):
    type: Literal["undo_elimination"]


class AddBattler(Data):
    type: Literal["add_battler"]
    name: Name
    vision: Title
    affiliation: ShortText = ""


class EditBattler(Data):
    type: Literal["edit_battler"]
    battler: BattlerId
    name: Name | None = None
    vision: Title | None = None
    affiliation: ShortText | None = None


class ReviseVision(Data):
    """A new version of a battler's vision between rounds, with a line on what changed
    (docs/rules.md, "Visions that develop"); from the console, or the battler's own link."""

    type: Literal["revise_vision"]
    battler: BattlerId
    vision: Title
    changed: ShortText = ""


class UndoRevision(Data):
    """Take back the latest version of a battler's vision, before it has stood in a round."""

    type: Literal["undo_revision"]
    battler: BattlerId


class RevokeBattler(Data):
    """Invalidate a battler's own link: its sockets are closed and a new link is made.
    Only the host may send it, as ``revoke_cohost``."""

    type: Literal["revoke_battler"]
    battler: BattlerId


class RemoveBattler(Data):
    type: Literal["remove_battler"]
    battler: BattlerId


class EditBattle(Data):
    type: Literal["edit_battle"]
    title: Title | None = None
    topic: ShortText | None = None
    scenario: LongText | None = None
    language: Language | None = None
    rules: Rules | None = None


class RevokeCohost(Data):
    """Invalidate the co-host link: its sockets are closed and a new link is made.

    Only the host may send it (a co-host cannot lock the host's other helpers out)."""

    type: Literal["revoke_cohost"]


class ShowSubmission(Data):
    """Put an approved challenge or question from a phone on the screen: as the round's
    challenge card, or as a question to the speaker (``show_as``; default: its kind)."""

    type: Literal["show_submission"]
    submission: SubmissionId
    show_as: SubmissionKind | None = None


class HideSubmission(Data):
    """Take a shown submission off the screen (the question, or the challenge card)."""

    type: Literal["hide_submission"]
    submission: SubmissionId


class SetAudienceRules(Data):
    """At any time before the end: what phones may send, and the word filter's list
    (docs/rules.md, "The audience takes part"); the rules it leaves out keep their value."""

    type: Literal["set_audience_rules"]
    audience_challenges: bool | None = None
    audience_questions: bool | None = None
    banned_words: list[BannedWord] | None = Field(None, max_length=MAX_BANNED_WORDS)


class SyncCue(Data):
    """Show the sync cue on the screen: remote phones measure their stream delay by it
    (docs/protocol.md, "The remote audience")."""

    type: Literal["sync_cue"]


class EndBattle(Data):
    type: Literal["end_battle"]
    reason: Annotated[str, StringConstraints(strip_whitespace=True, max_length=300)] = ""


Command = Annotated[
    StartRound
    | RevealChallenge
    | Next
    | SkipTurn
    | PauseTimer
    | ResumeTimer
    | ExtendTimer
    | ResetTimer
    | OpenVote
    | OpenStance
    | CloseVote
    | VoidVote
    | RevealResults
    | ConfirmElimination
    | OverrideElimination
    | UndoElimination
    | AddBattler
    | EditBattler
    | RemoveBattler
    | EditBattle
    | EndBattle
    | RevokeCohost
    | ShowSubmission
    | HideSubmission
    | SetAudienceRules
    | ReviseVision
    | UndoRevision
    | RevokeBattler
    | SyncCue,
    Field(discriminator="type"),
]
