"""One PostgreSQL database behind `memory.postgres_url` (`memory.store: postgres`), shared
by every proxy and worker pointed at it: psycopg 3 and its connection pool.

Why psycopg rather than asyncpg (measured on the memory path: README "The PostgreSQL
database"): about as fast where it counts, typed for mypy --strict, any libpq URL and its
settings, a cancelled query cancelled on the server, and a pool that replaces broken
connections.

- Opening checks the database (a connection, then each part's migrations, in one
  transaction under an advisory lock so that proxies starting together migrate once);
  unreachable, it is a StoreUnavailable naming `memory.postgres_url` (without its
  password) and the host: the proxy does not start.
- The pool connects later, on the event loop, at first use; it never blocks the loop.
  Each connection carries a statement timeout (its owner's: a session load must not hold
  a request past the store's half second, a search not past recall's budget).
- PostgreSQL restarted: the connections break. A failure marks the pool for a check
  (each idle connection tried, the broken ones replaced) and the caller's operation
  fails, counted by its owner (memory fails open); a read is tried once more at once.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import AsyncIterator, Awaitable, Callable
from typing import TypeVar

import psycopg
from psycopg import AsyncConnection, Connection, sql
from psycopg_pool import AsyncConnectionPool, PoolTimeout

from memory_proxy.config.postgres import postgres_host, postgres_password, shown_url
from memory_proxy.stores.base import StoreUnavailable
from memory_proxy.stores.schema_versions import Migration, failure, pending

logger = logging.getLogger("memory_proxy.stores")

T = TypeVar("T")
PostgresMigration = Migration[Connection]
CONNECT_TIMEOUT_SECONDS = 5
MIGRATION_LOCK = 0x6D656D70  # pg_advisory_xact_lock key: "memp"
_VERSIONS = """
CREATE TABLE IF NOT EXISTS schema_versions (
    part text PRIMARY KEY,
    version integer NOT NULL,
    migrated_at double precision NOT NULL
)
"""


def unreachable(url: str, exc: Exception) -> StoreUnavailable:
    """The message a proxy that cannot use the database stops with."""
    reason = " ".join(str(exc).split()) or type(exc).__name__  # libpq's lines, as one
    if password := postgres_password(url):
        reason = reason.replace(password, "***")
    return StoreUnavailable(
        f"memory.postgres_url: cannot use PostgreSQL at {postgres_host(url)} "
        f"({shown_url(url)}): {reason}"
    )


def migrate(url: str, part: str, migrations: tuple[PostgresMigration, ...]) -> None:
    """Connects (StoreUnavailable when it cannot) and applies the part's pending
    migrations, each with its version, in one transaction: a failure leaves the schema
    it found (MigrationFailed)."""
    where = f"memory.postgres_url ({shown_url(url)})"
    try:
        db = psycopg.connect(url, connect_timeout=CONNECT_TIMEOUT_SECONDS, autocommit=True)
    except psycopg.Error as exc:
        raise unreachable(url, exc) from None
    with db:
        try:
            with db.transaction():
                db.execute("SELECT pg_advisory_xact_lock(%s)", (MIGRATION_LOCK,))
                db.execute(_VERSIONS)
                row = db.execute(
                    "SELECT version FROM schema_versions WHERE part = %s", (part,)
                ).fetchone()
                current = row[0] if row else 0
                for migration in pending(where, part, current, migrations):
                    try:
                        with db.transaction():  # a savepoint: this step, or none of it
                            migration.apply(db)
                    except psycopg.Error as exc:
                        raise failure(where, part, migration, current, exc) from exc
                    db.execute(
                        "INSERT INTO schema_versions VALUES (%s, %s, extract(epoch FROM now())) "
                        "ON CONFLICT (part) DO UPDATE SET version = excluded.version, "
                        "migrated_at = excluded.migrated_at",
                        (part, migration.version),
                    )
        except psycopg.OperationalError as exc:
            raise unreachable(url, exc) from None


def broken(exc: psycopg.Error) -> bool:
    """Whether `exc` says the connection broke (a restarted server, a network cut), not
    that a statement failed or timed out: SQLSTATE class 08, or 57P (admin shutdown...),
    or none at all (libpq's own errors); a pool that gave no connection in time is not."""
    if isinstance(exc, PoolTimeout):
        return False
    state = exc.sqlstate
    return state is None or state.startswith(("08", "57P"))


def run_script(db: Connection, script: str) -> None:
    """A migration's statements (several, without parameters), in its transaction."""
    db.execute(script)


class PostgresDatabase:
    """A pool of up to `max_size` connections to `url`, each with `statement_timeout_ms`,
    for one part of the store (`part`, brought up to date with `migrations` at once, when
    given: an owner of two pools migrates once)."""

    def __init__(
        self,
        url: str,
        part: str,
        migrations: tuple[PostgresMigration, ...] | None,
        *,
        max_size: int,
        statement_timeout_ms: int,
        settings: dict[str, str] | None = None,
    ) -> None:
        if migrations is not None:
            migrate(url, part, migrations)
        self.url = url
        self._settings = {"statement_timeout": str(statement_timeout_ms), **(settings or {})}
        self._pool = AsyncConnectionPool(
            url,
            min_size=1,
            max_size=max_size,
            open=False,
            kwargs={"autocommit": True, "connect_timeout": CONNECT_TIMEOUT_SECONDS},
            configure=self._configure,
            name=f"memory-proxy-{part}",
        )
        self._opening: asyncio.Task[None] | None = None
        self._connected = False  # the pool has given a connection once
        self._checking: asyncio.Task[None] | None = None

    async def _configure(self, connection: AsyncConnection) -> None:
        for name, value in self._settings.items():
            await connection.execute(
                sql.SQL("SET {} = {}").format(sql.Identifier(name), sql.Literal(value))
            )

    @contextlib.asynccontextmanager
    async def connection(
        self, wait: float = CONNECT_TIMEOUT_SECONDS
    ) -> AsyncIterator[AsyncConnection]:
        """A connection of the pool for `wait` seconds at most (psycopg_pool.PoolTimeout
        past it; the first time, as long as a connection takes); a broken one has the
        pool check the others."""
        if self._opening is None:
            self._opening = asyncio.ensure_future(self._pool.open(wait=False))
        await asyncio.shield(self._opening)
        if not self._connected:
            wait = max(wait, CONNECT_TIMEOUT_SECONDS)
        try:
            async with self._pool.connection(timeout=wait) as connection:
                self._connected = True
                yield connection
        except psycopg.OperationalError as exc:
            if broken(exc):
                self._check_soon()
            raise

    async def read(self, work: Callable[[AsyncConnection], Awaitable[T]], wait: float) -> T:
        """`work` on a connection; once more on another when the first was broken (a
        restarted server): reading twice changes nothing."""
        try:
            async with self.connection(wait) as connection:
                return await work(connection)
        except psycopg.OperationalError as exc:
            if not broken(exc):
                raise
        async with self.connection(wait) as connection:
            return await work(connection)

    def _check_soon(self) -> None:
        if self._checking is None or self._checking.done():
            self._checking = asyncio.ensure_future(self._pool.check())

    async def aclose(self) -> None:
        for task in (self._checking,):
            if task is not None:
                task.cancel()
                with contextlib.suppress(asyncio.CancelledError, Exception):
                    await task
        if self._opening is not None:
            with contextlib.suppress(Exception):
                await self._opening
            await self._pool.close()
