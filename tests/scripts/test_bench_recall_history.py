"""The long-history recall benchmark: its generated histories are what the issue asks
for (long, dated, many sessions, facts in passing, questions in other words, off-topic
ones about nothing discussed, a fixed hold-out), and its measurement through a running
proxy finds what reached LiteLLM (a small run)."""

from __future__ import annotations

import collections
import dataclasses
import datetime
import re
from pathlib import Path

import pytest

from memory_proxy.memory.indexing import exchange_text
from scripts.bench_recall import history, print_history
from scripts.bench_recall_history import figures, run
from scripts.bench_recall_reference import STOPWORDS, reference, windows
from scripts.recall_history import Dataset, Question, build_dataset, split_of
from scripts.recall_plan import QUESTION_KINDS

TODAY = datetime.date(2026, 11, 20)
_WORD = re.compile(r"[^\W_]+")


@pytest.fixture(scope="module")
def dataset() -> Dataset:
    return build_dataset(today=TODAY)


def words(text: str) -> list[str]:
    return _WORD.findall(text.lower())


def runs(text: str, length: int) -> set[tuple[str, ...]]:
    """Every `length` topic words in a row (stopwords left out)."""
    found = [word for word in words(text) if word not in STOPWORDS]
    return {tuple(found[i : i + length]) for i in range(len(found) - length + 1)}


def test_histories_are_long_dated_and_the_same_for_a_seed(dataset: Dataset) -> None:
    assert build_dataset(today=TODAY) == dataset
    assert build_dataset(today=TODAY, seed=21) != dataset
    by_user = collections.defaultdict(list)
    for exchange in dataset.exchanges:
        by_user[exchange.user].append(exchange)
    assert len(by_user) >= 5
    end = datetime.datetime.combine(TODAY, datetime.time(), datetime.UTC).timestamp()
    for exchanges in by_user.values():
        assert len(exchanges) >= 300
        assert len({exchange.session for exchange in exchanges}) >= 10
        assert len({exchange.project for exchange in exchanges}) == 3  # two projects, general
        times = [exchange.at for exchange in exchanges]
        assert times == sorted(times) and max(times) < end
        assert max(times) - min(times) > 90 * 86_400


def test_questions_of_every_kind_with_evidence_from_other_sessions(dataset: Dataset) -> None:
    assert len(dataset.questions) >= 300
    kinds = collections.Counter(question.kind for question in dataset.questions)
    assert set(kinds) == set(QUESTION_KINDS) and min(kinds.values()) >= 30
    exchanges = {exchange.id: exchange for exchange in dataset.exchanges}
    for question in dataset.questions:
        evidence = [exchanges[i] for group in question.evidence for i in group]
        assert evidence and all(e.project == question.project for e in evidence)
        assert all(e.user == question.user for e in evidence)
        if question.kind == "multi-hop":
            sessions = [{exchanges[i].session for i in group} for group in question.evidence]
            assert len(sessions) == 2 and not sessions[0] & sessions[1]


def test_each_fact_is_said_in_passing_and_kept_whole_in_the_memory(dataset: Dataset) -> None:
    exchanges = {exchange.id: exchange for exchange in dataset.exchanges}
    assert len(dataset.facts) < len(dataset.exchanges) / 5  # among much more chatter
    for exchange_id, fact in dataset.facts.items():
        exchange = exchanges[exchange_id]
        stored = exchange_text(exchange.question, exchange.answer).lower()
        assert fact.lower() in stored
        assert len(stored) > len(fact) + 20  # the exchange is about something else too


def test_questions_are_asked_in_other_words(dataset: Dataset) -> None:
    """Never four topic words in a row of the sentence that told the fact, and on
    average under half of a question's topic words are in its evidence."""
    exchanges = {exchange.id: exchange for exchange in dataset.exchanges}
    shares = []
    for question in dataset.questions:
        told = [dataset.facts[i] for group in question.evidence for i in group]
        assert not any(runs(question.text, 4) & runs(fact, 4) for fact in told), question
        topic = {word for word in words(question.text) if word not in STOPWORDS}
        evidence = " ".join(
            exchange_text(exchanges[i].question, exchanges[i].answer)
            for group in question.evidence
            for i in group
        )
        shares.append(len(topic & set(words(evidence))) / len(topic))
    assert sum(shares) / len(shares) < 0.5


