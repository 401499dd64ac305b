"""Usage records through a real proxy: what is recorded for each kind of answer, the
`GET /v1/usage` totals, the `memory-proxy usage` table and the JSON log line."""

from __future__ import annotations

import asyncio
import json
import logging
from pathlib import Path
from typing import Any

import httpx
import pytest
from click.testing import CliRunner

from memory_proxy.cli.main import main
from memory_proxy.config import ClientKey, MemorySettings
from memory_proxy.logging_setup import configure_logging
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.conftest import UPSTREAM_KEY, ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.sdks import anthropic, openai
from tests.support import wait_until

USAGE_FILE = Path("data/memory.sqlite3")  # the default store, in each test's own directory
MESSAGES: Any = [{"role": "user", "content": "hi"}]  # typed loosely for both SDKs
JSON = {"content-type": "application/json"}


def stored_records() -> list[UsageRecord]:
    """What the proxy wrote; read after it stopped (it writes the last records then)."""

    async def read() -> list[UsageRecord]:
        log = SQLiteUsageLog(USAGE_FILE, 1000)
        try:
            return await log.since(0)
        finally:
            await log.aclose()

    return asyncio.run(read())


def call_with_sdk(proxy: str, kind: str) -> None:
    headers = {"x-memory-user-id": "alice", "x-session-id": "s1"}
    if kind.startswith("openai"):
        client = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-x", default_headers=headers)
        if kind == "openai-stream":
            chunks = client.chat.completions.create(model="gpt-x", messages=MESSAGES, stream=True)
            text = "".join(c.choices[0].delta.content or "" for c in chunks if c.choices)
        else:
            answer = client.chat.completions.create(model="gpt-x", messages=MESSAGES)
            text = answer.choices[0].message.content or ""
    else:
        claude = anthropic.Anthropic(base_url=proxy, api_key="sk-x", default_headers=headers)
        if kind == "anthropic-stream":
            with claude.messages.stream(model="claude-x", max_tokens=9, messages=MESSAGES) as s:
                text = "".join(s.text_stream)
        else:
            message = claude.messages.create(model="claude-x", max_tokens=9, messages=MESSAGES)
            text = "".join(block.text for block in message.content if block.type == "text")
    assert text == "Hello from the fake provider"


@pytest.mark.parametrize(
    ("kind", "endpoint", "stream", "tokens", "cost"),
    [
        ("openai", "/v1/chat/completions", False, (5, 5), 0.00042),
        ("openai-stream", "/v1/chat/completions", True, (4, 6), None),
        ("anthropic", "/v1/messages", False, (5, 5), 0.00042),
        ("anthropic-stream", "/v1/messages", True, (5, 8), None),
    ],
)
def test_one_record_per_call_with_tokens_and_cost(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    kind: str,
    endpoint: str,
    stream: bool,
    tokens: tuple[int, int],
    cost: float | None,
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        call_with_sdk(proxy, kind)
    (record,) = stored_records()
    assert (record.endpoint, record.stream, record.status) == (endpoint, stream, 200)
    assert (record.prompt_tokens, record.completion_tokens) == tokens
    assert record.cost == cost
    assert (record.user_id, record.session_id, record.client) == ("alice", "s1", "custom-header")
    assert record.model in ("gpt-x", "claude-x")
    assert record.first_byte_ms is not None
    assert 0 < record.upstream_ms <= record.total_ms


def test_stream_counts_are_not_asked_for_when_the_client_said_no(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    declined = {"stream": True, "stream_options": {"include_usage": False}}
    with run_proxy(url) as proxy:
        for extra in (declined, {"stream": True}):
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m", **extra})
    sent = [json.loads(request.body) for request in upstream.requests]
    assert [body["stream_options"] for body in sent] == [
        {"include_usage": False},
        {"include_usage": True},
    ]
    declined_record, asked_record = stored_records()
    assert declined_record.prompt_tokens is None
    assert asked_record.prompt_tokens == 4


def test_only_llm_calls_are_recorded_and_failures_are(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        httpx.get(f"{proxy}/v1/models")
        httpx.post(f"{proxy}/v1/chat/completions", content=b"{not json", headers=JSON)
    with run_proxy("http://127.0.0.1:9", upstream_wait_seconds=0.1) as proxy:
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"})
    assert [(r.endpoint, r.status) for r in stored_records()] == [
        ("/v1/chat/completions", 400),
        ("/v1/chat/completions", 503),
    ]


def usage(proxy: str, **params: str) -> httpx.Response:
    return httpx.get(f"{proxy}/v1/usage", params=params)


def test_usage_totals_by_user_model_and_client(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    calls = [("alice", "gpt-x"), ("alice", "gpt-x"), ("bob", "gpt-y")]
    with run_proxy(url) as proxy:
        for user, model in calls:
            httpx.post(
                f"{proxy}/v1/chat/completions",
                json={"model": model},
                headers={"x-memory-user-id": user},
            )
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "gpt-y"})
        wait_until(lambda: usage(proxy).json()["total"]["requests"] == 4)
        by_user = usage(proxy, group_by="user").json()
        by_model = usage(proxy, group_by="model", since="1h").json()
        by_client = usage(proxy, group_by="client").json()
        later = usage(proxy, since="2999-01-01T00:00:00").json()
    assert {row["user"]: row["requests"] for row in by_user["data"]} == {
        "alice": 2,
        "bob": 1,
        "default-dev": 1,
    }
    assert by_user["object"] == "usage.summary"
    assert by_user["total"]["prompt_tokens"] == 20
    assert by_user["total"]["cost"] == pytest.approx(4 * 0.00042)
    assert [(row["model"], row["requests"]) for row in by_model["data"]] == [
        ("gpt-x", 2),
        ("gpt-y", 2),
    ]
    assert {row["client"]: row["requests"] for row in by_client["data"]} == {
        "custom-header": 3,
        "default": 1,
    }
    assert later["data"] == []
    assert later["total"]["requests"] == 0


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({"group_by": "colour"}, "group_by must be one of user, model, client"),
        ({"since": "last tuesday"}, "since='last tuesday': expected epoch seconds"),
    ],
)
def test_bad_usage_queries_are_400s(
    run_proxy: ProxyFactory, params: dict[str, str], message: str
) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        answer = usage(proxy, **params)
    assert answer.status_code == 400
    assert message in answer.json()["error"]["message"]


OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"


def test_usage_needs_a_client_key_and_a_bound_key_sees_its_own(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    keys = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "pycharm-ai"))
    with run_proxy(url, client_keys=keys) as proxy:
        for key in (OUR_KEY, BOUND_KEY):
            httpx.post(
                f"{proxy}/v1/chat/completions",
                json={"model": "m"},
                headers={"x-api-key": key, "x-memory-user-id": "alice"},
            )
        everyone = {"x-api-key": OUR_KEY}
        wait_until(lambda: usage_as(proxy, everyone).json()["total"]["requests"] == 2)
        anonymous = usage(proxy)
        own = usage_as(proxy, {"authorization": f"Bearer {BOUND_KEY}"}).json()
    assert anonymous.status_code == 401
    assert [(row["user"], row["requests"]) for row in own["data"]] == [("pycharm-ai", 1)]
    assert own["data"][0]["requests"] == own["total"]["requests"]


def usage_as(proxy: str, headers: dict[str, str]) -> httpx.Response:
    return httpx.get(f"{proxy}/v1/usage", headers=headers, params={"group_by": "user"})


def test_the_usage_command_prints_a_table(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, tmp_path: Path
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        for model in ("gpt-x", "gpt-x", "claude-x"):
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": model})
    config = tmp_path / "config.yaml"
    config.write_text(f"memory:\n  sqlite_path: {USAGE_FILE.resolve()}\n")
    result = CliRunner().invoke(main, ["usage", "--config", str(config), "--since", "1h"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[1].split()[:4] == ["model", "requests", "errors", "streams"]
    rows = {line.split()[0]: line.split()[1:] for line in lines[3:] if not line.startswith("-")}
    assert rows["gpt-x"][:5] == ["2", "0", "0", "10", "10"]
    assert rows["claude-x"][0] == "1"
    assert rows["total"][:5] == ["3", "0", "0", "15", "15"]
    assert rows["total"][5] == "0.0013"


def test_the_usage_command_explains_an_in_memory_store(tmp_path: Path) -> None:
    config = tmp_path / "config.yaml"
    config.write_text("memory:\n  store: memory\n")
    result = CliRunner().invoke(main, ["usage", "--config", str(config)])
    assert result.exit_code == 1
    assert "GET /v1/usage" in result.output


def test_json_log_lines_carry_the_usage_fields_and_no_secret(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    capsys: pytest.CaptureFixture[str],
) -> None:
    _, url = fake_upstream
    configure_logging("json", secrets=(UPSTREAM_KEY, "sk-client-secret"))
    try:
        with run_proxy(url) as proxy:
            httpx.post(
                f"{proxy}/v1/chat/completions",
                json={"model": "m", "messages": [{"role": "user", "content": "sk-client-secret"}]},
                headers={"authorization": "Bearer sk-client-secret", "x-session-id": "s9"},
            )
    finally:
        logging.getLogger().handlers[:] = []
    output = capsys.readouterr().out
    lines = [json.loads(line) for line in output.splitlines()]
    (entry,) = [line for line in lines if line["logger"] == "memory_proxy.access"]
    record_fields = set(UsageRecord.__dataclass_fields__) - {"time"}
    assert record_fields <= set(entry)
    assert entry["prompt_tokens"] == 5
    assert entry["cost"] == 0.00042
    assert entry["session_id"] == "s9"
    assert "sk-client-secret" not in output
    assert UPSTREAM_KEY not in output


def test_memory_off_still_records_usage(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url, memory=MemorySettings(enabled=False)) as proxy:
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"})
    assert [record.completion_tokens for record in stored_records()] == [5]
