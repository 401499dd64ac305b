"""POSTs through a MemoryProxy in this process, without HTTP on the client's side: what the
proxy's own code costs per request, for a profiler or callgrind (scripts/bench_hop.py runs
it). Run as a file, with PYTHONPATH naming the checkout to measure, so that it imports only
that checkout's `memory_proxy` (an older commit's too): nothing else of this repository.

    python scripts/bench_hop_driver.py SPEC.json REQUESTS [--profile FILE]

SPEC names the config file (its `proxy.litellm_url` the upstream) and the requests: their
headers, the number of sessions they pick from (`x-session-id: s<n>`), the questions they
pick from, and how many are in flight at once. Choices are seeded: every run sends the same.
"""

from __future__ import annotations

import asyncio
import cProfile
import json
import random
import resource
import sys
import threading
import time
from collections.abc import MutableMapping
from pathlib import Path
from typing import Any

from memory_proxy.app import MemoryProxy
from memory_proxy.config import load_settings
from memory_proxy.logging_setup import configure_logging

PATH = "/v1/chat/completions"


def _body(question: str) -> bytes:
    return json.dumps(
        {"model": "bench", "messages": [{"role": "user", "content": question}]}
    ).encode()


def requests(spec: dict[str, Any], count: int) -> list[tuple[list[tuple[bytes, bytes]], bytes]]:
    """`count` requests as wrk sends them (Host, Content-Length, the spec's headers)."""
    rng = random.Random(20261207)
    bodies = [_body(question) for question in spec.get("questions") or ["hi"]]
    sessions = spec.get("sessions", 0)
    fixed = [(b"host", b"127.0.0.1:8764"), (b"content-type", b"application/json")]
    fixed += [(name.lower().encode(), value.encode()) for name, value in spec["headers"].items()]
    made = []
    for _ in range(count):
        body = bodies[rng.randrange(len(bodies))]
        headers = [*fixed, (b"content-length", str(len(body)).encode())]
        if sessions:
            headers.append((b"x-session-id", f"s{rng.randrange(sessions)}".encode()))
        made.append((headers, body))
    return made


