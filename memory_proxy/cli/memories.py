"""`memory-proxy memories …`: long-term memories searched, listed, forgotten, exported and
imported offline, straight from the configured local index (the SQLite file), beside a
running proxy or without one. Both `export` and `import` redact secrets (`memory.redact`),
so memories kept before redaction existed leave, and enter, without them.

The commands act on every user's memories (the clients people use are each mapped to a
user of their own) unless `--user` names one; memory ids are unique, so `forget ID` needs
no user. `--project ''` is the general memory; no `--project`, every project. `export`
writes JSON Lines, one `MemoryRecord.describe()` object a line; `import` reads them back.
A memory's id is derived from its user, project and text, so identical content is stored
once however often it is imported, and a line whose id does not match its content (edited
by hand) is refused.
"""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import Awaitable, Callable, Iterable, Iterator
from datetime import datetime
from pathlib import Path
from typing import Any, TypeVar

import click
import orjson

from memory_proxy.cli.memory_lines import parsed_lines
from memory_proxy.cli.settings import load_or_exit
from memory_proxy.config import Settings
from memory_proxy.identity.client_detection import VALID_ID
from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.memory import GENERAL_PROJECT, MemoryRecord
from memory_proxy.stores.base import MemoryIndex
from memory_proxy.stores.open import open_memory_index
from memory_proxy.stores.sqlite_space import compact as compact_file

T = TypeVar("T")
IMPORT_BATCH = 500
SHOWN_CHARS = 400  # of a memory's text in the plain listing (--json shows it whole)
SHOWN_ERRORS = 5


def _checked_id(ctx: click.Context, param: click.Parameter, value: str | None) -> str | None:
    """A user or project id as the proxy accepts them; '' for the general memory."""
    general_allowed = param.name == "project"
    if value is None or (general_allowed and value == GENERAL_PROJECT) or VALID_ID.match(value):
        return value
    raise click.BadParameter("expected 1-128 letters, digits or . _ : @ + -")


user_option = click.option(
    "--user", callback=_checked_id, help="Only this user's memories.  [default: every user's]"
)
project_option = click.option(
    "--project",
    callback=_checked_id,
    help="A project id; '' the general memory; none: every project.",
)
json_option = click.option(
    "--json", "as_json", is_flag=True, help="One JSON object per memory per line, as export writes."
)
limit_option = click.option("--limit", type=click.IntRange(min=1), default=20, show_default=True)


@click.group()
@click.option(
    "--config",
    type=click.Path(dir_okay=False, path_type=Path),
    help="The config.yaml naming the store (default: the one given to memory-proxy).",
)
@click.pass_context
def memories(ctx: click.Context, config: Path | None) -> None:
    """Long-term memories in the local index: search, list, forget, export, import,
    compact."""
    ctx.obj = load_or_exit(config or ctx.obj, serving=False)


@memories.command()
@click.argument("query")
@user_option
@project_option
@limit_option
@json_option
@click.pass_obj
def search(
    settings: Settings,
    query: str,
    user: str | None,
    project: str | None,
    limit: int,
    as_json: bool,
) -> None:
    """The memories that best match QUERY, best first."""
    hits = _with_index(  # the owner sees every memory, private models' too (marked)
        settings, lambda index: index.search(user, project, query, limit=limit, privacy="private")
    )
    _show([(hit.record, hit.score) for hit in hits], as_json, f"no memories{_of(user)} match")


@memories.command(name="list")
@user_option
@project_option
@limit_option
@json_option
@click.pass_obj
def list_memories(
    settings: Settings, user: str | None, project: str | None, limit: int, as_json: bool
) -> None:
    """The memories, newest first."""
    records = _with_index(settings, lambda index: index.list_memories(user, project, limit, 0))
    _show([(record, None) for record in records], as_json, f"no memories{_of(user)}")


@memories.command()
@click.argument("memory_id", required=False)
@project_option
@user_option
@click.option("--yes", is_flag=True, help="Do not ask for confirmation.")
@click.pass_obj
def forget(
    settings: Settings, memory_id: str | None, project: str | None, user: str | None, yes: bool
) -> None:
    """Forget one memory (MEMORY_ID), a project (--project, of every user unless --user)
    or all of a user's memories (--user alone)."""
    if memory_id is not None and project is not None:
        raise click.UsageError("give either a MEMORY_ID or --project")
    if memory_id is not None:
        _forget_memory(settings, user, memory_id, yes)
    elif project is not None or user is not None:
        _forget_scope(settings, user, project, yes)
    else:
        raise click.UsageError("give a MEMORY_ID, --project or --user")


def _forget_memory(settings: Settings, user: str | None, memory_id: str, yes: bool) -> None:
    record = _with_index(settings, lambda index: index.get(user, memory_id))
    if record is None:
        raise click.ClickException(f"no memory {memory_id!r}{_of(user)}")
    _confirm(f"Forget this memory of {record.user_id!r}?\n{_indented(record.text)}\n", yes)
    _with_index(settings, lambda index: index.delete(record.user_id, memory_id))
    click.echo(f"forgot memory {memory_id}")


def _forget_scope(settings: Settings, user: str | None, project: str | None, yes: bool) -> None:
    """A project of one user or of every user, or every project of one user."""
    if project is None:
        name = "every project"
    else:
        name = f"project {project!r}" if project else "the general memory"
    scope = f"{name}{_of(user) or ' of every user'}"
    projects = _with_index(settings, lambda index: index.projects(user))
    count = sum(info.memory_count for info in projects if project in (None, info.project))
    if not count:
        raise click.ClickException(f"no memories in {scope}")
    _confirm(f"Forget {_memories(count)} in {scope}?", yes)

    def work(index: MemoryIndex) -> Awaitable[int]:
        if project is None:
            assert user is not None  # forget() asks for one of them
            return index.forget_user(user)
        return index.forget_project(user, project)

    forgotten = _with_index(settings, work)
    click.echo(f"forgot {_memories(forgotten)} in {scope}")


