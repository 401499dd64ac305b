"""Forgetting erases, end to end: exchanges told through a running proxy, forgotten each
way a user can (the memories API for one memory, a project or a user, the sessions API,
`memory-proxy memories forget` beside the running proxy and after it stopped), leave no
byte of their text in the SQLite file or its -wal, while the proxy runs and after; and a
session keeps its newest `max_session_messages`, the others counted as pruned."""

from __future__ import annotations

import dataclasses
from pathlib import Path
from typing import Any

import httpx
from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.config import MemorySettings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.stores.file_traces import traces, unique_token
from tests.support import wait_until

MEMORY_FILE = Path("data/memory.sqlite3")  # the default store, in each test's own directory


def tell(proxy: str, user: str, project: str, session: str, text: str) -> str:
    """One exchange through the proxy; the id of the memory it became, once indexed."""
    headers = {"x-memory-user-id": user, "x-memory-project": project, "x-session-id": session}
    body = {"model": "fake", "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200, answer.text
    found: list[str] = []

    def indexed() -> bool:
        listed = httpx.get(f"{proxy}/v1/memories", params={"user_id": user, "project": project})
        found[:] = [m["id"] for m in listed.json()["data"] if text in m["text"]]
        return bool(found)

    wait_until(indexed)
    return found[0]


def forget_session(proxy: str, user: str, session: str) -> None:
    answer = httpx.delete(f"{proxy}/v1/sessions/{session}", params={"user_id": user})
    assert answer.status_code == 200, answer.text


def cli_forget(config: Path, *arguments: str) -> None:
    result = CliRunner().invoke(
        main, ["memories", "--config", str(config), "forget", *arguments, "--yes"]
    )
    assert result.exit_code == 0, result.output


def test_every_way_of_forgetting_erases_from_the_file_and_its_log(
    tmp_path: Path, fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {MEMORY_FILE.resolve()}\n")
    kept = unique_token()
    secrets = {way: unique_token() for way in ("id", "project", "user", "cli", "stopped")}
    with run_proxy(url) as proxy:
        ids = {
            way: tell(proxy, f"user-{way}", f"project-{way}", f"session-{way}", f"my {token}")
            for way, token in secrets.items()
        }
        tell(proxy, "keeper", "kept", "kept", f"keep {kept}")
        assert all(traces(MEMORY_FILE, token) for token in secrets.values())

        assert httpx.delete(f"{proxy}/v1/memories/{ids['id']}").status_code == 200
        answer = httpx.delete(f"{proxy}/v1/memories", params={"project": "project-project"})
        assert answer.json()["deleted"] == 1
        cli_forget(config, "--user", "user-user")
        cli_forget(config, ids["cli"])
        for way in secrets:
            forget_session(proxy, f"user-{way}", f"session-{way}")

        for way in ("id", "project", "user", "cli"):
            assert traces(MEMORY_FILE, secrets[way]) == 0, way
        assert traces(MEMORY_FILE, secrets["stopped"]) > 0  # its memory is still there
        assert traces(MEMORY_FILE, kept) > 0
    cli_forget(config, ids["stopped"])
    assert all(traces(MEMORY_FILE, token) == 0 for token in secrets.values())
    assert traces(MEMORY_FILE, kept) > 0


def test_a_long_session_keeps_its_newest_messages_and_the_rest_are_counted(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    memory = dataclasses.replace(MemorySettings(), max_session_messages=4)
    with run_proxy(url, memory=memory) as proxy:
        for n in range(3):
            tell(proxy, "alice", "shop", "long", f"question {n}")
        session: dict[str, Any] = {}

        def trimmed() -> bool:
            answer = httpx.get(f"{proxy}/v1/sessions/long", params={"user_id": "alice"})
            session.update(answer.json())
            asked = [m["content"] for m in session["messages"] if m["role"] == "user"]
            return asked == ["question 1", "question 2"]

        wait_until(trimmed)
        assert session["message_count"] == 4
        metrics = httpx.get(f"{proxy}/metrics").text
        assert 'memory_proxy_pruned_total{what="session_messages"} 2.0' in metrics