async def one(app: MemoryProxy, headers: list[tuple[bytes, bytes]], body: bytes) -> int:
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "server": ("127.0.0.1", 8764),
        "client": ("127.0.0.1", 40000),
        "scheme": "http",
        "method": "POST",
        "root_path": "",
        "path": PATH,
        "raw_path": PATH.encode(),
        "query_string": b"",
        "headers": headers,
    }
    done = asyncio.Event()
    sent = False
    status = 0

    async def receive() -> dict[str, Any]:
        nonlocal sent
        if not sent:
            sent = True
            return {"type": "http.request", "body": body, "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: MutableMapping[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]
        elif not message.get("more_body", False):
            done.set()

    await app(scope, receive, send)
    done.set()
    return status


async def lifespan(app: MemoryProxy, phase: str) -> None:
    """Startup or shutdown, as uvicorn drives them."""
    if phase == "startup":
        app._lifespan_inbox = asyncio.Queue()  # type: ignore[attr-defined]
        app._lifespan_outbox = asyncio.Queue()  # type: ignore[attr-defined]
        inbox, outbox = app._lifespan_inbox, app._lifespan_outbox  # type: ignore[attr-defined]
        app._lifespan_task = asyncio.ensure_future(  # type: ignore[attr-defined]
            app({"type": "lifespan"}, inbox.get, outbox.put)
        )
    await app._lifespan_inbox.put({"type": f"lifespan.{phase}"})  # type: ignore[attr-defined]
    message = await app._lifespan_outbox.get()  # type: ignore[attr-defined]
    if not message["type"].endswith(".complete"):
        raise RuntimeError(f"lifespan {phase}: {message}")
    if phase == "shutdown":
        await app._lifespan_task  # type: ignore[attr-defined]


async def run(spec: dict[str, Any], count: int, profile: Path | None) -> None:
    settings = load_settings(Path(spec["config"]))
    configure_logging(settings.log_format, settings.secrets())  # one line per request, as served
    app = MemoryProxy(settings)
    await lifespan(app, "startup")
    work = requests(spec, count + 1)
    child_start_up = await _index_process_started(app, *work.pop())
    statuses: list[int] = []

    async def client() -> None:
        while work:
            headers, body = work.pop()
            statuses.append(await one(app, headers, body))

    profiler = cProfile.Profile() if profile else None
    if profiler:
        profiler.enable()
    started, main_started = time.process_time(), time.thread_time()
    threads_started = _thread_seconds()
    children_started = _children_seconds()
    await asyncio.gather(*(client() for _ in range(spec.get("clients", 1))))
    by_thread = {
        name: seconds - threads_started.get(name, 0.0)
        for name, seconds in _thread_seconds().items()
    }
    lost = _lost(app)
    recall = _recall_missed(app)
    await lifespan(app, "shutdown")  # what is queued is written: part of the cost
    cpu, main_cpu = time.process_time() - started, time.thread_time() - main_started
    children = _children_seconds() - children_started
    if profiler and profile:
        profiler.disable()
        profiler.dump_stats(profile)
    failed = [status for status in statuses if status != 200]
    if failed:
        sys.exit(f"{len(failed)} of {count} requests failed: {sorted(set(failed))}")
    if lost:
        print(f"lost while serving: {lost}", file=sys.stderr)
    if recall:
        print(f"recall: {recall}", file=sys.stderr)
    print(
        "by thread (before shutdown): "
        + ", ".join(
            f"{name} {seconds * 1e6 / count:.0f} µs" for name, seconds in by_thread.items()
        ),
        file=sys.stderr,
    )
    start_up = ""
    if child_start_up:
        start_up = (
            f", of which its start-up {child_start_up * 1e6 / count:.0f} µs"
            f" ({child_start_up * 1e3:.0f} ms once)"
        )
    print(
        f"{count} requests, {cpu * 1e6 / count:.0f} µs of CPU each, of which the event loop's"
        f" thread {main_cpu * 1e6 / count:.0f} µs (the proxy's own code); its child"
        f" processes (the index's) {children * 1e6 / count:.0f} µs{start_up}",
        file=sys.stderr,
    )


async def _index_process_started(
    app: MemoryProxy, headers: list[tuple[bytes, bytes]], body: bytes
) -> float:
    """One request served before the count, its exchange sent to the index process at once
    and written: the CPU seconds the process has used by then (its start-up, once per
    proxy: 0.1-0.2 s, a third of its CPU over 4,000 requests), told apart from what it
    does for the requests counted. 0 when this checkout has no index process."""
    if await one(app, headers, body) != 200:
        sys.exit("the first request failed")
    indexer = getattr(getattr(app, "memory", None), "indexer", None)
    if not hasattr(indexer, "unanswered"):
        return 0.0
    indexer._send()  # type: ignore[union-attr]
    waited = 0.0
    while indexer.unanswered or indexer._child is None:  # type: ignore[union-attr]
        if waited > 60:
            sys.exit("the index process did not answer within 60 s")
        await asyncio.sleep(0.01)
        waited += 0.01
    return _cpu_seconds(indexer._child.pid)  # type: ignore[union-attr]


def _cpu_seconds(pid: int) -> float:
    """The CPU seconds a live process has run (Linux's schedstat, in ns)."""
    return int(Path(f"/proc/{pid}/schedstat").read_text().split()[0]) / 1e9


def _recall_missed(app: MemoryProxy) -> str:
    """How many requests went without recall: skipped at once (the search thread busy
    beyond recall.timeout_ms) or past the budget; "" when none did."""
    registry = getattr(getattr(app, "metrics", None), "registry", None)
    if registry is None:
        return ""
    skipped = registry.get_sample_value("memory_proxy_recall_skipped_total", {"reason": "busy"})
    late = registry.get_sample_value("memory_proxy_recall_timeouts_total")
    if not skipped and not late:
        return ""
    return f"{skipped or 0:.0f} skipped at once, {late or 0:.0f} past the budget"


def _lost(app: MemoryProxy) -> dict[str, int]:
    """Usage records and memories dropped while serving (a full queue, a failing store)."""
    parts = {"usage records": getattr(app, "usage", None), "memories": None}
    memory = getattr(app, "memory", None)
    indexer = getattr(memory, "indexer", None)  # older commits count in its writer
    parts["memories"] = (
        indexer if hasattr(indexer, "dropped") else getattr(indexer, "_writer", None)
    )
    dropped = {name: getattr(part, "dropped", 0) for name, part in parts.items() if part}
    return {name: count for name, count in dropped.items() if count}


def _children_seconds() -> float:
    """CPU seconds of this process's ended children (the index process, once stopped)."""
    usage = resource.getrusage(resource.RUSAGE_CHILDREN)
    return usage.ru_utime + usage.ru_stime


def _thread_seconds() -> dict[str, float]:
    """CPU seconds of each live thread, by name (threads of one name summed)."""
    seconds: dict[str, float] = {}
    for thread in threading.enumerate():
        if thread.ident is None:
            continue
        clock = time.pthread_getcpuclockid(thread.ident)
        seconds[thread.name] = seconds.get(thread.name, 0.0) + time.clock_gettime(clock)
    return seconds


def main() -> None:
    spec = json.loads(Path(sys.argv[1]).read_text())
    count = int(sys.argv[2])
    profile = Path(sys.argv[4]) if len(sys.argv) > 4 and sys.argv[3] == "--profile" else None
    try:
        import uvloop
    except ImportError:
        asyncio.run(run(spec, count, profile))
        return
    with asyncio.Runner(loop_factory=uvloop.new_event_loop) as runner:
        runner.run(run(spec, count, profile))


if __name__ == "__main__":
    main()
