"""``battles backup`` and ``battles restore``: every battle of a store in one JSON file.

The file holds, per battle, what the store keeps (``stores.base.BattleRecord``: the
state, the secrets, every vote's ballots and counted ballot ids, the reactions), and
the store's signing key, without which the phones' device ids would no longer be
recognised after a restore and every phone could vote again (docs/operations.md,
"Backup and restore"). Both stores read and write the same file, so it also moves an
evening from the embedded store to Redis or back.
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from typing import Final, Literal

from pydantic import TypeAdapter, ValidationError

from battles.stores.base import BattleRecord, Store

FORMAT: Final = "future-battles-backup/1"


@dataclass(frozen=True)
class Backup:
    format: Literal["future-battles-backup/1"]
    signing_key: str  # base64
    battles: list[BattleRecord]


_BACKUP = TypeAdapter(Backup)


class RestoreRefused(Exception):
    """A backup that cannot be restored here; nothing was written."""


async def backup(store: Store) -> bytes:
    """Every battle of ``store``, and its signing key, as the backup file's bytes."""
    records = [record for code in await store.codes() if (record := await store.record(code)) is not None]
    key = base64.b64encode(await store.signing_key()).decode()
    return _BACKUP.dump_json(Backup(FORMAT, key, records), indent=1)


def parse(document: bytes) -> Backup:
    """The backup in ``document``, or ``RestoreRefused`` saying what is wrong with it."""
    try:
        parsed = _BACKUP.validate_json(document)
        base64.b64decode(parsed.signing_key, validate=True)
    except (ValidationError, ValueError) as error:
        raise RestoreRefused(f"not a backup of this engine ({FORMAT}): {error}") from error
    codes = [record.battle.code for record in parsed.battles]
    if len(set(codes)) != len(codes):
        raise RestoreRefused("the backup holds a battle twice")
    return parsed


async def restore(store: Store, document: bytes) -> list[str]:
    """Put every battle of the backup into ``store``; returns their codes.

    Refused, before anything is written, when a battle of the backup is in the store
    already, or when the store holds other battles under another signing key (their
    phones' device ids would stop working).
    """
    parsed = parse(document)
    key = base64.b64decode(parsed.signing_key)
    present = set(await store.codes())
    taken = sorted(present & {record.battle.code for record in parsed.battles})
    if taken:
        raise RestoreRefused(f"these battles are in the store already: {', '.join(taken)}")
    if present and await store.signing_key() != key:
        raise RestoreRefused("the store holds other battles, signed with another key: restore into an empty store")
    await store.set_signing_key(key)
    restored = []
    for record in parsed.battles:
        if not await store.put_record(record):
            raise RestoreRefused(f"battle {record.battle.code} appeared in the store during the restore")
        restored.append(record.battle.code)
    return restored
