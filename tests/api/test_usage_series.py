"""`GET /v1/usage/series`, `POST /v1/feedback`, the `x-request-id` of every answer and
the finish reason of every call, through a real proxy."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.accounting.series import series_view
from memory_proxy.config import ClientKey
from memory_proxy.records.series import GroupBucket, LatencyBucket, UsageSeries
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

USAGE_FILE = Path("data/memory.sqlite3")
CHAT = "/v1/chat/completions"
JSON_BODY = {"content-type": "application/json"}


def seed(records: list[UsageRecord]) -> None:
    async def write() -> None:
        log = SQLiteUsageLog(USAGE_FILE, 1000)
        try:
            await log.add(records)
        finally:
            await log.aclose()

    asyncio.run(write())


def record(moment: float, **changes: Any) -> UsageRecord:
    values: dict[str, Any] = {
        "time": moment,
        "request_id": f"r{moment}",
        "user_id": "alice",
        "session_id": None,
        "client": "default",
        "model": "gpt-x",
        "endpoint": CHAT,
        "status": 200,
        "stream": False,
        "upstream_ms": 5.0,
        "first_byte_ms": 6.0,
        "total_ms": 7.0,
        "prompt_tokens": 3,
        "completion_tokens": 4,
        "cost": 0.5,
        "finish_reason": "stop",
    }
    return UsageRecord(**(values | changes))


def test_series_buckets_are_dense_and_grouped(run_proxy: ProxyFactory) -> None:
    hour = 3600
    this_hour = time.time() // hour * hour
    seed(
        [
            record(this_hour - 2 * hour + 1, model="claude-x", total_ms=20.0),
            record(this_hour - 2 * hour + 2),
            record(this_hour, status=500, cost=None),
            record(this_hour - 8 * 86400),  # before the window
        ]
    )
    with run_proxy("http://127.0.0.1:9") as proxy:
        answer = httpx.get(f"{proxy}/v1/usage/series", params={"bucket": "1h", "since": "5h"})
        by_client = httpx.get(f"{proxy}/v1/usage/series", params={"group_by": "client"}).json()
    assert answer.status_code == 200
    body = answer.json()
    assert body["object"] == "usage.series"
    assert body["bucket_seconds"] == hour
    assert len(body["times"]) == 6  # from the bucket holding `since` to the one holding now
    assert all(b - a == hour for a, b in zip(body["times"], body["times"][1:], strict=False))
    assert body["total"]["requests"][-1] == 1
    assert body["total"]["errors"][-1] == 1
    assert sum(body["total"]["requests"]) == 3
    assert sum(body["total"]["total_tokens"]) == 21
    groups = {g["model"]: g for g in body["groups"]}
    assert [g["model"] for g in body["groups"]] == ["gpt-x", "claude-x"]
    assert sum(groups["claude-x"]["requests"]) == 1
    assert sum(groups["gpt-x"]["cost"]) == pytest.approx(0.5)
    busy = body["total"]["requests"].index(2)
    assert body["latency"]["total_p50"][busy] == pytest.approx(7.0, rel=0.091)
    assert body["latency"]["total_p95"][busy] == pytest.approx(20.0, rel=0.091)
    assert body["latency"]["total_p50"][busy - 1] is None
    assert len(by_client["times"]) == 25  # default: 24 buckets of an hour back, and now's
    assert [g["client"] for g in by_client["groups"]] == ["default"]


def test_an_empty_range_is_zeros_not_an_error(run_proxy: ProxyFactory) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        body = httpx.get(f"{proxy}/v1/usage/series", params={"bucket": "5m"}).json()
    assert body["groups"] == []
    assert len(body["times"]) == 25
    assert set(body["total"]["requests"]) == {0}
    assert set(body["latency"]["first_byte_p95"]) == {None}


def test_series_view_leaves_out_rows_beyond_the_window() -> None:
    data = UsageSeries(
        [GroupBucket(9, "m", 1, 0, 1, 1, 0.1), GroupBucket(10, None, 2, 1, 0, 0, 0.0)],
        [LatencyBucket(99, 1.0, 2.0, 3.0, 4.0)],
    )
    view = series_view(data, 10, 11, 100, "model")
    assert view["times"] == [1000, 1100]
    assert view["groups"] == [
        {"model": "none", "requests": [2, 0], "errors": [1, 0], "total_tokens": [0, 0],
         "cost": [0.0, 0.0]},
    ]  # fmt: skip
    assert view["latency"]["total_p95"] == [None, None]


@pytest.mark.parametrize(
    ("path", "params", "message"),
    [
        ("/v1/usage/series", {"bucket": "7m"}, "bucket must be one of 5m, 1h, 1d"),
        ("/v1/usage/series", {"group_by": "colour"}, "group_by must be one of model, client"),
        ("/v1/usage/series", {"since": "soon"}, "since='soon': expected epoch seconds"),
        ("/v1/usage/series", {"bucket": "5m", "since": "30d"}, "at most 2000 buckets"),
    ],
)
def test_bad_series_queries_are_400s_in_the_clients_format(
    run_proxy: ProxyFactory, path: str, params: dict[str, str], message: str
) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        answer = httpx.get(f"{proxy}{path}", params=params)
    assert answer.status_code == 400
    error = answer.json()["error"]
    assert message in error["message"]
    assert error["type"] == "invalid_request_error"


def test_series_and_feedback_need_a_key_and_a_bound_key_sees_its_own(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    keys = (ClientKey("mp-client-key-0123456789"), ClientKey("mp-bound-key-0123456789", "bob"))
    everyone = {"x-api-key": "mp-client-key-0123456789"}
    bound = {"x-api-key": "mp-bound-key-0123456789"}
    with run_proxy(url, client_keys=tuple(keys)) as proxy:
        alices = httpx.post(
            f"{proxy}{CHAT}", json={"model": "m"}, headers={**everyone, "x-memory-user-id": "a"}
        ).headers["x-request-id"]
        httpx.post(f"{proxy}{CHAT}", json={"model": "m"}, headers=bound)
        wait_until(lambda: usage(proxy, everyone)["total"]["requests"] == 2)
        anonymous = httpx.get(f"{proxy}/v1/usage/series")
        anonymous_feedback = httpx.post(
            f"{proxy}/v1/feedback", json={"request_id": alices, "score": 1}
        )
        own = httpx.get(f"{proxy}/v1/usage/series", headers=bound).json()
        not_yours = httpx.post(
            f"{proxy}/v1/feedback", json={"request_id": alices, "score": 1}, headers=bound
        )
    assert (anonymous.status_code, anonymous_feedback.status_code) == (401, 401)
    assert sum(own["total"]["requests"]) == 1
    assert not_yours.status_code == 404


def usage(proxy: str, headers: dict[str, str] | None = None, **params: str) -> Any:
    return httpx.get(f"{proxy}/v1/usage", params=params, headers=headers).json()


def test_feedback_on_an_answer_shows_in_the_usage_totals(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        ids = [
            httpx.post(f"{proxy}{CHAT}", json={"model": model}).headers["x-request-id"]
            for model in ("gpt-x", "gpt-x", "claude-x")
        ]
        wait_until(lambda: usage(proxy)["total"]["requests"] == 3)
        rated = [
            httpx.post(f"{proxy}/v1/feedback", json={"request_id": ids[0], "score": -1}),
            httpx.post(
                f"{proxy}/v1/feedback",
                json={"request_id": ids[1], "score": 0.5, "comment": "fine <b>ok</b>"},
            ),
            httpx.post(f"{proxy}/v1/feedback", json={"request_id": ids[2], "score": 1}),
        ]
        unknown = httpx.post(f"{proxy}/v1/feedback", json={"request_id": "nope", "score": 1})
        by_model = usage(proxy, group_by="model")
    assert len(set(ids)) == 3
    assert [answer.status_code for answer in rated] == [201, 201, 201]
    assert rated[1].json()["comment"] == "fine <b>ok</b>"
    assert unknown.status_code == 404
    assert "no request 'nope'" in unknown.json()["error"]["message"]
    rows = {row["model"]: row for row in by_model["data"]}
    assert rows["gpt-x"]["feedback"] == {"count": 2, "mean": -0.25}
    assert rows["claude-x"]["feedback"] == {"count": 1, "mean": 1.0}
    assert by_model["total"]["feedback"] == {"count": 3, "mean": 0.167}
    assert rows["gpt-x"]["finish_reasons"] == {"stop": 2}


@pytest.mark.parametrize(
    "body",
    [
        b"{not json",
        b"[1]",
        b'{"score": 1}',
        b'{"request_id": "a\\nb", "score": 1}',
        b'{"request_id": "r1"}',
        b'{"request_id": "r1", "score": true}',
        b'{"request_id": "r1", "score": "1"}',
        b'{"request_id": "r1", "score": 1.5}',
        b'{"request_id": "r1", "score": -2}',
        b'{"request_id": "r1", "score": 1, "comment": 5}',
        b'{"request_id": "r1", "score": 1, "comment": "' + b"x" * 2001 + b'"}',
        b'{"request_id": "r1", "score": 1, "comment": "' + b"x" * 20000 + b'"}',
    ],
)
def test_bad_feedback_is_a_400(run_proxy: ProxyFactory, body: bytes) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        answer = httpx.post(f"{proxy}/v1/feedback", content=body, headers=JSON_BODY)
    assert answer.status_code == 400
    assert answer.json()["error"]["type"] == "invalid_request_error"


def test_every_answer_names_its_request(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        chosen = httpx.post(f"{proxy}{CHAT}", json={"model": "m"}, headers={"x-request-id": "mine"})
        ours = httpx.get(f"{proxy}/v1/models")
        refused = httpx.post(
            f"{proxy}{CHAT}", json={"model": "m"}, headers={"x-memory-user-id": "bad id!"}
        )
    with run_proxy("http://127.0.0.1:9", upstream_wait_seconds=0.1) as proxy:
        unavailable = httpx.post(f"{proxy}{CHAT}", json={"model": "m"})
    assert chosen.headers["x-request-id"] == "mine"
    assert upstream.requests[0].headers["x-request-id"] == "mine"
    assert len(ours.headers["x-request-id"]) == 32
    assert len(refused.headers["x-request-id"]) == 32 and refused.status_code == 400
    assert unavailable.status_code == 503
    assert len(unavailable.headers.get_list("x-request-id")) == 1


@pytest.mark.parametrize(
    ("path", "body", "reason"),
    [
        (CHAT, {"model": "m"}, "stop"),
        (CHAT, {"model": "m", "stream": True}, "stop"),
        ("/v1/messages", {"model": "m", "max_tokens": 5}, "end_turn"),
        ("/v1/messages", {"model": "m", "max_tokens": 5, "stream": True}, "end_turn"),
        ("/v1/responses", {"model": "m", "input": "hi"}, "completed"),
        ("/v1/responses", {"model": "m", "input": "hi", "stream": True}, "completed"),
    ],
)
def test_each_call_records_why_its_answer_ended(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    path: str,
    body: dict[str, Any],
    reason: str,
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        httpx.post(f"{proxy}{path}", json=body)
        wait_until(lambda: usage(proxy)["total"]["requests"] == 1)
        totals = usage(proxy)["total"]
    assert totals["finish_reasons"] == {reason: 1}


def test_a_client_that_hangs_up_is_counted_as_a_disconnect(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    upstream, url = fake_upstream
    with run_proxy(url) as proxy:
        with httpx.stream("POST", f"{proxy}/endless", json={"model": "m"}) as answer:
            next(answer.iter_raw())
        wait_until(upstream.saw_disconnect.is_set)
        wait_until(lambda: usage(proxy)["total"]["requests"] == 1)
        totals = usage(proxy)["total"]
    assert totals["client_disconnects"] == 1
    assert totals["finish_reasons"] == {"client_disconnected": 1}
