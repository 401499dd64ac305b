"""A proxy started fresh on a copy of the shipped config.yaml (its SQLite file beside the
copy), and requests shaped like those of the real Claude Code and Codex CLIs (their
user-agents, session headers and working directories, as tests/clients recorded them), for
the tests of what a user sees of their clients' memories."""

from __future__ import annotations

import contextlib
import re
import shutil
import sqlite3
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from tests.litellm_support import RECALL_BUDGET_MS
from tests.support import serve

SHIPPED_CONFIG = Path(__file__).resolve().parents[1] / "config.yaml"
MASTER_KEY = "sk-shipped-" + "k" * 32
CLAUDE_CODE_AGENT = "claude-cli/2.1.332 (external, cli)"
CODEX_AGENT = "codex_exec/0.169.0 (Debian 12.0.0; x86_64) dumb (codex_exec; 0.169.0)"
# What the shipped config.yaml makes of them: user ids, and the patterns' names.
CLAUDE_CODE_USER, CLAUDE_CODE_CLIENT = "claude-cli", "claude-code"
CODEX_USER, CODEX_CLIENT = "codex-cli", "codex"


@dataclass(frozen=True)
class ShippedProxy:
    url: str
    config: Path  # the copy of config.yaml; its memory file is data/memory.sqlite3 beside it

    @property
    def database(self) -> Path:
        return self.config.parent / "data" / "memory.sqlite3"

    def memory_count(self) -> int:
        """Memories indexed so far, read from the file (they are indexed in the background)."""
        if not self.database.exists():
            return 0
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            try:
                (count,) = db.execute("SELECT COUNT(*) FROM memories").fetchone()
            except sqlite3.OperationalError:  # the index's tables are not created yet
                return 0
        return int(count)

    def as_claude_code(self, text: str, session: str, directory: str) -> httpx.Response:
        """One `claude -p` turn: Anthropic messages, the working directory in the prompt."""
        environment = f"# Environment\n - Primary working directory: {directory}\n"
        body = {
            "model": "claude-sonnet-4-5",
            "max_tokens": 100,
            "system": [{"type": "text", "text": environment}],
            "messages": [{"role": "user", "content": text}],
        }
        headers = {
            "user-agent": CLAUDE_CODE_AGENT,
            "x-app": "cli",
            "x-claude-code-session-id": session,
        }
        return httpx.post(f"{self.url}/v1/messages", json=body, headers=headers)

    def as_codex(self, text: str, session: str, directory: str) -> httpx.Response:
        """One `codex exec` turn: the Responses API, the directory in its environment."""
        context = f"<environment_context>\n  <cwd>{directory}</cwd>\n</environment_context>"
        body = {
            "model": "gpt-4o",
            "input": [
                {"role": "user", "content": [{"type": "input_text", "text": context}]},
                {"role": "user", "content": [{"type": "input_text", "text": text}]},
            ],
        }
        headers = {"user-agent": CODEX_AGENT, "session-id": session, "thread-id": session}
        return httpx.post(f"{self.url}/v1/responses", json=body, headers=headers)


# The commented example of config.yaml's user_id_mappings: entries to put in place of
# the shipped ones of the same names, indented as list items under a comment sign.
_COMMENTED_ENTRIES = re.compile(r"(^  #   - .*\n(?:^  #   [- ] .*\n)*)", re.MULTILINE)


def one_user_for_claude_code_and_codex() -> dict[str, Any]:
    """The shipped config with its commented example applied, as the comment says: the
    example's entries in place of the shipped entries of the same names."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_CONFIG.read_text())
    examples = [
        yaml.safe_load(re.sub(r"(?m)^  #   ", "", block))
        for block in _COMMENTED_ENTRIES.findall(SHIPPED_CONFIG.read_text())
    ]
    example = next(
        (
            e
            for e in examples
            if {entry.get("name") for entry in e} >= {CLAUDE_CODE_CLIENT, CODEX_CLIENT}
        ),
        None,
    )
    assert example, "config.yaml shows no example of one user id for Claude Code and Codex"
    patterns = config["user_id_mappings"]["header_patterns"]
    by_name = {entry["name"]: entry for entry in example}
    shipped = {entry["name"]: entry for entry in patterns}
    for name, entry in by_name.items():  # the example's patterns are the shipped ones
        assert {**shipped[name], "user_id": entry["user_id"]} == entry, entry
    config["user_id_mappings"]["header_patterns"] = [
        by_name.get(entry["name"], entry) for entry in patterns
    ]
    return config


@contextlib.contextmanager
def shipped_proxy(
    litellm_url: str, directory: Path, config_text: str | None = None
) -> Iterator[ShippedProxy]:
    """The proxy as `memory-proxy --config config.yaml` starts it on a fresh machine, with
    LiteLLM at `litellm_url`; on `config_text` instead of the shipped file when given.
    Recall gets the tests' budget rather than the shipped 50 ms, which a loaded machine
    misses now and then (what is recalled is asserted, not how fast)."""
    config = directory / "config.yaml"
    if config_text is None:
        shutil.copyfile(SHIPPED_CONFIG, config)
    else:
        config.write_text(config_text)
    settings = load_settings(
        config,
        environ={"LITELLM_MASTER_KEY": MASTER_KEY},
        overrides={"proxy.litellm_url": litellm_url, "recall.timeout_ms": RECALL_BUDGET_MS},
    )
    with serve(MemoryProxy(settings)) as url:
        yield ShippedProxy(url, config)
