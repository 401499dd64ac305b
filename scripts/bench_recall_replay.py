"""An offline replay of long-history recall (scripts/recall_history.py), to try rules in
seconds rather than minutes through the proxy: the same memories as the benchmark's proxy
holds (the indexer's text, duplicates stored once), searched as the index searches them
(the question's rarer words, BM25 as FTS5 computes it, the index's word weights), and the
block filled as recalled_block fills it. Rules are plain functions of a question.

`--check` asks every question through the real Recall over a real SQLite index too and
counts the questions whose block differs from the replay's (0 at 22facec and since);
the proxy's figures are then the replay's, but for searches past `recall.timeout_ms`.
Tune on the "tune" split only.

    .venv/bin/python -m scripts.bench_recall_replay [--split tune] [--check]
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import html
import math
import re
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.recall import Recall, fill_floor
from memory_proxy.memory.recall_block import recalled_block
from memory_proxy.records.memory import Recalled
from memory_proxy.stores import porter
from memory_proxy.stores.recall_query import STOPWORDS, query_terms
from memory_proxy.stores.relevance import reaches, stems, weight
from memory_proxy.stores.search_terms import MATCHED_MEMORIES, anded, ored, rarest_held
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_processes import proxy_config
from scripts.bench_recall import recalled_block as block_through_recall
from scripts.bench_recall_history import memory_text, records_of, seed
from scripts.recall_history import Dataset, Question, build_dataset

K1, B = 1.2, 0.75  # FTS5's
SCOPE_TOKENS = 2  # in each row's length, as FTS5 counts them
SETTINGS = RecallSettings()
FEEDBACK_LEAVES_OUT = {porter.stem(word) for word in STOPWORDS}
_MEMORY = re.compile(r'<memory date="[^"]*" client="[^"]*">\n(.*?)\n</memory>\n', re.DOTALL)

Ranked = list[tuple[int, float]]  # memory (its place in Corpus.records), BM25, best first


class Corpus:
    """The benchmark's memories with what the index knows of them."""

    def __init__(self, dataset: Dataset) -> None:
        with tempfile.TemporaryDirectory() as directory:
            config = proxy_config(Path(directory), "replay", {"memory": {"enabled": True}})
            records = records_of(dataset.exchanges, memory_text(config))
        self.exchange = {r.id: e.id for r, e in zip(records, dataset.exchanges, strict=True)}
        self.records = list({r.id: r for r in reversed(records)}.values())[::-1]  # first kept
        self.terms: list[collections.Counter[str]] = []
        self.holding: collections.Counter[str] = collections.Counter()
        self.scopes: dict[tuple[str, str], list[int]] = collections.defaultdict(list)
        for place, record in enumerate(self.records):
            counted = collections.Counter(porter.stem(w) for w in porter.words(record.text))
            self.terms.append(counted)
            self.holding.update(counted.keys())
            self.scopes[(record.user_id, record.project)].append(place)
        self.lengths = [counted.total() + SCOPE_TOKENS for counted in self.terms]
        self.average = sum(self.lengths) / len(self.lengths)

    def weight(self, term: str) -> float:
        return weight(self.holding[term], len(self.records))

    def weights(self, text: str) -> dict[str, float]:
        return {term: self.weight(term) for term in stems(query_terms(text))}

    def share(self, place: int, weights: dict[str, float]) -> float:
        total = sum(weights.values())
        held = sum(value for term, value in weights.items() if term in self.terms[place])
        return held / total if total else 0.0

    def bm25(self, place: int, boosts: dict[str, float]) -> float:
        """FTS5's BM25 of the memory, each term's part times its boost."""
        found, saturation = self.terms[place], K1 * (1 - B + B * self.lengths[place] / self.average)
        score = 0.0
        for term, boost in boosts.items():
            if frequency := found.get(term, 0):
                held = self.holding[term]
                idf = max(math.log((len(self.records) - held + 0.5) / (held + 0.5)), 1e-6)
                score += boost * idf * frequency * (K1 + 1) / (frequency + saturation)
        return score

    def search(
        self, question: Question, boosts: dict[str, float], min_share: float, limit: int
    ) -> Ranked:
        """The index's best `limit` in the question's scope: only its rarer words matched
        (search_terms.py), chosen among the question's own; expansion terms (in `boosts`,
        not in the question) matched and ranked beside them."""
        weights = self.weights(question.text)
        held = {term: self.holding[term] for term in weights}
        rarest = rarest_held(held, weights, min_share)
        if not rarest:
            return []
        matched, every = ored(rarest, held), False
        if matched is None:
            matched, every = rarest, True
            for fewer in anded(rarest):
                if sum(all(t in terms for t in fewer) for terms in self.terms) <= MATCHED_MEMORIES:
                    matched = fewer
                    break
        ranked = {t: 1.0 for t in matched} | {t: b for t, b in boosts.items() if t not in weights}
        found = [
            (place, self.bm25(place, ranked))
            for place in self.scopes[(question.user, question.project)]
            if (all if every else any)(t in self.terms[place] for t in matched)
            or any(t in self.terms[place] for t in ranked if t not in weights)
        ]
        found.sort(key=lambda hit: -hit[1])
        return found[:limit]


