"""The memory tools through a real proxy's /mcp, with the SDK's own client (streamable
HTTP): the five tools and their schemas; each tool's scope (user, project from the
argument, the roots, the header, else the general memory); forgetting, then searching;
errors as tool errors; usage records of tool calls."""

from __future__ import annotations

import asyncio
from typing import TYPE_CHECKING, Any

import httpx
import pytest

from memory_proxy.config import ClientKey, MemorySettings, RateLimitSettings
from memory_proxy.identity.project import project_id
from memory_proxy.records.memory import MemoryRecord
from tests.api.mcp_server.support import (
    CLAUDE_CODE_MCP,
    Outcome,
    call,
    file_text,
    in_file,
    mcp_client,
    memory,
)
from tests.conftest import ProxyFactory
from tests.support import wait_until

if TYPE_CHECKING:
    from mcp_types import Tool

NO_LITELLM = "http://127.0.0.1:9"  # the tools never call it
HERON, OTHER = "/home/me/src/heron", "/home/me/src/other"
HERON_ID, OTHER_ID = project_id(HERON), project_id(OTHER)
ALICE = {"x-memory-user-id": "alice"}
STAGING = "User: what is the staging database?\nAssistant: heron-17, on port 5433."
BOBS = "User: what is the staging database?\nAssistant: bob's is kestrel-3."
ELSEWHERE = "User: what is the staging database?\nAssistant: the other one is osprey-9."
GENERAL = "User: what is the staging database?\nAssistant: in general, ask ops."


def facts() -> None:
    in_file(
        memory(STAGING, project=HERON_ID),
        memory(BOBS, user="bob", project=HERON_ID),
        memory(ELSEWHERE, project=OTHER_ID),
        memory(GENERAL, project=""),
    )


def searched(
    proxy: str,
    headers: dict[str, str],
    *,
    roots: list[str] | None = None,
    mode: str = "auto",
    **arguments: Any,
) -> Outcome:
    async def one() -> Outcome:
        async with mcp_client(proxy, headers, roots=roots, mode=mode) as client:
            return await call(client, "search_memory", {"query": "staging database", **arguments})

    return asyncio.run(one())


def test_the_five_tools_are_listed_with_their_schemas(run_proxy: ProxyFactory) -> None:
    async def listed() -> dict[str, Tool]:
        with run_proxy(NO_LITELLM) as proxy:
            async with mcp_client(proxy, ALICE) as client:
                return {tool.name: tool for tool in (await client.list_tools()).tools}

    tools = asyncio.run(listed())
    assert set(tools) == {
        "search_memory",
        "remember",
        "list_memories",
        "forget_memory",
        "recent_sessions",
    }
    required = {name: tool.input_schema.get("required", []) for name, tool in tools.items()}
    assert required == {
        "search_memory": ["query"],
        "remember": ["text"],
        "list_memories": [],
        "forget_memory": ["id"],
        "recent_sessions": [],
    }
    for name, tool in tools.items():
        schema = tool.input_schema
        assert schema["type"] == "object" and schema["additionalProperties"] is False
        assert tool.description and len(tool.description) > 80, name
        for field in schema["properties"].values():
            assert (field["description"] and "default" not in field) or field["default"]
            assert field["type"] in ("string", "integer", "number"), (name, field)
    assert tools["search_memory"].input_schema["properties"]["limit"]["maximum"] == 50
    annotations = {name: tool.annotations for name, tool in tools.items()}
    reads = {name for name, notes in annotations.items() if notes and notes.read_only_hint}
    assert reads == {"search_memory", "list_memories", "recent_sessions"}
    forget = annotations["forget_memory"]
    assert forget is not None and forget.destructive_hint


def test_a_search_finds_the_users_memories_of_the_workspaces_project_only(
    run_proxy: ProxyFactory,
) -> None:
    facts()
    with run_proxy(NO_LITELLM) as proxy:
        answer = searched(proxy, ALICE, roots=[f"file://{HERON}"]).data
    assert answer["project"] == {"id": HERON_ID, "source": "roots"}
    (hit,) = answer["hits"]
    assert hit["text"] == STAGING and hit["project"] == HERON_ID
    assert set(hit) == {"id", "date", "created_at", "client", "project", "text", "score"}
    assert hit["date"] == "2027-01-15T08:00:00Z" and hit["client"] == "claude-code"
    assert "not instructions" in answer["note"]


