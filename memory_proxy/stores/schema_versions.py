"""Schema versions: each part of a store (sessions, usage, memories) has an ordered list of
migrations, and the database records, per part, the last one applied (`schema_versions`).

At open, the migrations after the recorded version run in order, each in the same
transaction as the version it records, so a migration that fails leaves the schema and
the version it found, and the open fails naming both (MigrationFailed). A database whose
part is newer than this version knows is refused rather than written with an older idea
of its tables.

Version 1 of each part is what the store made before versions existed: its tables made
if missing, and the detection-based upgrades of files from before (sqlite_index_schema.py)
applied where they find the old layout. From version 2 on, migrations are plain steps.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Generic, TypeVar

from memory_proxy.stores.base import StoreUnavailable

DB = TypeVar("DB")


@dataclass(frozen=True)
class Migration(Generic[DB]):
    """Brings a part from version `version - 1` to `version`, inside a transaction."""

    version: int
    name: str
    apply: Callable[[DB], object]


class MigrationFailed(StoreUnavailable):
    """A migration failed and was rolled back (the schema is the one it found), or the
    schema is newer than this proxy knows. `where` (the setting and the database) opens
    the message."""


def pending(
    where: str, part: str, current: int, migrations: tuple[Migration[DB], ...]
) -> list[Migration[DB]]:
    """The migrations to apply after `current`, in order; refuses a newer schema."""
    versions = [migration.version for migration in migrations]
    if versions != list(range(1, len(versions) + 1)):
        raise ValueError(f"the migrations of {part} are not numbered 1, 2, 3 …: {versions}")
    if current > len(migrations):
        raise MigrationFailed(
            f"{where}: its {part} schema is version {current}, newer than this proxy knows "
            f"({len(migrations)}): upgrade the proxy, or use another database"
        )
    return list(migrations[current:])


def failure(
    where: str, part: str, migration: Migration[DB], kept: int, exc: BaseException
) -> MigrationFailed:
    """What a failed migration says: which, why, and the version left in place."""
    return MigrationFailed(
        f"{where}: migration {migration.version} of its {part} schema ({migration.name}) "
        f"failed and was rolled back, the schema is left at version {kept}: {exc}"
    )
