"""From a user's message to the words worth searching memories for.

Measured on a conversational-memory benchmark (DESIGN.md, "Verified facts about local
retrieval"): dropping function words and chat filler, and stemming, matter more than
anything else tried. The index stems; this module drops the words that say nothing about
the topic, so that "can you remind me how we deploy the app?" searches for "deploy" and
"app".
"""

from __future__ import annotations

import itertools
import re

MAX_TERMS = 32  # bounds the search's cost when someone pastes a page of text
# Up to this many terms, "at least k of them" is spelled out as an OR of ANDs (at most six
# groups); beyond, any one term matches and the share is checked afterwards (more groups
# cost more than they save: with up to six terms the p99 grew by a third).
MAX_COMBINED_TERMS = 4

# Letters and digits: what SQLite's unicode61 tokenizer keeps (it splits on "_" too).
_WORD = re.compile(r"[^\W_]+")

# English function words, then chat filler.
_STOPWORD_TEXT = """
    a about above across after again against all am an and any are aren around as at be
    because been before being below between both but by can cannot could couldn did didn do
    does doesn doing don down during each few for from further had hadn has hasn have haven
    having he her here hers herself him himself his how i if in into is isn it its itself
    just let ll me might mightn more most must mustn my myself no nor not now of off on once
    only onto or other ought our ours ourselves out over own per re same shall shan she
    should shouldn so some such than that the their theirs them themselves then there these
    they this those through to too toward towards under until up upon us ve very via was
    wasn we were weren what when where which while who whom whose why will with within
    without won would wouldn you your yours yourself yourselves
    already also anything anyway basically currently else even ever every get gets going
    gonna got guess hello help hey hi however kind know lets like maybe mention mentioned
    much need ok okay one please pls quick quickly really recall remember remind reminded
    said say says something sorry still stuff sure tell thank thanks thing things think thx
    told wanna want wanted way well whatever yeah yes yet
"""
STOPWORDS = frozenset(_STOPWORD_TEXT.split())


def query_terms(text: str) -> list[str]:
    """The distinct topic words of `text`, lowercased, in order of appearance."""
    terms: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if (len(word) > 1 or word.isdigit()) and word not in STOPWORDS:
            terms[word] = None
            if len(terms) == MAX_TERMS:
                break
    return list(terms)


def fts5_phrase(term: str) -> str:
    """`term` as an FTS5 string. Inside double quotes only a double quote is special, but
    FTS5 reads a query as a C string: a NUL would end it early (unterminated string). NUL
    is no word character, so a space stands in for it."""
    return '"' + term.replace('"', '""').replace("\0", " ") + '"'


def fts5_words(terms: list[str], min_share: float = 0.0) -> str:
    """An FTS5 expression matching text that holds at least `min_share` of `terms`.

    A match must be scored (BM25) before it can be ranked, and a search for any one of a
    question's words scores every memory that shares a common word with it. Asking for the
    share recall will demand anyway scores only the memories that can pass: on 10,000
    everyday memories of one project, p50 6.4 -> 3.7 ms (p99 about the same, 12-16 ms).
    """
    phrases = [fts5_phrase(term) for term in terms]
    needed = next(k for k in range(1, len(terms) + 1) if k / len(terms) >= min_share)
    if needed == 1 or len(terms) > MAX_COMBINED_TERMS:
        return " OR ".join(phrases)
    groups = itertools.combinations(phrases, needed)
    return " OR ".join("(" + " AND ".join(group) + ")" for group in groups)
