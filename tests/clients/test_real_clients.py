"""The real Claude Code and Codex CLIs through the proxy and the real LiteLLM.

Each test runs one CLI once (one turn: the fake provider answers with text, no tool call)
and checks that the request reached the provider through the chain, that the proxy
recognised the client with the shipped config.yaml's `user_id_mappings`, and what the
client really sent. That last part is the record other code relies on:

Claude Code 2.1.332, `claude -p`:
- `POST /v1/messages?beta=true`, streamed;
- `user-agent: claude-cli/<v> (external, sdk-cli)` (`(external, cli)` interactive),
  `x-app: cli`, `anthropic-beta: claude-code-20250219,...`;
- conversation: `x-claude-code-session-id` (a UUID, new per run), also `session_id` inside
  `metadata.user_id`, a JSON string;
- working directory: a line ` - Primary working directory: <cwd>` in a message with
  `"role": "system"` inside `messages`, not in the top-level `system` blocks.

Codex 0.169.0, `codex exec`:
- `POST /v1/responses`, streamed;
- `user-agent: codex_exec/<v> (<os> <os version>; <arch>) <terminal> (codex_exec; <v>)`,
  `originator: codex_exec` (`codex-tui` interactive);
- conversation: `session-id` = `thread-id` = `x-client-request-id` = body
  `prompt_cache_key` (a UUIDv7, new per run); `x-codex-turn-metadata`, a JSON object
  with `session_id`, `turn_id`, ... and, only when the cwd is inside a git repository,
  `workspaces: {"<repo root>": {"latest_git_commit_hash", "has_changes"}}` (seen by hand);
- working directory: `<cwd>...</cwd>` inside `<environment_context>`, in a user message
  of `input`.
"""

from __future__ import annotations

import itertools
import json
import re
import shlex
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.config import load_settings
from tests.clients.conftest import REPLY, Chain
from tests.clients.support import (
    CLAUDE_CODE,
    CODEX,
    SHIPPED_CONFIG,
    CliRun,
    Proxy,
    claude_env,
    installed,
    nonce,
    run,
    run_claude,
    run_codex,
)
from tests.fake_upstream import Recorded
from tests.readme_support import fenced_blocks, section
from tests.support import wait_until

pytestmark = [pytest.mark.clients, pytest.mark.litellm]

UUID = r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"


def shipped_name(user_id: str) -> str:
    """The name of the shipped config.yaml's user-agent pattern for a user id."""
    mappings = load_settings(SHIPPED_CONFIG, environ={}).user_id_mappings
    return next(p.client_name for p in mappings.header_patterns if p.user_id == user_id)


def usage(proxy: Proxy, group_by: str) -> dict[str, int]:
    answer = httpx.get(f"{proxy.url}/v1/usage", params={"group_by": group_by})
    return {row[group_by]: row["requests"] for row in answer.json()["data"]}


def the_one_request(chain: Chain, proxy: Proxy, word: str) -> tuple[Recorded, Recorded]:
    """What the CLI sent to the proxy and what the provider then got from LiteLLM: one each."""
    (exchange,) = proxy.llm_exchanges()
    sent = exchange.request
    (arrived,) = [r for r in chain.provider.requests if word.encode() in r.body]
    assert word.encode() in sent.body
    assert arrived.headers["user-agent"].startswith("litellm/")
    return sent, arrived


def assert_recognised(proxy: Proxy, user_id: str) -> None:
    """The proxy's usage log names the client by the shipped pattern's name, and nobody
    else."""
    wait_until(lambda: sum(usage(proxy, "user").values()) == 1)  # records are batched
    assert usage(proxy, "user") == {user_id: 1}
    assert usage(proxy, "client") == {shipped_name(user_id): 1}


