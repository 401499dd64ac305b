"""Measure what the memory proxy adds, direct vs through the proxy, in interleaved rounds.

Starts its own fast fake upstream (scripts/bench_upstream.py) and a memory proxy in front
of it (the shipped config.yaml, its store in a temporary directory), both uvicorn
processes on loopback. Small POSTs are driven by wrk; SSE streams by a bounded aiohttp
client, arriving at a steady rate. When the litellm binary is installed, LiteLLM serving a
`mock_response` model is measured the same way for the CPU ratio. Prints a table and can
write JSON for comparison between commits. Every process is stopped at the end.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import platform
import random
import re
import secrets
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
import orjson
import psutil
import yaml

from memory_proxy.config import MemorySettings
from memory_proxy.memory.capture import AnswerCapture
from memory_proxy.memory.conversation import ConversationMemory
from memory_proxy.records.messages import Message
from memory_proxy.stores import open_store

ROOT = Path(__file__).resolve().parent.parent
BODY = json.dumps({"model": "bench", "messages": [{"role": "user", "content": "hi"}]})
WRK_SCRIPT = """
wrk.method = "POST"
wrk.path = "/v1/chat/completions"
wrk.body = {body}
wrk.headers["Content-Type"] = "application/json"
{extra}
"""
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}

Figures = dict[str, float]


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


@contextmanager
def process(
    argv: list[str], url: str, env: dict[str, str] | None = None, timeout: float = 30
) -> Iterator[subprocess.Popen[bytes]]:
    """A server process in its own process group, stopped (group and all) at the end."""
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


def wrk_round(url: str, clients: int, seconds: int, script: Path) -> Figures:
    """Small JSON POSTs from `clients` connections for `seconds`, by wrk."""
    output = subprocess.run(
        [
            *("wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "--latency"),
            *("-s", str(script), url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)\s*$", output, re.MULTILINE))
    if len(percentiles) < 2:
        raise RuntimeError(f"wrk measured nothing against {url}:\n{output}")
    requests = int(_wrk_figure(r"(\d+) requests in", output))
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers")
    return {
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "rps": float(_wrk_figure(r"Requests/sec:\s+([\d.]+)", output)),
        "requests": requests,
    }


def _wrk_figure(pattern: str, output: str) -> str:
    """A figure wrk always prints: missing, wrk's output has changed."""
    found = re.search(pattern, output)
    if found is None:
        raise RuntimeError(f"no {pattern!r} in wrk's output:\n{output}")
    return found.group(1)


def _ms(text: str) -> float:
    """A latency as wrk writes it ("812.00us", "1.23ms") in milliseconds."""
    number = _wrk_figure(r"\A([\d.]+)\w+\Z", text)
    return float(number) * _UNITS[text[len(number) :]]


def post_rounds(
    url: str, clients: int, args: argparse.Namespace, script: Path, pid: int | None
) -> Figures:
    """Median of the rounds; with `pid`, that process's CPU per request too."""
    rounds = []
    for _ in range(args.rounds):
        cpu_before = cpu_seconds(pid) if pid else 0.0
        figures = wrk_round(url, clients, args.seconds, script)
        if pid:
            figures["cpu_ms_per_request"] = (
                (cpu_seconds(pid) - cpu_before) * 1000 / figures["requests"]
            )
        rounds.append(figures)
    return {key: statistics.median(r[key] for r in rounds) for key in rounds[0]}


