"""The real Claude Code and Codex CLIs, driven non-interactively through the whole chain:

    CLI --> memory proxy (real uvicorn, the shipped config.yaml's detection)
        --> the real litellm binary --> a fake provider that records every request

The CLIs come from the npm registry at the versions pinned in scripts/clients-package.json
(scripts/test installs them into .npm-clients/). Each run gets its own HOME, CLAUDE_CONFIG_DIR
or CODEX_HOME, an environment with nothing from ours (no real keys), telemetry, update checks
and plugin syncs off, and a timeout: nothing leaves loopback.
"""

from __future__ import annotations

import contextlib
import json
import os
import signal
import sqlite3
import subprocess
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest
import yaml
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from memory_proxy.stores.packed_text import unpack
from tests.fake_upstream import Recorded
from tests.litellm_support import RECALL_BUDGET_MS
from tests.shared_litellm import MASTER_KEY
from tests.support import serve

REPO = Path(__file__).resolve().parents[2]
SHIPPED_CONFIG = REPO / "config.yaml"
PINS = REPO / "scripts" / "clients-package.json"
CLI_BIN = REPO / ".npm-clients" / "node_modules" / ".bin"
CLAUDE_MODEL = "fake-claude"  # LiteLLM: anthropic/ -> the provider's /v1/messages
CODEX_MODEL = "fake-codex"  # LiteLLM: openai/ -> the provider's /v1/responses
RUN_TIMEOUT = 60.0


@dataclass(frozen=True)
class Cli:
    command: str
    package: str

    @property
    def pinned_version(self) -> str:
        version: str = json.loads(PINS.read_text())["dependencies"][self.package]
        return version


CLAUDE_CODE = Cli("claude", "@anthropic-ai/claude-code")
CODEX = Cli("codex", "@openai/codex")


def installed(cli: Cli, home: Path) -> Path:
    """The CLI's executable once `--version` runs and names the pinned version; otherwise
    skip the test saying why (fail in CI, where scripts/test must have installed it)."""
    path = CLI_BIN / cli.command
    problem = _why_not_runnable(cli, path, home)
    if problem is None:
        return path
    if os.environ.get("CI"):
        pytest.fail(problem)
    pytest.skip(problem)


def _why_not_runnable(cli: Cli, path: Path, home: Path) -> str | None:
    if not path.exists():
        return f"{cli.package} is not installed in {path.parent} (scripts/test installs it)"
    try:
        answer = subprocess.run(
            [str(path), "--version"],
            env=isolated_env(home),
            capture_output=True,
            text=True,
            timeout=RUN_TIMEOUT,
        )
    except (OSError, subprocess.TimeoutExpired) as exc:
        return f"{path} --version did not run: {exc}"
    if cli.pinned_version not in answer.stdout:
        said = (answer.stdout or answer.stderr).strip()[-500:]
        return f"{path} --version said {said!r}, not the pinned {cli.pinned_version}"
    return None


def isolated_env(home: Path, **extra: str) -> dict[str, str]:
    """Nothing from our environment but PATH: no real API keys, proxies or config dirs."""
    path = os.environ.get("PATH", "/usr/bin:/bin")
    return {"PATH": path, "HOME": str(home), "TERM": "dumb", **extra}


def clients_config(litellm_sections: dict[str, Any]) -> dict[str, Any]:
    """The shipped config.yaml, LiteLLM's sections replaced by the shared LiteLLM's (its
    `demo` and models that reach the fake provider through LiteLLM's real Anthropic and
    OpenAI (Responses) provider code: tests/shared_litellm.py)."""
    config: dict[str, Any] = yaml.safe_load(SHIPPED_CONFIG.read_text())
    return {**config, **litellm_sections}


@dataclass
class Exchange:
    """One request as the client sent it to the proxy, and the proxy's answer headers."""

    request: Recorded
    status: int = 0
    answer_headers: dict[str, str] = field(default_factory=dict)


@dataclass
class RecordingApp:
    """Passes every request to the proxy unchanged and keeps what went in and came out."""

    app: ASGIApp
    exchanges: list[Exchange] = field(default_factory=list)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = {k.decode("latin-1"): v.decode("latin-1") for k, v in scope["headers"]}
        query = scope["query_string"].decode()
        exchange = Exchange(Recorded(scope["method"], scope["path"], query, headers, b""))
        # Kept from the start: a client may exit before the proxy is done with its request.
        self.exchanges.append(exchange)

        async def recording_receive() -> Message:
            message = await receive()
            exchange.request.body += message.get("body", b"")
            return message

        async def recording_send(message: Message) -> None:
            if message["type"] == "http.response.start":
                exchange.status = message["status"]
                exchange.answer_headers = {
                    k.decode("latin-1"): v.decode("latin-1") for k, v in message["headers"]
                }
            await send(message)

        await self.app(scope, recording_receive, recording_send)


