"""scripts/bench_index_process.py sends what the proxy sends: exchanges the index
process reads as indexing.Exchange, each a new memory, answered batch by batch."""

from __future__ import annotations

from memory_proxy.config import load_settings
from memory_proxy.memory.indexing import Exchange, MemoryMaker
from scripts.bench_index_process import exchanges, run
from scripts.bench_processes import ROOT


def test_each_exchange_is_a_new_memory_of_the_no_session_case() -> None:
    for kept in (True, False):
        made = [Exchange(*fields) for fields in exchanges(3, kept)]  # type: ignore[arg-type]
        memories = [MemoryMaker().memory(one) for one in made]
        assert len({memory.text for memory in memories if memory is not None}) == 3
        assert {(one.question, one.session_id) for one in made} == {("hi", None)}


def test_the_worker_writes_them_and_its_cpu_is_counted() -> None:
    assert run(load_settings(ROOT / "config.yaml"), 600, callgrind=False, kept=True) > 0
