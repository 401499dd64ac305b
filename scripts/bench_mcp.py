"""A memory tool call's cost through /mcp: a proxy process over 10,000 memories, and one
client calling `search_memory` over a kept-alive connection, one call at a time.

Each call is a JSON-RPC POST, as the real clients send it: MCP 2026-07-28 (Claude Code's
protocol: the `_meta` envelope, `mcp-method`), its project named by `x-memory-project`,
one round trip; the same with the client's roots (two round trips: the first answer asks
for them, as Claude Code's calls go); and MCP 2025-06-18 (the Codex CLI's). The memories
are spread over 20 users x 10 projects (a user's project holds ~50, as after weeks of
use), and, the worst case, all in one project of one user (every search scores all of
them). Per case: p50 and p99 of wall time, the proxy's CPU per call, and the same search
in process, straight on the index (what the call costs beyond it is the MCP hop).

    .venv/bin/python -m scripts.bench_mcp [--memories 10000] [--calls 500] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

from memory_proxy.identity.project import project_id
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from scripts.bench_processes import cpu_seconds, memory_proxy_process, proxy_config
from scripts.bench_recall import KINDS, add_in_batches, latency_corpus, percentile, question
from scripts.recall_dataset import Fact

WARM_UP = 50
NO_LITELLM = "http://127.0.0.1:9"  # the tools never call it
MODERN = "2026-07-28"
ROOT = "/home/bench/src/project"  # the root the roots case's client answers with
_CLIENT = {"name": "bench", "version": "1"}


def modern_call(arguments: dict[str, Any], roots: bool, answers: Any = None) -> dict[str, Any]:
    capabilities = {"roots": {"listChanged": False}} if roots else {}
    meta = {
        "io.modelcontextprotocol/protocolVersion": MODERN,
        "io.modelcontextprotocol/clientInfo": _CLIENT,
        "io.modelcontextprotocol/clientCapabilities": capabilities,
    }
    params: dict[str, Any] = {"name": "search_memory", "arguments": arguments, "_meta": meta}
    if answers is not None:
        params["inputResponses"] = answers
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def legacy_call(arguments: dict[str, Any]) -> dict[str, Any]:
    params = {"name": "search_memory", "arguments": arguments}
    return {"jsonrpc": "2.0", "id": 1, "method": "tools/call", "params": params}


def one_call(client: httpx.Client, case: str, fact: Fact, text: str) -> int:
    """One tool call as `case` makes it; the number of hits."""
    user, project = fact.record.user_id, fact.record.project
    headers = {"accept": "application/json, text/event-stream", "x-memory-user-id": user}
    arguments = {"query": text, "limit": 5}
    if case == "2025-06-18":
        headers |= {"x-memory-project": project, "mcp-protocol-version": "2025-06-18"}
        answer = client.post("/mcp", json=legacy_call(arguments), headers=headers)
    else:
        headers |= {"mcp-protocol-version": MODERN, "mcp-method": "tools/call"}
        headers |= {"mcp-name": "search_memory"}
        roots = case.endswith("roots")
        if not roots:
            headers["x-memory-project"] = project
        answer = client.post("/mcp", json=modern_call(arguments, roots), headers=headers)
        if roots:
            asked = answer.json()["result"]
            assert asked["resultType"] == "input_required", asked
            listed = {"roots": {"roots": [{"uri": f"file://{ROOT}"}]}}
            body = modern_call(arguments, True, listed)
            answer = client.post("/mcp", json=body, headers=headers)
    result = answer.json()["result"]
    assert not result.get("isError"), result
    hits: int = len(result["structuredContent"]["hits"])
    return hits


def calls(url: str, pid: int, case: str, facts: list[Fact], count: int) -> dict[str, float]:
    rng = random.Random(count)
    samples: list[float] = []
    hits = 0
    with httpx.Client(base_url=url, timeout=30) as client:
        for n in range(WARM_UP):
            fact = rng.choice(facts)
            one_call(client, case, fact, question(fact, KINDS[n % 2]))
        cpu_before = cpu_seconds(pid)
        for n in range(count):
            fact = rng.choice(facts)
            text = question(fact, KINDS[n % 2])
            started = time.perf_counter()
            hits += one_call(client, case, fact, text)
            samples.append((time.perf_counter() - started) * 1000)
        cpu = cpu_seconds(pid) - cpu_before
    return {
        "p50 ms": statistics.median(samples),
        "p99 ms": percentile(samples, 0.99),
        "cpu ms": cpu * 1000 / count,
        "hits per call": hits / count,
    }


async def searched_in_process(path: Path, facts: list[Fact], count: int) -> float:
    """The same searches straight on the index: p50 ms."""
    rng = random.Random(count)
    index = SQLiteMemoryIndex(path)
    samples: list[float] = []
    try:
        for n in range(WARM_UP + count):
            fact = rng.choice(facts)
            user, project = fact.record.user_id, fact.record.project
            started = time.perf_counter()
            await index.search(user, project, question(fact, KINDS[n % 2]), limit=5)
            if n >= WARM_UP:
                samples.append((time.perf_counter() - started) * 1000)
    finally:
        await index.aclose()
    return statistics.median(samples)


def tool_call_latency(
    directory: Path, memories: int, count: int, users: int = 20, projects: int = 10
) -> list[dict[str, Any]]:
    """Each protocol's figures over `memories` spread over `users` x `projects`."""
    facts, records = latency_corpus(memories, random.Random(memories), users, projects)
    if users == projects == 1:  # the roots case names the one project by its directory
        rooted = project_id(ROOT)
        records = [dataclasses.replace(r, project=rooted) for r in records]
        facts = [
            dataclasses.replace(f, record=dataclasses.replace(f.record, project=rooted))
            for f in facts
        ]
    name = f"mcp-{memories}-{users}x{projects}"
    config = proxy_config(directory, name, {"rate_limit": {"enabled": False}})
    path = directory / f"{name}.sqlite3"

    async def seed() -> None:
        index = SQLiteMemoryIndex(path)
        try:
            await add_in_batches(index, records)
        finally:
            await index.aclose()

    asyncio.run(seed())
    in_process = asyncio.run(searched_in_process(path, facts, count))
    rows = []
    with memory_proxy_process(config, NO_LITELLM) as (url, proxy):
        cases = [f"{MODERN}, header", "2025-06-18"]
        if users == projects == 1:
            cases.append(f"{MODERN}, roots")
        for case in cases:
            figures = calls(url, proxy.pid, case, facts, count)
            rows.append(
                {
                    "case": case,
                    "memories": memories,
                    "projects": users * projects,
                    "search in process p50 ms": in_process,
                    **figures,
                }
            )
    return rows


def print_tool_calls(rows: list[dict[str, Any]]) -> None:
    print("\nmemory tool calls through /mcp (search_memory, one client, kept-alive):")
    for row in rows:
        print(
            f"  {row['memories']:,} memories in {row['projects']} project(s), MCP {row['case']}: "
            f"p50 {row['p50 ms']:.2f} ms, p99 {row['p99 ms']:.2f} ms, proxy CPU "
            f"{row['cpu ms']:.2f} ms/call (the search alone, in process: p50 "
            f"{row['search in process p50 ms']:.2f} ms)"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--memories", type=int, default=10_000)
    parser.add_argument("--calls", type=int, default=500)
    parser.add_argument("--json", type=Path)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-mcp-") as temporary:
        directory = Path(temporary)
        rows = tool_call_latency(directory, args.memories, args.calls)
        rows += tool_call_latency(directory, args.memories, args.calls, 1, 1)
    print_tool_calls(rows)
    if args.json:
        args.json.write_text(json.dumps(rows, indent=2))


if __name__ == "__main__":
    main()