@pytest.mark.parametrize(
    ("how", "options", "headers", "expected"),
    [
        ("argument: a path", {"project": OTHER}, {}, (OTHER_ID, "argument", ELSEWHERE)),
        ("argument: an id", {"project": OTHER_ID}, {}, (OTHER_ID, "argument", ELSEWHERE)),
        ("argument: general", {"project": ""}, {}, (None, "argument", GENERAL)),
        (
            "argument beats roots",
            {"project": OTHER, "roots": [f"file://{HERON}"]},
            {},
            (OTHER_ID, "argument", ELSEWHERE),
        ),
        (
            "roots beat the header",
            {"roots": [f"file://{HERON}"]},
            {"x-memory-project": OTHER_ID},
            (HERON_ID, "roots", STAGING),
        ),
        (
            "the header without roots",
            {},
            {"x-memory-project": OTHER_ID},
            (OTHER_ID, "header", ELSEWHERE),
        ),
        (
            "no root on this machine",
            {"roots": ["file://fileserver/share"]},
            {"x-memory-project": OTHER_ID},
            (OTHER_ID, "header", ELSEWHERE),
        ),
        ("no root at all", {"roots": []}, {}, (None, "general", GENERAL)),
        (
            "a 2025 client: no roots asked",
            {"roots": [f"file://{HERON}"], "mode": "legacy"},
            {"x-memory-project": OTHER_ID},
            (OTHER_ID, "header", ELSEWHERE),
        ),
        ("nothing: the general memory", {}, {}, (None, "general", GENERAL)),
    ],
)
def test_the_project_comes_from_the_argument_the_roots_the_header_or_none(
    run_proxy: ProxyFactory,
    how: str,
    options: dict[str, Any],
    headers: dict[str, str],
    expected: tuple[str | None, str, str],
) -> None:
    facts()
    with run_proxy(NO_LITELLM) as proxy:
        found = searched(proxy, {**ALICE, **headers}, **options)
    project, source, text = expected
    assert found.data["project"] == {"id": project, "source": source}, how
    assert [hit["text"] for hit in found.data["hits"]] == [text], how


def test_remember_then_search_in_a_new_connection_redacted_and_without_private_text(
    run_proxy: ProxyFactory,
) -> None:
    secret = "sk-proj-" + "Q7x2" * 10
    note = f"Staging runs on port 5433 <private>the root password is hunter2</private> key {secret}"

    async def scenario(proxy: str) -> tuple[Outcome, Outcome, Outcome]:
        async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
            stored = await call(client, "remember", {"text": note})
            again = await call(client, "remember", {"text": note})
        async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
            found = await call(client, "search_memory", {"query": "staging port"})
        return stored, again, found

    with run_proxy(NO_LITELLM) as proxy:
        stored, again, found = asyncio.run(scenario(proxy))
    kept = "Staging runs on port 5433 [private] key [secret:openai-key sk-proj-…]"
    assert stored.data["stored"] is True and stored.data["text"] == kept
    assert again.data == {**stored.data, "stored": False}  # the same note, once
    (hit,) = found.data["hits"]
    assert (hit["id"], hit["text"], hit["project"]) == (stored.data["id"], kept, HERON_ID)
    stored_bytes = file_text()
    assert secret not in stored_bytes and "hunter2" not in stored_bytes


def test_a_forgotten_memory_is_not_found_by_the_next_search(run_proxy: ProxyFactory) -> None:
    facts()

    async def scenario(proxy: str) -> list[Outcome]:
        async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
            (hit,) = (await call(client, "search_memory", {"query": "staging"})).data["hits"]
            return [
                await call(client, "forget_memory", {"id": hit["id"]}),
                await call(client, "search_memory", {"query": "staging"}),
                await call(client, "list_memories"),
                await call(client, "forget_memory", {"id": hit["id"]}),
            ]

    with run_proxy(NO_LITELLM) as proxy:
        forgot, found, listed, twice = asyncio.run(scenario(proxy))
    assert forgot.data["forgotten"] is True and forgot.data["project"] == {"id": HERON_ID}
    assert found.data["hits"] == [] and listed.data["memories"] == []
    assert twice.error and "no memory" in twice.text


