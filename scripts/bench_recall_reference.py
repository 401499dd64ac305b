"""Reference points for long-history recall, outside the product: plain SQLite FTS5 over
the same memory texts, so that tuning has a floor and a ceiling to compare against.

One FTS5 table per (user, project), the question's words OR-ed, BM25's best k hits with
no threshold (so every off-topic question that shares a word gets a block):
- "unicode61": FTS5's default tokenizer, every word of the question;
- "porter": the porter stemmer, and the question's stopwords dropped (the list below,
  the usual English function words; not the product's);
- "porter, windows": each exchange indexed with its neighbours' text (the previous and
  next exchange of the same session), the centre exchange recalled.
A question counts when its evidence is among the k exchanges recalled; injected tokens
are the recalled texts' characters / 4.
"""

from __future__ import annotations

import re
import sqlite3
import statistics
from collections.abc import Sequence

from scripts.bench_recall_history import CHARS_PER_TOKEN, Asked, figures
from scripts.recall_history import Dataset, Exchange
from scripts.recall_world import words

_WORD = re.compile(r"[^\W_]+")
STOPWORDS = frozenset(
    words(
        """
        a about above after again against all am an and any are as at be because been before
        being below between both but by can could did do does doing down during each few for
        from further had has have having he her here hers herself him himself his how i if in
        into is it its itself just me more most my myself no nor not now of off on once only
        or other our ours ourselves out over own same she should so some such than that the
        their theirs them themselves then there these they this those through to too under
        until up very was we were what when where which while who whom why will with would
        you your yours yourself yourselves
        """
    )
)
VARIANTS = (
    ("unicode61", "unicode61", False, False, 5),
    ("porter + stopwords", "porter unicode61", True, False, 5),
    ("porter + stopwords", "porter unicode61", True, False, 10),
    ("porter + stopwords, windows", "porter unicode61", True, True, 5),
    ("porter + stopwords, windows", "porter unicode61", True, True, 10),
)


def match_expression(question: str, drop_stopwords: bool) -> str | None:
    words = dict.fromkeys(word for word in _WORD.findall(question.lower()))
    if drop_stopwords:
        words = {word: None for word in words if word not in STOPWORDS}
    return " OR ".join(f'"{word}"' for word in words) or None


def windows(exchanges: Sequence[Exchange], texts: Sequence[str]) -> list[str]:
    """Each exchange's text with its session neighbours' (exchanges are in order)."""
    result = []
    for position, exchange in enumerate(exchanges):
        parts = [texts[position]]
        for neighbour in (position - 1, position + 1):
            if 0 <= neighbour < len(exchanges):
                other = exchanges[neighbour]
                if (other.user, other.session) == (exchange.user, exchange.session):
                    parts.append(texts[neighbour])
        result.append("\n".join(parts))
    return result


def reference(
    dataset: Dataset,
    texts: Sequence[str],
    tokenizer: str,
    drop_stopwords: bool,
    with_windows: bool,
    limit: int,
) -> dict[str, float]:
    """One variant's figures, shaped as the proxy's (scripts/bench_recall_history.py)."""
    indexed = windows(dataset.exchanges, texts) if with_windows else list(texts)
    db = sqlite3.connect(":memory:")
    scopes: dict[tuple[str, str], list[int]] = {}
    for row, exchange in enumerate(dataset.exchanges):
        scopes.setdefault((exchange.user, exchange.project), []).append(row)
    tables = {}
    for number, (scope, members) in enumerate(scopes.items()):
        table = f"scope{number}"
        db.execute(f"CREATE VIRTUAL TABLE {table} USING fts5(text, tokenize='{tokenizer}')")
        db.executemany(
            f"INSERT INTO {table} (rowid, text) VALUES (?, ?)", [(r, indexed[r]) for r in members]
        )
        tables[scope] = table
    asked = []
    for question in (*dataset.questions, *dataset.off_topic):
        expression = match_expression(question.text, drop_stopwords)
        rows: list[int] = []
        if expression is not None:
            table = tables[(question.user, question.project)]
            rows = [
                row
                for (row,) in db.execute(
                    f"SELECT rowid FROM {table} WHERE {table} MATCH ? ORDER BY rank LIMIT ?",
                    (expression, limit),
                )
            ]
        recalled = tuple(dataset.exchanges[row].id for row in rows)
        asked.append(Asked(question, recalled, sum(len(texts[row]) for row in rows)))
    db.close()
    return figures(asked)


def references(dataset: Dataset, texts: Sequence[str]) -> dict[str, dict[str, float]]:
    return {
        f"{name}, top-{limit}": reference(dataset, texts, tokenizer, stop, near, limit)
        for name, tokenizer, stop, near, limit in VARIANTS
    }


def mean_tokens(texts: Sequence[str]) -> float:
    return statistics.mean(len(text) for text in texts) / CHARS_PER_TOKEN
