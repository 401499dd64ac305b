"""The server processes scripts/bench starts: each in its own process group on a free
loopback port, stopped (group and all) when its `with` block ends, however it ends."""

from __future__ import annotations

import collections
import os
import re
import signal
import socket
import subprocess
import sys
import time
import tomllib
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import psutil
import yaml

ROOT = Path(__file__).resolve().parent.parent
BIN = Path(sys.executable).parent
# The proxy's counters of requests, and of work that memory skipped or lost.
COUNTERS = (
    "memory_proxy_requests_total",
    "memory_proxy_recall_timeouts_total",
    "memory_proxy_recall_skipped_total",
    "memory_proxy_memories_dropped_total",
    "memory_proxy_memory_store_errors_total",
    "memory_proxy_usage_records_dropped_total",
    "memory_proxy_recall_embeddings_late_total",
    "memory_proxy_embedding_failures_total",
)


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(
    argv: list[str], url: str, env: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """A server answering at `url`, stopped at the end. In a new session, so that a
    Ctrl-C at the terminal reaches only the bench, whose `finally` stops the servers."""
    child = subprocess.Popen(
        argv,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        cwd=ROOT,
        env={**os.environ, **(env or {})},
        start_new_session=True,
    )
    try:
        deadline = time.monotonic() + timeout
        while not _answers(url):
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError(f"{argv[0]} did not start")
            time.sleep(0.05)
        yield child
    finally:
        os.killpg(child.pid, signal.SIGTERM)
        try:
            child.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.wait()


BENCH_MODEL = {
    "model_name": "bench",
    "litellm_params": {"model": "openai/bench", "api_key": "none"},
}


def proxy_config(directory: Path, name: str, sections: dict[str, dict[str, object]]) -> Path:
    """The shipped config.yaml with `sections` over it and its SQLite file in `directory`."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    for section, values in sections.items():
        config[section] = {**config.get(section, {}), **values}
    config["memory"]["sqlite_path"] = str(directory / f"{name}.sqlite3")
    # the model the benches ask for: a name the proxy does not know is refused at once
    config["model_list"] = [*config.get("model_list", []), BENCH_MODEL]
    path = directory / f"{name}.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


@contextmanager
def memory_proxy_process(
    config: Path, upstream: str, workers: int = 1, checkout: Path = ROOT
) -> Iterator[tuple[str, subprocess.Popen[bytes]]]:
    """A memory proxy in front of `upstream` and its URL. It runs the code of `checkout`
    (this one's by default, wherever the virtual environment's editable install points:
    a second worktree measures its own), started as its pyproject.toml says."""
    url = f"http://127.0.0.1:{free_port()}"
    argv = [
        *_memory_proxy_command(checkout),
        *("--config", str(config)),
        *("--port", url.rsplit(":", 1)[1], "--litellm-url", upstream),
        *("--workers", str(workers)),
    ]
    path = os.pathsep.join(filter(None, [str(checkout), os.environ.get("PYTHONPATH")]))
    with process(argv, url, env={"PYTHONPATH": path}) as proxy:
        yield url, proxy


def _memory_proxy_command(checkout: Path) -> list[str]:
    """The `memory-proxy` command of a checkout: its entry point has moved between
    commits (memory_proxy.cli:main, later memory_proxy.cli.main:main)."""
    if checkout == ROOT:
        return [str(BIN / "memory-proxy")]
    project = tomllib.loads((checkout / "pyproject.toml").read_text())["project"]
    module, _, function = project["scripts"]["memory-proxy"].partition(":")
    launch = (
        f"import sys; sys.argv[0] = 'memory-proxy'; from {module} import {function}; {function}()"
    )
    return [sys.executable, "-P", "-c", launch]  # -P: not the current directory first


def _answers(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), 0.2):
            return True
    except OSError:
        return False


def cpu_seconds(pid: int) -> float:
    """CPU time of a process and its children (workers)."""
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.cpu_times().user + p.cpu_times().system for p in family)


def rss_mb(pid: int) -> float:
    family = [psutil.Process(pid), *psutil.Process(pid).children(recursive=True)]
    return sum(p.memory_info().rss for p in family) / 2**20


def proxy_counters(url: str) -> dict[str, float]:
    """The requests a proxy served and what memory skipped or lost meanwhile (a recall
    past its time budget or skipped, memories or usage records dropped, store failures),
    summed over labels, from its /metrics; the store failures also by operation
    ("memory_store_errors load", ...); counters at zero are left out."""
    with urllib.request.urlopen(url + "/metrics", timeout=10) as answer:
        lines = answer.read().decode().splitlines()
    totals: collections.defaultdict[str, float] = collections.defaultdict(float)
    for line in lines:
        series, _, value = line.rpartition(" ")
        name, _, labels = series.partition("{")
        if name in COUNTERS:
            short = name.removeprefix("memory_proxy_").removesuffix("_total")
            totals[short] += float(value)
            if operation := re.search(r'operation="([^"]*)"', labels):
                totals[f"{short} {operation.group(1)}"] += float(value)
    return {name: count for name, count in totals.items() if count}
