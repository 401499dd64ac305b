"""The configured store, usage log, memory index and placements opened: in memory, in
one SQLite file, in PostgreSQL or in Redis (the drivers of the last two imported when used)."""

from __future__ import annotations

from pathlib import Path

from memory_proxy.config import MemorySettings, UsageSettings
from memory_proxy.config.recall import RecallSettings
from memory_proxy.stores.base import MemoryIndex, MemoryStore, Placements, UsageLog
from memory_proxy.stores.in_memory import InMemoryStore, InMemoryUsageLog
from memory_proxy.stores.sqlite import IN_MEMORY, SQLiteStore
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.stores.sqlite_placements import SQLitePlacements
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog


def open_store(settings: MemorySettings) -> MemoryStore:
    bounded = settings.max_session_messages
    if settings.store == "memory":
        return InMemoryStore(settings.ttl_seconds, max_messages=bounded)
    if settings.store == "sqlite":
        return SQLiteStore(settings.sqlite_path, settings.ttl_seconds, max_messages=bounded)
    if settings.store == "postgres":
        assert settings.postgres_url is not None  # the config requires it
        from memory_proxy.stores.postgres_sessions import PostgresStore  # psycopg: when used

        return PostgresStore(settings.postgres_url, settings.ttl_seconds, max_messages=bounded)
    from memory_proxy.stores.redis import RedisStore  # redis: when used

    return RedisStore(settings.redis_url, settings.ttl_seconds, max_messages=bounded)


def open_usage_log(memory: MemorySettings, usage: UsageSettings) -> UsageLog:
    """In the store that holds conversations (even when memory itself is off)."""
    if memory.store == "memory":
        return InMemoryUsageLog(usage.max_records)
    if memory.store == "sqlite":
        return SQLiteUsageLog(memory.sqlite_path, usage.max_records)
    if memory.store == "postgres":
        assert memory.postgres_url is not None  # the config requires it
        from memory_proxy.stores.postgres_usage import PostgresUsageLog  # psycopg: when used

        return PostgresUsageLog(memory.postgres_url, usage.max_records)
    from memory_proxy.stores.redis import RedisUsageLog  # redis: when used

    return RedisUsageLog(memory.redis_url, usage.max_records)


def open_memory_index(
    settings: MemorySettings, search_budget: float = RecallSettings.timeout_ms / 1000
) -> MemoryIndex | None:
    """SQLite FTS5 in the store's file, or in a private in-memory database for `store:
    memory`; PostgreSQL's full-text search in its database; searches that could not
    finish within `search_budget` seconds are refused. None with Redis: it has no
    full-text search of its own here."""
    if settings.store == "memory":
        return SQLiteMemoryIndex(Path(IN_MEMORY), search_budget)
    if settings.store == "sqlite":
        return SQLiteMemoryIndex(settings.sqlite_path, search_budget)
    if settings.store == "postgres":
        assert settings.postgres_url is not None  # the config requires it
        from memory_proxy.stores.postgres_index import PostgresMemoryIndex  # psycopg: when used

        return PostgresMemoryIndex(settings.postgres_url, search_budget)
    return None


def open_placements(settings: MemorySettings, read_budget: float) -> Placements | None:
    """Where recalled blocks went, shared by the processes on the SQLite file or the
    PostgreSQL database (reads within `read_budget` seconds there); None for `store:
    memory` (one process: it remembers them itself) and Redis (no index)."""
    if settings.store == "sqlite":
        return SQLitePlacements(settings.sqlite_path)
    if settings.store == "postgres":
        assert settings.postgres_url is not None  # the config requires it
        from memory_proxy.stores.postgres_placements import PostgresPlacements  # psycopg: when used

        return PostgresPlacements(settings.postgres_url, read_budget)
    return None
