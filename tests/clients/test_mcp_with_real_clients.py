"""The memory tools with the real CLIs, set up as README "Memory tools for agents (MCP)"
says (its lines and files, run and written as they stand): the fake provider answers the
first turn with a call to a memory tool, the CLI calls the proxy's /mcp, and the
provider's next request carries the tool's result — the fact told in an earlier session
of the same project, and none from another project or another user.

Claude Code names the project by its roots (its working directory, asked inside the
call); Codex, which declares no roots, by the working directory its model passes.
"""

from __future__ import annotations

import asyncio
import json
import re
import shlex
from pathlib import Path
from typing import Any

import pytest

from memory_proxy.identity.project import project_id
from memory_proxy.records.memory import MemoryRecord, memory_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.clients.conftest import Chain
from tests.clients.support import (
    CLAUDE_CODE,
    CLAUDE_MODEL,
    CODEX,
    CODEX_CONFIG,
    CODEX_MODEL,
    CliRun,
    Proxy,
    claude_env,
    installed,
    isolated_env,
    nonce,
    run,
)
from tests.clients.tool_calling_provider import directive
from tests.fake_upstream import Recorded
from tests.support import wait_until

pytestmark = [pytest.mark.clients, pytest.mark.litellm]

README = Path(__file__).resolve().parents[2] / "README.md"
README_URL = "http://127.0.0.1:8764"  # what the README's set-up lines name
QUESTION = "What is our staging database called?"


def readme_block(language: str, opening: str) -> str:
    """The README's code block in `language` whose text starts with `opening`."""
    for block in re.findall(rf"```{language}\n(.*?)```", README.read_text(), re.DOTALL):
        if block.startswith(opening):
            return str(block)
    raise AssertionError(f"README has no {language} block starting {opening!r}")


def readme_command(opening: str, proxy: Proxy, executable: Path) -> list[str]:
    """The README's command line, on this proxy, run by the installed CLI."""
    line = readme_block("bash", opening).strip().replace(README_URL, proxy.url)
    _, *arguments = shlex.split(line)
    return [str(executable), *arguments]


def tell(proxy: Proxy, user: str, project: Path, text: str) -> None:
    """A memory of another user, straight into the proxy's file (another worker's write)."""

    async def add() -> None:
        index = SQLiteMemoryIndex(proxy.database)
        try:
            where = project_id(str(project))
            record = MemoryRecord(
                memory_id(user, where, text), user, where, "s0", "other", "m", 1.0, text
            )
            await index.add([record])
        finally:
            await index.aclose()

    asyncio.run(add())


def tool_results(request: Recorded) -> list[str]:
    """The text of every tool result in a provider request (Anthropic or Responses)."""
    body = json.loads(request.body)
    found: list[str] = []
    for item in body.get("messages") or body.get("input") or []:
        if not isinstance(item, dict):
            continue
        if item.get("type") == "function_call_output":
            found.append(_text(item.get("output")))
        for part in item.get("content") or []:
            if isinstance(part, dict) and part.get("type") == "tool_result":
                found.append(_text(part.get("content")))
    return found


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, list):
        return "".join(_text(part.get("text", "")) for part in value if isinstance(part, dict))
    return ""


def tool_turn(chain: Chain, proxy: Proxy, since: int, mcp_since: int) -> dict[str, Any]:
    """After one run: the provider's request that carried the tool's result, whose result
    is returned (parsed); the CLI's calls to /mcp all answered."""
    requests = chain.provider.requests[since:]
    carrying = [r for r in requests if tool_results(r)]
    assert carrying, f"no request carried a tool result: {[r.path for r in requests]}"
    (result,) = tool_results(carrying[0])
    calls = [e for e in proxy.recorder.exchanges[mcp_since:] if e.request.path == "/mcp"]
    assert any(b'"tools/call"' in e.request.body for e in calls), "the CLI never called /mcp"
    assert all(e.status in (200, 202) for e in calls), [e.status for e in calls]
    start = result.index("{")  # Codex puts its wall time first
    payload: dict[str, Any] = json.loads(result[start:])
    return payload


def mcp_exchanges(proxy: Proxy) -> int:
    return len(proxy.recorder.exchanges)


# ---- Claude Code ------------------------------------------------------------------------


def claude(executable: Path, proxy: Proxy, home: Path, cwd: Path, prompt: str) -> CliRun:
    """`claude -p`, its memory tools allowed (-p asks no one) and listed with the others
    (Claude Code defers MCP tools behind a search tool by default: a first turn could not
    call one), its MCP servers connected before the first request: by default it sends
    that request at once, offering a WaitForMcpServers tool instead of theirs until they
    connect, and on a loaded machine the fake provider saw no search_memory to call (each
    retry answered a 500 until the run's 60 s ran out, twice in a row at load 9)."""
    env = claude_env(
        home,
        ANTHROPIC_BASE_URL=proxy.url,
        ANTHROPIC_API_KEY="sk-ant-client-key",
        ANTHROPIC_DEFAULT_HAIKU_MODEL=CLAUDE_MODEL,
        ENABLE_TOOL_SEARCH="false",
        MCP_CONNECTION_NONBLOCKING="0",
    )
    argv = [str(executable), "-p", prompt, "--model", CLAUDE_MODEL]
    return run([*argv, "--allowedTools", "mcp__memory"], env, cwd)


