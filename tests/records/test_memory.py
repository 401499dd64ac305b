"""MemoryRecord.made, the index's cheaper constructor: the very record __init__ makes."""

from __future__ import annotations

import dataclasses
import pickle

import pytest
from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.records.memory import MemoryRecord

FIELDS = st.tuples(
    st.text(max_size=24),
    st.text(max_size=10),
    st.text(max_size=10),
    st.none() | st.text(max_size=10),
    st.text(max_size=10),
    st.none() | st.text(max_size=10),
    st.floats(allow_nan=False),
    st.text(max_size=100),
    st.booleans(),
)


@given(FIELDS)
def test_made_is_the_record_init_makes(fields: tuple[object, ...]) -> None:
    made = MemoryRecord.made(*fields)  # type: ignore[arg-type]
    built = MemoryRecord(*fields)  # type: ignore[arg-type]
    assert made == built
    assert hash(made) == hash(built)
    assert repr(made) == repr(built)
    assert dataclasses.asdict(made) == dataclasses.asdict(built)
    assert made.describe() == built.describe()
    assert pickle.loads(pickle.dumps(made)) == built
    assert dataclasses.replace(made, text="other") == dataclasses.replace(built, text="other")


def test_a_made_record_is_frozen() -> None:
    made = MemoryRecord.made("i", "u", "", None, "c", None, 1.0, "text", False)
    with pytest.raises(dataclasses.FrozenInstanceError):
        made.text = "changed"  # type: ignore[misc]
