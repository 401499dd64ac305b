"""Long-term memory with the real CLIs: a fact told in one run is recalled in a later run
(a new session) from the same directory, and not from another directory.

The proxy knows nothing of these clients beyond the shipped config: the session comes from
the headers they send, the project from the working directory inside their prompt.
"""

from __future__ import annotations

import json
import subprocess
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
import yaml
from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.identity.project import project_id
from tests.clients.conftest import Chain
from tests.clients.support import (
    CLAUDE_CODE,
    CODEX,
    Cli,
    CliRun,
    Exchange,
    Proxy,
    installed,
    memory_proxy,
    nonce,
    offline_config,
    run_claude,
    run_codex,
)
from tests.fake_upstream import Recorded
from tests.shipped_config_support import one_user_for_claude_code_and_codex
from tests.support import wait_until

pytestmark = [pytest.mark.clients, pytest.mark.litellm]


@dataclass(frozen=True)
class Client:
    cli: Cli
    run: Callable[[Path, str, str, Path, Path], CliRun]
    user_id: str  # what the shipped config.yaml makes of it
    client: str  # and the name of its pattern
    session_header: str


CLAUDE_CODE_CLIENT = Client(
    CLAUDE_CODE, run_claude, "claude-cli", "claude-code", "x-claude-code-session-id"
)
CODEX_CLIENT = Client(CODEX, run_codex, "codex-cli", "codex", "session-id")
CLIENTS = [
    pytest.param(CLAUDE_CODE_CLIENT, id="claude-code"),
    pytest.param(CODEX_CLIENT, id="codex"),
]


@dataclass(frozen=True)
class Turn:
    """One CLI run: what the proxy saw and answered, what the provider then received."""

    exchange: Exchange
    arrived: Recorded

    @property
    def recalled(self) -> int:
        return int(self.exchange.answer_headers.get("x-memory-recalled", "0"))


def one_run(
    client: Client, executable: Path, chain: Chain, proxy: Proxy, prompt: str, home: Path, cwd: Path
) -> Turn:
    seen, arrived = len(proxy.llm_exchanges()), len(chain.provider.requests)
    client.run(executable, prompt, proxy.url, home, cwd)
    (exchange,) = proxy.llm_exchanges()[seen:]
    (provider_request,) = chain.provider.requests[arrived:]
    assert exchange.status == 200
    return Turn(exchange, provider_request)


def memories_listed(chain: Chain, proxy: Proxy, directory: Path) -> list[dict[str, Any]]:
    """`memory-proxy memories list --json` on the proxy's config and file, as a user runs
    it: no --user."""
    config = offline_config(chain.config, proxy.database, directory)
    result = CliRunner().invoke(main, ["memories", "--config", str(config), "list", "--json"])
    assert result.exit_code == 0, result.output
    return [json.loads(line) for line in result.output.split("\n") if line]


@pytest.mark.parametrize("client", CLIENTS)
def test_a_fact_is_recalled_in_a_new_run_from_the_same_directory_only(
    client: Client, chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    executable = installed(client.cli, tmp_path / "home")
    home = tmp_path / "home"
    project, elsewhere = tmp_path / "heron-service", tmp_path / "other-thing"
    project.mkdir()
    elsewhere.mkdir()
    secret = nonce()
    question = "What is our staging database called?"

    def run(prompt: str, cwd: Path) -> Turn:
        return one_run(client, executable, chain, proxy, prompt, home, cwd)

    told = run(f"Remember this: our staging database is called {secret}.", project)
    session = told.exchange.request.headers[client.session_header]
    assert told.exchange.answer_headers["x-memory-session"] == session
    assert told.exchange.answer_headers["x-memory-project"] == project_id(str(project.resolve()))
    wait_until(lambda: len(proxy.memories()) == 1)  # indexed in the background
    ((user_id, indexed_project, text),) = proxy.memories()
    assert (user_id, indexed_project) == (client.user_id, project_id(str(project.resolve())))
    assert secret in text
    (listed,) = memories_listed(chain, proxy, tmp_path)
    assert (listed["user_id"], listed["client"]) == (client.user_id, client.client)
    assert secret in listed["text"]

    asked = run(question, project)
    assert asked.exchange.request.headers[client.session_header] != session  # a new session
    assert asked.recalled == 1
    assert secret in asked.arrived.body.decode()
    assert secret not in asked.exchange.request.body.decode()  # the proxy put it there

    other = run(question, elsewhere)
    assert other.recalled == 0
    assert secret not in other.arrived.body.decode()
    assert json.loads(other.arrived.body)  # a well-formed request all the same


def test_claude_code_and_codex_under_one_user_share_what_was_told_in_one_directory(
    chain: Chain, tmp_path: Path
) -> None:
    """config.yaml's commented example applied (one user id for both): a fact told to
    Claude Code in a directory is recalled by Codex in the same directory, which both name
    by the same path (a subdirectory of a git repository, where Codex also names the
    repository's root; and reached through a symlink), and not in another directory."""
    home = tmp_path / "home"
    claude, codex = installed(CLAUDE_CODE, home), installed(CODEX, home)
    config = yaml.safe_load(chain.config.read_text())
    config["user_id_mappings"] = one_user_for_claude_code_and_codex()["user_id_mappings"]
    one_user = tmp_path / "one-user.yaml"
    one_user.write_text(yaml.safe_dump(config))
    repository, elsewhere = tmp_path / "repo", tmp_path / "other-thing"
    project = repository / "heron-service"
    project.mkdir(parents=True)
    elsewhere.mkdir()
    subprocess.run(["git", "init", "-q", str(repository)], check=True)
    link = tmp_path / "heron-link"
    link.symlink_to(project)
    secret = nonce()
    question = "What is our staging database called?"
    store = tmp_path / "store"
    store.mkdir()
    with memory_proxy(one_user, chain.litellm_url, store) as proxy:

        def run(client: Client, executable: Path, prompt: str, cwd: Path) -> Turn:
            return one_run(client, executable, chain, proxy, prompt, home, cwd)

        told = f"Remember this: our staging database is called {secret}."
        told_run = run(CLAUDE_CODE_CLIENT, claude, told, project)
        wait_until(lambda: len(proxy.memories()) == 1)
        asked = [run(CODEX_CLIENT, codex, question, project)]
        wait_until(lambda: len(proxy.memories()) == 2)  # that question: recalled next
        asked.append(run(CODEX_CLIENT, codex, question, link))
        other = run(CODEX_CLIENT, codex, question, elsewhere)
        # The same question in the same project is one memory: three in all.
        wait_until(lambda: len(proxy.memories()) == 3)
        memories = proxy.memories()
    same_project = project_id(str(project.resolve()))
    assert told_run.exchange.answer_headers["x-memory-project"] == same_project
    # The fact; then, through the link, the fact and the first question.
    assert [turn.recalled for turn in asked] == [1, 2]
    for turn in asked:
        assert turn.exchange.answer_headers["x-memory-project"] == same_project
        assert "workspaces" in turn.exchange.request.headers["x-codex-turn-metadata"]
        assert secret in turn.arrived.body.decode()
    assert other.recalled == 0
    assert secret not in other.arrived.body.decode()
    assert {user_id for user_id, _, _ in memories} == {"me"}
