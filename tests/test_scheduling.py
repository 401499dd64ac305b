"""tests/conftest.py's scheduling of test modules on pytest-xdist's workers: each scope
of LONGEST_FIRST, handed out before the others, is a group of TOGETHER or a test module
(a module renamed or split would lose its place without a word)."""

from __future__ import annotations

import re
from pathlib import Path

from tests.conftest import LONGEST_FIRST, TOGETHER

ROOT = Path(__file__).resolve().parents[1]


def test_each_of_the_longest_scopes_is_a_group_or_a_test_module() -> None:
    for scope in LONGEST_FIRST:
        assert scope in TOGETHER or (ROOT / scope).is_file(), scope
    assert len(set(LONGEST_FIRST)) == len(LONGEST_FIRST)


def test_each_group_names_test_modules() -> None:
    for group, prefixes in TOGETHER.items():
        for prefix in prefixes:
            assert list(ROOT.glob(f"{prefix}*")), (group, prefix)


def test_the_modules_driving_the_client_sdks_run_on_one_worker() -> None:
    """A module importing tests/sdks.py outside this group pays the SDKs' import again."""
    grouped = TOGETHER["on the shared LiteLLM"]
    for module in ROOT.glob("tests/**/test_*.py"):
        if re.search(r"^from tests\.sdks import", module.read_text(), re.MULTILINE):
            assert str(module.relative_to(ROOT)).startswith(grouped), module
