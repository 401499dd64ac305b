"""The ceiling of long-history recall (scripts/recall_history.py) over today's candidate
generators: whether any ranking or gate could reach issue 20's target by choosing among
the memories these generators find, or whether the candidates themselves must change.

For each question: is its evidence (one exchange of each group: a multi-hop question's
two facts) among the candidates — the word search's best K with no threshold (replayed as
scripts/bench_recall_replay.py replays it: the question's rarer words, BM25), every memory
of the scope holding any word of the question (BM25 over all), the embedding's closest N
(scripts/bench_recall_fusion_replay.py), or their union — and could some selection of
those candidates hold all of it within `recall.max_tokens` (the oracle: the evidence's
memories framed as recalled_block frames them, in a block of 4,000 characters)? For
reference, blocks are counted beside: the proxy's defaults (words alone; with a model,
its fusion), and each search's hits in its own order with no gate (how much of the gap
between candidates and block is the order). Both splits: this measures, it tunes nothing.

    PYTHONPATH=. .venv/bin/python -m scripts.bench_recall_ceiling
    PYTHONPATH=. bench-venv/bin/python -m scripts.bench_recall_ceiling --models wordllama,minilm
"""

from __future__ import annotations

import argparse
import itertools
from collections.abc import Callable, Iterable, Sequence

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.fusion import CANDIDATES_BY_MEANING, fuse
from memory_proxy.memory.recall_block import recalled_block
from memory_proxy.records.memory import MemoryRecord, Recalled
from scripts.bench_embedding_models import load
from scripts.bench_recall_fusion_replay import Replay, places
from scripts.bench_recall_replay import Corpus, Ranked, Rule, block, defaults
from scripts.recall_history import Question, build_dataset

SETTINGS = RecallSettings()
SUFFIX = "0" * 12  # the block's random suffix is always this long
KINDS = ("single-hop", "multi-hop", "temporal", "open-domain")
WORD_SEARCH_DEPTHS = (SETTINGS.limit, 20, 40, 100)  # the proxy asks for `recall.limit`
MEANING_DEPTHS = (CANDIDATES_BY_MEANING, 40)  # the proxy asks for 20

Generator = Callable[[Question], set[int]]  # the candidates' places in Corpus.records


def words(corpus: Corpus, best: int | None) -> Generator:
    """The word search's `best` hits with no threshold; None: every memory of the scope
    holding a word of the question."""

    def candidates(question: Question) -> set[int]:
        if best is not None:
            return {place for place, _ in corpus.search(question, {}, 0.0, best)}
        asked = corpus.weights(question.text).keys()
        scope = corpus.scopes[(question.user, question.project)]
        return {place for place in scope if not asked.isdisjoint(corpus.terms[place])}

    return candidates


def union(*generators: Generator) -> Generator:
    return lambda question: set().union(*(found(question) for found in generators))


def evidence_places(
    corpus: Corpus, question: Question, candidates: Sequence[int]
) -> list[list[int]]:
    """For each evidence group, the candidates holding one of its exchanges."""
    return [
        [p for p in candidates if corpus.exchange[corpus.records[p].id] in group]
        for group in question.evidence
    ]


def fits(groups: Sequence[Sequence[MemoryRecord]]) -> bool:
    """Whether one memory of each group, together, fit a block of `recall.max_tokens`
    (their framing, the block's note and tags counted by recalled_block itself)."""
    for choice in itertools.product(*groups):
        hits = [Recalled(record, 0.0) for record in dict.fromkeys(choice)]
        made = recalled_block(hits, SETTINGS.max_tokens * 4, SUFFIX)
        if made is not None and made[1] == len(hits):
            return True
    return False


class Reach:
    """Per question: any evidence group among the candidates, all of them, all within the
    budget; and how many candidates there were."""

    def __init__(self) -> None:
        self.any: dict[str, bool] = {}
        self.all: dict[str, bool] = {}
        self.fits: dict[str, bool] = {}
        self.candidates: list[int] = []

    def add(self, corpus: Corpus, question: Question, candidates: Iterable[int]) -> None:
        held = list(candidates)
        self.candidates.append(len(held))
        groups = evidence_places(corpus, question, held)
        self.any[question.id] = any(groups)
        self.all[question.id] = all(groups)
        records = [[corpus.records[place] for place in group] for group in groups]
        self.fits[question.id] = self.all[question.id] and fits(records)


def reach(corpus: Corpus, questions: Sequence[Question], generator: Generator) -> Reach:
    found = Reach()
    for question in questions:
        found.add(corpus, question, generator(question))
    return found


def share(held: dict[str, bool], questions: Iterable[Question]) -> float:
    asked = [q.id for q in questions]
    return sum(held[i] for i in asked) / len(asked) if asked else 0.0


