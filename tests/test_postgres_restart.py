"""PostgreSQL restarted under load (`memory.store: postgres`): every request still gets
its answer (memory fails open), what memory could not do is counted (and logged once, not
once a request), and once the database is back the pool's new connections serve memory
again."""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import httpx
import pytest

from memory_proxy.config import MemorySettings
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.postgres_support import PostgresServer
from tests.support import wait_until

CLIENTS = 6


@pytest.fixture
def own_server() -> Iterator[PostgresServer]:
    """A server of the test's own: it is stopped midway."""
    server = PostgresServer()
    yield server
    server.close()


def counter(proxy: str, name: str) -> float:
    """Summed over its labels."""
    text = httpx.get(f"{proxy}/metrics").text
    found = re.findall(rf"^{name}_total(?:{{[^}}]*}})? (\S+)$", text, re.MULTILINE)
    return sum(float(value) for value in found)


def test_requests_go_through_a_restart_and_memory_comes_back(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    own_server: PostgresServer,
    caplog: pytest.LogCaptureFixture,
) -> None:
    upstream, url = fake_upstream
    shared = MemorySettings(store="postgres", postgres_url=own_server.schema_url())
    statuses: list[int] = []
    stop = threading.Event()
    with run_proxy(url, memory=shared) as proxy:

        def client(number: int) -> None:
            with httpx.Client(timeout=30) as http:
                turn = 0
                while not stop.is_set():
                    turn += 1
                    answer = http.post(
                        f"{proxy}/v1/chat/completions",
                        json={"model": "fake", "messages": [{"role": "user", "content": "hi"}]},
                        headers={"x-session-id": f"load-{number}", "x-memory-user-id": "load"},
                    )
                    statuses.append(answer.status_code)

        threads = [threading.Thread(target=client, args=(n,)) for n in range(CLIENTS)]
        for thread in threads:
            thread.start()
        try:
            wait_until(lambda: len(statuses) >= 50, timeout=60)
            own_server.stop()
            during = len(statuses)
            wait_until(lambda: len(statuses) >= during + 50, timeout=60)
            own_server.start()
            after = len(statuses)
            wait_until(lambda: len(statuses) >= after + 50, timeout=60)
        finally:
            stop.set()
            for thread in threads:
                thread.join()
        assert set(statuses) == {200} and len(statuses) >= 150
        assert counter(proxy, "memory_proxy_memory_store_errors") > 0
        assert caplog.text.count("memory store failed to") == 1  # not one line a request

        def remembered() -> bool:
            """A new conversation's second turn gets its first from the store."""
            session = {"x-session-id": f"after-{len(upstream.requests)}"}
            for text in ("first turn", "second turn"):
                httpx.post(
                    f"{proxy}/v1/chat/completions",
                    json={"model": "fake", "messages": [{"role": "user", "content": text}]},
                    headers=session,
                )
            return b"first turn" in upstream.requests[-1].body

        wait_until(remembered, timeout=30)
