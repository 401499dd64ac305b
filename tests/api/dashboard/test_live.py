"""`GET /v1/live` over HTTP: the latest records at once (oldest first), then each new one
once, and a bound key's own user's only."""

from __future__ import annotations

import json
from collections.abc import Callable, Iterator
from typing import Any

import httpx

from memory_proxy.api.dashboard.live import BACKLOG
from memory_proxy.config import ClientKey
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

CHAT = "/v1/chat/completions"
UNBOUND_KEY = "mp-live-unbound-0123456789"
BOUND_KEY = "mp-live-bound-0123456789ab"


def ask(proxy: str, user: str, headers: dict[str, str] | None = None) -> str:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": "hi"}]}
    sent = {"x-memory-user-id": user, **(headers or {})}
    answer = httpx.post(f"{proxy}{CHAT}", json=body, headers=sent)
    assert answer.status_code == 200
    return answer.headers["x-request-id"]


def events(lines: Iterator[str]) -> Iterator[tuple[str, Any]]:
    name = None
    for line in lines:
        if line.startswith("event: "):
            name = line.removeprefix("event: ")
        elif line.startswith("data: "):
            yield str(name), json.loads(line.removeprefix("data: "))


def backlog_then_next(
    proxy: str, headers: dict[str, str], then: Callable[[], str]
) -> tuple[list[str], str]:
    """The request ids sent before the first `state` event, and the first request event
    after `then()` is called."""
    with (
        httpx.Client(base_url=proxy, headers=headers, timeout=10) as client,
        client.stream("GET", "/v1/live") as live,
    ):
        stream = events(live.iter_lines())
        backlog = []
        for name, data in stream:
            if name == "state":
                break
            backlog.append(data["request_id"])
        sent = then()
        following = next(data["request_id"] for name, data in stream if name == "request")
        assert following == sent
    return backlog, following


def test_the_live_view_starts_with_the_latest_requests_oldest_first(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        sent = [ask(proxy, "alice" if n % 2 else "bob") for n in range(BACKLOG + 5)]
        backlog, _ = backlog_then_next(proxy, {}, lambda: ask(proxy, "carol"))
    assert backlog == sent[-BACKLOG:]


def test_requests_not_yet_written_are_in_the_backlog_and_sent_once(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    """Records reach the usage log in batches, a while after the live feed: a view
    opened in between sees each of them, once."""
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        sent = [ask(proxy, "alice") for _ in range(3)]
        backlog, following = backlog_then_next(proxy, {}, lambda: ask(proxy, "alice"))
    assert backlog == sent
    assert following not in backlog


def test_a_bound_key_sees_its_own_users_backlog_only(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    keys = (ClientKey(UNBOUND_KEY), ClientKey(BOUND_KEY, "alice"))
    with run_proxy(url, client_keys=keys) as proxy:
        unbound = {"authorization": f"Bearer {UNBOUND_KEY}"}
        bound = {"authorization": f"Bearer {BOUND_KEY}"}
        mine = [ask(proxy, "ignored", bound) for _ in range(2)]
        ask(proxy, "bob", unbound)
        wait_until(lambda: usage_count(proxy, unbound) == 3)
        backlog, _ = backlog_then_next(proxy, bound, lambda: ask(proxy, "ignored", bound))
    assert backlog == mine


def usage_count(proxy: str, headers: dict[str, str]) -> int:
    answer = httpx.get(f"{proxy}/v1/usage", headers=headers).json()
    return int(answer["total"]["requests"])