def test_off_topic_questions_share_words_but_no_subject_with_the_memory(dataset: Dataset) -> None:
    vocabulary: dict[tuple[str, str], set[str]] = collections.defaultdict(set)
    phrases: dict[tuple[str, str], set[tuple[str, ...]]] = collections.defaultdict(set)
    for exchange in dataset.exchanges:
        text = f"{exchange.question} {exchange.answer}"
        vocabulary[(exchange.user, exchange.project)] |= set(words(text))
        phrases[(exchange.user, exchange.project)] |= runs(text, 3)
    sharing = 0
    for question in dataset.off_topic:
        scope = (question.user, question.project)
        assert not runs(question.text, 3) & phrases[scope], question.text
        topic = {word for word in words(question.text) if word not in STOPWORDS}
        sharing += bool(topic & vocabulary[scope])
    assert sharing / len(dataset.off_topic) > 0.7


def test_the_hold_out_split_is_fixed_and_about_half(dataset: Dataset) -> None:
    assert split_of("dev0-q000") == split_of("dev0-q000")
    splits = collections.Counter(q.split for q in (*dataset.questions, *dataset.off_topic))
    assert 0.4 < splits["tune"] / sum(splits.values()) < 0.6
    assert all(q.split == split_of(q.id) for q in dataset.questions)


def test_windows_join_neighbours_of_the_same_session_only() -> None:
    small = build_dataset(users=1, today=TODAY)
    texts = [f"t{n}" for n in range(len(small.exchanges))]
    joined = windows(small.exchanges, texts)
    for position, exchange in enumerate(small.exchanges):
        parts = joined[position].split("\n")
        assert parts[0] == texts[position]
        neighbours = [p for p in (position - 1, position + 1) if 0 <= p < len(texts)]
        same = [p for p in neighbours if small.exchanges[p].session == exchange.session]
        assert parts[1:] == [texts[p] for p in same]


def own_words(dataset: Dataset, count: int) -> list[Question]:
    """Controls: facts asked for in the very words that told them."""
    exchanges = {exchange.id: exchange for exchange in dataset.exchanges}
    return [
        Question(
            f"control{n}", e.user, e.project, "single-hop", dataset.facts[e.id], ((e.id,),), "test"
        )
        for n, e in enumerate(exchanges[i] for i in sorted(dataset.facts)[:count])
    ]


def test_what_reaches_litellm_is_found_through_a_running_proxy(tmp_path: Path) -> None:
    small = build_dataset(users=1, today=TODAY, off_topic=5)
    controls = own_words(small, 5)
    asked, counters, texts = run(
        tmp_path, dataclasses.replace(small, questions=small.questions + tuple(controls))
    )
    assert counters["requests"] == len(small.questions) + len(controls) + 5
    assert [a.question for a in asked[-10:-5]] == controls
    assert all(a.question.evidence[0][0] in a.recalled for a in asked[-10:-5])
    result = figures(asked)
    assert result["unknown memories"] == 0
    assert all(0 <= result[kind] <= 1 for kind in (*QUESTION_KINDS, "all", "tune", "test"))
    assert result["tokens on-topic"] <= 1000  # recall.max_tokens
    checked = dataclasses.replace(small, questions=tuple(controls), off_topic=())
    assert reference(checked, texts, "porter unicode61", True, False, 5)["all"] == 1


def test_a_small_run_prints_every_figure(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    results = history(tmp_path, users=1, sizes=[400], searches=20)
    print_history(results)
    out = capsys.readouterr().out
    assert "proxy, defaults" in out and "porter + stopwords, windows, top-10" in out
    assert "search in one project, 400 memories" in out
    assert results["one project"][0]["memories"] == 400
