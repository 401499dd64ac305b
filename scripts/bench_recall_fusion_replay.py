"""An offline replay of long-history recall with an embedding model (`--model`, as
scripts/bench_recall_embeddings.py serves it): every memory embedded once, each question's
word search replayed as scripts/bench_recall_replay.py does, its closest memories found as
the vectors' search finds them (the question's scope, the best 20 by cosine), and both
fused by a rule: `fusion.fuse` itself, or a variant of it. Bench-only:
scripts/requirements-bench.txt.

`--check` asks every question through the real Recall over a real SQLite index with its
vectors too, and counts the questions whose block differs from the replay's. Tune on the
"tune" split only.

    .venv/bin/python -m scripts.bench_recall_fusion_replay [--model wordllama|minilm]
        [--split tune] [--thresholds 0.35,0.4] [--pieces 200] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.embeddings import SemanticSearch
from memory_proxy.memory.fusion import CANDIDATES_BY_MEANING, answering, fuse
from memory_proxy.memory.recall import RELATIVE_CUT_OFF, Recall
from memory_proxy.records.memory import MemoryRecord, Recalled
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_embedding_models import MODELS, Embedding, load
from scripts.bench_recall_history import seed
from scripts.bench_recall_replay import Corpus, block, blocks_through, figures
from scripts.recall_history import Question, build_dataset

SETTINGS = RecallSettings()
BATCH = 256

# The block's memories, best first, from the word search's hits with their relevance, the
# cut-off, the closest memories with their cosine, and `recall.min_similarity`.
Fusion = Callable[
    [Sequence[tuple[Recalled, float]], float, Sequence[tuple[MemoryRecord, float]], float],
    list[Recalled],
]


_SENTENCE_END = re.compile(r"(?<=[.!?])\s+|\n+")


def pieces(text: str, size: int) -> list[str]:
    """`text` in pieces of about `size` characters: its sentences packed in order."""
    packed: list[str] = []
    for sentence in filter(None, (part.strip() for part in _SENTENCE_END.split(text))):
        if packed and len(packed[-1]) + 1 + len(sentence) <= size:
            packed[-1] += " " + sentence
        else:
            packed.append(sentence)
    return packed or [text]


class Replay:
    """The corpus with a vector for each memory, or for each of its pieces (`piece_size`
    characters: `pieces`)."""

    def __init__(self, corpus: Corpus, model: Embedding, piece_size: int | None = None) -> None:
        self.corpus, self.model = corpus, model
        texts = [[record.text] for record in corpus.records]
        if piece_size is not None:
            texts = [pieces(record.text, piece_size) for record in corpus.records]
        self.owner = np.repeat(np.arange(len(texts)), [len(parts) for parts in texts])
        self.vectors = model.unit([part for parts in texts for part in parts])
        # Each scope's pieces, and each piece's memory as a place in the scope's list.
        self.scope_pieces: dict[tuple[str, str], tuple[Any, Any]] = {}
        for key, scope in corpus.scopes.items():
            where = {place: i for i, place in enumerate(scope)}
            rows = np.flatnonzero(np.isin(self.owner, scope))
            self.scope_pieces[key] = (rows, np.array([where[o] for o in self.owner[rows]]))

    @property
    def vectors_per_memory(self) -> float:
        return len(self.owner) / len(self.corpus.records)

    def candidates(
        self, question: Question
    ) -> tuple[list[tuple[Recalled, float]], float, list[tuple[MemoryRecord, float]]]:
        """What recall fuses: the word search's hits with their relevance (kept below
        `min_score`), the cut-off, and the closest memories with their cosine."""
        corpus = self.corpus
        weights = corpus.weights(question.text)
        found = corpus.search(question, {}, 0.0, SETTINGS.limit)
        lexical = [
            (Recalled(corpus.records[p], s, share), share)
            for p, s in found
            for share in [corpus.share(p, weights)]
        ]
        best = max((share for _, share in lexical), default=0.0)
        cut_off = max(SETTINGS.min_score, RELATIVE_CUT_OFF * best)
        similar = [(corpus.records[p], cosine) for p, cosine in self.closest(question)]
        return lexical, cut_off, similar

    def closest(
        self, question: Question, count: int = CANDIDATES_BY_MEANING
    ) -> list[tuple[int, float]]:
        """The `count` memories of the question's scope closest to it (place, cosine), as
        the vectors' search finds them (a memory's cosine its best piece's)."""
        scope = self.corpus.scopes[(question.user, question.project)]
        rows, owners = self.scope_pieces[(question.user, question.project)]
        cosines = np.full(len(scope), -1.0, dtype=np.float32)
        np.maximum.at(cosines, owners, self.vectors[rows] @ self.model.unit([question.text])[0])
        order = np.argsort(-cosines, kind="stable")[:count]
        return [(scope[i], float(cosines[i])) for i in order]


