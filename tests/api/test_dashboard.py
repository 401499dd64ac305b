"""The dashboard in a real browser (Debian's chromium through chromedriver): each page's
numbers against `/v1/usage`, deleting a session, rating an answer from the live view, and
screenshots of each page in a temporary folder. Plus the page's headers without a browser."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

from memory_proxy.api.dashboard import CALLED_PATHS, CALLED_PREFIXES, STATIC
from memory_proxy.config import MemorySettings
from tests.api.mcp_server.support import call, mcp_client
from tests.browser_support import needs_browser, wait_for
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.shipped_config_support import (
    CLAUDE_CODE_CLIENT,
    CLAUDE_CODE_USER,
    CODEX_CLIENT,
    CODEX_USER,
    shipped_proxy,
)
from tests.support import wait_until

CHAT = "/v1/chat/completions"


def test_the_page_is_served_with_a_strict_policy(run_proxy: ProxyFactory) -> None:
    with run_proxy("http://127.0.0.1:9") as proxy:
        page = httpx.get(f"{proxy}/ui")
        script = httpx.get(f"{proxy}/ui/static/app.js")
        chart = httpx.get(f"{proxy}/ui/static/vendor/uplot.iife.min.js")
        missing = httpx.get(f"{proxy}/ui/static/%2e%2e/__init__.py")
        unknown = httpx.get(f"{proxy}/ui/static/nothing.js")
    assert page.status_code == 200
    assert page.headers["content-type"].startswith("text/html")
    policy = page.headers["content-security-policy"]
    assert "script-src 'self'" in policy and "unsafe-inline" not in policy
    assert "<script>" not in page.text  # no inline script
    assert script.headers["content-type"].startswith("text/javascript")
    assert "innerHTML" not in script.text
    assert chart.status_code == 200
    assert (missing.status_code, unknown.status_code) == (404, 404)


def test_the_page_calls_only_what_its_own_origin_may_use() -> None:
    """A request from the page's own origin passes the browser guard for CALLED_PATHS
    only: every path app.js names must be one of them."""
    script = (STATIC / "app.js").read_text()
    named = set(re.findall(r"""[`"'](/(?:v1|health|ui)[\w/.-]*)""", script))
    assert {"/v1/usage", "/v1/sessions/", "/v1/feedback", "/health"} <= named  # found them
    for path in named:
        assert path in CALLED_PATHS or path.startswith(CALLED_PREFIXES), path


def seed(proxy: str) -> list[str]:
    """Two clients (a custom header and the default), two models, one session each."""
    ids = []
    for user, model, session in [
        ("alice", "gpt-x", "trip"),
        ("alice", "gpt-x", "trip"),
        (None, "claude-x", "notes"),
    ]:
        headers = {"x-session-id": session} | ({"x-memory-user-id": user} if user else {})
        body = {"model": model, "messages": [{"role": "user", "content": "<b>hi</b> " + model}]}
        ids.append(httpx.post(f"{proxy}{CHAT}", json=body, headers=headers).headers["x-request-id"])
    wait_until(lambda: usage(proxy)["total"]["requests"] == 3)
    return ids


def usage(proxy: str, **params: str) -> Any:
    return httpx.get(f"{proxy}/v1/usage", params=params).json()


@pytest.fixture
def screenshots(tmp_path: Path) -> Iterator[Path]:
    """pytest's own temporary folder: kept for the last three runs, then removed (a folder
    of /tmp's own was left behind by every run)."""
    yield tmp_path
    print(f"screenshots in {tmp_path}")


def cells(driver: Any, table: str) -> list[list[str]]:
    rows: list[list[str]] = driver.execute_script(
        f"return [...document.querySelectorAll('#{table} tbody tr')]"
        ".map(r => [...r.children].map(c => c.textContent))"
    )
    return rows


@pytest.mark.browser
@needs_browser
def test_every_page_shows_what_the_apis_say(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    browser: Any,
    screenshots: Path,
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        seed(proxy)
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return document.body.dataset.rendered === 'true'")
        render_ms = browser.execute_script(
            "return performance.getEntriesByName('charts-drawn')[0].startTime"
        )
        print(f"first render (navigation start to charts drawn): {render_ms:.0f} ms")
        browser.save_screenshot(str(screenshots / "overview.png"))
        by_model = usage(proxy, group_by="model", since="24h")
        assert browser.find_element("id", "card-requests").text == str(
            by_model["total"]["requests"]
        )
        models = {row[0]: row for row in cells(browser, "models-table")}
        for row in by_model["data"]:
            assert models[row["model"]][1] == str(row["requests"])
        assert browser.execute_script("return document.querySelectorAll('.uplot').length") == 4
        assert browser.get_log("browser") == []  # no CSP violation, no script error

        browser.find_element("css selector", "[data-tab=clients]").click()
        wait_for(browser, "return document.querySelectorAll('#clients-table tbody tr').length")
        browser.save_screenshot(str(screenshots / "clients.png"))
        clients = {row[0]: row for row in cells(browser, "clients-table")}
        for row in usage(proxy, group_by="client")["data"]:
            assert clients[row["client"]][1] == ", ".join(row["users"])
            assert clients[row["client"]][3] == str(row["requests"])

        browser.find_element("css selector", "[data-tab=sessions]").click()
        wait_for(browser, "return document.querySelectorAll('#sessions-table tbody tr').length")
        sessions = cells(browser, "sessions-table")
        assert sorted(row[0] for row in sessions) == ["notes", "trip"]
        trip = next(i for i, row in enumerate(sessions) if row[0] == "trip")
        browser.find_elements("css selector", "#sessions-table tbody tr")[trip].click()
        wait_for(browser, "return document.querySelectorAll('.message').length")
        messages = browser.find_elements("css selector", ".message")
        assert "<b>hi</b> gpt-x" in messages[0].text  # shown as text, not as HTML
        browser.save_screenshot(str(screenshots / "sessions.png"))
        browser.find_element("id", "delete-session").click()
        browser.switch_to.alert.accept()
        wait_for(
            browser, "return document.querySelectorAll('#sessions-table tbody tr').length === 1"
        )
        listed = httpx.get(f"{proxy}/v1/sessions").json()["data"]
        assert [session["id"] for session in listed] == ["notes"]

        browser.find_element("css selector", "[data-tab=live]").click()
        httpx.post(f"{proxy}{CHAT}", json={"model": "gpt-x"}, headers={"x-memory-user-id": "bob"})
        wait_for(browser, "return document.querySelectorAll('#live-table .rate-up').length")
        browser.find_element("css selector", "#live-table .rate-up").click()
        wait_for(browser, "return document.querySelector('#live-table .good') !== null")
        browser.save_screenshot(str(screenshots / "live.png"))
        assert usage(proxy)["total"]["feedback"] == {"count": 1, "mean": 1.0}

        browser.find_element("css selector", "[data-tab=overview]").click()
        wait_for(
            browser,
            "return document.getElementById('card-feedback').textContent.includes('(1)')",
        )


@pytest.mark.browser
@needs_browser
def test_memories_are_searched_and_forgotten_from_the_page(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    browser: Any,
    screenshots: Path,
) -> None:
    _, url = fake_upstream
    local_model = MemorySettings(private_models=frozenset({"llama-x"}))
    with run_proxy(url, memory=local_model) as proxy:
        for model, text in (
            ("llama-x", "The staging database is called heron-17"),
            ("gpt-x", "Deploys run on Fridays"),
        ):
            body = {"model": model, "messages": [{"role": "user", "content": text}]}
            httpx.post(f"{proxy}{CHAT}", json=body, headers={"x-session-id": "facts"})
        wait_until(lambda: len(memories(proxy)) == 2)
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return !document.querySelector('[data-tab=memories]').hidden")
        browser.find_element("css selector", "[data-tab=memories]").click()
        wait_for(browser, "return document.querySelectorAll('#memories-table tbody tr').length")
        memory, private = MEMORY_COLUMNS.index("Memory"), MEMORY_COLUMNS.index("Private")
        shown = {row[memory].split()[1]: row[private] for row in cells(browser, "memories-table")}
        assert shown == {"The": "private", "Deploys": ""}  # told to the local model or not

        browser.find_element("id", "memory-query").send_keys("staging database")
        browser.find_element("css selector", "#memory-search button").click()
        wait_for(
            browser, "return document.querySelectorAll('#memories-table tbody tr').length === 1"
        )
        (found,) = cells(browser, "memories-table")
        assert "heron-17" in found[MEMORY_COLUMNS.index("Memory")]
        assert found[MEMORY_COLUMNS.index("Private")] == "private"
        browser.save_screenshot(str(screenshots / "memories.png"))

        browser.find_element("css selector", "#memories-table button.danger").click()
        wait_until(lambda: len(memories(proxy)) == 1)
        assert "Fridays" in memories(proxy)[0]["text"]
        assert browser.get_log("browser") == []


MEMORY_COLUMNS = ["User", "Client", "Project", "Private", "Memory", "Created", ""]


@pytest.mark.browser
@needs_browser
def test_the_memories_tab_shows_real_clients_memories_on_a_fresh_shipped_config(
    fake_upstream: tuple[FakeUpstream, str],
    tmp_path: Path,
    browser: Any,
    screenshots: Path,
) -> None:
    """Claude Code and the Codex CLI are each mapped to a user of their own; a browser is
    none of them, yet sees both, by user and by the patterns' names."""
    _, url = fake_upstream
    with shipped_proxy(url, tmp_path) as proxy:
        proxy.as_claude_code("The staging database is heron-17", "cc-1", "/src/heron")
        proxy.as_codex("Deploys run on <b>Fridays</b>", "cx-1", "/src/heron")
        proxy.as_claude_code("Lunch is at noon", "cc-2", "/src/lunch")
        wait_until(lambda: proxy.memory_count() == 3)
        wait_until(lambda: usage(proxy.url)["total"]["requests"] == 3)
        browser.get(f"{proxy.url}/ui")
        wait_for(browser, "return !document.querySelector('[data-tab=memories]').hidden")
        browser.find_element("css selector", "[data-tab=memories]").click()
        wait_for(browser, "return document.querySelectorAll('#memories-table tbody tr').length")
        browser.save_screenshot(str(screenshots / "memories-of-real-clients.png"))
        headers = browser.execute_script(
            "return [...document.querySelectorAll('#memories-table th')].map(h => h.textContent)"
        )
        shown = cells(browser, "memories-table")
        assert len(shown) == 3, shown
        rows = [dict(zip(headers, row, strict=True)) for row in shown]
        assert [(row["User"], row["Client"]) for row in rows] == [
            (CLAUDE_CODE_USER, CLAUDE_CODE_CLIENT),
            (CODEX_USER, CODEX_CLIENT),
            (CLAUDE_CODE_USER, CLAUDE_CODE_CLIENT),
        ]
        assert "<b>Fridays</b>" in rows[1]["Memory"]  # shown as text, not as HTML

        browser.find_element("id", "memory-query").send_keys("staging Fridays")
        browser.find_element("css selector", "#memory-search button").click()
        wait_for(
            browser, "return document.querySelectorAll('#memories-table tbody tr').length === 2"
        )
        found = {row[MEMORY_COLUMNS.index("User")] for row in cells(browser, "memories-table")}
        assert found == {CLAUDE_CODE_USER, CODEX_USER}

        forget = browser.find_elements("css selector", "#memories-table button.danger")
        codex_row = next(
            i
            for i, row in enumerate(cells(browser, "memories-table"))
            if row[MEMORY_COLUMNS.index("User")] == CODEX_USER
        )
        forget[codex_row].click()
        wait_until(lambda: proxy.memory_count() == 2)
        left = httpx.get(f"{proxy.url}/v1/memories").json()["data"]
        assert {memory["user_id"] for memory in left} == {CLAUDE_CODE_USER}

        browser.find_element("css selector", "[data-tab=clients]").click()
        wait_for(browser, "return document.querySelectorAll('#clients-table tbody tr').length")
        clients = {row[0] for row in cells(browser, "clients-table")}
        assert clients == {CLAUDE_CODE_CLIENT, CODEX_CLIENT}
        assert browser.get_log("browser") == []


def memories(proxy: str) -> list[Any]:
    answer: list[Any] = httpx.get(f"{proxy}/v1/memories").json()["data"]
    return answer


@pytest.mark.browser
@needs_browser
def test_memory_tool_calls_have_a_table_of_their_own_and_show_live(
    fake_upstream: tuple[FakeUpstream, str],
    run_proxy: ProxyFactory,
    browser: Any,
    screenshots: Path,
) -> None:
    """Calls to the memory tools (MCP) are no LLM requests: their own table, by tool."""
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        browser.get(f"{proxy}/ui#live")
        wait_for(browser, "return document.body.dataset.rendered === 'true'")
        asyncio.run(tool_calls(proxy))
        wait_for(browser, "return document.querySelectorAll('#live-table tbody tr').length === 3")
        live = [row[3] for row in cells(browser, "live-table")]
        assert live == [
            "tool list_memories (0 memories)",
            "tool search_memory (1 memories)",
            "tool remember (1 memories)",
        ]
        wait_until(lambda: len(usage(proxy, group_by="tool")["data"]) == 3)  # written
        browser.find_element("css selector", "[data-tab=overview]").click()
        wait_for(browser, "return document.querySelectorAll('#tools-table tbody tr').length === 3")
        browser.save_screenshot(str(screenshots / "memory-tools.png"))
        tools = {row[0]: row[1:3] for row in cells(browser, "tools-table")}
        assert tools == {name: ["1", "1" if name != "list_memories" else "0"] for name in tools}
        assert browser.find_element("id", "card-requests").text == "0"  # no LLM request
        assert browser.get_log("browser") == []


async def tool_calls(proxy: str) -> None:
    async with mcp_client(proxy, {"x-memory-user-id": "alice"}) as client:
        await call(client, "remember", {"text": "the deploy key rotates on Fridays"})
        await call(client, "search_memory", {"query": "deploy key"})
        await call(client, "list_memories", {"project": "elsewhere"})
