"""`memory-proxy migrate --to postgresql://…`: what the configured store holds (the SQLite
file, usually; Redis has no long-term memories) copied into a PostgreSQL database, which
`memory.store: postgres` then uses: long-term memories, the sessions still live with
their messages, usage records and ratings (the charts' roll-ups rebuilt from them).

Run it again and nothing is copied twice: memories are known by their id, a session
already in the database is left as it is, usage records go only into a database that has
none, and a rating replaces the request's. The source is only read: stop the proxies
that write it first, or what they add meanwhile may be missed.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import os
from pathlib import Path
from urllib.parse import urlsplit

import click

from memory_proxy.cli.settings import load_or_exit
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.config.postgres import SCHEMES, shown_url
from memory_proxy.stores.open import open_memory_index, open_store, open_usage_log

SESSION_PAGE = 500
USAGE_BATCH = 2000


@click.command()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config.yaml naming the store to copy (default: the one given to memory-proxy).",
)
@click.option(
    "--to",
    "target",
    required=True,
    help="The PostgreSQL database: a postgresql:// URL, or os.environ/NAME to read it from.",
)
@click.pass_obj
def migrate(default_config: Path | None, config: Path | None, target: str) -> None:
    """Copy memories, sessions and usage into a PostgreSQL database (memory.store: postgres)."""
    settings = load_or_exit(config or default_config, serving=False)
    if settings.memory.store == "memory":
        raise click.ClickException("memory.store is 'memory': nothing outlives the proxy to copy")
    url = _target_url(target)
    destination = dataclasses.replace(settings.memory, store="postgres", postgres_url=url)
    try:
        copied = asyncio.run(_copy(settings, destination))
    except Exception as exc:  # an unreachable database, an unreadable file
        raise click.ClickException(f"migrating to {shown_url(url)} failed: {exc}") from None
    click.echo(f"copied to {shown_url(url)}: " + ", ".join(copied))


def _target_url(target: str) -> str:
    if target.startswith("os.environ/"):
        name = target.removeprefix("os.environ/")
        if not os.environ.get(name):
            raise click.BadParameter(
                f"the environment variable {name} is not set", param_hint="--to"
            )
        target = os.environ[name]
    if urlsplit(target).scheme not in SCHEMES:
        raise click.BadParameter(
            f"expected a postgresql:// URL (got {shown_url(target)!r})", param_hint="--to"
        )
    return target


async def _copy(settings: Settings, destination: MemorySettings) -> list[str]:
    """Each part copied in turn; what was copied of each."""
    copied = [await _memories(settings.memory, destination)]
    copied.append(await _sessions(settings.memory, destination))
    if settings.usage.enabled:
        copied.append(await _usage(settings, destination))
    return [part for part in copied if part]


async def _memories(source_settings: MemorySettings, destination: MemorySettings) -> str:
    source = open_memory_index(source_settings)
    if source is None:
        return ""
    target = open_memory_index(destination)
    assert target is not None  # PostgreSQL has one
    read = added = 0
    try:
        async with contextlib.aclosing(source.export(None, None)) as batches:
            async for batch in batches:
                stored = await target.stored([record.id for record in batch])
                await target.add(batch)
                read, added = read + len(batch), added + len(batch) - len(stored)
    finally:
        await target.aclose()
        await source.aclose()
    return f"{read} memories ({added} new)"


async def _sessions(source_settings: MemorySettings, destination: MemorySettings) -> str:
    source, target = open_store(source_settings), open_store(destination)
    sessions = messages = 0
    try:
        offset = 0
        while page := await source.list_sessions(None, SESSION_PAGE, offset):
            offset += len(page)
            for info in page:
                if await target.session(info.user_id, info.session_id) is not None:
                    continue  # copied before
                loaded = await source.load(info.user_id, info.session_id)
                if loaded:
                    await target.append(info.user_id, info.session_id, loaded, partial=False)
                    sessions, messages = sessions + 1, messages + len(loaded)
    finally:
        await target.aclose()
        await source.aclose()
    return f"{sessions} sessions ({messages} messages)"


async def _usage(settings: Settings, destination: MemorySettings) -> str:
    source = open_usage_log(settings.memory, settings.usage)
    target = open_usage_log(destination, settings.usage)
    try:
        note = ""
        if await target.latest(1):
            note = "usage records not copied: the database has some already"
        else:
            records = await source.since(0)
            for start in range(0, len(records), USAGE_BATCH):
                await target.add(records[start : start + USAGE_BATCH])
            note = f"{len(records)} usage records"
        ratings = await source.feedback_since(0)
        for rating in ratings:
            await target.add_feedback(rating)
    finally:
        await target.aclose()
        await source.aclose()
    return f"{note}, {len(ratings)} ratings"
