"""The Memories panel says what recall did: blocks per day, tokens injected, the share of
questions given a block, from the usage records (`recalled_tokens`)."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from tests.api.test_dashboard import CHAT, memories, usage
from tests.browser_support import needs_browser, wait_for
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until


def ask(proxy: str, text: str, session: str) -> httpx.Response:
    body = {"model": "gpt-x", "messages": [{"role": "user", "content": text}]}
    return httpx.post(f"{proxy}{CHAT}", json=body, headers={"x-session-id": session})


def test_usage_records_and_totals_carry_the_blocks_tokens(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        ask(proxy, "The staging database is called heron-17", "facts")
        wait_until(lambda: len(memories(proxy)) == 1)
        recalled = ask(proxy, "what is the staging database called?", "later")
        ask(proxy, "how do I bake sourdough bread?", "other")
        wait_until(lambda: usage(proxy)["total"]["requests"] == 3)
        recall = usage(proxy)["total"]["recall"]
    assert recalled.headers["x-memory-recalled"] == "1"
    assert (recall["questions"], recall["blocks"], recall["block_share"]) == (3, 1, 0.3333)
    assert 40 < recall["mean_tokens"] == recall["tokens"] < 250  # the block, note and all


@pytest.mark.browser
@needs_browser
def test_the_memories_panel_says_what_recall_put_into_requests(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, browser: Any
) -> None:
    _, url = fake_upstream
    with run_proxy(url) as proxy:
        ask(proxy, "The staging database is called heron-17", "facts")
        wait_until(lambda: len(memories(proxy)) == 1)
        ask(proxy, "what is the staging database called?", "later")
        wait_until(lambda: usage(proxy)["total"]["requests"] == 2)
        tokens = usage(proxy)["total"]["recall"]["mean_tokens"]
        browser.get(f"{proxy}/ui")
        wait_for(browser, "return !document.querySelector('[data-tab=memories]').hidden")
        browser.find_element("css selector", "[data-tab=memories]").click()
        wait_for(browser, "return document.getElementById('recall-summary').textContent")
        line = browser.find_element("id", "recall-summary").text
        assert line == (
            "Recall, last 7 days: 50.0% of 2 questions given a block (1, 0.1 a day), "
            f"{int(tokens + 0.5)} tokens each on average."
        )
        assert browser.get_log("browser") == []
