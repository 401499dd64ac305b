from __future__ import annotations

import pytest

from memory_proxy.identity.client_detection import InvalidIdentifier
from memory_proxy.identity.memory_mode import memory_mode, reads, writes


def test_both_by_default_and_what_each_mode_allows() -> None:
    assert memory_mode({}, "alice", {}) == "on"
    assert [(reads(m), writes(m)) for m in ("on", "read", "write", "off")] == [
        (True, True),
        (True, False),
        (False, True),
        (False, False),
    ]


@pytest.mark.parametrize("asked", ["off", "read", "write", "on", " READ "])
def test_a_request_chooses_its_mode(asked: str) -> None:
    assert memory_mode({"x-memory": asked}, "alice", {}) == asked.strip().lower()


def test_the_configured_mode_of_a_user_applies_and_a_request_cannot_widen_it() -> None:
    modes = {"ci": "read", "curl": "off"}
    assert memory_mode({}, "ci", modes) == "read"
    assert memory_mode({"x-memory": "on"}, "ci", modes) == "read"
    assert memory_mode({"x-memory": "write"}, "ci", modes) == "off"
    assert memory_mode({"x-memory": "on"}, "curl", modes) == "off"
    assert memory_mode({}, "alice", modes) == "on"


@pytest.mark.parametrize("bad", ["", "none", "true", "read,write"])
def test_an_unknown_mode_is_refused(bad: str) -> None:
    with pytest.raises(InvalidIdentifier, match="x-memory must be one of"):
        memory_mode({"x-memory": bad}, "alice", {})