async def stream_round(url: str, streams: int, spread: float, pid: int | None) -> Figures:
    """`streams` SSE requests started evenly over `spread` seconds: time to first byte,
    gaps between events, total time, events that arrived glued to another, and (with
    `pid`) the peak resident memory of that process while they were open."""
    first_bytes: list[float] = []
    gaps: list[float] = []
    totals: list[float] = []
    reads = events = 0
    peak_rss = 0.0
    connector = aiohttp.TCPConnector(limit=streams, force_close=True)
    async with aiohttp.ClientSession(connector=connector) as session:

        async def one(delay: float) -> None:
            nonlocal reads, events
            await asyncio.sleep(delay)
            started = last = time.perf_counter()
            async with session.get(f"{url}/stream") as response:
                async for chunk in response.content.iter_any():
                    now = time.perf_counter()
                    if last == started:
                        first_bytes.append(now - started)
                    else:
                        gaps.append(now - last)
                    last = now
                    reads += 1
                    events += chunk.count(b"\n\n")
            totals.append(time.perf_counter() - started)

        async def sample_memory() -> None:
            nonlocal peak_rss
            while pid:
                peak_rss = max(peak_rss, rss_mb(pid))
                await asyncio.sleep(0.05)

        sampler = asyncio.ensure_future(sample_memory())
        await asyncio.gather(*(one(spread * i / streams) for i in range(streams)))
        sampler.cancel()
    figures = {
        "ttfb_p50_ms": statistics.median(first_bytes) * 1000,
        "gap_p99_ms": _percentile(gaps, 0.99) * 1000,
        "total_p50_ms": statistics.median(totals) * 1000,
        "coalesced_pct": 100 * (events - reads) / events,
    }
    if pid:
        figures["rss_mb"] = peak_rss
    return figures


def _percentile(values: list[float], fraction: float) -> float:
    values = sorted(values)
    return values[max(0, int(len(values) * fraction) - 1)]


