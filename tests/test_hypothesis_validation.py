"""tests/hypothesis_validation.py: a filtered strategy stays validated (validated once, not
at every draw), and what it draws still passes its filters."""

from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

EVEN_WITH_A_DIGIT = st.text("ab12", min_size=1, max_size=6).filter(
    lambda text: any(c.isdigit() for c in text) and len(text) % 2 == 0
)


def test_a_filtered_strategy_stays_validated() -> None:
    strategy = st.text("ab12").filter(lambda text: "1" in text).filter(bool)
    strategy.validate()
    filtered = strategy.wrapped_strategy  # type: ignore[attr-defined]  # LazyStrategy's
    assert any(filtered.validate_called.values())


@settings(max_examples=200)
@given(EVEN_WITH_A_DIGIT)
def test_what_is_drawn_still_passes_the_filters(text: str) -> None:
    assert any(c.isdigit() for c in text) and len(text) % 2 == 0
