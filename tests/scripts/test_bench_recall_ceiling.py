"""The ceiling of long-history recall bounds what recall does: no block the replays give
(the proxy's own, as their tests check) holds evidence its candidates' ceiling lacks, the
ceiling grows with the candidates, and the oracle's budget counts the block's framing."""

from __future__ import annotations

import datetime
import itertools

from memory_proxy.memory.fusion import fuse
from memory_proxy.memory.recall_block import recalled_block
from memory_proxy.records.memory import MemoryRecord, Recalled
from scripts.bench_recall_ceiling import (
    EVERY,
    SETTINGS,
    SUFFIX,
    TODAY,
    behind,
    blocks_reach,
    by_meaning,
    fits,
    lexical,
    reach,
)
from scripts.bench_recall_fusion_replay import Replay, places
from scripts.bench_recall_replay import Corpus, block, defaults
from scripts.recall_history import build_dataset
from tests.scripts.test_bench_recall_fusion_replay import HashedWords

BUDGET = SETTINGS.max_tokens * 4


def memory(name: str, length: int) -> MemoryRecord:
    return MemoryRecord(name, "u", "p", "s", "cli", None, 1.8e9, "x" * length)


def test_the_oracle_counts_the_blocks_framing() -> None:
    one, two = (
        recalled_block([Recalled(memory(n, 1), 0.0) for n in names], BUDGET, SUFFIX)
        for names in ("a", "ab")
    )
    assert one is not None and two is not None
    framing = len(two[0]) - len(one[0]) - 1  # each memory's element, but its text
    room = BUDGET - (len(one[0]) - 1) - framing  # for the texts of two memories
    a, b = room // 2, room - room // 2
    assert fits([[memory("a", a)], [memory("b", b)]])
    assert not fits([[memory("a", a)], [memory("b", b + 1)]]), "the framing counted"
    assert fits([[memory("a", a + 9), memory("c", 9)], [memory("b", b)]]), "any of a group"
    assert fits([[memory("a", room)], [memory("a", room)]]), "one memory for both"
    assert not fits([[memory("a", BUDGET)]])


def test_the_ceiling_bounds_the_replayed_blocks_and_grows_with_the_candidates() -> None:
    dataset = build_dataset(users=2, today=datetime.date(2026, 11, 20))
    corpus = Corpus(dataset)
    questions = list(dataset.questions)
    words = lexical(corpus)
    replay = Replay(corpus, HashedWords())
    every = words | by_meaning(replay, "hashed", words)
    found = {name: reach(corpus, questions, generator) for name, generator in every.items()}
    today = found[TODAY]
    by_defaults = blocks_reach(
        corpus, questions, {q.id: block(corpus, defaults(corpus, q))[0] for q in questions}
    )
    fused = {
        q.id: block(corpus, places(corpus, fuse(*replay.candidates(q), 0.4)))[0] for q in questions
    }
    by_fusion = blocks_reach(corpus, questions, fused)
    both_today = found[f"words, best {SETTINGS.limit} + hashed, closest 20"]
    deeper = ["words, best 10", "words, best 20", "words, best 40", "words, best 100", EVERY]
    gated = reach(corpus, questions, behind(corpus, defaults, words[TODAY]))
    for q in questions:
        assert by_defaults.all[q.id] <= gated.fits[q.id] <= today.fits[q.id]
        assert by_fusion.all[q.id] <= both_today.fits[q.id]
        assert found["hashed, closest 20"].all[q.id] <= found["hashed, closest 40"].all[q.id]
        for fewer, more in itertools.pairwise(deeper):
            assert found[fewer].all[q.id] <= found[more].all[q.id]
            assert found[fewer].any[q.id] <= found[more].any[q.id]
    assert sum(by_defaults.all.values()) < sum(today.all.values()) < sum(found[EVERY].all.values())
