"""The wire bench measures what it says: every case reads its sample whole (the message
when memory keeps it, the token counts and reason always)."""

from __future__ import annotations

from scripts.bench_wire import cases


def test_every_case_runs_on_its_sample() -> None:
    labels = []
    for label, run in cases():
        run()  # each asserts what it read
        labels.append(label)
    assert len(labels) == 15 and len(set(labels)) == 15