Rule = Callable[[Corpus, Question], list[int]]  # the block's memories, best first


def defaults(corpus: Corpus, question: Question) -> list[int]:
    """Recall today: answered at `min_score` and half the best hit's share, then filled
    down to `fill_floor`, in BM25 order."""
    weights = corpus.weights(question.text)
    found = corpus.search(question, {}, SETTINGS.min_score, SETTINGS.limit)
    shares = {place: corpus.share(place, weights) for place, _ in found}
    if not any(reaches(share, SETTINGS.min_score) for share in shares.values()):
        return []
    return [place for place, _ in found if reaches(shares[place], fill_floor(SETTINGS))]


def expansion(
    corpus: Corpus, weights: dict[str, float], feedback: Sequence[tuple[int, float]], terms: int
) -> dict[str, float]:
    """RM1: the `terms` words of the `feedback` memories (place, its weight) weighing most:
    each one's share of a memory's words times the memory's weight, times the word's
    weight in the index; the question's words, stop words and numbers left out. Each
    normalised to the best's 1."""
    scored: dict[str, float] = collections.defaultdict(float)
    for place, given in feedback:
        for term, frequency in corpus.terms[place].items():
            if term in weights or term in FEEDBACK_LEAVES_OUT or term.isdigit() or len(term) < 3:
                continue
            scored[term] += given * frequency / corpus.lengths[place] * corpus.weight(term)
    best = sorted(scored.items(), key=lambda item: -item[1])[:terms]
    return {term: value / best[0][1] for term, value in best} if best else {}


def rm3(feedback: int, terms: int, mix: float, min_share: float) -> Rule:
    """Pseudo-relevance feedback over BM25's best `feedback` hits (no gate on them): the
    question searched again with their telling words, and a memory answering when it
    covers `min_share` of the expanded weights (the question's at 1 - `mix`, the
    expansion's at `mix`) and half the best's."""

    def rule(corpus: Corpus, question: Question) -> list[int]:
        weights = corpus.weights(question.text)
        first = corpus.search(question, {}, 0.0, feedback)
        if not first:
            return []
        added = expansion(
            corpus, weights, [(p, math.exp(s - first[0][1])) for p, s in first], terms
        )
        added_total = sum(corpus.weight(t) * v for t, v in added.items()) or 1.0
        total = sum(weights.values())
        expanded = {t: (1 - mix) * w / total for t, w in weights.items()} | {
            t: mix * corpus.weight(t) * v / added_total for t, v in added.items()
        }
        found = corpus.search(question, {t: mix * v for t, v in added.items()}, 0.0, 40)
        shares = {place: corpus.share(place, expanded) for place, _ in found}
        cut = max(min_share, 0.5 * max(shares.values(), default=0.0))
        return [place for place, _ in found if reaches(shares[place], cut)]

    return rule


def from_answers(answers: int, terms: int, boost: float, fill: float) -> Rule:
    """Feedback only from the hits that answer (at `min_score`): no question gets a block
    it did not have. The block filled from a second search with their telling words
    boosted, by hits covering `fill` of the question's weight."""

    def rule(corpus: Corpus, question: Question) -> list[int]:
        weights = corpus.weights(question.text)
        first = corpus.search(question, {}, SETTINGS.min_score, SETTINGS.limit)
        shares = {place: corpus.share(place, weights) for place, _ in first}
        answering = [p for p, _ in first if reaches(shares[p], SETTINGS.min_score)]
        if not answering:
            return []
        added = expansion(corpus, weights, [(p, shares[p]) for p in answering[:answers]], terms)
        found = corpus.search(question, {t: boost * v for t, v in added.items()}, 0.0, 40)
        rest = [p for p, _ in found if p not in answering]
        return answering + [p for p in rest if reaches(corpus.share(p, weights), fill)]

    return rule


