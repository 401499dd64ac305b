"""The time words' prior on the long histories changes the order of the block the
defaults give, never what the word search and its gate let in, and only for questions
with time words: what bench_recall_dates measures is the order alone."""

from __future__ import annotations

import datetime

from scripts.bench_recall_dates import CUES, RANGE, boosted, dated
from scripts.bench_recall_replay import SETTINGS, Corpus, defaults
from scripts.recall_history import build_dataset


def test_time_words_are_read_as_the_present_the_past_or_a_range() -> None:
    asked = CUES["time words"]
    assert asked("which port does tundra use in live these days?") == "newer"
    assert asked("how did we get past EADDRINUSE last time?") == "newer"
    assert CUES["the present's words only"]("how did we get past EADDRINUSE last time?") is None
    assert asked("before we moved it, what did nimbus listen on?") == "older"
    assert asked("which host runs the billing job?") is None
    assert RANGE.search("what did I say yesterday?") and RANGE.search("the bug in May")
    assert not RANGE.search("what maybe broke?")


def test_the_prior_orders_the_defaults_block_by_date() -> None:
    dataset = build_dataset(users=2, today=datetime.date(2026, 11, 20))
    corpus = Corpus(dataset)
    asked = CUES["time words"]
    by_date, by_boost = dated(asked, SETTINGS.limit, False), boosted(asked, SETTINGS.limit, 1.0)
    with_words = 0
    for question in (*dataset.questions, *dataset.off_topic):
        given = defaults(corpus, question)
        ordered = by_date(corpus, question)
        assert sorted(ordered) == sorted(given) == sorted(by_boost(corpus, question))
        wanted = asked(question.text)
        if wanted is None:
            assert ordered == given
            continue
        with_words += bool(given)
        dates = [corpus.records[p].created_at for p in ordered]
        assert dates == sorted(dates, reverse=wanted == "newer")
    assert with_words > 5
