"""The dashboard in a real browser (Debian's chromium through chromedriver), beyond its
numbers: every tab has a URL and the Back button walks back through them; the 1 h, 24 h
and 7 d ranges; a mistyped model name is no chart series of its own; the Live tab shows
the latest requests at once; a proxy with client keys asks for one, then works."""

from __future__ import annotations

import asyncio
import dataclasses
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.config import ClientKey
from memory_proxy.records.usage import UsageRecord
from memory_proxy.stores.sqlite_usage import SQLiteUsageLog
from tests.api.test_dashboard import cells, seed
from tests.browser_support import needs_browser, wait_for
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

pytestmark = [pytest.mark.browser, needs_browser]
CHAT = "/v1/chat/completions"
CLIENT_KEY = "mp-dashboard-key-0123456789"
# Where the proxy of `run_proxy` keeps its usage log (the working directory is the test's).
USAGE_FILE = Path("data/memory.sqlite3")


def visible_panel(driver: Any) -> str:
    panels: list[str] = driver.execute_script(
        "return [...document.querySelectorAll('main .panel')].filter(p => !p.hidden).map(p => p.id)"
    )
    (panel,) = panels
    return panel


def wait_for_panel(driver: Any, name: str) -> None:
    wait_for(driver, f"return document.getElementById('{name}').hidden === false")
    assert visible_panel(driver) == name
    active = driver.execute_script(
        "return document.querySelector('#tabs button.active').dataset.tab"
    )
    assert active == name


def click_tab(driver: Any, name: str) -> None:
    driver.find_element("css selector", f"[data-tab={name}]").click()
    wait_for_panel(driver, name)


