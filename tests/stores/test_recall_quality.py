"""The recall benchmark's quality set as a regression gate: a change to the query words,
the tokenizer or the scoping that loses planted facts, or leaks, fails here."""

from __future__ import annotations

import asyncio
from pathlib import Path

from scripts.bench_recall import quality


def test_planted_facts_are_recalled_and_nothing_leaks(tmp_path: Path) -> None:
    figures = asyncio.run(quality(tmp_path))
    assert figures["own words"]["recall@5"] >= 0.95
    assert figures["paraphrase"]["recall@5"] >= 0.3  # 0.355 when written; BM25 has no synonyms
    assert figures["own words"]["leaked hits"] == 0
    assert figures["paraphrase"]["leaked hits"] == 0
