"""A proxy on SQLite loads no PostgreSQL driver and no numpy: each costs memory and start
time (psycopg and its pool, numpy about 20 MB together) that only `memory.store: postgres`
or `recall.embedding_model` needs."""

from __future__ import annotations

import subprocess
import sys


def test_the_app_imports_neither_psycopg_nor_numpy() -> None:
    probe = (
        "import sys, memory_proxy.app;"
        "print(sorted(m for m in ('numpy', 'psycopg', 'psycopg_pool') if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