def test_another_users_or_a_private_models_memory_is_out_of_reach(
    run_proxy: ProxyFactory,
) -> None:
    bobs = memory(BOBS, user="bob", project=HERON_ID)
    private = memory(
        "User: the staging database?\nAssistant: private-42", project=HERON_ID, private=True
    )
    in_file(bobs, private)

    async def scenario(proxy: str) -> list[Outcome]:
        async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
            return [
                await call(client, "search_memory", {"query": "staging database"}),
                await call(client, "list_memories"),
                await call(client, "forget_memory", {"id": bobs.id}),
                await call(client, "forget_memory", {"id": private.id}),
            ]

    with run_proxy(NO_LITELLM) as proxy:
        found, listed, bob_kept, private_kept = asyncio.run(scenario(proxy))
        as_bob = searched(proxy, {"x-memory-user-id": "bob"}, roots=[f"file://{HERON}"])
    assert found.data["hits"] == [] and listed.data["memories"] == []
    assert bob_kept.error and private_kept.error
    assert [hit["text"] for hit in as_bob.data["hits"]] == [BOBS]  # still there


def test_memories_are_listed_newest_first_a_page_at_a_time(run_proxy: ProxyFactory) -> None:
    in_file(*(memory(f"note {n}", project=HERON_ID, at=1_800_000_000.0 + n) for n in range(5)))

    async def pages(proxy: str) -> list[list[str]]:
        found: list[list[str]] = []
        before = None
        async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
            while True:
                arguments: dict[str, Any] = {"limit": 2}
                if before is not None:
                    arguments["before"] = before
                page = (await call(client, "list_memories", arguments)).data
                found.append([m["text"] for m in page["memories"]])
                before = page.get("next_before")
                if before is None:
                    return found

    with run_proxy(NO_LITELLM) as proxy:
        assert asyncio.run(pages(proxy)) == [
            ["note 4", "note 3"],
            ["note 2", "note 1"],
            ["note 0"],
        ]


def test_recent_sessions_come_newest_first_with_their_first_and_last_question(
    run_proxy: ProxyFactory,
) -> None:
    def said(question: str, session: str, at: float) -> MemoryRecord:
        text = f"User: {question}\nAssistant: ok"
        return memory(text, project=HERON_ID, session=session, at=at)

    in_file(
        said("set up the migration", "s1", 1_800_000_000.0),
        said("run the migration", "s1", 1_800_000_100.0),
        said("why is CI red?", "s2", 1_800_000_050.0),
        memory("a note: no session", project=HERON_ID, session=None, at=1_800_000_200.0),
    )
    with run_proxy(NO_LITELLM) as proxy:

        async def sessions() -> Outcome:
            async with mcp_client(proxy, ALICE, roots=[f"file://{HERON}"]) as client:
                return await call(client, "recent_sessions", {"limit": 5})

        answer = asyncio.run(sessions()).data
    assert [
        (s["session_id"], s["first_question"], s["last_question"], s["memories"])
        for s in answer["sessions"]
    ] == [
        ("s1", "set up the migration", "run the migration", 2),
        ("s2", "why is CI red?", "why is CI red?", 1),
    ]
    assert answer["sessions"][0]["started"] == "2027-01-15T08:00:00Z"


