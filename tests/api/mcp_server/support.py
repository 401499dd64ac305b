"""An MCP client from the SDK (streamable HTTP) against a real proxy's `/mcp`, and what
the tests ask of it: one tool call's outcome, memories put straight into the file."""

from __future__ import annotations

import asyncio
import contextlib
import json
from collections.abc import AsyncIterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import httpx2

from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex

if TYPE_CHECKING:
    from mcp.client import Client, ClientRequestContext
    from mcp_types import ListRootsResult

MEMORY_FILE = Path("data/memory.sqlite3")  # the default store, in each test's own directory
CLAUDE_CODE_MCP = "claude-code/2.1.332 (cli)"  # what Claude Code's MCP client sends


@dataclass(frozen=True)
class Outcome:
    error: bool
    text: str

    @property
    def data(self) -> dict[str, Any]:
        assert not self.error, self.text
        payload: dict[str, Any] = json.loads(self.text)
        return payload


@contextlib.asynccontextmanager
async def mcp_client(
    proxy: str,
    headers: dict[str, str] | None = None,
    roots: Sequence[str] | None = None,
    mode: str = "auto",
) -> AsyncIterator[Client]:
    """A client of `proxy`'s /mcp; `roots`: the `file://` URIs it answers roots/list with
    (None: it declares no roots); `mode` "legacy" speaks the 2025 protocol."""
    # Imported here, by the first test that calls: the SDK costs each pytest-xdist worker
    # about 0.7 s of CPU to import, and most workers run none of these tests.
    from mcp.client import Client
    from mcp.client.streamable_http import streamable_http_client
    from mcp_types import ListRootsResult, Root

    async def listed_roots(context: ClientRequestContext) -> ListRootsResult:
        return ListRootsResult(roots=[Root(uri=uri) for uri in roots or ()])  # type: ignore[arg-type]

    http = httpx2.AsyncClient(headers=headers or {})
    transport = streamable_http_client(proxy + "/mcp", http_client=http)
    client = Client(
        transport,
        list_roots_callback=listed_roots if roots is not None else None,
        mode=mode,
    )
    async with http, client:
        yield client


async def call(client: Client, tool: str, arguments: dict[str, Any] | None = None) -> Outcome:
    result = await client.call_tool(tool, arguments or {})
    (content,) = result.content
    assert content.type == "text"
    return Outcome(bool(result.is_error), content.text)


def in_file(*records: MemoryRecord) -> None:
    """Straight into the proxy's file, as a chat request's exchange would be."""

    async def add() -> None:
        index = SQLiteMemoryIndex(MEMORY_FILE)
        try:
            await index.add(list(records))
        finally:
            await index.aclose()

    asyncio.run(add())


def memory(
    text: str,
    *,
    user: str = "alice",
    project: str = "",
    session: str | None = "s1",
    at: float = 1_800_000_000.0,
    private: bool = False,
) -> MemoryRecord:
    return MemoryRecord(
        memory_id(user, project, text),
        user,
        project,
        session,
        "claude-code",
        "m",
        at,
        text,
        private,
    )


def file_text() -> str:
    """Every byte of the memory file and its -wal, as text, to look for what must not be
    there."""
    files = [MEMORY_FILE, *MEMORY_FILE.parent.glob("*-wal")]
    return "".join(path.read_bytes().decode("latin-1") for path in files if path.exists())
