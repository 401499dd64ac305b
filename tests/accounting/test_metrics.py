from __future__ import annotations

import json
import sqlite3
from pathlib import Path

import httpx
import pytest
from prometheus_client.mmap_dict import MmapedDict
from prometheus_client.parser import text_string_to_metric_families

from memory_proxy.accounting.metrics import MAX_COUNTED_KEYS, MULTIPROCESS_DIRECTORY, Metrics
from memory_proxy.config import ClientKey, LiteLLMSettings, MemorySettings, ModelEntry, Settings
from memory_proxy.stores.base import STORE_OPERATIONS
from tests.conftest import ProxyFactory
from tests.fake_upstream import FakeUpstream
from tests.support import wait_until

DROPPED = ("memory_proxy_usage_records_dropped_total", ())

CLIENT_KEY = "k" * 20  # unbound: it may read every user's metrics
BOUND_KEY = "b" * 20


def samples(proxy: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    response = httpx.get(f"{proxy}/metrics", headers={"x-api-key": CLIENT_KEY})
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, tuple(sorted(sample.labels.items()))): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def test_counters_move_and_labels_stay_bounded(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory
) -> None:
    _, url = fake_upstream
    # Other names reach LiteLLM too (it keeps more models in its database), as "other".
    litellm = LiteLLMSettings(models=(ModelEntry("known-model", None),), open_model_list=True)
    keys = (ClientKey(CLIENT_KEY), ClientKey(BOUND_KEY, "bound-user"))
    with run_proxy(url, litellm=litellm, client_keys=keys) as proxy:
        before = samples(proxy)
        for user, model in (("bound", "known-model"), ("random-1", "x"), ("random-2", "y")):
            headers = (
                {"x-api-key": BOUND_KEY}
                if user == "bound"
                else {"x-api-key": "sk-virtual", "x-memory-user-id": user}
            )
            httpx.post(f"{proxy}/v1/chat/completions", json={"model": model}, headers=headers)
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "x"})  # no key: 401
        after = samples(proxy)
    key = "memory_proxy_requests_total"
    assert after[(key, (("model", "known-model"), ("status", "200"), ("user", "bound-user")))] == 1
    assert after[(key, (("model", "other"), ("status", "200"), ("user", "other")))] == 2
    assert after[(key, (("model", "none"), ("status", "401"), ("user", "other")))] == 1
    assert not any(("random-1" in str(labels)) for _, labels in after)
    assert after[("memory_proxy_request_seconds_count", (("model", "other"),))] == 2
    assert ("memory_proxy_requests_in_flight", ()) in before
    assert after[("memory_proxy_litellm_ready", ())] == 1


def test_lost_usage_records_have_their_own_count_not_the_memory_stores(
    fake_upstream: tuple[FakeUpstream, str], run_proxy: ProxyFactory, tmp_path: Path
) -> None:
    _, url = fake_upstream
    store = tmp_path / "memory.sqlite3"
    memory = MemorySettings(store="sqlite", sqlite_path=store)
    with run_proxy(url, memory=memory) as proxy:
        with sqlite3.connect(store) as db:
            db.execute("DROP TABLE usage")  # every usage write now fails
        httpx.post(f"{proxy}/v1/chat/completions", json={"model": "m"})
        wait_until(lambda: samples(proxy).get(DROPPED, 0) == 1)
        after = samples(proxy)
    for operation in STORE_OPERATIONS:
        assert after[("memory_proxy_memory_store_errors_total", (("operation", operation),))] == 0


def test_requests_count_past_the_bound_of_remembered_ids() -> None:
    litellm = LiteLLMSettings(models=(ModelEntry("known-model", None),))
    metrics = Metrics(Settings(client_keys=(ClientKey(BOUND_KEY, "bound-user"),), litellm=litellm))
    for number in range(MAX_COUNTED_KEYS + 100):  # every key remembered, then none more
        metrics.count(f"random-{number}", "x", 200)
        metrics.count("bound-user", None, 429)
        metrics.observe(f"model-{number}", 0.002, None, "complete")
        metrics.observe("known-model", 0.2, 0.1, "complete")
    value = metrics.registry.get_sample_value
    users = {"user": "other", "model": "other", "status": "200"}
    assert value("memory_proxy_requests_total", users) == MAX_COUNTED_KEYS + 100
    bound = {"user": "bound-user", "model": "none", "status": "429"}
    assert value("memory_proxy_requests_total", bound) == MAX_COUNTED_KEYS + 100
    seconds = "memory_proxy_request_seconds_bucket"
    assert value(seconds, {"model": "other", "le": "0.005"}) == MAX_COUNTED_KEYS + 100
    assert value(seconds, {"model": "known-model", "le": "0.1"}) == 0
    assert value(seconds, {"model": "known-model", "le": "0.25"}) == MAX_COUNTED_KEYS + 100
    first_byte = "memory_proxy_time_to_first_byte_seconds_count"
    assert value(first_byte, {"model": "known-model"}) == MAX_COUNTED_KEYS + 100
    assert value(first_byte, {"model": "other"}) == 0


def test_workers_metrics_are_read_while_another_worker_creates_its_file(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # A starting worker's file exists empty for a moment before it is sized; reading it
    # failed the whole scrape with a 500 (prometheus/client_python#1199).
    monkeypatch.setenv(MULTIPROCESS_DIRECTORY, str(tmp_path))
    written = MmapedDict(str(tmp_path / "counter_101.db"))  # type: ignore[no-untyped-call]
    key = json.dumps(
        ["memory_proxy_requests", "memory_proxy_requests_total", {"status": "200"}, "Requests."]
    )
    written.write_value(key, 3.0, 0.0)  # type: ignore[no-untyped-call]
    written.close()  # type: ignore[no-untyped-call]
    (tmp_path / "counter_102.db").touch()  # the worker starting
    exposition = Metrics(Settings()).exposition().decode()
    families = {family.name: family for family in text_string_to_metric_families(exposition)}
    assert [sample.value for sample in families["memory_proxy_requests"].samples] == [3.0]
