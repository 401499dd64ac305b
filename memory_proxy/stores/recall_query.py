"""From a user's message to the words worth searching memories for.

Measured on a conversational-memory benchmark (DESIGN.md, "Verified facts about local
retrieval"): dropping function words and chat filler, and stemming, matter more than
anything else tried. The index stems; this module drops the words that say nothing about
the topic, so that "can you remind me how we deploy the app?" searches for "deploy" and
"app".
"""

from __future__ import annotations

import functools
import re
import string

MAX_TERMS = 32  # bounds the search's cost when someone pastes a page of text

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


# In ASCII text (lowered), the words `_WORD` finds, and those of them that are no topic
# word: the stopwords and single letters (a single digit is one).
_ASCII_WORD = re.compile(r"[a-z0-9]+")
_NO_TOPIC = STOPWORDS | frozenset(string.ascii_lowercase)


def plainly_no_terms(text: str) -> bool:
    """True when `text` is ASCII and `query_terms` finds no topic word in it (a chat's
    "hi", "thanks!"), known without a list of its words or a loop over them; False for
    any other text, which may or may not hold one."""
    return text.isascii() and _NO_TOPIC.issuperset(_ASCII_WORD.findall(text.lower()))


def query_terms(text: str) -> list[str]:
    """The distinct topic words of `text`, lowercased, in order of appearance."""
    return list(_query_terms(text))


# Recall reads a question's terms, then the index's search reads them again (its callers
# pass the text): the second read is a look-up. A few entries: nothing to keep longer.
@functools.lru_cache(maxsize=8)
def _query_terms(text: str) -> tuple[str, ...]:
    terms: dict[str, None] = {}
    for word in _WORD.findall(text.lower()):
        if (len(word) > 1 or word.isdigit()) and word not in STOPWORDS:
            terms[word] = None
            if len(terms) == MAX_TERMS:
                break
    return tuple(terms)


def fts5_phrase(term: str) -> str:
    """`term` as an FTS5 string. Inside double quotes only a double quote is special, but
    FTS5 reads a query as a C string: a NUL would end it early (unterminated string). NUL
    is no word character, so a space stands in for it."""
    return '"' + term.replace('"', '""').replace("\0", " ") + '"'


def fts5_words(terms: list[str]) -> str:
    """An FTS5 expression matching text that holds any of `terms`: BM25 ranks the matches
    and relevance.py gates them (an implicit AND finds nothing for a question asked in
    other words)."""
    return " OR ".join(fts5_phrase(term) for term in terms)