@pytest.mark.parametrize(
    ("tool", "arguments", "says"),
    [
        ("search_memory", {}, "query: Field required"),
        ("search_memory", {"query": "x", "limit": 0}, "limit: Input should be greater than"),
        ("search_memory", {"query": "x", "colour": "red"}, "colour: Extra inputs"),
        ("search_memory", {"query": "x", "project": "no such id!"}, "project must be"),
        ("remember", {"text": "x" * 2001}, "a memory holds at most 2000"),
        ("remember", {"text": "<private>all of it</private>"}, "nothing to remember"),
        ("forget_memory", {"id": "0" * 24}, "no memory '000000000000000000000000'"),
        ("recall_everything", {}, "no tool 'recall_everything'"),
    ],
)
def test_bad_calls_are_tool_errors_that_say_why(
    run_proxy: ProxyFactory, tool: str, arguments: dict[str, Any], says: str
) -> None:
    async def scenario(proxy: str) -> tuple[Outcome, Outcome]:
        async with mcp_client(proxy, ALICE) as client:
            bad = await call(client, tool, arguments)
            after = await call(client, "list_memories")  # the session goes on
        return bad, after

    with run_proxy(NO_LITELLM) as proxy:
        bad, after = asyncio.run(scenario(proxy))
    assert bad.error and says in bad.text, bad.text
    assert not after.error


def test_memory_modes_and_a_proxy_without_memory_are_tool_errors(
    run_proxy: ProxyFactory,
) -> None:
    async def remembered(proxy: str, headers: dict[str, str]) -> Outcome:
        async with mcp_client(proxy, headers) as client:
            return await call(client, "remember", {"text": "a note"})

    with run_proxy(NO_LITELLM) as proxy:
        read_only = asyncio.run(remembered(proxy, {**ALICE, "x-memory": "read"}))
    with run_proxy(NO_LITELLM, memory=MemorySettings(enabled=False)) as proxy:
        disabled = asyncio.run(remembered(proxy, ALICE))
    assert read_only.error and "'read' for user alice" in read_only.text
    assert disabled.error and "local memory is disabled (memory.enabled)" in disabled.text


def test_tool_calls_are_rate_limited_per_user(run_proxy: ProxyFactory) -> None:
    limits = RateLimitSettings(enabled=True, requests_per_minute=1, burst=2)

    async def three(proxy: str) -> list[Outcome]:
        async with mcp_client(proxy, ALICE) as client:
            return [await call(client, "list_memories") for _ in range(3)]

    with run_proxy(NO_LITELLM, rate_limit=limits) as proxy:
        first, second, third = asyncio.run(three(proxy))
    assert not first.error and not second.error
    assert third.error and "rate limit for alice reached" in third.text
    assert "try again in" in third.text


def test_tool_calls_are_usage_records_apart_from_llm_calls(run_proxy: ProxyFactory) -> None:
    facts()

    async def calls(proxy: str) -> None:
        async with mcp_client(proxy, {"user-agent": CLAUDE_CODE_MCP, **ALICE}) as client:
            await call(client, "search_memory", {"query": "staging", "project": HERON})
            await call(client, "search_memory", {"query": "staging", "project": "bad id!"})
            await call(client, "list_memories", {"project": ""})

    with run_proxy(NO_LITELLM) as proxy:
        asyncio.run(calls(proxy))

        def by_tool() -> dict[str, Any]:
            answer = httpx.get(proxy + "/v1/usage", params={"group_by": "tool"})
            return {row["tool"]: row for row in answer.json()["data"]}

        wait_until(lambda: sum(row["requests"] for row in by_tool().values()) == 3)
        tools = by_tool()
        by_model = httpx.get(proxy + "/v1/usage", params={"group_by": "model"}).json()
    search = tools["search_memory"]
    assert (search["requests"], search["hits"], search["errors"]) == (2, 1, 1)
    assert tools["list_memories"]["hits"] == 1
    assert search["users"] == ["alice"] and search["mean_total_ms"] > 0
    assert by_model["total"]["requests"] == 0  # no LLM call


def test_a_bound_key_reaches_its_own_users_memories_only(run_proxy: ProxyFactory) -> None:
    in_file(memory(BOBS, user="bob"), memory(GENERAL))
    bob = ClientKey("sk-bob-" + "b" * 24, "bob")
    with run_proxy(NO_LITELLM, client_keys=(bob,)) as proxy:
        as_bob = {"authorization": f"Bearer {bob.key}", **ALICE}  # names alice: no matter
        found = searched(proxy, as_bob)
    assert [hit["text"] for hit in found.data["hits"]] == [BOBS]
