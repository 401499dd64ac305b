"""Reading callgrind's output files: the benches that count instructions (bench_hop,
bench_index_process, bench_session_hop, bench_session_steps) all want its totals."""

from __future__ import annotations

import re
from pathlib import Path

_TOTALS = re.compile(r"^(?:summary|totals): (\d+)", re.M)


def total(out: Path) -> int | None:
    """The instructions counted in one callgrind output file, or None when it has none."""
    found = _TOTALS.search(out.read_text(errors="replace"))
    return int(found[1]) if found else None


def totals_by_thread(out: Path) -> dict[int, int]:
    """Instructions by thread (1: the main thread) of a `--separate-threads=yes` run whose
    `--callgrind-out-file` was `out`: callgrind writes one file per thread, -01, -02, ..."""
    counts = {}
    for part in out.parent.glob(f"{out.name}-*"):
        if (counted := total(part)) is not None:
            counts[int(part.name.rsplit("-", 1)[1])] = counted
    return counts
