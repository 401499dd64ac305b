"""The load scripts/bench drives: small JSON POSTs by wrk (a Lua script per case: fixed
headers, and optionally a body and a session id picked at random per request), and SSE
streams by a bounded aiohttp client arriving at a steady rate."""

from __future__ import annotations

import asyncio
import json
import re
import statistics
import subprocess
import time
from pathlib import Path

import aiohttp

from scripts.bench_processes import rss_mb

Figures = dict[str, float]

CHAT_PATH = "/v1/chat/completions"
_UNITS = {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}
_RANDOM_REQUEST = """
local bodies = {{ {bodies} }}
local sessions = {sessions}
request = function()
    if sessions > 0 then
        wrk.headers["x-session-id"] = "s" .. math.random(0, sessions - 1)
    end
    return wrk.format(nil, nil, nil, bodies[math.random(#bodies)])
end
"""


def chat_body(question: str) -> str:
    return json.dumps({"model": "bench", "messages": [{"role": "user", "content": question}]})


def write_wrk_script(
    path: Path,
    headers: dict[str, str] | None = None,
    questions: list[str] | None = None,
    sessions: int = 0,
) -> Path:
    """POSTs of one question ("hi") with `headers`; with several `questions` or
    `sessions`, each request picks one question and session id `s0`..`s<sessions-1>`."""
    bodies = [chat_body(question) for question in questions or ["hi"]]
    lines = [
        'wrk.method = "POST"',
        f'wrk.path = "{CHAT_PATH}"',
        'wrk.headers["Content-Type"] = "application/json"',
        # The spaces matter: `headers[[` would open a long string.
        *(
            f"wrk.headers[ {_lua(name)} ] = {_lua(value)}"
            for name, value in (headers or {}).items()
        ),
        f"wrk.body = {_lua(bodies[0])}",
    ]
    if len(bodies) > 1 or sessions:
        lines.append(_RANDOM_REQUEST.format(bodies=", ".join(map(_lua, bodies)), sessions=sessions))
    path.write_text("\n".join(lines) + "\n")
    return path


def _lua(text: str) -> str:
    """A Lua long string: no escapes to get wrong."""
    if "]==]" in text or "\n" in text:
        raise ValueError(f"not written as a Lua string: {text!r}")
    return f"[==[{text}]==]"


def wrk_round(url: str, clients: int, seconds: int, script: Path) -> Figures:
    """Small JSON POSTs from `clients` connections for `seconds`, by wrk."""
    return parse_wrk(url, run_wrk(url, clients, seconds, script))


def run_wrk(url: str, clients: int, seconds: int, script: Path) -> str:
    """wrk's report of small JSON POSTs from `clients` connections for `seconds`."""
    return subprocess.run(
        [
            *("wrk", "-t1", f"-c{clients}", f"-d{seconds}s", "--timeout", "30s", "--latency"),
            *("-s", str(script), url),
        ],
        capture_output=True,
        text=True,
        check=True,
    ).stdout


def failed_requests(output: str) -> int:
    """Requests wrk saw fail: answers other than 2xx or 3xx, and socket errors (a
    connection refused or reset, a read or write failed, no answer within --timeout)."""
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    sockets = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    return int(errors.group(1) if errors else 0) + sum(
        map(int, sockets.groups() if sockets else ())
    )


def parse_wrk(url: str, output: str) -> Figures:
    percentiles = dict(re.findall(r"^\s+(50|99)%\s+([\d.]+\w+)\s*$", output, re.MULTILINE))
    requests = re.search(r"(\d+) requests in", output)
    rate = re.search(r"Requests/sec:\s+([\d.]+)", output)
    if len(percentiles) < 2 or not requests or not rate:
        raise RuntimeError(f"wrk measured nothing against {url}:\n{output}")
    errors = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    if errors:
        raise RuntimeError(f"{url}: {errors.group(1)} error answers")
    return {
        "p50_ms": _ms(percentiles["50"]),
        "p99_ms": _ms(percentiles["99"]),
        "rps": float(rate.group(1)),
        "requests": int(requests.group(1)),
    }


def _ms(text: str) -> float:
    number, unit = re.fullmatch(r"([\d.]+)(\w+)", text).groups()  # type: ignore[union-attr]
    return float(number) * _UNITS[unit]


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
        "gap_p99_ms": statistics.quantiles(gaps, n=100, method="inclusive")[98] * 1000,
        "total_p50_ms": statistics.median(totals) * 1000,
        "coalesced_pct": 100 * (events - reads) / events,
    }
    if pid:
        figures["rss_mb"] = peak_rss
    return figures