def places(corpus: Corpus, hits: list[Recalled]) -> list[int]:
    at = {record.id: place for place, record in enumerate(corpus.records)}
    return [at[hit.record.id] for hit in hits]


def variant(weights: tuple[float, float, float], floor: float, by_length: bool) -> Fusion:
    """`fusion.fuse` with the fill score's `weights` (normalised BM25, cosine, relevance)
    and `floor`, in its order (`by_length`) or with the memories that answer first, each
    group by fill score (the order before)."""

    def rule(
        lexical: Sequence[tuple[Recalled, float]],
        cut_off: float,
        similar: Sequence[tuple[MemoryRecord, float]],
        min_similarity: float,
    ) -> list[Recalled]:
        hits = fuse(lexical, cut_off, similar, min_similarity, weights=weights, floor=floor)
        if by_length:
            return hits
        passing = answering(lexical, cut_off, similar, min_similarity)
        hits.sort(key=lambda hit: (hit.record.id not in passing, -hit.score))
        return hits

    return rule


VARIANTS: dict[str, Fusion] = {
    "fuse (0.5 BM25, 0.7 cosine, 1 relevance; 0.4; by length)": fuse,
    "65c088b (0.5 BM25, 0.5 cosine; 0.3; answering first)": variant((0.5, 0.5, 0.0), 0.3, False),
    "0.5 BM25, 0.5 cosine; 0.3; by length": variant((0.5, 0.5, 0.0), 0.3, True),
    "0.5 BM25, 0.7 cosine, 1 relevance; 0.4; answering first": variant((0.5, 0.7, 1.0), 0.4, False),
    "0.5 BM25, 0.7 cosine, 1 relevance; 0.3; by length": variant((0.5, 0.7, 1.0), 0.3, True),
    "0.5 BM25, 0.7 cosine, 1 relevance; 0.5; by length": variant((0.5, 0.7, 1.0), 0.5, True),
    "0.3 BM25, 0.7 cosine, 1.5 relevance; 0.45; by length": variant((0.3, 0.7, 1.5), 0.45, True),
}


async def through_recall(
    replay: Replay, questions: Sequence[Question], min_similarity: float
) -> dict[str, list[str]]:
    """The exchanges each question's block holds through the real Recall, SQLite index
    and vectors (the time budget raised: quality, not time)."""
    corpus = replay.corpus
    with tempfile.TemporaryDirectory() as directory:
        index = SQLiteMemoryIndex(Path(directory) / "replay.sqlite3", search_budget=5.0)
        settings = RecallSettings(timeout_ms=5000, min_similarity=min_similarity)
        semantic = SemanticSearch(replay.model, index.vectors)
        recall = Recall(
            index, settings, on_timeout=lambda: None, on_failure=lambda: None, semantic=semantic
        )
        try:
            await seed(index, list(corpus.records))
            while batch := await index.vectors.unembedded(0, BATCH):
                vectors = await replay.model.embed([text for _, text in batch])
                await index.vectors.add([(s, v) for (s, _), v in zip(batch, vectors, strict=True)])
            return await blocks_through(recall, corpus, questions)
        finally:
            await index.aclose()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--model", choices=sorted(MODELS), default="wordllama")
    parser.add_argument("--pieces", type=int, help="characters a piece of a memory, about")
    parser.add_argument("--split", choices=("tune", "test"), default="tune")
    parser.add_argument("--thresholds", default=str(SETTINGS.min_similarity))
    parser.add_argument("--check", action="store_true", help="compare with the real Recall")
    args = parser.parse_args()
    if args.check and args.pieces:
        parser.error("--check compares with the real Recall, which has one vector a memory")
    dataset = build_dataset()
    replay = Replay(Corpus(dataset), load(args.model), args.pieces)
    print(f"{args.model}: {replay.vectors_per_memory:.2f} vectors a memory")
    questions = [q for q in (*dataset.questions, *dataset.off_topic) if q.split == args.split]
    asked = {q.id: replay.candidates(q) for q in questions}
    print(f"{args.split} split: evidence, off-topic with a block, tokens on-topic")
    for threshold in (float(t) for t in args.thresholds.split(",")):
        for name, rule in VARIANTS.items():
            blocks = {
                q.id: block(replay.corpus, places(replay.corpus, rule(*asked[q.id][:3], threshold)))
                for q in questions
            }
            evidence, off_topic, tokens = figures(questions, blocks)
            print(f"{threshold:.2f} {name:52} {evidence:.3f}  {off_topic:.3f}  {tokens:5.0f}")
            if args.check and rule is fuse:
                real = asyncio.run(through_recall(replay, questions, threshold))
                differ = sum(real[q.id] != blocks[q.id][0] for q in questions)
                print(f"{'':57} the real Recall's blocks differ for {differ} questions")


if __name__ == "__main__":
    main()
