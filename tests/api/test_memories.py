"""The memories API through a real proxy: listing, search, one memory, forgetting a project,
projects; errors in the clients' shape; no index, a failing one (whose memories a caller
reaches: test_memories_scope)."""

from __future__ import annotations

import dataclasses
import logging
import sqlite3
from functools import partial
from typing import Any, cast

import httpx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from starlette.applications import Starlette

from memory_proxy.api.caller import IdentifiedCaller
from memory_proxy.api.caller_scope import CallerScope
from memory_proxy.api.memories import MemoriesAPI
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.identity.auth import identify
from memory_proxy.stores.base import MemoryIndex, SearchBusy
from tests.api.memories_support import (
    ALICE,
    BLOG,
    BOB,
    BOBS,
    DEPLOY,
    GENERAL,
    LUNCH,
    NO_LITELLM,
    PORT,
    SHOP,
    delete,
    get,
    memory,
    openai_error,
    remember,
    texts,
)
from tests.conftest import ProxyFactory
from tests.sdks import anthropic, openai
from tests.support import RedisServer, serve


def test_listing_is_newest_first_paged_and_narrowed_by_project(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(*SHOP, GENERAL, BLOG, BOBS)
        everything = get(proxy, "/v1/memories")
        first_two = get(proxy, "/v1/memories", limit="2")
        last = get(proxy, "/v1/memories", limit="2", offset="4")
        shop = get(proxy, "/v1/memories", project="shop")
        general = get(proxy, "/v1/memories", project="")
        capped = get(proxy, "/v1/memories", limit="100000")
    assert texts(everything) == ["blog fact", "general fact"] + [
        f"shop fact {n}" for n in (3, 2, 1)
    ]
    assert everything.json()["data"][0] == BLOG.describe()
    assert set(everything.json()["data"][0]) >= {"id", "text", "project", "session_id", "client"}
    assert "score" not in everything.json()["data"][0]
    assert (texts(first_two), first_two.json()["has_more"]) == (["blog fact", "general fact"], True)
    assert (texts(last), last.json()["has_more"]) == (["shop fact 1"], False)
    assert texts(shop) == ["shop fact 3", "shop fact 2", "shop fact 1"]
    assert texts(general) == ["general fact"]
    assert general.json()["data"][0]["project"] is None
    assert capped.json()["limit"] == 200


def test_a_query_searches_best_first_with_scores(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(memory(PORT), memory(DEPLOY, at=2), memory(LUNCH, at=3))
        remember(memory(PORT, project="blog"), memory(PORT, user="bob"))
        # BM25 weighs a word by its rarity in the whole index: give it other words.
        remember(*(memory(f"unrelated note {n}", user="carol") for n in range(20)))
        found = get(proxy, "/v1/memories", q="staging database port", project="shop")
        second = get(proxy, "/v1/memories", q="staging database port", limit="1", offset="1")
        nothing = get(proxy, "/v1/memories", q="what did we say?")
        blank = get(proxy, "/v1/memories", q="  ", project="shop")
    hits = found.json()["data"]
    assert [hit["text"] for hit in hits] == [PORT, DEPLOY]
    assert hits[0]["score"] > hits[1]["score"] > 0
    assert texts(second) == [PORT]  # after the same text in the other project
    assert second.json()["has_more"] is True
    assert texts(nothing) == []  # no topic words: nothing to search for
    assert texts(blank) == [LUNCH, DEPLOY, PORT]  # a blank query lists


def test_a_private_models_memories_are_shown_marked_listed_and_searched(
    run_proxy: ProxyFactory,
) -> None:
    """Their owner sees them all: recall alone keeps them from hosted models."""
    told_llama = dataclasses.replace(memory(PORT), private=True)
    with run_proxy(NO_LITELLM) as proxy:
        remember(told_llama, memory(DEPLOY, at=2))
        listed = get(proxy, "/v1/memories").json()["data"]
        found = get(proxy, "/v1/memories", q="staging database port").json()["data"]
        everyone = get(proxy, "/v1/memories", headers={}, q="staging database port")
        one = get(proxy, f"/v1/memories/{told_llama.id}").json()
    assert [(item["text"], item["private"]) for item in listed] == [(DEPLOY, False), (PORT, True)]
    assert [(item["text"], item["private"]) for item in found] == [(PORT, True), (DEPLOY, False)]
    assert texts(everyone) == [PORT, DEPLOY]
    assert one == told_llama.describe() and one["private"] is True


def test_one_memory_is_read_and_deleted_and_then_404s(run_proxy: ProxyFactory) -> None:
    record = memory(PORT)
    with run_proxy(NO_LITELLM) as proxy:
        remember(record)
        read = get(proxy, f"/v1/memories/{record.id}")
        deleted = delete(proxy, f"/v1/memories/{record.id}")
        again = get(proxy, f"/v1/memories/{record.id}")
        deleted_again = delete(proxy, f"/v1/memories/{record.id}")
        slashed = get(proxy, "/v1/memories/a/b")
    assert read.json() == record.describe()
    assert deleted.json() == {"id": record.id, "user_id": "alice", "deleted": True}
    assert openai_error(again, 404) == f"no memory {record.id!r} for user 'alice'"
    assert again.json()["error"]["type"] == "not_found_error"
    openai_error(deleted_again, 404)
    assert openai_error(slashed, 404) == "no memory 'a/b' for user 'alice'"


def test_forgetting_needs_a_project_and_spares_the_rest(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(*SHOP, GENERAL, BLOG, BOBS)
        bare = delete(proxy, "/v1/memories")
        kept = get(proxy, "/v1/memories")
        shop = delete(proxy, "/v1/memories", project="shop")
        shop_again = delete(proxy, "/v1/memories", project="shop")
        general = delete(proxy, "/v1/memories", project="")
        left = get(proxy, "/v1/memories")
        bobs = get(proxy, "/v1/memories", BOB)
    assert "name the project to forget" in openai_error(bare, 400)
    assert len(texts(kept)) == 5
    assert shop.json() == {"user_id": "alice", "project": "shop", "deleted": 3}
    assert openai_error(shop_again, 404) == "no memories in project 'shop' for user 'alice'"
    assert general.json() == {"user_id": "alice", "project": None, "deleted": 1}
    assert texts(left) == ["blog fact"]
    assert texts(bobs) == ["bob's shop fact"]


def test_projects_are_listed_with_counts_and_last_use(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(*SHOP, GENERAL, BOBS)
        projects = get(proxy, "/v1/projects").json()
        nobody = get(proxy, "/v1/projects", {"x-memory-user-id": "carol"}).json()
    assert projects["data"] == [
        {"project": None, "user_id": "alice", "memory_count": 1, "last_used": 4},
        {"project": "shop", "user_id": "alice", "memory_count": 3, "last_used": 3},
    ]
    assert nobody["data"] == []


@pytest.mark.parametrize(
    ("params", "headers", "message"),
    [
        ({"limit": "many"}, ALICE, "limit and offset must be numbers"),
        ({"offset": "-1"}, ALICE, "limit must be >= 1, offset >= 0"),
        ({"offset": "9" * 20}, ALICE, "offset must be at most"),
        ({"q": "port", "offset": "9" * 20}, ALICE, "offset must be at most"),
        ({"project": "a b"}, ALICE, "project is not a valid project id"),
        ({"user_id": "a b"}, ALICE, "user_id is not a valid user id"),
        ({}, {"x-memory-user-id": "a b"}, "x-memory-user-id must be"),
    ],
)
def test_bad_parameters_are_400s(
    run_proxy: ProxyFactory, params: dict[str, str], headers: dict[str, str], message: str
) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        answers = [
            get(proxy, "/v1/memories", headers, **params),
            delete(proxy, "/v1/memories", headers, **{"project": "p", **params}),
        ]
    for answer in answers:
        assert message in openai_error(answer, 400)


def test_any_query_parameters_get_an_answer_never_a_failure(run_proxy: ProxyFactory) -> None:
    text = st.text(st.characters(exclude_categories=["Cs"]), max_size=40)
    parameters = st.dictionaries(
        st.sampled_from(["q", "project", "user_id", "limit", "offset"]),
        text | st.integers(min_value=-(2**70), max_value=2**70).map(str),
    )
    with run_proxy(NO_LITELLM) as proxy, httpx.Client(base_url=proxy, headers=ALICE) as client:
        remember(memory(PORT), memory(DEPLOY, project=""), memory(LUNCH, user="bob"))

        @settings(max_examples=150, deadline=None)
        @given(method=st.sampled_from(["GET", "DELETE"]), params=parameters)
        def answered(method: str, params: dict[str, str]) -> None:
            answer = client.request(method, "/v1/memories", params=params)
            assert answer.status_code in (200, 400, 404), answer.text
            assert answer.headers["content-type"] == "application/json"

        answered()


def test_the_sdks_see_their_own_error_classes(run_proxy: ProxyFactory) -> None:
    """The endpoints are OpenAI-style paths, so their errors are OpenAI-shaped; both SDKs
    turn them into their not-found and bad-request errors."""
    with run_proxy(NO_LITELLM) as proxy:
        gpt = openai.OpenAI(base_url=f"{proxy}/v1", api_key="sk-x", default_headers=ALICE)
        claude = anthropic.Anthropic(base_url=proxy, api_key="sk-x", default_headers=ALICE)
        with pytest.raises(openai.NotFoundError) as gpt_missing:
            gpt.get("/memories/nope", cast_to=object)
        with pytest.raises(anthropic.NotFoundError) as claude_missing:
            claude.get("/v1/memories/nope", cast_to=object)
        with pytest.raises(openai.BadRequestError):
            gpt.delete("/memories", cast_to=object)
        with pytest.raises(anthropic.BadRequestError):
            claude.delete("/v1/memories", cast_to=object)
    assert "no memory 'nope'" in gpt_missing.value.message
    assert "no memory 'nope'" in str(claude_missing.value)


def test_without_a_local_index_the_endpoints_say_so(
    run_proxy: ProxyFactory, redis_server: RedisServer
) -> None:
    on_redis = MemorySettings(store="redis", redis_url=redis_server.url)
    with run_proxy(NO_LITELLM, memory=on_redis) as proxy:
        redis = [get(proxy, path) for path in ("/v1/memories", "/v1/memories/x", "/v1/projects")]
    with run_proxy(NO_LITELLM, memory=MemorySettings(enabled=False)) as proxy:
        disabled = get(proxy, "/v1/memories")
    for answer in redis:
        assert "only in a local index" in openai_error(answer, 501)
        assert "store is redis" in answer.json()["error"]["message"]
    assert "local memory is disabled" in openai_error(disabled, 404)


def alone(index: object) -> IdentifiedCaller:
    """The memories API over `index` alone, behind the middleware that identifies its
    caller (a program on this machine)."""
    config = Settings()
    scope = CallerScope(config.user_id_mappings)
    api = MemoriesAPI(cast(MemoryIndex, index), scope, config.memory)
    return IdentifiedCaller(Starlette(routes=api.routes()), partial(identify, client_keys=()))


class BrokenIndex:
    def __getattr__(self, name: str) -> Any:
        async def fail(*args: object, **kwargs: object) -> None:
            raise sqlite3.OperationalError("disk I/O error")

        return fail


class BusyIndex:
    async def search(self, *args: object, **kwargs: object) -> None:
        raise SearchBusy("the memory index is busy: 64 searches waiting")


def test_a_search_while_the_index_is_busy_is_a_503_to_retry(
    caplog: pytest.LogCaptureFixture,
) -> None:
    with serve(alone(BusyIndex())) as url:
        answer = get(url, "/v1/memories", q="port")
    assert openai_error(answer, 503) == "the memory index is busy: 64 searches waiting"
    assert answer.headers["retry-after"] == "1"
    assert not [r for r in caplog.records if r.levelno >= logging.WARNING]


def test_a_failing_index_is_a_logged_503(caplog: pytest.LogCaptureFixture) -> None:
    with serve(alone(BrokenIndex())) as url:
        answers = [
            get(url, "/v1/memories"),
            get(url, "/v1/memories", q="port"),
            get(url, "/v1/memories/x"),
            delete(url, "/v1/memories", project="p"),
            get(url, "/v1/projects"),
        ]
    for answer in answers:
        assert openai_error(answer, 503) == "the memory index is unavailable"
    failures = [r for r in caplog.records if r.levelno >= logging.WARNING]
    assert len(failures) == len(answers)
    assert all("memory index failed" in r.getMessage() for r in failures)
