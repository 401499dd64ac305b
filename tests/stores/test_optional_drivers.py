"""A proxy on SQLite in front of a plain-http LiteLLM loads no PostgreSQL driver, no numpy,
no Redis client and no aiohttp: each costs memory and start time (psycopg and its pool,
numpy about 20 MB together; redis and aiohttp about 0.35 s of CPU in every process) that
only `memory.store: postgres`, `recall.embedding_model`, Redis (a store or the rate
limit) or an https LiteLLM needs."""

from __future__ import annotations

import subprocess
import sys


def test_the_app_imports_no_optional_driver() -> None:
    """Imported, and a proxy of the default settings built."""
    probe = (
        "import sys; from memory_proxy.app import MemoryProxy;"
        "from memory_proxy.config import Settings; MemoryProxy(Settings());"
        "print(sorted(m for m in ('numpy', 'psycopg', 'psycopg_pool', 'redis', 'aiohttp')"
        " if m in sys.modules))"
    )
    loaded = subprocess.run(
        [sys.executable, "-c", probe], capture_output=True, text=True, check=True, timeout=60
    ).stdout.strip()
    assert loaded == "[]"
