"""tests/conftest.py's scheduling of test modules on pytest-xdist's workers: each scope
of LONGEST_FIRST, handed out before the others, is a group of TOGETHER or a test module
(a module renamed or split would lose its place without a word)."""

from __future__ import annotations

from pathlib import Path

from tests.conftest import LONGEST_FIRST, TOGETHER

ROOT = Path(__file__).resolve().parents[1]


def test_each_of_the_longest_scopes_is_a_group_or_a_test_module() -> None:
    for scope in LONGEST_FIRST:
        assert scope in TOGETHER or (ROOT / scope).is_file(), scope
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)