async def memory_cost(
    settings: MemorySettings, sessions: int = 10_000, samples: int = 2_000
) -> Figures:
    """Load + inject + capture (+ background store) per request, with `sessions` stored."""
    store = open_store(settings)
    exchange: list[Message] = [
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
        orjson.dumps(turn.body)  # as the proxy re-encodes the request
        capture = AnswerCapture("openai")
        capture.start(200, [(b"content-type", b"application/json")])
        capture.feed(answer)
        capture.finish()
        memory.finish(turn, capture)
        timings.append(time.perf_counter() - started)
    await memory.aclose()
    return {
        "p50_ms": statistics.median(timings) * 1000,
        "p99_ms": _percentile(timings, 0.99) * 1000,
    }


def litellm_cpu(args: argparse.Namespace, directory: Path) -> Figures | None:
    """LiteLLM's CPU per request serving a mock_response model, when it is installed."""
    binary = ROOT / ".venv-litellm" / "bin" / "litellm"
    if not binary.exists():
        return None
    config = directory / "litellm.yaml"
    mock = {"model": "openai/bench", "api_key": "none", "mock_response": "ok"}
    config.write_text(
        yaml.safe_dump({"model_list": [{"model_name": "bench", "litellm_params": mock}]})
    )
    key = "sk-bench-" + secrets.token_hex(16)
    script = write_wrk_script(directory / "litellm.lua", key)
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1", "--port", str(port)]
    env = {"LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    with process(argv, url, env=env, timeout=180) as litellm:
        wrk_round(url, 10, 2, script)  # warm up
        return post_rounds(url, 10, args, script, litellm.pid)


def write_wrk_script(path: Path, key: str | None = None) -> Path:
    extra = f'wrk.headers["Authorization"] = "Bearer {key}"' if key else ""
    path.write_text(WRK_SCRIPT.format(body=json.dumps(BODY), extra=extra))
    return path


def proxy_config(directory: Path) -> Path:
    """The shipped config.yaml with its SQLite file moved into `directory`."""
    config = yaml.safe_load((ROOT / "config.yaml").read_text())
    config["memory"]["sqlite_path"] = str(directory / "memory.sqlite3")
    path = directory / "config.yaml"
    path.write_text(yaml.safe_dump(config))
    return path


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--streams", default="1,500,1000", help="concurrent SSE streams")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is not installed (scripts/bench installs it)")

    results: dict[str, Figures] = {}
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        script = write_wrk_script(directory / "post.lua")
        config = proxy_config(directory)
        upstream = f"http://127.0.0.1:{free_port()}"
        upstream_argv = [
            *(str(bin_dir / "uvicorn"), "scripts.bench_upstream:app"),
            *("--port", upstream.rsplit(":", 1)[1], "--log-level", "warning", "--no-access-log"),
        ]

        def proxy_argv(url: str, workers: int) -> list[str]:
            return [
                *(str(bin_dir / "memory-proxy"), "--config", str(config)),
                *("--port", url.rsplit(":", 1)[1], "--litellm-url", upstream),
                *("--workers", str(workers)),
            ]

        proxy = f"http://127.0.0.1:{free_port()}"
        with process(upstream_argv, upstream), process(proxy_argv(proxy, 1), proxy) as server:
            results["proxy idle"] = {"rss_mb": rss_mb(server.pid)}
            for clients in (1, 50):
                for target, url, pid in (("direct", upstream, None), ("proxy", proxy, server.pid)):
                    results[f"{target} {clients} client(s)"] = post_rounds(
                        url, clients, args, script, pid
                    )
            for streams in map(int, args.streams.split(",")):
                spread = min(2.0, streams / 500)
                for target, url, pid in (("direct", upstream, None), ("proxy", proxy, server.pid)):
                    results[f"{target} SSE x{streams}"] = asyncio.run(
                        stream_round(url, streams, spread, pid)
                    )
        proxy2 = f"http://127.0.0.1:{free_port()}"
        with process(upstream_argv, upstream), process(proxy_argv(proxy2, 2), proxy2) as server:
            results["proxy, 2 workers, 50 clients"] = post_rounds(
                proxy2, 50, args, script, server.pid
            )
        litellm = litellm_cpu(args, directory)
        if litellm:
            results["litellm 10 clients (mock)"] = litellm

        sqlite = MemorySettings(store="sqlite", sqlite_path=directory / "bench.sqlite3")
        results["memory, 10k sessions, SQLite"] = asyncio.run(memory_cost(sqlite))
        redis_server = shutil.which("redis-server")
        if redis_server:
            port = free_port()
            argv = [redis_server, "--port", str(port), "--save", "", "--appendonly", "no"]
            with process(argv, f"http://127.0.0.1:{port}"):
                redis = MemorySettings(store="redis", redis_url=f"redis://127.0.0.1:{port}/0")
                results["memory, 10k sessions, Redis"] = asyncio.run(memory_cost(redis))

    report(results)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


def report(results: dict[str, Figures]) -> None:
    print(
        f"machine: {platform.machine()}, {os.cpu_count()} cores, "
        f"Python {platform.python_version()}, load: wrk (POST), aiohttp (SSE)"
    )
    for name, figures in results.items():
        print(f"{name:<32} " + "  ".join(f"{k}={v:,.2f}" for k, v in figures.items()))
    print()
    for clients in (1, 50):
        direct, via = results[f"direct {clients} client(s)"], results[f"proxy {clients} client(s)"]
        print(
            f"added at {clients:>2} client(s): p50 +{via['p50_ms'] - direct['p50_ms']:.2f} ms, "
            f"p99 +{via['p99_ms'] - direct['p99_ms']:.2f} ms, "
            f"{via['rps']:,.0f} req/s ({via['rps'] / direct['rps']:.0%} of direct)"
        )
    two = results["proxy, 2 workers, 50 clients"]
    one = results["proxy 50 client(s)"]
    print(f"2 workers: {two['rps']:,.0f} req/s, {two['rps'] / one['rps']:.2f}x one worker")
    for name in [n for n in results if n.startswith("proxy SSE")]:
        via, direct = results[name], results[name.replace("proxy", "direct")]
        print(
            f"{name.removeprefix('proxy '):<10} added first byte "
            f"+{via['ttfb_p50_ms'] - direct['ttfb_p50_ms']:.1f} ms, "
            f"gap p99 +{via['gap_p99_ms'] - direct['gap_p99_ms']:.1f} ms, "
            f"coalesced {via['coalesced_pct']:.1f}% (direct {direct['coalesced_pct']:.1f}%), "
            f"proxy RSS {via['rss_mb']:.0f} MB"
        )
    litellm = results.get("litellm 10 clients (mock)")
    if litellm:
        ratio = one["cpu_ms_per_request"] / litellm["cpu_ms_per_request"]
        print(
            f"CPU per request: proxy {one['cpu_ms_per_request']:.2f} ms, "
            f"LiteLLM {litellm['cpu_ms_per_request']:.2f} ms ({ratio:.1%})"
        )


if __name__ == "__main__":
    main()