def row(name: str, found: Reach, questions: Sequence[Question]) -> str:
    """A table row: per kind, the share whose evidence is among the candidates / within
    the budget (multi-hop: both facts, then at least one among them); all, per split; the
    mean count of candidates."""
    of = {kind: [q for q in questions if q.kind == kind] for kind in KINDS}
    cells = []
    for kind in KINDS:
        cell = f"{share(found.all, of[kind]):.3f} / {share(found.fits, of[kind]):.3f}"
        if kind == "multi-hop":
            cell += f" ({share(found.any, of[kind]):.3f})"
        cells.append(cell)
    splits = [[q for q in questions if q.split == s] for s in ("tune", "test")]
    cells.append(
        " ; ".join(f"{share(found.all, s):.3f} / {share(found.fits, s):.3f}" for s in splits)
    )
    cells.append(f"{sum(found.candidates) / len(found.candidates):.0f}")
    return f"| {name} | " + " | ".join(cells) + " |"


def rows(
    corpus: Corpus, questions: Sequence[Question], generators: dict[str, Generator]
) -> list[str]:
    return [
        row(name, reach(corpus, questions, found), questions) for name, found in generators.items()
    ]


def blocks_reach(
    corpus: Corpus, questions: Sequence[Question], blocks: dict[str, list[str]]
) -> Reach:
    """What blocks (their exchanges, as the replays give them) hold."""
    at = {corpus.exchange[record.id]: place for place, record in enumerate(corpus.records)}
    found = Reach()
    for question in questions:
        found.add(corpus, question, (at[e] for e in blocks[question.id]))
    return found


EVERY = "words, every memory holding one (BM25 over all)"
TODAY = f"words, best {SETTINGS.limit}"  # what recall asks the word search for


def lexical(corpus: Corpus) -> dict[str, Generator]:
    generators = {f"words, best {k}": words(corpus, k) for k in WORD_SEARCH_DEPTHS}
    return generators | {EVERY: words(corpus, None)}


def by_meaning(replay: Replay, name: str, lexical: dict[str, Generator]) -> dict[str, Generator]:
    """The model's closest 20 and 40, and their unions with the word search: today's
    candidates (`recall.limit` words, the 20 closest) and deeper ones."""

    def closest(count: int) -> Generator:
        return lambda question: {place for place, _ in replay.closest(question, count)}

    alone = {f"{name}, closest {n}": closest(n) for n in MEANING_DEPTHS}
    pairs = [(TODAY, n) for n in MEANING_DEPTHS]
    pairs += [("words, best 40", 40), (EVERY, 40)]
    return alone | {
        f"{words} + {name}, closest {n}": union(lexical[words], closest(n)) for words, n in pairs
    }


def ordered(search: Callable[[Question, dict[str, float], float, int], Ranked]) -> Rule:
    """A search's hits in its own order, no gate: the block takes the first that fit."""
    return lambda _, question: [p for p, _ in search(question, {}, 0.0, SETTINGS.limit)]


def behind(corpus: Corpus, gate: Rule, generator: Generator) -> Generator:
    """The candidates of the questions `gate` gives a block only: what a perfect order
    could do with the questions the defaults answer (off-topic blocks unchanged)."""
    return lambda question: (
        generator(question) if block(corpus, gate(corpus, question))[0] else set()
    )


def block_row(corpus: Corpus, questions: Sequence[Question], name: str, rule: Rule) -> str:
    """A row for the blocks `rule` gives (within the budget by construction)."""
    given = {q.id: block(corpus, rule(corpus, q))[0] for q in questions}
    return row(name, blocks_reach(corpus, questions, given), questions)


def model_rows(
    corpus: Corpus, questions: Sequence[Question], name: str, lexical: dict[str, Generator]
) -> list[str]:
    replay = Replay(corpus, load(name))
    today = union(lexical[TODAY], lambda question: {p for p, _ in replay.closest(question)})

    def fused(corpus: Corpus, question: Question) -> list[int]:
        return places(corpus, fuse(*replay.candidates(question), SETTINGS.min_similarity))

    def closest(question: Question, *_: object) -> Ranked:
        return replay.closest(question)

    return [
        block_row(corpus, questions, f"{name}: the defaults' block", fused),
        block_row(corpus, questions, f"{name}: cosine's order, no gate", ordered(closest)),
        *rows(corpus, questions, by_meaning(replay, name, lexical)),
        row(
            f"{TODAY} + {name}, closest 20, behind the fusion's gate",
            reach(corpus, questions, behind(corpus, fused, today)),
            questions,
        ),
    ]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--models", default="", help="embedding models, comma-separated")
    args = parser.parse_args()
    dataset = build_dataset()
    corpus = Corpus(dataset)
    questions = list(dataset.questions)
    print(
        "share of questions whose evidence is among the candidates / fits 1,000 tokens of them\n"
        "| candidates | single | multi (both; ≥ 1) | temporal | open | all (tune ; test) | n |\n"
        "| --- | --- | --- | --- | --- | --- | --- |"
    )
    print(block_row(corpus, questions, "the defaults' block (words alone)", defaults))
    print(block_row(corpus, questions, "BM25's order, no gate", ordered(corpus.search)))
    words_only = lexical(corpus)
    print("\n".join(rows(corpus, questions, words_only)), flush=True)
    gated = reach(corpus, questions, behind(corpus, defaults, words_only[TODAY]))
    print(row(f"{TODAY}, behind the defaults' gate", gated, questions))
    for name in filter(None, args.models.split(",")):
        print("\n".join(model_rows(corpus, questions, name, words_only)), flush=True)


if __name__ == "__main__":
    main()
