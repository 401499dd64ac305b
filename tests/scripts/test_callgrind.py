from pathlib import Path

from scripts.callgrind import total, totals_by_thread


def test_the_totals_of_each_threads_file(tmp_path: Path) -> None:
    out = tmp_path / "case-10.callgrind"
    (tmp_path / "case-10.callgrind-01").write_text("events: Ir\nsummary: 1200\ntotals: 1200\n")
    (tmp_path / "case-10.callgrind-02").write_text("events: Ir\ntotals: 34\n")
    (tmp_path / "case-10.callgrind-03").write_text("events: Ir\n")  # cut short: left out
    (tmp_path / "case-100.callgrind-01").write_text("summary: 99\n")  # another run's
    assert totals_by_thread(out) == {1: 1200, 2: 34}


def test_one_file_without_totals_is_none(tmp_path: Path) -> None:
    (tmp_path / "a.callgrind").write_text("summary: 7\n")
    (tmp_path / "b.callgrind").write_text("events: Ir\n")
    assert total(tmp_path / "a.callgrind") == 7
    assert total(tmp_path / "b.callgrind") is None
