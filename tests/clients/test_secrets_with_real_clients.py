"""The issue's seven fake secrets said in a real Claude Code session: the provider gets
them in that request, and memory keeps and shows none of them — not in the SQLite file
or its write-ahead log (packed texts inflated), not in `/v1/memories` or `/v1/sessions`,
not in `memory-proxy memories export`, not in the block recalled into a later run from
the same directory, which holds the markers in their place. Nor an AWS secret key the
model repeats without its key id, in the same exchange or turns later.

tests/memory/test_redaction_end_to_end.py checks the same with a plain chat request; this
one with what Claude Code really sends (its prompt among system reminders, streamed
Anthropic messages, through the real LiteLLM)."""

from __future__ import annotations

import contextlib
import json
import os
import re
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.memory.redaction import Redactor
from tests.clients.conftest import Chain
from tests.clients.support import (
    CLAUDE_CODE,
    REPO,
    Exchange,
    Proxy,
    installed,
    offline_config,
    run_claude,
)
from tests.fake_upstream import FakeUpstream, Recorded
from tests.memory.secret_samples import AWS_SECRET_ACCESS_KEY, SEVEN, secrets_in, secrets_in_file
from tests.stores.file_traces import traces
from tests.support import wait_until

pytestmark = [pytest.mark.clients, pytest.mark.litellm]

TOLD = "Remember the staging deployment credentials:\n" + "\n".join(SEVEN.values())
# The model repeats the AWS secret key alone, its key id only in the question.
ECHOED = f"Noted, {AWS_SECRET_ACCESS_KEY} as well."
ASKED = "Which staging deployment credentials did I give you?"
CLAUDE_USER = "claude-cli"  # what the shipped config.yaml makes of Claude Code
BLOCK = re.compile(r"<(recalled-memories-[0-9a-f]+)>.*?</\1>", re.DOTALL)


def strings(value: Any) -> Iterator[str]:
    """Every string in a JSON value: the texts of a request, whatever its shape."""
    if isinstance(value, str):
        yield value
    elif isinstance(value, list):
        for item in value:
            yield from strings(item)
    elif isinstance(value, dict):
        for item in value.values():
            yield from strings(item)


def texts(request: Recorded) -> str:
    return "\n".join(strings(json.loads(request.body)))


@contextlib.contextmanager
def answering(provider: FakeUpstream, text: str) -> Iterator[None]:
    """The provider answers `text` for a while."""
    usual, provider.reply_text = provider.reply_text, text
    try:
        yield
    finally:
        provider.reply_text = usual


def claude_run(
    executable: Path,
    chain: Chain,
    proxy: Proxy,
    prompt: str,
    home: Path,
    cwd: Path,
    *options: str,
) -> tuple[Exchange, Recorded]:
    """One `claude -p` run: its one request as the proxy saw and answered it, and as the
    provider received it."""
    seen, arrived = len(proxy.llm_exchanges()), len(chain.provider.requests)
    run_claude(executable, prompt, proxy.url, home, cwd, *options)
    (exchange,) = proxy.llm_exchanges()[seen:]
    (received,) = chain.provider.requests[arrived:]
    assert exchange.status == 200
    return exchange, received


def session_kept(proxy: Proxy, exchange: Exchange) -> dict[str, Any]:
    """The session the proxy keeps for the run of `exchange`, as its API shows it."""
    session = exchange.answer_headers["x-memory-session"]
    url = f"{proxy.url}/v1/sessions/{session}"
    kept: dict[str, Any] = httpx.get(url, params={"user_id": CLAUDE_USER}).json()
    return kept


def exported(chain: Chain, proxy: Proxy, directory: Path) -> str:
    """`memory-proxy memories export` as a user runs it, in a process of its own on this
    checkout's code."""
    config = offline_config(chain.config, proxy.database, directory)
    command = Path(sys.executable).parent / "memory-proxy"
    result = subprocess.run(
        [str(command), "memories", "--config", str(config), "export"],
        env={**os.environ, "PYTHONPATH": str(REPO)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def test_secrets_said_to_claude_code_reach_the_provider_and_nothing_memory_keeps(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    home = tmp_path / "home"
    executable = installed(CLAUDE_CODE, home)
    project = tmp_path / "payments-service"
    project.mkdir()

    with answering(chain.provider, ECHOED):
        telling, told = claude_run(executable, chain, proxy, TOLD, home, project)
    assert secrets_in(texts(told)) == list(SEVEN)  # the provider got them, verbatim
    wait_until(lambda: len(proxy.memories()) == 1)  # indexed in the background
    wait_until(lambda: len(session_kept(proxy, telling).get("messages", [])) == 2)

    listed = httpx.get(f"{proxy.url}/v1/memories", params={"user_id": CLAUDE_USER}).text
    assert secrets_in(listed) == [], "in GET /v1/memories"
    assert "[secret:github-token ghp_…]" in listed
    assert secrets_in(json.dumps(session_kept(proxy, telling))) == [], "in the session"
    assert secrets_in_file(proxy.database) == [], "in the SQLite file or its -wal"
    assert traces(proxy.database, "deployment credentials") > 0  # the search sees the texts
    export = exported(chain, proxy, tmp_path)
    assert secrets_in(export) == [], "in memory-proxy memories export"
    assert "[secret:jwt eyJ…]" in export

    asking, asked = claude_run(executable, chain, proxy, ASKED, home, project)
    assert asking.answer_headers["x-memory-recalled"] == "1"
    (block,) = (match.group() for match in BLOCK.finditer(texts(asked)))
    assert secrets_in(block) == [], "in the block recalled into the next run"
    for line in Redactor().text(TOLD).splitlines():
        assert line in block  # each secret's marker in its place
    assert secrets_in_file(proxy.database) == [], "in the SQLite file after the second run"


def test_an_aws_secret_key_a_model_repeats_turns_later_is_kept_nowhere(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    """`claude -p --continue`: the key id is in the session's first exchange only, the
    model names the secret key in the next."""
    home = tmp_path / "home"
    executable = installed(CLAUDE_CODE, home)
    project = tmp_path / "payments-service"
    project.mkdir()
    telling, _ = claude_run(executable, chain, proxy, TOLD, home, project)
    wait_until(lambda: len(proxy.memories()) == 1)

    question = "What is my AWS secret access key?"
    with answering(chain.provider, f"Your AWS secret access key is {AWS_SECRET_ACCESS_KEY}."):
        asking, _ = claude_run(executable, chain, proxy, question, home, project, "--continue")
    session = telling.answer_headers["x-memory-session"]
    assert asking.answer_headers["x-memory-session"] == session  # the same session
    wait_until(lambda: len(proxy.memories()) == 2)
    wait_until(lambda: len(session_kept(proxy, asking).get("messages", [])) == 4)

    listed = httpx.get(f"{proxy.url}/v1/memories", params={"user_id": CLAUDE_USER}).text
    assert secrets_in(listed) == [], "in GET /v1/memories"
    assert secrets_in(json.dumps(session_kept(proxy, asking))) == [], "in the session"
    assert secrets_in_file(proxy.database) == [], "in the SQLite file or its -wal"