@dataclass
class Proxy:
    url: str
    recorder: RecordingApp
    database: Path

    def llm_exchanges(self) -> list[Exchange]:
        return [e for e in self.recorder.exchanges if e.request.method == "POST"]

    def memories(self) -> list[tuple[str, str, str]]:
        """(user id, project, text) of every long-term memory indexed so far."""
        with contextlib.closing(sqlite3.connect(self.database)) as db:
            rows = db.execute("SELECT user_id, project, text FROM memories ORDER BY seq")
            return [(user, project, unpack(text)) for user, project, text in rows]


def offline_config(config: Path, database: Path, directory: Path) -> Path:
    """`config` naming `database` as the store, written in `directory`: what a user gives
    `memory-proxy memories` beside the running proxy."""
    tree = yaml.safe_load(config.read_text())
    tree["memory"] = {**tree.get("memory", {}), "sqlite_path": str(database)}
    path = directory / "offline-config.yaml"
    path.write_text(yaml.safe_dump(tree))
    return path


@contextlib.contextmanager
def memory_proxy(config: Path, litellm_url: str, store_dir: Path) -> Iterator[Proxy]:
    """A real proxy on the config (its own SQLite store), recording what reaches it."""
    settings = load_settings(
        config,
        environ={"LITELLM_MASTER_KEY": MASTER_KEY},
        overrides={
            "proxy.litellm_url": litellm_url,
            "memory.sqlite_path": str(store_dir / "memory.sqlite3"),
            "recall.timeout_ms": RECALL_BUDGET_MS,
        },
    )
    recorder = RecordingApp(MemoryProxy(settings))
    with serve(recorder) as url:
        yield Proxy(url, recorder, store_dir / "memory.sqlite3")


@dataclass(frozen=True)
class CliRun:
    stdout: str
    stderr: str
    seconds: float


def run(argv: list[str], env: dict[str, str], cwd: Path) -> CliRun:
    """Run a CLI to completion in its own process group; on timeout kill the group."""
    started = time.monotonic()
    process = subprocess.Popen(
        argv,
        env=env,
        cwd=cwd,
        stdin=subprocess.DEVNULL,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
    )
    try:
        stdout, stderr = process.communicate(timeout=RUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(process.pid, signal.SIGKILL)
        stdout, stderr = process.communicate()
        raise AssertionError(f"{argv[0]} ran over {RUN_TIMEOUT}s: {stderr[-2000:]}") from None
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)  # anything it left behind
    assert process.returncode == 0, f"{argv[0]} exited {process.returncode}: {stderr[-3000:]}"
    return CliRun(stdout, stderr, time.monotonic() - started)


def claude_env(home: Path, **settings: str) -> dict[str, str]:
    """Claude Code's environment: its own config directory, nothing sent home, `settings`
    (the proxy's address and a key among them)."""
    return isolated_env(
        home,
        CLAUDE_CONFIG_DIR=str(home / ".claude"),
        CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC="1",
        DISABLE_AUTOUPDATER="1",
        DISABLE_TELEMETRY="1",
        DISABLE_ERROR_REPORTING="1",
        **settings,
    )


def run_claude(
    executable: Path, prompt: str, proxy_url: str, home: Path, cwd: Path, *options: str
) -> CliRun:
    """`claude -p PROMPT`: one non-interactive run, a new session each time (unless
    `options` say `--continue`: the directory's latest)."""
    env = claude_env(
        home,
        ANTHROPIC_BASE_URL=proxy_url,
        ANTHROPIC_API_KEY="sk-ant-client-key",
        # Any background call for a "small" model goes to one LiteLLM knows.
        ANTHROPIC_DEFAULT_HAIKU_MODEL=CLAUDE_MODEL,
    )
    return run([str(executable), "-p", prompt, "--model", CLAUDE_MODEL, *options], env, cwd)


CODEX_CONFIG = """\
model = "{model}"
model_provider = "memory-proxy"
check_for_update_on_startup = false

[analytics]
enabled = false

# Each of these syncs or fetches from GitHub or chatgpt.com at start-up.
[features]
plugins = false
remote_plugin = false
plugin_sharing = false
apps = false

[model_providers.memory-proxy]
name = "memory proxy"
base_url = "{proxy_url}/v1"
env_key = "MEMORY_PROXY_API_KEY"
wire_api = "responses"
"""


def run_codex(executable: Path, prompt: str, proxy_url: str, home: Path, cwd: Path) -> CliRun:
    """`codex exec PROMPT` with a model provider pointing at the proxy."""
    codex_home = home / ".codex"
    codex_home.mkdir(parents=True, exist_ok=True)
    config = CODEX_CONFIG.format(model=CODEX_MODEL, proxy_url=proxy_url)
    (codex_home / "config.toml").write_text(config)
    env = isolated_env(home, CODEX_HOME=str(codex_home), MEMORY_PROXY_API_KEY="sk-client-key")
    argv = [str(executable), "exec", "--skip-git-repo-check", "--color", "never", prompt]
    return run(argv, env, cwd)


def nonce() -> str:
    """A word no prompt shares, to find one run's requests among the module's."""
    return f"n{uuid.uuid4().hex[:12]}"
