"""Whose memories a caller of the memories API reaches, through a real proxy: a user never
another user's; a trusted caller naming no user every user's (read and forgotten by id
alone); client keys, unbound and bound to a user."""

from __future__ import annotations

import re

from memory_proxy.config import ClientKey, HeaderPattern, UserIdMappings
from memory_proxy.records.memory import MemoryRecord, memory_id
from tests.api.memories_support import (
    ALICE,
    BOB,
    BOBS,
    DEPLOY,
    NO_LITELLM,
    PORT,
    delete,
    get,
    memory,
    openai_error,
    remember,
    texts,
)
from tests.conftest import ProxyFactory


def test_a_user_never_reaches_another_users_memories(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(BOBS, memory(PORT, user="bob"))
        read = get(proxy, f"/v1/memories/{BOBS.id}")
        deleted = delete(proxy, f"/v1/memories/{BOBS.id}")
        forgotten = delete(proxy, "/v1/memories", project="shop")
        searched = get(proxy, "/v1/memories", q="staging port shop fact")
        projects = get(proxy, "/v1/projects").json()
        bobs = get(proxy, "/v1/memories", BOB)
    openai_error(read, 404)
    openai_error(deleted, 404)
    openai_error(forgotten, 404)
    assert texts(searched) == []
    assert projects["data"] == []
    assert len(texts(bobs)) == 2


CLAUDES = MemoryRecord(
    memory_id("claude-cli", "shop", PORT), "claude-cli", "shop", "s1", "claude-code", "m", 7, PORT
)


CODEXS = MemoryRecord(
    memory_id("codex-cli", "", DEPLOY), "codex-cli", "", "s2", "codex", "m", 8, DEPLOY
)


CURL_PATTERN = HeaderPattern("user-agent", re.compile("^curl/"), "curl")


def test_a_trusted_caller_naming_no_user_sees_every_users_memories(
    run_proxy: ProxyFactory,
) -> None:
    """As the dashboard and a shell do: a user-agent pattern or the default user id is a
    guess at who calls, not a choice, so it narrows nothing; `?user_id=` and the custom
    header do."""
    mappings = UserIdMappings(header_patterns=(CURL_PATTERN,))
    with run_proxy(NO_LITELLM, user_id_mappings=mappings) as proxy:
        remember(CLAUDES, CODEXS, BOBS)
        listed = get(proxy, "/v1/memories", {})
        from_curl = get(proxy, "/v1/memories", {"user-agent": "curl/8.5.0"})
        searched = get(proxy, "/v1/memories", {}, q="staging database port")
        shop = get(proxy, "/v1/memories", {}, project="shop")
        named = get(proxy, "/v1/memories", {}, user_id="codex-cli")
        by_header = get(proxy, "/v1/memories", {"x-memory-user-id": "codex-cli"})
        projects = get(proxy, "/v1/projects", {}).json()["data"]
    assert texts(listed) == [DEPLOY, PORT, "bob's shop fact"]
    assert [m["user_id"] for m in listed.json()["data"]] == ["codex-cli", "claude-cli", "bob"]
    assert [m["client"] for m in listed.json()["data"]][:2] == ["codex", "claude-code"]
    assert texts(from_curl) == texts(listed)
    assert texts(searched)[:2] == [PORT, DEPLOY]
    assert texts(shop) == [PORT, "bob's shop fact"]
    assert texts(named) == texts(by_header) == [DEPLOY]
    assert [(p["user_id"], p["project"]) for p in projects] == [
        ("codex-cli", None),
        ("claude-cli", "shop"),
        ("bob", "shop"),
    ]


def test_one_memory_is_read_and_forgotten_by_its_id_alone(run_proxy: ProxyFactory) -> None:
    with run_proxy(NO_LITELLM) as proxy:
        remember(CLAUDES, CODEXS, BOBS, memory("alice's shop fact"))
        read = get(proxy, f"/v1/memories/{CLAUDES.id}", {})
        deleted = delete(proxy, f"/v1/memories/{CLAUDES.id}", {})
        again = get(proxy, f"/v1/memories/{CLAUDES.id}", {})
        not_bobs = get(proxy, f"/v1/memories/{CODEXS.id}", BOB)
        shops = delete(proxy, "/v1/memories", {}, project="shop")
        left = get(proxy, "/v1/memories", {})
    assert read.json() == CLAUDES.describe()
    assert deleted.json() == {"id": CLAUDES.id, "user_id": "claude-cli", "deleted": True}
    assert openai_error(again, 404) == f"no memory {CLAUDES.id!r}"
    assert openai_error(not_bobs, 404) == f"no memory {CODEXS.id!r} for user 'bob'"
    assert shops.json() == {"user_id": None, "project": "shop", "deleted": 2}
    assert texts(left) == [DEPLOY]


OUR_KEY = "mp-client-key-0123456789"
BOUND_KEY = "mp-bound-key-0123456789ab"


def test_keys_decide_whose_memories_a_caller_sees(run_proxy: ProxyFactory) -> None:
    keys = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "bob"))
    ours = {"authorization": f"Bearer {OUR_KEY}"}
    bound = {"x-api-key": BOUND_KEY, **ALICE}  # the header cannot change a bound key's user
    alices = memory(PORT)
    with run_proxy(NO_LITELLM, client_keys=keys) as proxy:
        remember(alices, BOBS)
        refused = [
            call(proxy, path, headers)
            for headers in ({}, {"x-api-key": "sk-virtual-key"})
            for call, path in [
                (get, "/v1/memories"),
                (get, f"/v1/memories/{alices.id}"),
                (delete, "/v1/memories"),
                (get, "/v1/projects"),
            ]
        ]
        own = get(proxy, "/v1/memories", bound)
        others = [
            get(proxy, "/v1/memories", bound, user_id="alice"),
            delete(proxy, "/v1/memories", bound, user_id="alice", project="shop"),
            get(proxy, "/v1/projects", bound, user_id="alice"),
        ]
        alices_by_id = get(proxy, f"/v1/memories/{alices.id}", bound)
        named = get(proxy, "/v1/memories", ours, user_id="alice")
    for answer in refused:
        assert "memories need one of the proxy's client keys" in openai_error(answer, 401)
    assert texts(own) == ["bob's shop fact"]
    for answer in others:
        assert openai_error(answer, 403) == "this key may only see its own user's memories"
    assert openai_error(alices_by_id, 404) == f"no memory {alices.id!r} for user 'bob'"
    assert texts(named) == [PORT]


