"""Issue 20's item 4, measured: do the question's own time words, as a prior on the
memories' dates, bring the long histories' evidence into recall's block? With the
words-alone replay (scripts/bench_recall_replay.py): a question about the present ("now",
"these days", "currently", "lately", "still", "today", "last time") prefers the newer of
the hits, one about the past ("before", "used to", "originally", "old", "previous") the
older; other questions keep the defaults' block. Explicit relative ranges ("yesterday", "last
week", "in May"), which could narrow the block to the memories dated inside them, are
counted only: the benchmark asks none. Tune on the "tune" split only.

    .venv/bin/python -m scripts.bench_recall_dates [--split tune]
"""

from __future__ import annotations

import argparse
import re
from collections.abc import Callable

from memory_proxy.memory.recall import fill_floor
from memory_proxy.stores.relevance import reaches
from scripts.bench_recall_replay import SETTINGS, Corpus, Ranked, Rule, block, defaults, figures
from scripts.recall_history import Question, build_dataset

PRESENT = r"now|these days|currently|lately|still|today"
NEWER = re.compile(rf"\b({PRESENT}|last time)\b", re.I)
OLDER = re.compile(r"\b(before|used to|originally|old|previous(ly)?|at first)\b", re.I)
# Chosen on the tune split: "last time" ("how did we get past ... last time?") asks for a
# fix told once, not for the newest of several; the past's words for an old value find
# older chatter about the same service before it.
PRESENT_ONLY = re.compile(rf"\b({PRESENT})\b", re.I)
NOTHING = re.compile(r"(?!)")
MONTHS = "january february march april may june july august september october november december"
RANGE = re.compile(
    r"\b(yesterday|last (week|month)|(\d+|a|two|three) (days?|weeks?|months?) ago"
    rf"|in ({'|'.join(MONTHS.split())}))\b",
    re.I,
)


Cue = Callable[[str], str | None]  # "newer" or "older": what time words ask for


def cue(newer: re.Pattern[str], older: re.Pattern[str]) -> Cue:
    def asked(text: str) -> str | None:
        if newer.search(text):
            return "newer"
        return "older" if older.search(text) else None

    return asked


CUES = {
    "time words": cue(NEWER, OLDER),
    "the present's words only": cue(PRESENT_ONLY, NOTHING),
}


def gated(corpus: Corpus, question: Question, depth: int) -> tuple[Ranked, dict[int, float]]:
    """The defaults' gate and fill over the word search's best `depth`: its hits down to
    the fill's floor in BM25 order (none when none answers), and the share of each."""
    weights = corpus.weights(question.text)
    found = corpus.search(question, {}, SETTINGS.min_score, depth)
    shares = {place: corpus.share(place, weights) for place, _ in found}
    if not any(reaches(share, SETTINGS.min_score) for share in shares.values()):
        return [], shares
    return [hit for hit in found if reaches(shares[hit[0]], fill_floor(SETTINGS))], shares


def dated(cue: Cue, depth: int, answering_first: bool) -> Rule:
    """For a question with time words, the block `gated` gives by date (the newest first,
    or the oldest; the hits answering it first when `answering_first`)."""

    def rule(corpus: Corpus, question: Question) -> list[int]:
        wanted = cue(question.text)
        if wanted is None:
            return defaults(corpus, question)
        kept, shares = gated(corpus, question, depth)
        sign = -1 if wanted == "newer" else 1
        return sorted(
            (place for place, _ in kept),
            key=lambda p: (
                answering_first and not reaches(shares[p], SETTINGS.min_score),
                sign * corpus.records[p].created_at,
            ),
        )

    return rule


def boosted(cue: Cue, depth: int, boost: float) -> Rule:
    """For a question with time words, the block `gated` gives ordered by BM25 times 1 +
    `boost` x the memory's date's place among them (0 the oldest, 1 the newest; reversed
    for the past)."""

    def rule(corpus: Corpus, question: Question) -> list[int]:
        wanted = cue(question.text)
        if wanted is None:
            return defaults(corpus, question)
        kept, _ = gated(corpus, question, depth)
        by_date = sorted(kept, key=lambda hit: corpus.records[hit[0]].created_at)
        if wanted == "older":
            by_date.reverse()
        place_of = {p: i / max(len(by_date) - 1, 1) for i, (p, _) in enumerate(by_date)}
        kept.sort(key=lambda hit: -hit[1] * (1 + boost * place_of[hit[0]]))
        return [place for place, _ in kept]

    return rule


def rules() -> dict[str, Rule]:
    limit = SETTINGS.limit
    every: dict[str, Rule] = {"defaults": defaults}
    for words, asked in CUES.items():
        every |= {
            f"{words}: the block by date": dated(asked, limit, False),
            f"{words}: those answering by date, then the fill": dated(asked, limit, True),
            f"{words}: best 20, the block by date": dated(asked, 20, False),
            f"{words}: best 20, those answering first": dated(asked, 20, True),
            f"{words}: BM25 x (1 + 0.25 date), best 10": boosted(asked, limit, 0.25),
            f"{words}: BM25 x (1 + 0.5 date), best 10": boosted(asked, limit, 0.5),
            f"{words}: BM25 x (1 + 0.5 date), best 20": boosted(asked, 20, 0.5),
            f"{words}: BM25 x (1 + 1 date), best 20": boosted(asked, 20, 1.0),
        }
    return every


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--split", choices=("tune", "test"), default="tune")
    args = parser.parse_args()
    dataset = build_dataset()
    corpus = Corpus(dataset)
    questions = [q for q in (*dataset.questions, *dataset.off_topic) if q.split == args.split]
    cues = [CUES["time words"](q.text) for q in questions]
    ranges = sum(bool(RANGE.search(q.text)) for q in questions)
    print(f"{args.split} split: {len(questions)} questions; with time words:", end=" ")
    print(f"newer {cues.count('newer')}, older {cues.count('older')}, a range {ranges}")
    print("evidence, off-topic with a block, tokens on-topic")
    for name, rule in rules().items():
        blocks = {q.id: block(corpus, rule(corpus, q)) for q in questions}
        evidence, off_topic, tokens = figures(questions, blocks)
        print(f"{name:68} {evidence:.3f}  {off_topic:.3f}  {tokens:5.0f}")


if __name__ == "__main__":
    main()