def test_each_tab_has_a_url_and_back_goes_back_through_them(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        seed(proxy)
        wait_until(lambda: httpx.get(f"{proxy}/v1/memories").json()["data"])
        browser.get(f"{proxy}/ui#memories")
        wait_for_panel(browser, "memories")
        wait_for(browser, "return document.querySelectorAll('#memories-table tbody tr').length")
        assert browser.find_element("css selector", "[data-tab=memories]").is_displayed()

        click_tab(browser, "sessions")
        assert browser.current_url == f"{proxy}/ui#sessions"
        wait_for(browser, "return document.querySelectorAll('#sessions-table tbody tr').length")
        click_tab(browser, "clients")
        assert browser.current_url == f"{proxy}/ui#clients"

        browser.back()
        wait_for_panel(browser, "sessions")
        assert browser.current_url == f"{proxy}/ui#sessions"
        browser.back()
        wait_for_panel(browser, "memories")
        browser.forward()
        wait_for_panel(browser, "sessions")

        browser.get(f"{proxy}/ui#live")
        wait_for_panel(browser, "live")
        browser.get(f"{proxy}/ui#no-such-tab")
        wait_for_panel(browser, "overview")
        browser.get(f"{proxy}/ui")
        wait_for_panel(browser, "overview")
        click_tab(browser, "clients")
        browser.back()
        wait_for_panel(browser, "overview")
        assert browser.current_url == f"{proxy}/ui"
        assert browser.get_log("browser") == []


def old_records(*records: tuple[float, str, int]) -> None:
    """(seconds ago, model, status) records, written to the usage log before the proxy
    starts: what a proxy that has been running for days holds."""
    now = time.time()
    template = UsageRecord(
        time=now,
        request_id="r",
        user_id="alice",
        session_id=None,
        client="default",
        model="demo",
        endpoint=CHAT,
        status=200,
        stream=False,
        upstream_ms=10.0,
        first_byte_ms=12.0,
        total_ms=13.0,
        prompt_tokens=5,
        completion_tokens=7,
        cost=0.5,
    )
    made = [
        dataclasses.replace(
            template, time=now - ago, request_id=f"old-{n}", model=model, status=status
        )
        for n, (ago, model, status) in enumerate(records)
    ]

    async def write() -> None:
        log = SQLiteUsageLog(USAGE_FILE, 1000)
        await log.add(made)
        await log.aclose()

    asyncio.run(write())


def chart(driver: Any, chart_id: str) -> tuple[list[str], int]:
    """The labels of a chart's series and how many time buckets it draws."""
    labels: list[str] = driver.execute_script(
        f"return state.charts['{chart_id}'].series.slice(1).map(s => s.label)"
    )
    buckets: int = driver.execute_script(f"return state.charts['{chart_id}'].data[0].length")
    return labels, buckets


def series_length(proxy: str, bucket: str, since: str) -> int:
    answer = httpx.get(f"{proxy}/v1/usage/series", params={"bucket": bucket, "since": since}).json()
    return len(answer["times"])


HOUR, DAY = 3600, 86400


def test_the_range_buttons_show_the_last_hour_day_and_week(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    _, url = fake_upstream
    old_records((600, "demo", 200), (3 * HOUR, "demo", 200), (3 * DAY, "gpt-x", 200))
    with run_proxy(url) as proxy:
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return document.body.dataset.rendered === 'true'")
        for range_name, bucket, requests, models in [
            ("24h", "1h", "2", ["demo"]),
            ("1h", "5m", "1", ["demo"]),
            ("7d", "1h", "3", ["demo", "gpt-x"]),
            ("24h", "1h", "2", ["demo"]),
        ]:
            browser.find_element("css selector", f"[data-range='{range_name}']").click()
            wait_for(
                browser,
                f"return document.getElementById('card-requests').textContent === '{requests}'",
            )
            wait_for(
                browser,
                f"return state.charts['chart-models'].data[0].length === "
                f"{series_length(proxy, bucket, range_name)}",
            )
            active = browser.find_element("css selector", "[data-range].active")
            assert active.get_attribute("data-range") == range_name
            assert sorted(row[0] for row in cells(browser, "models-table")) == models
            assert chart(browser, "chart-models")[0] == models
        assert browser.get_log("browser") == []


def test_a_mistyped_model_is_no_chart_series_of_its_own(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    """Failed requests are one series, whatever their model; a model gets its own once it
    has answered in the range."""
    _, url = fake_upstream
    old_records(
        (300, "demo", 200),
        (400, "dmeo", 400),
        (500, "demo", 500),
        (3 * DAY, "gtp-4o", 400),
        (3 * DAY, "gpt-x", 200),
    )
    with run_proxy(url) as proxy:
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return document.body.dataset.rendered === 'true'")
        assert chart(browser, "chart-models")[0] == ["demo", "failed requests"]
        assert chart(browser, "chart-cost")[0] == ["demo"]
        failed = browser.execute_script(
            "return state.charts['chart-models'].data[2].reduce((a, b) => a + b, 0)"
        )
        answered = browser.execute_script(
            "return state.charts['chart-models'].data[1].reduce((a, b) => a + b, 0)"
        )
        assert (answered, failed) == (1, 2)
        browser.find_element("css selector", "[data-range='7d']").click()
        wait_for(browser, "return document.getElementById('card-requests').textContent === '5'")
        assert chart(browser, "chart-models")[0] == ["demo", "gpt-x", "failed requests"]
        assert browser.get_log("browser") == []


def test_the_live_tab_shows_the_latest_requests_at_once(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        ids = [
            httpx.post(
                f"{proxy}{CHAT}",
                json={"model": "gpt-x", "messages": [{"role": "user", "content": f"q{n}"}]},
                headers={"x-memory-user-id": f"user-{n}"},
            ).headers["x-request-id"]
            for n in range(55)
        ]
        wait_until(lambda: httpx.get(f"{proxy}/v1/usage").json()["total"]["requests"] == 55)
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return document.body.dataset.rendered === 'true'")
        click_tab(browser, "live")
        wait_for(browser, "return document.querySelectorAll('#live-table tbody tr').length === 50")
        users = [row[1] for row in cells(browser, "live-table")]
        assert users == [f"user-{n}" for n in reversed(range(5, 55))]  # newest first
        assert ids  # every one answered
        httpx.post(
            f"{proxy}{CHAT}", json={"model": "gpt-x"}, headers={"x-memory-user-id": "latest"}
        )
        wait_for(browser, "return document.querySelectorAll('#live-table tbody tr').length === 51")
        assert cells(browser, "live-table")[0][1] == "latest"
        assert browser.get_log("browser") == []


def test_with_client_keys_the_page_asks_for_one_and_then_works(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    """Served to this machine without a key, the page asks for one when its calls are
    refused; once typed, every part works: the overview, the Memories tab, the live view
    (its backlog and new requests). Opened on a tab that reads no API at first (Live),
    it asks all the same."""
    _, url = fake_upstream
    key = {"authorization": f"Bearer {CLIENT_KEY}"}

    def ask(text: str) -> None:
        body = {"model": "gpt-x", "messages": [{"role": "user", "content": text}]}
        httpx.post(f"{proxy}{CHAT}", json=body, headers={**key, "x-session-id": "s1"})

    with run_proxy(url, client_keys=(ClientKey(CLIENT_KEY),)) as proxy:
        ask("the staging database is heron-17")
        ask("deploys run on Fridays")
        wait_until(lambda: len(httpx.get(f"{proxy}/v1/memories", headers=key).json()["data"]) == 2)
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return !document.getElementById('key-form').hidden")
        assert "client key" in browser.find_element("id", "error").text
        browser.find_element("id", "key").send_keys(CLIENT_KEY)
        browser.find_element("css selector", "#key-form button").click()
        wait_for(browser, "return document.getElementById('card-requests')?.textContent === '2'")
        assert browser.find_element("id", "key-form").get_attribute("hidden") is not None
        assert browser.find_element("id", "error").text == ""

        wait_for(browser, "return !document.querySelector('[data-tab=memories]').hidden")
        click_tab(browser, "memories")
        wait_for(browser, "return document.querySelectorAll('#memories-table tbody tr').length")
        click_tab(browser, "live")
        wait_for(browser, "return document.querySelectorAll('#live-table .rate-up').length === 2")
        ask("one more")
        wait_for(browser, "return document.querySelectorAll('#live-table .rate-up').length === 3")

        browser.execute_script("sessionStorage.clear()")
        browser.refresh()  # on #live: a page that asks for nothing but the live events
        wait_for(browser, "return !document.getElementById('key-form').hidden")
        browser.find_element("id", "key").send_keys(CLIENT_KEY)
        browser.find_element("css selector", "#key-form button").click()
        wait_for_panel(browser, "live")
        wait_for(browser, "return document.querySelectorAll('#live-table .rate-up').length === 3")
        errors = [e for e in browser.get_log("browser") if "401" not in e["message"]]
        assert errors == []
