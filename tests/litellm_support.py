"""The real litellm binary, started on a config for a test module and killed after it; the
shipped `demo` model asked through each client API."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import psutil
import pytest

from supervisor.litellm_binary import LiteLLMNotFound, find_litellm
from tests.support import wait_until


def litellm_binary() -> Path:
    """The pinned LiteLLM (scripts/test sets LITELLM_BIN); missing: skip, or fail in CI."""
    try:
        return find_litellm(None)
    except LiteLLMNotFound as exc:
        if os.environ.get("CI"):
            pytest.fail(str(exc))
        pytest.skip(str(exc))


@contextlib.contextmanager
def litellm_process(config: Path, port: int, master_key: str) -> Iterator[str]:
    """`litellm --config` on loopback until it answers its readiness probe; yields its URL.

    Its output goes to `litellm.log` next to the config, shown when it dies early.
    """
    env = {
        **os.environ,
        "LITELLM_MASTER_KEY": master_key,
        "LITELLM_LOCAL_MODEL_COST_MAP": "True",
    }
    log_path = config.parent / "litellm.log"
    log = log_path.open("w")
    process = subprocess.Popen(
        [
            str(litellm_binary()),
            "--config",
            str(config),
            "--host",
            "127.0.0.1",
            "--port",
            str(port),
        ],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    url = f"http://127.0.0.1:{port}"

    def ready() -> bool:
        assert process.poll() is None, log_path.read_text()[-3000:]
        # The port was free when chosen; in the seconds LiteLLM takes to bind it another
        # server of the run may have (one answered for it once: "Invalid model name").
        if not listening(process.pid, port):
            return False
        try:
            return httpx.get(f"{url}/health/readiness", timeout=2).status_code == 200
        except httpx.HTTPError:
            return False

    try:
        wait_until(ready, timeout=120)
        yield url
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(process.pid, signal.SIGKILL)
        process.wait(timeout=10)
        log.close()


def listening(pid: int, port: int) -> bool:
    """Whether process `pid` listens on `port`."""
    return any(
        c.status == psutil.CONN_LISTEN and c.laddr.port == port
        for c in psutil.Process(pid).net_connections(kind="tcp")
    )


CLIENT_APIS = [
    "chat",
    "chat-stream",
    "messages",
    "messages-stream",
    "responses",
    "responses-stream",
]


def ask_demo(proxy_url: str, api: str, headers: dict[str, str], text: str) -> list[str]:
    """`demo`'s answer to `text` through one client API, as the pieces it arrived in."""
    # Imported here: this module is conftest.py's (shared_litellm), and the SDKs cost 2-3 s
    # of CPU in pytest-xdist's controller, which runs no test.
    import anthropic
    import openai

    openai_client = openai.OpenAI(
        base_url=f"{proxy_url}/v1", api_key="anything", default_headers=headers
    )
    anthropic_client = anthropic.Anthropic(
        base_url=proxy_url, api_key="anything", default_headers=headers
    )
    messages: Any = [{"role": "user", "content": text}]
    if api == "chat":
        answer = openai_client.chat.completions.create(model="demo", messages=messages)
        return [answer.choices[0].message.content or ""]
    if api == "chat-stream":
        chunks = openai_client.chat.completions.create(model="demo", messages=messages, stream=True)
        return [
            c.choices[0].delta.content for c in chunks if c.choices and c.choices[0].delta.content
        ]
    if api == "messages":
        message = anthropic_client.messages.create(model="demo", max_tokens=500, messages=messages)
        return [block.text for block in message.content if block.type == "text"]
    if api == "messages-stream":
        with anthropic_client.messages.stream(
            model="demo", max_tokens=500, messages=messages
        ) as stream:
            return list(stream.text_stream)
    if api == "responses":
        return [openai_client.responses.create(model="demo", input=text).output_text]
    events = openai_client.responses.create(model="demo", input=text, stream=True)
    return [e.delta for e in events if e.type == "response.output_text.delta"]


# What end-to-end tests give recall: they check what is recalled, and on a loaded machine
# (CI's two cores running LiteLLM, the clients and the other tests) the shipped 50 ms
# is missed at times and recall skipped. The budget itself: tests/memory/test_recall.py.
RECALL_BUDGET_MS = 2000