def test_claude_code_finds_a_fact_of_an_earlier_session_of_the_same_project(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    executable = installed(CLAUDE_CODE, home)
    project, elsewhere = (tmp_path / "heron-service").resolve(), (tmp_path / "other").resolve()
    project.mkdir()
    elsewhere.mkdir()
    fact, other_fact, bobs_fact = nonce(), nonce(), nonce()
    claude(executable, proxy, home, project, f"Remember: our staging database is {fact}.")
    claude(executable, proxy, home, elsewhere, f"Remember: our staging database is {other_fact}.")
    tell(proxy, "bob", project, f"User: staging database?\nAssistant: bob's is {bobs_fact}")
    wait_until(lambda: len(proxy.memories()) == 3)
    add = readme_command("claude mcp add", proxy, executable)
    added = run(add, claude_env(home), project)
    assert "memory" in added.stdout

    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    search = directive("search_memory", {"query": "staging database"})
    claude(executable, proxy, home, project, f"{search} {QUESTION}")
    result = tool_turn(chain, proxy, since, mcp_since)
    assert result["project"] == {"id": project_id(str(project)), "source": "roots"}
    texts = " ".join(hit["text"] for hit in result["hits"])
    assert fact in texts
    assert other_fact not in texts and bobs_fact not in texts


def test_claude_code_remembers_then_finds_it_in_a_new_session_of_the_project_only(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    executable = installed(CLAUDE_CODE, home)
    project, elsewhere = (tmp_path / "heron-service").resolve(), (tmp_path / "other").resolve()
    for directory in (project, elsewhere):
        directory.mkdir()
        # The project-scoped form: README's .mcp.json at the directory's root.
        mcp_json = readme_block("json", '{\n  "mcpServers"').replace(README_URL, proxy.url)
        (directory / ".mcp.json").write_text(mcp_json)
    note = nonce()
    remember = directive("remember", {"text": f"The deploy key rotates on Fridays ({note})."})
    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    claude(executable, proxy, home, project, f"{remember} Keep that in mind.")
    stored = tool_turn(chain, proxy, since, mcp_since)
    assert stored["stored"] is True and note in stored["text"]

    search = directive("search_memory", {"query": "deploy key rotates"})
    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    claude(executable, proxy, home, project, f"{search} When does the deploy key rotate?")
    found = tool_turn(chain, proxy, since, mcp_since)
    assert "hits" in found, found
    assert [hit["id"] for hit in found["hits"]][:1] == [stored["id"]]

    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    claude(executable, proxy, home, elsewhere, f"{search} When does the deploy key rotate?")
    other = tool_turn(chain, proxy, since, mcp_since)
    assert other["project"]["id"] == project_id(str(elsewhere))
    assert note not in json.dumps(other)


# ---- Codex ------------------------------------------------------------------------------


def codex(executable: Path, proxy: Proxy, home: Path, cwd: Path, prompt: str) -> CliRun:
    """`codex exec`, its config.toml the tests' provider plus README's [mcp_servers.memory]."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    server = readme_block("toml", "[mcp_servers.memory]").replace(README_URL, proxy.url)
    config = CODEX_CONFIG.format(model=CODEX_MODEL, proxy_url=proxy.url) + "\n" + server
    (codex_home / "config.toml").write_text(config)
    env = isolated_env(home, CODEX_HOME=str(codex_home), MEMORY_PROXY_API_KEY="sk-client-key")
    argv = [str(executable), "exec", "--skip-git-repo-check", "--color", "never", prompt]
    return run(argv, env, cwd)


def test_codex_finds_a_fact_of_an_earlier_session_of_the_same_project(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    executable = installed(CODEX, home)
    project, elsewhere = (tmp_path / "heron-service").resolve(), (tmp_path / "other").resolve()
    project.mkdir()
    elsewhere.mkdir()
    fact, other_fact, bobs_fact = nonce(), nonce(), nonce()
    codex(executable, proxy, home, project, f"Remember: our staging database is {fact}.")
    codex(executable, proxy, home, elsewhere, f"Remember: our staging database is {other_fact}.")
    tell(proxy, "bob", project, f"User: staging database?\nAssistant: bob's is {bobs_fact}")
    wait_until(lambda: len(proxy.memories()) == 3)

    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    # Codex gives no roots: its model passes the working directory it was told.
    search = directive("search_memory", {"query": "staging database", "project": str(project)})
    codex(executable, proxy, home, project, f"{search} {QUESTION}")
    result = tool_turn(chain, proxy, since, mcp_since)
    assert result["project"] == {"id": project_id(str(project)), "source": "argument"}
    texts = " ".join(hit["text"] for hit in result["hits"])
    assert fact in texts
    assert other_fact not in texts and bobs_fact not in texts


def test_codex_remembers_then_finds_it_in_a_new_session(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    executable = installed(CODEX, home)
    project = (tmp_path / "heron-service").resolve()
    project.mkdir()
    note = nonce()
    where = {"project": str(project)}
    told = f"The deploy key rotates on Fridays ({note})."
    remember = directive("remember", {"text": told, **where})
    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    codex(executable, proxy, home, project, f"{remember} Keep that in mind.")
    stored = tool_turn(chain, proxy, since, mcp_since)
    assert stored["stored"] is True

    search = directive("search_memory", {"query": "deploy key rotates", **where})
    since, mcp_since = len(chain.provider.requests), mcp_exchanges(proxy)
    codex(executable, proxy, home, project, f"{search} When does the deploy key rotate?")
    found = tool_turn(chain, proxy, since, mcp_since)
    assert note in found["hits"][0]["text"]