def _of(user: str | None) -> str:
    return f" of {user!r}" if user else ""


@memories.command()
@user_option
@project_option
@click.pass_obj
def export(settings: Settings, user: str | None, project: str | None) -> None:
    """Write memories to standard output as JSON Lines, oldest first: every user's unless
    --user is given."""

    redactor = Redactor.configured(settings)  # memories kept before redaction existed

    async def work(index: MemoryIndex) -> int:
        written = 0
        async with contextlib.aclosing(index.export(user, project)) as batches:
            async for batch in batches:
                lines = (_json_line(redactor.record(record).describe()) for record in batch)
                click.echo("".join(lines), nl=False)
                written += len(batch)
        return written

    count = _with_index(settings, work)
    click.echo(f"exported {_memories(count)}", err=True)


@memories.command()
@click.pass_obj
def compact(settings: Settings) -> None:
    """Rewrite the SQLite file so that it gives freed space back to the disk: once, for a
    file made before incremental vacuum that was too big to switch at start (the proxy
    says so). Takes about as long as copying the file; better with the proxy stopped."""
    if settings.memory.store != "sqlite":
        raise click.ClickException(f"memory.store is {settings.memory.store}: no file to compact")
    _with_index(settings, lambda index: index.use())  # brings the layout up to date first
    try:
        before, after = compact_file(settings.memory.sqlite_path)
    except sqlite3.Error as exc:
        raise click.ClickException(f"could not compact the file: {exc}") from None
    click.echo(f"{settings.memory.sqlite_path}: {before / 2**20:.1f} MB -> {after / 2**20:.1f} MB")


@memories.command(name="import")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.pass_obj
def import_memories(settings: Settings, file: Path) -> None:
    """Add the memories of FILE (JSON Lines, as export writes them). All or nothing: a
    file with any invalid line imports nothing. Memories already stored are kept."""
    with file.open(encoding="utf-8") as lines:
        errors = [(n, problem) for n, problem in parsed_lines(lines) if isinstance(problem, str)]
    if errors:
        shown = [f"{file}:{n}: {problem}" for n, problem in errors[:SHOWN_ERRORS]]
        more = [f"… and {len(errors) - SHOWN_ERRORS} more"] if len(errors) > SHOWN_ERRORS else []
        raise click.ClickException("\n".join([*shown, *more, "nothing was imported"]))

    redactor = Redactor.configured(settings)

    async def work(index: MemoryIndex) -> tuple[int, int]:
        read = added = 0
        with file.open(encoding="utf-8") as lines:
            records = (
                redactor.record(record)
                for _, record in parsed_lines(lines)
                if isinstance(record, MemoryRecord)
            )
            for batch in _batches(records, IMPORT_BATCH):
                ids = {record.id for record in batch}
                added += len(ids - await index.stored(ids))
                await index.add(batch)
                read += len(batch)
        return read, added

    read, added = _with_index(settings, work)
    click.echo(f"imported {file}: {read} read, {added} new (memories already stored are kept)")


def _with_index(settings: Settings, work: Callable[[MemoryIndex], Awaitable[T]]) -> T:
    """`work` on the configured local index, opened for it and closed after."""
    if settings.memory.store == "memory":
        raise click.ClickException(
            "memory.store is 'memory': its memories live inside the running proxy; "
            "use GET /v1/memories"
        )

    async def run() -> T:
        index = open_memory_index(settings.memory)
        if index is None:
            raise click.ClickException(
                f"memory.store is {settings.memory.store}: long-term memories need a local "
                "index (memory.store: sqlite)"
            )
        try:
            return await work(index)
        finally:
            await index.aclose()

    try:
        return asyncio.run(run())
    except click.ClickException:
        raise
    except Exception as exc:  # an unreadable file, a full disk
        raise click.ClickException(f"the memory index failed: {exc}") from None


def _confirm(question: str, yes: bool) -> None:
    if not yes:
        click.confirm(question, abort=True, err=True)


def _memories(count: int) -> str:
    return f"{count} memory" if count == 1 else f"{count} memories"


def _show(found: list[tuple[MemoryRecord, float | None]], as_json: bool, nothing: str) -> None:
    if as_json:
        click.echo("".join(_json_line(record.describe(score)) for record, score in found), nl=False)
        return
    if not found:
        click.echo(nothing)
    for record, score in found:
        when = _local_time(record.created_at)
        fields = [record.id, when, record.user_id, record.project or "(general)", record.client]
        if record.private:
            fields.append("private")  # a private model's: recalled into private models only
        if score is not None:
            fields.append(f"score {score:.2f}")
        click.echo("  ".join(fields) + "\n" + _indented(record.text))


def _local_time(moment: float) -> str:
    """To the minute; a time no calendar shows (a bad import, a hand-edited file) is shown
    as such rather than ending the listing."""
    try:
        return datetime.fromtimestamp(moment).isoformat(" ", "minutes")
    except (OverflowError, OSError, ValueError):
        return f"(time {moment:g})"


def _indented(text: str) -> str:
    shown = text if len(text) <= SHOWN_CHARS else text[:SHOWN_CHARS] + "…"
    return "\n".join("    " + line for line in shown.splitlines())


def _json_line(described: dict[str, Any]) -> str:
    return orjson.dumps(described).decode() + "\n"


def _batches(records: Iterable[MemoryRecord], size: int) -> Iterator[list[MemoryRecord]]:
    batch: list[MemoryRecord] = []
    for record in records:
        batch.append(record)
        if len(batch) == size:
            yield batch
            batch = []
    if batch:
        yield batch