RULES: dict[str, Rule] = {
    "defaults": defaults,
    "RM3, 5 hits, 10 words, 0.2 of the weight, min 0.40": rm3(5, 10, 0.2, 0.4),
    "RM3, 3 hits, 10 words, 0.2 of the weight, min 0.45": rm3(3, 10, 0.2, 0.45),
    "from the answering hit, 3 words at 0.5, fill 0.1": from_answers(1, 3, 0.5, 0.1),
    "from 3 answering hits, 10 words at 0.5, fill 0.1": from_answers(3, 10, 0.5, 0.1),
}


def block(corpus: Corpus, places: list[int]) -> tuple[list[str], int]:
    """The exchanges of the memories recalled_block puts into the block, and its length."""
    hits = [Recalled(corpus.records[p], 0.0) for p in places[: SETTINGS.limit]]
    made = recalled_block(hits, SETTINGS.max_tokens * 4) if hits else None
    if made is None:
        return [], 0
    texts = {html.unescape(text) for text in _MEMORY.findall(made[0])}
    kept = [corpus.records[p] for p in places[: SETTINGS.limit]]
    return [corpus.exchange[r.id] for r in kept if r.text.strip() in texts], len(made[0])


def figures(
    questions: Sequence[Question], blocks: dict[str, tuple[list[str], int]]
) -> tuple[float, float, float]:
    """Evidence reached, off-topic questions given a block, tokens on-topic."""
    on = [q for q in questions if q.kind != "off-topic"]
    off = [q for q in questions if q.kind == "off-topic"]
    reached = sum(all(any(i in blocks[q.id][0] for i in g) for g in q.evidence) for q in on)
    given = sum(bool(blocks[q.id][0]) for q in off)
    tokens = sum(blocks[q.id][1] for q in on) / 4 / len(on)
    return reached / len(on), given / len(off), tokens


async def through_recall(corpus: Corpus, questions: Sequence[Question]) -> dict[str, list[str]]:
    """The exchanges each question's block holds through the real Recall and SQLite index
    (its time budget raised: quality, not time)."""
    with tempfile.TemporaryDirectory() as directory:
        index = SQLiteMemoryIndex(Path(directory) / "replay.sqlite3", search_budget=5.0)
        settings = RecallSettings(timeout_ms=5000)
        recall = Recall(index, settings, on_timeout=lambda: None, on_failure=lambda: None)
        try:
            await seed(index, list(corpus.records))
            return await blocks_through(recall, corpus, questions)
        finally:
            await index.aclose()


async def blocks_through(
    recall: Recall, corpus: Corpus, questions: Sequence[Question]
) -> dict[str, list[str]]:
    """The exchanges of each question's block, as `recall` (over the corpus) gives it."""
    by_text = {(r.user_id, r.project, r.text.strip()): r.id for r in corpus.records}
    found = {}
    for q in questions:
        text = await block_through_recall(recall, q.user, q.project, q.text)
        texts = [html.unescape(t) for t in _MEMORY.findall(text)]
        found[q.id] = [corpus.exchange[by_text[(q.user, q.project, t)]] for t in texts]
    return found


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "test"), default="tune")
    parser.add_argument("--check", action="store_true", help="compare with the real Recall")
    args = parser.parse_args()
    dataset = build_dataset()
    corpus = Corpus(dataset)
    questions = [q for q in (*dataset.questions, *dataset.off_topic) if q.split == args.split]
    print(f"{args.split} split: evidence, off-topic with a block, tokens on-topic")
    for name, rule in RULES.items():
        blocks = {q.id: block(corpus, rule(corpus, q)) for q in questions}
        evidence, off_topic, tokens = figures(questions, blocks)
        print(f"{name:58} {evidence:.3f}  {off_topic:.3f}  {tokens:5.0f}")
        if args.check and rule is defaults:
            real = asyncio.run(through_recall(corpus, questions))
            differ = sum(real[q.id] != blocks[q.id][0] for q in questions)
            print(f"{'':58} the real Recall's blocks differ for {differ} questions")


if __name__ == "__main__":
    main()
