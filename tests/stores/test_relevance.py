import math

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.stores.relevance import (
    covered_share,
    held_share,
    reaches,
    relevant,
    stems,
    weight,
    words_by_stem,
)
from tests.stores.sqlite_index_support import memory


def test_a_share_counts_the_words_as_the_index_stems_them() -> None:
    text = "User: we deployed the services with Terraform\nAssistant: noted"
    question = stems(["deploying", "service"])
    assert question == ["deploi", "servic"]
    assert covered_share(dict.fromkeys(question, 1.0), text) == 1.0
    assert covered_share(dict.fromkeys(stems(["deploy", "kubernetes"]), 1.0), text) == 0.5
    assert covered_share(dict.fromkeys(stems(["cat"]), 1.0), "a category") == 0.0
    assert covered_share({}, text) == 0.0


def test_a_rare_word_weighs_more_than_a_common_one() -> None:
    weights = {"eaddrinus": weight(4, 10_000), "time": weight(5_000, 10_000)}
    assert weights["eaddrinus"] > 10 * weights["time"]
    assert covered_share(weights, "EADDRINUSE again") > 0.9
    assert covered_share(weights, "it takes time") < 0.1


def test_a_word_never_seen_weighs_as_one_seen_once() -> None:
    assert weight(0, 1000) == weight(1, 1000)
    assert weight(0, 0) > 0  # an empty index: no division by zero, no negative weight


@given(st.integers(min_value=0, max_value=10**6), st.integers(min_value=0, max_value=10**6))
def test_a_weight_is_positive_and_falls_as_more_memories_hold_the_word(
    holding: int, documents: int
) -> None:
    assert weight(holding, documents) > 0
    assert weight(holding + 1, documents + 1) <= weight(holding, documents + 1) + 1e-12
    assert math.isfinite(weight(holding, documents))


WORDS = st.text(alphabet=st.characters(categories=("L", "N", "M")), min_size=1, max_size=12)


@given(st.lists(st.one_of(WORDS, st.sampled_from(["deploying", "deployed", "Ǆemo", "ﬁle"]))))
def test_words_by_stem_is_each_stem_as_the_first_term_giving_it_in_the_order_searched(
    terms: list[str],
) -> None:
    """What the SQLite index's search built per term with stems(): the same mapping, and
    the same order (its rarest-first sort breaks ties by it)."""
    expected = {stem: term for term in reversed(terms) for stem in stems([term])}
    assert list(words_by_stem(terms).items()) == list(expected.items())


SHARES = st.dictionaries(
    st.sampled_from("abcdefgh"), st.floats(min_value=0, max_value=50, allow_nan=False)
)
HELD = st.frozensets(st.sampled_from("abcdefghij"))


@given(SHARES, st.lists(st.tuples(HELD, st.floats(-20, 20)), max_size=6), st.floats(0, 1))
def test_relevant_gives_each_memory_held_shares_own_share(
    weights: dict[str, float], ranked: list[tuple[frozenset[str], float]], min_share: float
) -> None:
    """relevant() sums the question's weight once for every memory: each share is still
    exactly held_share's (the same floats), and so is what passes."""
    records = [memory(f"m{n}") for n in range(len(ranked))]
    scored = [(record, score, held) for record, (held, score) in zip(records, ranked, strict=True)]
    found = relevant(scored, weights, min_share, min_share / 4)
    expected = [held_share(weights, held) for _, _, held in scored]
    needed = min_share / 4 if any(reaches(s, min_share) for s in expected) else min_share
    kept = [(r, s) for r, s in zip(records, expected, strict=True) if reaches(s, needed)]
    assert [(hit.record, hit.relevance) for hit in found] == kept