def test_claude_code_reaches_the_provider_and_is_recognised(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    claude = installed(CLAUDE_CODE, tmp_path / "home")
    project = tmp_path / "project"
    project.mkdir()
    word = nonce()

    result = run_claude(claude, f"Remember the word {word}.", proxy.url, tmp_path / "home", project)

    assert result.stdout.strip() == REPLY
    sent, arrived = the_one_request(chain, proxy, word)
    assert (sent.path, sent.query) == ("/v1/messages", "beta=true")
    assert arrived.path == "/v1/messages"
    headers = sent.headers
    version = re.escape(CLAUDE_CODE.pinned_version)
    assert re.fullmatch(rf"claude-cli/{version} \(external, sdk-cli\)", headers["user-agent"])
    assert headers["x-app"] == "cli"
    assert "claude-code-20250219" in headers["anthropic-beta"].split(",")
    session = headers["x-claude-code-session-id"]
    assert re.fullmatch(UUID, session)
    body: dict[str, Any] = json.loads(sent.body)
    assert body["stream"] is True
    assert json.loads(body["metadata"]["user_id"])["session_id"] == session
    assert claude_working_directory(body) == str(project.resolve())
    assert_recognised(proxy, "claude-cli")


def claude_working_directory(body: dict[str, Any]) -> str | None:
    """Claude Code 2.1 puts its environment in a system-role message, not in `system`."""
    assert "Primary working directory" not in json.dumps(body["system"])
    for message in body["messages"]:
        if message["role"] != "system":
            continue
        for block in message["content"]:
            found = re.search(r"^ - Primary working directory: (.+)$", block["text"], re.M)
            if found:
                return found.group(1)
    return None


def test_codex_reaches_the_provider_and_is_recognised(
    chain: Chain, proxy: Proxy, tmp_path: Path
) -> None:
    codex = installed(CODEX, tmp_path / "home")
    project = tmp_path / "project"
    project.mkdir()
    word = nonce()

    result = run_codex(codex, f"Remember the word {word}.", proxy.url, tmp_path / "home", project)

    assert result.stdout.strip() == REPLY
    sent, arrived = the_one_request(chain, proxy, word)
    assert sent.path == "/v1/responses"
    assert arrived.path == "/v1/responses"
    headers = sent.headers
    version = re.escape(CODEX.pinned_version)
    assert re.match(rf"codex_exec/{version} \(", headers["user-agent"])
    assert headers["originator"] == "codex_exec"
    session = headers["session-id"]
    assert re.fullmatch(UUID, session)
    assert headers["thread-id"] == headers["x-client-request-id"] == session
    assert json.loads(headers["x-codex-turn-metadata"])["session_id"] == session
    body: dict[str, Any] = json.loads(sent.body)
    assert body["stream"] is True
    assert body["prompt_cache_key"] == session
    assert codex_working_directory(body) == str(project.resolve())
    assert_recognised(proxy, "codex-cli")
    # Codex hangs up as soon as it has read response.completed, maybe before LiteLLM
    # ended its stream: it had the whole answer all the same.
    total = httpx.get(f"{proxy.url}/v1/usage").json()["total"]
    assert total["finish_reasons"] == {"completed": 1}


def codex_working_directory(body: dict[str, Any]) -> str | None:
    for item in body["input"]:
        if item.get("role") != "user":
            continue
        for part in item["content"]:
            found = re.search(r"<environment_context>.*?<cwd>(.*?)</cwd>", part["text"], re.S)
            if found:
                return found.group(1)
    return None


UNKNOWN_MODEL_NOTICE = "Claude Code doesn't recognize the model"


def readme_claude_code_on_demo() -> tuple[dict[str, str], list[str]]:
    """The README's command for Claude Code on `demo` (in a block, or inline): the
    environment it sets and the command."""
    text = section("Set-up")
    spans = [body for _, body in fenced_blocks(text)] + re.findall(r"`([^`\n]+)`", text)
    (command,) = [span for span in spans if "claude --model demo" in span]
    words = shlex.split(command.replace("\\\n", " "))
    settings = dict(word.split("=", 1) for word in itertools.takewhile(lambda w: "=" in w, words))
    return settings, words[len(settings) :]


def test_claude_code_on_demo_as_the_readme_says_is_told_no_unknown_model_notice(
    proxy: Proxy, tmp_path: Path
) -> None:
    """The README's command (its port swapped for the test proxy's), with `-p`: the demo
    answers, and Claude Code says nothing of an unknown model; without the README's
    window setting it does."""
    home = tmp_path / "home"
    claude = installed(CLAUDE_CODE, home)
    settings, command = readme_claude_code_on_demo()
    assert command[0] == "claude"
    assert settings.pop("ANTHROPIC_BASE_URL") == "http://127.0.0.1:8764"

    def ask(**env: str) -> CliRun:
        argv = [str(claude), "-p", "Hello", *command[1:]]
        return run(argv, claude_env(home, ANTHROPIC_BASE_URL=proxy.url, **env), tmp_path)

    as_the_readme_says = ask(**settings)
    assert as_the_readme_says.stdout.startswith("Echo model: I received ")
    assert UNKNOWN_MODEL_NOTICE not in as_the_readme_says.stderr
    assert UNKNOWN_MODEL_NOTICE in ask(ANTHROPIC_API_KEY="anything").stderr
