"""Hypothesis 6.170 validates a filtered strategy again at every draw: `validate()` marks a
strategy validated, then calls `FilteredStrategy.do_validate`, which re-initialises the
strategy (`FilteredStrategy.__init__` -> `SearchStrategy.__init__`) and so clears the mark.
Each draw of `st.text(...).filter(lambda ...)` then replays its filters, each replay
trying to rewrite the lambda into bounds by parsing its source (`ast.parse`): 10,000 such
parses in the four redaction modules alone. `validated_once()` keeps the mark across the
re-initialisation; what a validation does, and so what is drawn, is unchanged (a second
validation replays the same predicates on the strategy the first one rewrote)."""

from __future__ import annotations

from typing import Any

from hypothesis.strategies._internal.strategies import FilteredStrategy


def validated_once() -> None:
    """Patch FilteredStrategy.do_validate (once) to keep the strategy's validated mark."""
    do_validate = FilteredStrategy.do_validate
    if getattr(do_validate, "keeps_the_mark", False):
        return

    def keeping_the_mark(self: Any) -> None:
        marks = self.validate_called  # validate() has set this thread's mark in it
        do_validate(self)
        self.validate_called = marks

    keeping_the_mark.keeps_the_mark = True  # type: ignore[attr-defined]
    FilteredStrategy.do_validate = keeping_the_mark  # type: ignore[method-assign]
