"""The offline replay of long-history recall gives each question the block the real
Recall over the real SQLite index gives it, so that rules tried in it are measured as the
proxy would measure them."""

from __future__ import annotations

import asyncio
import datetime

from scripts.bench_recall_replay import Corpus, block, defaults, through_recall
from scripts.recall_history import build_dataset


def test_the_replay_of_the_defaults_is_the_real_recall() -> None:
    dataset = build_dataset(users=2, today=datetime.date(2026, 11, 20))
    corpus = Corpus(dataset)
    questions = [*dataset.questions, *dataset.off_topic]
    real = asyncio.run(through_recall(corpus, questions))
    replayed = {q.id: block(corpus, defaults(corpus, q))[0] for q in questions}
    assert replayed == real
    assert sum(map(bool, real.values())) > len(questions) // 4, "questions given a block"
