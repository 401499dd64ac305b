"""The offline replay of long-history recall with an embedding model gives each question
the block the real Recall, SQLite index and vectors give it, so that fusion rules tried in
it are measured as the proxy would measure them."""

from __future__ import annotations

import asyncio
import datetime
import zlib

from memory_proxy.memory.fusion import fuse
from memory_proxy.stores import porter
from scripts.bench_embedding_models import Embedding
from scripts.bench_recall_fusion_replay import Replay, places, through_recall
from scripts.bench_recall_replay import Corpus, block
from scripts.recall_history import build_dataset

DIMENSIONS = 64


class HashedWords(Embedding):
    """A deterministic stand-in for a model: each stem counted on its hashed axis, and the
    whole text's hash on the last, so that no two memories tie (the vectors' search and
    the replay may order ties differently)."""

    def compute(self, texts: list[str]) -> list[list[float]]:
        vectors = []
        for text in texts:
            vector = [0.0] * DIMENSIONS
            for word in porter.words(text):
                vector[zlib.crc32(porter.stem(word).encode()) % (DIMENSIONS - 1)] += 1.0
            vector[-1] = zlib.crc32(text.encode()) / 2**32
            vectors.append(vector)
        return vectors


def test_the_replay_of_fusion_is_the_real_recall() -> None:
    dataset = build_dataset(users=2, today=datetime.date(2026, 11, 20))
    replay = Replay(Corpus(dataset), HashedWords())
    questions = [*dataset.questions, *dataset.off_topic]
    min_similarity = 0.4
    real = asyncio.run(through_recall(replay, questions, min_similarity))
    replayed = {
        q.id: block(
            replay.corpus, places(replay.corpus, fuse(*replay.candidates(q), min_similarity))
        )[0]
        for q in questions
    }
    assert replayed == real
    assert sum(map(bool, real.values())) > len(questions) // 4, "questions given a block"