def test_an_unbound_key_sees_every_user_and_a_bound_key_only_its_own(
    run_proxy: ProxyFactory,
) -> None:
    keys = (ClientKey(OUR_KEY), ClientKey(BOUND_KEY, "bob"))
    ours = {"authorization": f"Bearer {OUR_KEY}"}
    bound = {"x-api-key": BOUND_KEY}
    alices = memory(PORT)
    with run_proxy(NO_LITELLM, client_keys=keys) as proxy:
        remember(alices, BOBS)
        every = get(proxy, "/v1/memories", ours)
        own = get(proxy, "/v1/memories", bound)
        own_search = get(proxy, "/v1/memories", bound, q="shop fact staging port")
        own_projects = get(proxy, "/v1/projects", bound).json()["data"]
        not_by_id = delete(proxy, f"/v1/memories/{alices.id}", bound)
        forgotten = delete(proxy, "/v1/memories", bound, project="shop")
        left = get(proxy, "/v1/memories", ours)
    assert texts(every) == ["bob's shop fact", PORT]
    assert texts(own) == texts(own_search) == ["bob's shop fact"]
    assert [p["user_id"] for p in own_projects] == ["bob"]
    openai_error(not_by_id, 404)
    assert forgotten.json() == {"user_id": "bob", "project": "shop", "deleted": 1}
    assert texts(left) == [PORT]
