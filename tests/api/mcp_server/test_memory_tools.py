"""The memory tools' failures, each a `ToolFailure` with a message for the model: an index
too busy to search in time, an index that fails, none at all."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest

from memory_proxy.api.mcp_server.memory_tools import MemoryTools, ToolFailure, question_of
from memory_proxy.api.mcp_server.workspace import GENERAL
from memory_proxy.identity.auth import LOCAL_CALLER
from memory_proxy.identity.client_detection import ClientIdentity
from memory_proxy.identity.identification import MemoryOwner
from memory_proxy.memory.redaction import Redactor
from memory_proxy.stores.base import SearchBusy

OWNER = MemoryOwner(LOCAL_CALLER, ClientIdentity("alice", None, False), None)


class FailingIndex:
    """Every call raises `error`."""

    def __init__(self, error: Exception) -> None:
        self.error = error

    def __getattr__(self, name: str) -> Any:
        async def fail(*args: Any, **kwargs: Any) -> Any:
            raise self.error

        return fail


def tools(index: object | None) -> MemoryTools:
    return MemoryTools(index, "no index here", Redactor(()))  # type: ignore[arg-type]


def failure(work: Any) -> ToolFailure:
    with pytest.raises(ToolFailure) as raised:
        asyncio.run(work)
    return raised.value


def test_a_busy_index_asks_to_try_again_in_a_second() -> None:
    busy = tools(FailingIndex(SearchBusy("too many searches waiting")))
    refused = failure(busy.search(OWNER, GENERAL, "staging", 5))
    assert refused.status == 503
    assert refused.message == (
        "the memory index is busy with other searches: try again in a second"
    )


@pytest.mark.parametrize(
    "call",
    [
        lambda t: t.search(OWNER, GENERAL, "staging", 5),
        lambda t: t.remember(OWNER, GENERAL, "a note"),
        lambda t: t.list(OWNER, GENERAL, 5, None),
        lambda t: t.forget(OWNER, "0" * 24),
        lambda t: t.recent_sessions(OWNER, GENERAL, 5),
    ],
)
def test_a_failing_index_is_a_readable_failure_and_a_logged_one(
    call: Any, caplog: pytest.LogCaptureFixture
) -> None:
    broken = tools(FailingIndex(OSError("disk I/O error")))
    refused = failure(call(broken))
    assert (refused.status, refused.message) == (
        503,
        "the memory index is unavailable: try again later",
    )
    assert "disk I/O error" in caplog.text
    missing = failure(call(tools(None)))
    assert (missing.status, missing.message) == (501, "no index here")


def test_the_question_of_a_memory() -> None:
    assert question_of("User: which port?\nAssistant: 5433") == "which port?"
    assert question_of("a note") == "a note"
