"""The issue's seven fake secrets said in a session, through a real proxy in front of a
fake provider: the provider gets them in that request, and they are nowhere memory keeps
or shows them: the SQLite file and its write-ahead log, the memories API, the export, and
the block recalled into another session of the same project."""

from __future__ import annotations

import json
from pathlib import Path

import httpx
from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.config import MemorySettings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.memory.secret_samples import (
    AWS_SECRET_ACCESS_KEY,
    OPENAI_KEY,
    SEVEN,
    secrets_in,
    secrets_in_file,
)
from tests.support import wait_until

ALICE = {"x-memory-user-id": "alice", "x-memory-project": "shop"}
SAID = "Remember the staging deployment credentials:\n" + "\n".join(SEVEN.values())
# A model repeats them: the AWS secret key without its key id, recognised only with the
# question beside it (as the session's messages are redacted: the exchange as one text).
ANSWER = f"Stored the credentials, the key {OPENAI_KEY} and {AWS_SECRET_ACCESS_KEY} too."
QUESTION = "Which staging deployment credentials did I give you?"


def ask(proxy: str, text: str, session: str) -> httpx.Response:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    headers = {**ALICE, "x-session-id": session}
    answer = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=headers)
    assert answer.status_code == 200
    return answer


def memories(proxy: str) -> list[dict[str, str]]:
    found: list[dict[str, str]] = httpx.get(
        f"{proxy}/v1/memories", params={"user_id": "alice"}
    ).json()["data"]
    return found


def test_the_provider_gets_the_secrets_and_memory_keeps_none_of_them(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, tmp_path: Path
) -> None:
    upstream, url = fake_upstream
    upstream.reply_text = ANSWER
    database = tmp_path / "memory.sqlite3"
    with run_proxy(url, memory=MemorySettings(sqlite_path=database)) as proxy:
        ask(proxy, SAID, "monday")
        sent = json.loads(upstream.requests[0].body)["messages"][-1]["content"]
        for secret in SEVEN.values():
            assert secret in sent  # the user's own provider gets the request as sent
        session = f"{proxy}/v1/sessions/monday"
        wait_until(lambda: len(memories(proxy)) == 1)
        wait_until(lambda: len(httpx.get(session, headers=ALICE).json()["messages"]) == 2)

        shown = json.dumps(memories(proxy), ensure_ascii=False)
        assert "[secret:openai-key sk-proj-…]" in shown
        assert "postgres://shop:[secret:url-password]@db.internal" in shown
        assert secrets_in(shown) == [], "in GET /v1/memories"
        assert secrets_in(httpx.get(session, headers=ALICE).text) == [], "in the session"
        assert secrets_in_file(database) == [], "in the SQLite file or its -wal"

        upstream.reply_text = "The staging deployment credentials, as markers."
        recalled = ask(proxy, QUESTION, "tuesday")
        assert recalled.headers["x-memory-recalled"] == "1"
        block = json.loads(upstream.requests[1].body)["messages"][-1]["content"]
        assert "<recalled-memories-" in block
        assert "[secret:github-token ghp_…]" in block
        assert secrets_in(block) == [], "in the block recalled into another session"

        metrics = httpx.get(f"{proxy}/metrics").text
        # Each kept copy counts: the session's and the memory's (the answer repeats the key).
        assert 'memory_proxy_redactions_total{kind="private-key"} 2.0' in metrics
        assert 'memory_proxy_redactions_total{kind="openai-key"} 4.0' in metrics
    assert secrets_in_file(database) == [], "in the SQLite file after the proxy stopped"

    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {database}\n")
    exported = CliRunner().invoke(main, ["memories", "--config", str(config), "export"])
    assert exported.exit_code == 0, exported.output
    assert "[secret:jwt eyJ…]" in exported.stdout
    assert secrets_in(exported.stdout) == [], "in memory-proxy memories export"
