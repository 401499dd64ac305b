"""Roll-ups: each coarser resolution derived from the finest is what counting every
record at that resolution gives."""

from __future__ import annotations

import math

from hypothesis import given
from hypothesis import strategies as st

from memory_proxy.records.series import RESOLUTIONS, Rollup, rollups
from memory_proxy.records.usage import UsageRecord

# Times on and just before the edges of buckets (a day's edge is an hour's and 5 minutes').
EDGES = st.integers(1, 10**7).map(lambda n: n * 300.0) | st.integers(1, 10**7).map(
    lambda n: n * 300.0 - 1e-3
)
records = st.builds(
    UsageRecord,
    time=st.floats(0, 4e9) | EDGES,
    request_id=st.just("r"),
    user_id=st.sampled_from(["alice", "bob"]),
    session_id=st.none(),
    client=st.sampled_from(["claude-code", "codex"]),
    model=st.sampled_from([None, "gpt-4o", "claude"]),
    endpoint=st.just("/v1/chat/completions"),
    status=st.sampled_from([200, 400, 502]),
    stream=st.booleans(),
    upstream_ms=st.just(1.0),
    first_byte_ms=st.none() | st.floats(0, 1e6),
    total_ms=st.floats(0, 1e6),
    prompt_tokens=st.none() | st.integers(0, 10**6),
    completion_tokens=st.none() | st.integers(0, 10**6),
    cost=st.none() | st.floats(0, 100),
    tool=st.none() | st.just("search_memory"),
)


@given(st.lists(records, max_size=40))
def test_every_resolution_counts_as_if_each_record_were_counted_at_it(
    batch: list[UsageRecord],
) -> None:
    made = rollups(batch)
    assert list(made) == list(RESOLUTIONS)
    for seconds in RESOLUTIONS:
        direct = Rollup()
        for record in batch:
            direct.add([record], seconds)
        assert made[seconds].latency == direct.latency
        assert made[seconds].counts.keys() == direct.counts.keys()
        for key, row in direct.counts.items():
            derived = made[seconds].counts[key]
            assert derived[:4] == row[:4]
            assert math.isclose(derived[4], row[4], rel_tol=1e-9, abs_tol=1e-9)
