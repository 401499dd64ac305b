"""Measure what the memory proxy adds, direct vs through the proxy, in interleaved rounds.

Starts its own fake upstream (scripts/bench_upstream.py) and a memory proxy in front of it,
both uvicorn processes on loopback, drives them with a bounded aiohttp client, prints a
table and optionally writes JSON. Every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import shutil
import signal
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import aiohttp
import psutil

from memory_proxy.capture import AnswerCapture
from memory_proxy.config import MemorySettings
from memory_proxy.conversation_memory import ConversationMemory
from memory_proxy.memory_store import open_store

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]}).encode()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(argv: list[str], url: str) -> Iterator[subprocess.Popen[bytes]]:
    child = subprocess.Popen(argv, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, cwd=ROOT)
    try:
        deadline = time.monotonic() + 30
        while not _answers(url):
            if time.monotonic() > deadline or child.poll() is not None:
                raise RuntimeError(f"{argv[0]} did not start")
            time.sleep(0.05)
        yield child
    finally:
        child.send_signal(signal.SIGTERM)
        try:
            child.wait(timeout=10)
        except subprocess.TimeoutExpired:
            child.kill()


def _answers(url: str) -> bool:
    host, port = url.removeprefix("http://").split(":")
    try:
        with socket.create_connection((host, int(port)), 0.2):
            return True
    except OSError:
        return False


async def latency_round(url: str, clients: int, seconds: float) -> dict[str, float]:
    """`clients` concurrent loops of small JSON POSTs for `seconds`; latency percentiles."""
    latencies: list[float] = []
    connector = aiohttp.TCPConnector(limit=clients)
    async with aiohttp.ClientSession(connector=connector) as session:
        deadline = time.perf_counter() + seconds

        async def loop() -> None:
            while time.perf_counter() < deadline:
                started = time.perf_counter()
                async with session.post(
                    f"{url}/v1/chat/completions",
                    data=BODY,
                    headers={"content-type": "application/json"},
                ) as response:
                    await response.read()
                    assert response.status == 200, response.status
                latencies.append(time.perf_counter() - started)

        started = time.perf_counter()
        await asyncio.gather(*(loop() for _ in range(clients)))
        elapsed = time.perf_counter() - started
    latencies.sort()
    return {
        "p50_ms": statistics.median(latencies) * 1000,
        "p99_ms": latencies[int(len(latencies) * 0.99) - 1] * 1000,
        "rps": len(latencies) / elapsed,
        "requests": len(latencies),
    }


async def stream_round(url: str, streams: int) -> dict[str, float]:
    """`streams` concurrent SSE requests: time to first byte and the largest event gap."""
    first_bytes: list[float] = []
    gaps: list[float] = []
    async with aiohttp.ClientSession(connector=aiohttp.TCPConnector(limit=streams)) as session:

        async def one() -> None:
            started = time.perf_counter()
            async with session.get(f"{url}/stream") as response:
                last = None
                async for _ in response.content.iter_any():
                    now = time.perf_counter()
                    if last is None:
                        first_bytes.append(now - started)
                    else:
                        gaps.append(now - last)
                    last = now

        await asyncio.gather(*(one() for _ in range(streams)))
    first_bytes.sort()
    gaps.sort()
    return {
        "ttfb_p50_ms": statistics.median(first_bytes) * 1000,
        "gap_p99_ms": gaps[int(len(gaps) * 0.99) - 1] * 1000,
    }


async def memory_cost(
    settings: MemorySettings, sessions: int = 10_000, samples: int = 2_000
) -> dict[str, float]:
    """Load + inject + capture (+ background store) per request, with `sessions` stored."""
    store = open_store(settings)
    exchange = [
        {"role": "user", "content": "a question of a typical length " * 4},
        {"role": "assistant", "content": "an answer of a typical length " * 8},
    ]
    for index in range(sessions):
        await store.append("user", f"s{index}", exchange * 3, partial=False)
    memory = ConversationMemory(store, settings)
    answer = json.dumps({"choices": [{"message": {"role": "assistant", "content": "ok"}}]}).encode()
    body = {"model": "m", "messages": [{"role": "user", "content": "next question"}]}
    timings = []
    for _ in range(samples):
        session = f"s{random.randrange(sessions)}"
        started = time.perf_counter()
        turn = await memory.begin("openai", "user", session, body)
        assert turn is not None and turn.injected >= 6
        json.dumps(turn.body).encode()
        capture = AnswerCapture("openai")
        capture.start(200, [(b"content-type", b"application/json")])
        capture.feed(answer)
        capture.finish()
        memory.finish(turn, capture, client_disconnected=False)
        timings.append(time.perf_counter() - started)
    await memory.aclose()
    timings.sort()
    return {
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": timings[int(len(timings) * 0.99) - 1] * 1000,
    }


def cpu_seconds(pid: int) -> float:
    times = psutil.Process(pid).cpu_times()
    return times.user + times.system


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=float, default=3.0, help="length of one round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()

    upstream_port, proxy_port = free_port(), free_port()
    upstream = f"http://127.0.0.1:{upstream_port}"
    proxy = f"http://127.0.0.1:{proxy_port}"
    bin_dir = Path(sys.executable).parent
    upstream_argv = [
        str(bin_dir / "uvicorn"),
        "scripts.bench_upstream:app",
        "--port",
        str(upstream_port),
        "--log-level",
        "warning",
        "--no-access-log",
    ]
    proxy_argv = [
        str(bin_dir / "memory-proxy"),
        "--config",
        str(ROOT / "config.yaml"),
        "--port",
        str(proxy_port),
        "--litellm-url",
        upstream,
    ]
    results: dict[str, dict[str, float]] = {}
    with process(upstream_argv, upstream), process(proxy_argv, proxy) as proxy_process:
        results["proxy idle"] = {
            "rss_mb": psutil.Process(proxy_process.pid).memory_info().rss / 2**20
        }
        for clients in (1, 50):
            for target, url in (("direct", upstream), ("proxy", proxy)):
                rounds = []
                for _ in range(args.rounds):
                    cpu_before = cpu_seconds(proxy_process.pid)
                    figures = asyncio.run(latency_round(url, clients, args.seconds))
                    if target == "proxy":
                        figures["proxy_cpu_ms_per_request"] = (
                            (cpu_seconds(proxy_process.pid) - cpu_before)
                            * 1000
                            / figures["requests"]
                        )
                    rounds.append(figures)
                results[f"{target} {clients} client(s)"] = {
                    key: statistics.median(r[key] for r in rounds) for key in rounds[0]
                }
        for streams in (1, 100):
            for target, url in (("direct", upstream), ("proxy", proxy)):
                results[f"{target} SSE x{streams}"] = asyncio.run(stream_round(url, streams))

    with tempfile.TemporaryDirectory() as directory:
        sqlite = MemorySettings(store="sqlite", sqlite_path=Path(directory) / "bench.sqlite3")
        results["memory, 10k sessions, SQLite"] = asyncio.run(memory_cost(sqlite))
    redis_server = shutil.which("redis-server")
    if redis_server:
        port = free_port()
        argv = [redis_server, "--port", str(port), "--save", "", "--appendonly", "no"]
        with process(argv, f"http://127.0.0.1:{port}"):
            redis = MemorySettings(store="redis", redis_url=f"redis://127.0.0.1:{port}/0")
            results["memory, 10k sessions, Redis"] = asyncio.run(memory_cost(redis))

    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}"
    )
    for name, figures in results.items():
        print(f"{name:<30} " + "  ".join(f"{k}={v:,.2f}" for k, v in figures.items()))
    for clients in (1, 50):
        direct, via = results[f"direct {clients} client(s)"], results[f"proxy {clients} client(s)"]
        print(
            f"added at {clients:>2} client(s): p50 +{via['p50_ms'] - direct['p50_ms']:.2f} ms, "
            f"p99 +{via['p99_ms'] - direct['p99_ms']:.2f} ms, "
            f"throughput {via['rps'] / direct['rps']:.0%} of direct"
        )
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
