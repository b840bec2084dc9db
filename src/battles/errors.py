"""Every error the engine raises on purpose.

    BattlesError
    ├── Refused            a person asked for something the rules or their role do not allow;
    │   │                  it carries a reason code and is shown to them, translated
    │   ├── Conflict       a host command was decided on a state that has since changed
    │   └── Unavailable    the shared store cannot be reached right now (a write that timed
    │                      out may still have happened: see ``stores.base.Store``)
    └── Fault              something that should never happen (a broken invariant, a corrupt
                           stored document); logged with a traceback, never shown in detail

A ``Refused`` never leaves a half-applied change behind: the core raises it before it
builds a new state, and the stores raise it before they write.
"""

from __future__ import annotations

from typing import Any


class BattlesError(Exception):
    pass


class Refused(BattlesError):
    """A clear, translatable refusal. ``reason`` is a key of ``battles.i18n.REASONS``."""

    def __init__(self, reason: str, **params: Any) -> None:
        super().__init__(reason)
        self.reason = reason
        self.params = params

    def __repr__(self) -> str:
        return f"Refused({self.reason!r}, {self.params!r})"


class Conflict(Refused):
    def __init__(self, current_version: int) -> None:
        super().__init__("conflict", version=current_version)


class Unavailable(Refused):
    def __init__(self) -> None:
        super().__init__("store_unavailable")


class Fault(BattlesError):
    pass
