"""Measure what the memory proxy adds, and what its memory costs, against nginx.

The upstream is nginx answering a fixed chat completion (scripts/bench_nginx.py): the
floor, where a Python fake on the same two cores would hide the proxy's cost. In front of
it runs one memory proxy per memory case (scripts/bench_memory.py: no memory, session
memory, the whole memory path), each with its store in a temporary directory. wrk sends
small POSTs at 1 and 50 clients, every case once per round, round after round, so that the
shared machine's changing load falls on all of them alike; figures are the median and the
range over rounds, with the server's CPU seconds per request (steadier than wall time).
SSE streams keep a Python fake upstream (scripts/bench_upstream.py): nginx can't pace
events. Then LiteLLM's CPU per request (when installed), session memory's cost in process
per store, recall's search latency (scripts/bench_recall.py), and a burst of 100 clients
over one project's 5,000 memories (scripts/bench_burst.py). Every process is stopped at
the end, on Ctrl-C too.
"""

from __future__ import annotations

import argparse
import asyncio
import dataclasses
import json
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
from contextlib import ExitStack
from dataclasses import dataclass
from pathlib import Path
from types import FrameType

import yaml

from memory_proxy.config import MemorySettings
from scripts.bench_burst import BURST_CLIENTS, BURST_MEMORIES, burst_case, measure_burst
from scripts.bench_load import Figures, stream_round, write_wrk_script, wrk_round
from scripts.bench_mcp import tool_call_latency
from scripts.bench_memory import (
    MEMORIES,
    MemoryCase,
    indexed_memories,
    memory_cases,
    memory_cost,
    probe_recall,
)
from scripts.bench_nginx import nginx_binary, nginx_upstream
from scripts.bench_processes import (
    BIN,
    ROOT,
    cpu_seconds,
    free_port,
    memory_proxy_process,
    process,
    proxy_config,
    proxy_counters,
    rss_mb,
)
from scripts.bench_recall import history, latency
from scripts.bench_report import Results, report
from scripts.recall_history import USERS

WARM_UP_SECONDS = 1
TWO_WORKERS = "no memory, 2 workers"  # measured beside no memory
PROBES = 10
MCP_MEMORIES = 10_000


@dataclass(frozen=True)
class Server:
    """What wrk sends requests to, and the process whose CPU they cost."""

    name: str
    url: str
    pid: int
    script: Path
    index: Path | None = None  # the SQLite file of a long-term index it adds to
    questions: tuple[str, ...] = ()  # questions that index holds answers to


@dataclass(frozen=True)
class Case:
    server: Server
    clients: int

    @property
    def name(self) -> str:
        return f"{self.server.name}, {self.clients} client{'s' if self.clients > 1 else ''}"


def start_proxy(
    servers: ExitStack, config: Path, upstream: str, workers: int = 1, checkout: Path = ROOT
) -> Server:
    """A memory proxy of `checkout` in front of `upstream`, stopped when `servers` closes."""
    url, proxy = servers.enter_context(memory_proxy_process(config, upstream, workers, checkout))
    return Server(config.stem, url, proxy.pid, config.with_suffix(".lua"))


def memory_proxy(
    servers: ExitStack, directory: Path, case: MemoryCase, upstream: str, results: Results
) -> Server:
    """The case's proxy with its store seeded, and the wrk script of its requests."""
    name = case.name.replace(" ", "-").replace(",", "")
    config = proxy_config(directory, name, case.config)
    questions = asyncio.run(case.seed(directory / f"{name}.sqlite3"))
    proxy = start_proxy(servers, config, upstream, case.workers)
    write_wrk_script(proxy.script, case.headers, questions, case.sessions)
    if not questions:
        return dataclasses.replace(proxy, name=case.name)
    results.recalled_per_request = probe_recall(proxy.url, case.headers, questions[:PROBES])
    index = directory / f"{name}.sqlite3"
    return dataclasses.replace(proxy, name=case.name, index=index, questions=tuple(questions))


def compared_proxy(
    servers: ExitStack, directory: Path, case: MemoryCase, upstream: str, ours: Server, older: Path
) -> Server:
    """The same case served by the `older` checkout's code, its store seeded by that code
    (the same sessions, and the same memories when it has a long-term index: a commit from
    before recall has none), sent the same requests as `ours`."""
    name = f"{case.name.replace(' ', '-').replace(',', '')}-{older.name}"
    config = proxy_config(directory, name, case.config)
    case.seed_of(directory / f"{name}.sqlite3", older)
    proxy = start_proxy(servers, config, upstream, case.workers, older)
    return dataclasses.replace(proxy, name=f"{case.name} @{older.name}", script=ours.script)


def checkout_of(revision: str, directory: Path) -> Path:
    """`revision`'s files in `directory/<revision>` (git archive: no worktree to forget)."""
    target = directory / revision
    target.mkdir()
    archive = subprocess.run(
        ["git", "archive", "--format=tar", revision], cwd=ROOT, capture_output=True, check=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive, check=True)
    return target


def one_round(case: Case, seconds: int) -> Figures:
    cpu_before = cpu_seconds(case.server.pid)
    figures = wrk_round(case.server.url, case.clients, seconds, case.server.script)
    cpu = cpu_seconds(case.server.pid) - cpu_before
    figures["cpu_ms_per_request"] = cpu * 1000 / figures["requests"]
    return figures


def interleaved(cases: list[Case], rounds: int, seconds: int) -> dict[str, list[Figures]]:
    """Every case once per round: a change of load on the machine falls on all alike."""
    results: dict[str, list[Figures]] = {case.name: [] for case in cases}
    for number in range(rounds):
        print(f"round {number + 1} of {rounds}", file=sys.stderr)
        for case in cases:
            results[case.name].append(one_round(case, seconds))
    return results


def two_workers(case: MemoryCase) -> MemoryCase:
    return dataclasses.replace(case, name=TWO_WORKERS, workers=2)


def post_cases(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """Direct nginx, and a proxy per memory case in front of it, at 1 and 50 clients;
    the no-memory proxy with two workers at 50 (`--cases`: only those named). With
    --compare, each case's proxy of the
    older commit right after this checkout's, in every round."""
    with ExitStack() as servers:
        nginx_url, nginx = servers.enter_context(nginx_upstream(directory / "nginx"))
        direct = Server("direct nginx", nginx_url, nginx.pid, directory / "direct.lua")
        write_wrk_script(direct.script)
        cases = [case for case in memory_cases() if case.name in args.cases]
        proxies = [memory_proxy(servers, directory, case, nginx_url, results) for case in cases]
        if args.compare:
            older = checkout_of(args.compare, directory)
            pairs = [
                (ours, compared_proxy(servers, directory, case, nginx_url, ours, older))
                for case, ours in zip(cases, proxies, strict=True)
            ]
            proxies = [proxy for pair in pairs for proxy in pair]
        two = [  # the no-memory proxy with two workers, when no memory is measured
            memory_proxy(servers, directory, two_workers(case), nginx_url, results)
            for case in cases
            if case.name == "no memory"
        ]
        for proxy in proxies:
            results.idle_rss_mb[proxy.name] = rss_mb(proxy.pid)
        rounds = [Case(server, 1) for server in (direct, *proxies)]
        rounds += [Case(server, 50) for server in (direct, *proxies, *two)]
        for case in rounds:
            wrk_round(case.server.url, 50, WARM_UP_SECONDS, case.server.script)
        results.post = interleaved(rounds, args.rounds, args.seconds)
        for proxy in (*proxies, *two):
            if "@" in proxy.name:
                continue  # an older commit's /metrics may not say the same
            results.counters[proxy.name] = proxy_counters(proxy.url)
            if proxy.index:
                results.index_growth = (MEMORIES, asyncio.run(indexed_memories(proxy.index)))


def stream_cases(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """SSE streams through the no-memory proxy, against the Python fake (events 10 ms
    apart: nginx can't pace them)."""
    streams = [int(count) for count in args.streams.split(",") if count]
    if not streams:
        return
    upstream = f"http://127.0.0.1:{free_port()}"
    argv = [
        *(str(BIN / "uvicorn"), "scripts.bench_upstream:app"),
        *("--port", upstream.rsplit(":", 1)[1], "--log-level", "warning", "--no-access-log"),
    ]
    with ExitStack() as servers:
        servers.enter_context(process(argv, upstream))
        config = proxy_config(directory, "streams", memory_cases()[0].config)
        proxy = start_proxy(servers, config, upstream)
        for count in streams:
            spread = min(2.0, count / 500)
            for target, url, pid in (("direct", upstream, None), ("proxy", proxy.url, proxy.pid)):
                results.sse[f"{target} SSE x{count}"] = asyncio.run(
                    stream_round(url, count, spread, pid)
                )


def litellm_cpu(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """LiteLLM's CPU per request serving a mock_response model, when it is installed."""
    binary = ROOT / ".venv-litellm" / "bin" / "litellm"
    if not binary.exists():
        print(f"LiteLLM: skipped, {binary} is missing (scripts/install-litellm)", file=sys.stderr)
        return
    config = directory / "litellm.yaml"
    mock = {"model": "openai/bench", "api_key": "none", "mock_response": "ok"}
    config.write_text(
        yaml.safe_dump({"model_list": [{"model_name": "bench", "litellm_params": mock}]})
    )
    key = "sk-bench-" + secrets.token_hex(16)
    url = f"http://127.0.0.1:{free_port()}"
    argv = [str(binary), "--config", str(config), "--host", "127.0.0.1"]
    argv += ["--port", url.rsplit(":", 1)[1]]
    env = {"LITELLM_MASTER_KEY": key, "LITELLM_LOCAL_MODEL_COST_MAP": "True"}
    script = write_wrk_script(directory / "litellm.lua", {"Authorization": f"Bearer {key}"})
    with process(argv, url, env=env, timeout=180) as litellm:
        server = Server("litellm (mock model)", url, litellm.pid, script)
        wrk_round(url, 10, 2, script)  # warm up
        results.litellm = interleaved([Case(server, 10)], args.rounds, args.seconds)


def memory_in_process(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """Session memory's own cost per request, per store, without HTTP."""
    sqlite = MemorySettings(store="sqlite", sqlite_path=directory / "in-process.sqlite3")
    results.memory_in_process["SQLite"] = asyncio.run(memory_cost(sqlite))
    redis_server = shutil.which("redis-server")
    if redis_server:
        port = free_port()
        argv = [redis_server, "--port", str(port), "--save", "", "--appendonly", "no"]
        with process(argv, f"http://127.0.0.1:{port}"):
            redis = MemorySettings(store="redis", redis_url=f"redis://127.0.0.1:{port}/0")
            results.memory_in_process["Redis"] = asyncio.run(memory_cost(redis))


def recall_latency(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """Search over each size spread over 200 projects, and over the whole path's index
    (one project of one user: every search scores all of its memories)."""
    sizes = [int(size) for size in args.recall_sizes.split(",") if size]
    runs = [(size, 20, 10) for size in sizes] + ([(MEMORIES, 1, 1)] if sizes else [])
    for size, users, projects in runs:
        row = asyncio.run(latency(directory, size, args.recall_searches, users, projects))
        results.recall_latency.append(row)


def recall_history(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """The long-history recall benchmark (scripts/bench_recall.py --parts history), its
    search times at the same sizes, in one project."""
    sizes = [int(size) for size in args.recall_sizes.split(",") if size]
    results.recall_history = history(directory, USERS, sizes, args.recall_searches)


def recall_burst(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """Many clients at once over one project's memories, then how long until an idle
    request is recalled again; the memories written, counted once the proxy stopped (it
    writes what is queued first)."""
    case = burst_case(args.burst_memories)
    with ExitStack() as servers:
        nginx_url, _ = servers.enter_context(nginx_upstream(directory / "burst-nginx"))
        proxy = memory_proxy(servers, directory, case, nginx_url, Results())
        results.burst = measure_burst(
            proxy.url,
            proxy.pid,
            proxy.script,
            case.headers,
            list(proxy.questions[:PROBES]),
            args.burst_clients,
            args.burst_seconds,
            args.burst_recovery_limit,
        )
    assert proxy.index is not None
    written = asyncio.run(indexed_memories(proxy.index)) - case.memories
    results.burst |= {"memories": case.memories, "memories_written": written}


def mcp_tool_calls(directory: Path, args: argparse.Namespace, results: Results) -> None:
    """A memory tool call through /mcp (scripts/bench_mcp.py): 10,000 memories over 200
    projects, then all in one project."""
    results.mcp = tool_call_latency(directory, MCP_MEMORIES, args.mcp_calls)
    results.mcp += tool_call_latency(directory, MCP_MEMORIES, args.mcp_calls, 1, 1)


PARTS = {
    "posts": post_cases,
    "streams": stream_cases,
    "litellm": litellm_cpu,
    "in-process": memory_in_process,
    "recall": recall_latency,
    "recall-history": recall_history,
    "burst": recall_burst,
    "mcp": mcp_tool_calls,
}


def _stop(signum: int, frame: FrameType | None) -> None:
    """SIGTERM ends the bench as Ctrl-C does: through every `finally`, servers stopped."""
    raise SystemExit(128 + signum)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--seconds", type=int, default=3, help="length of one wrk round")
    parser.add_argument("--rounds", type=int, default=3, help="interleaved rounds per case")
    parser.add_argument("--streams", default="1,500,1000", help="concurrent SSE streams")
    parser.add_argument("--recall-sizes", default="10000,100000", help="memories searched")
    parser.add_argument("--recall-searches", type=int, default=1000, help="per size")
    parser.add_argument("--burst-clients", type=int, default=BURST_CLIENTS)
    parser.add_argument("--burst-memories", type=int, default=BURST_MEMORIES, help="one project's")
    parser.add_argument("--burst-seconds", type=int, default=30, help="length of the burst")
    parser.add_argument(
        "--burst-recovery-limit", type=float, default=300, help="seconds to wait for recall"
    )
    parser.add_argument("--mcp-calls", type=int, default=500, help="memory tool calls per case")
    parser.add_argument(
        "--parts", default=",".join(PARTS), help=f"what to measure, of {', '.join(PARTS)}"
    )
    parser.add_argument(
        "--cases",
        type=lambda names: names.split(","),
        default=[case.name for case in memory_cases()],
        help="the POST cases' proxies, of " + ", ".join(case.name for case in memory_cases()),
    )
    parser.add_argument("--json", type=Path, help="also write the figures here")
    parser.add_argument(
        "--compare",
        metavar="COMMIT",
        help="also serve each POST case with this commit's code, interleaved (e.g. a5748bb)",
    )
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    if unknown := set(args.cases) - {case.name for case in memory_cases()}:
        parser.error(f"--cases: unknown {', '.join(sorted(unknown))}")
    if shutil.which("wrk") is None or nginx_binary() is None:
        sys.exit("wrk or nginx is not installed (scripts/bench installs them)")
    signal.signal(signal.SIGTERM, _stop)

    results = Results()
    with tempfile.TemporaryDirectory(prefix="bench-") as temporary:
        directory = Path(temporary)
        for part in parts:
            PARTS[part](directory, args, results)
    report(results)
    if args.json:
        args.json.write_text(json.dumps(dataclasses.asdict(results), indent=2))


if __name__ == "__main__":
    try:
        main()
    except KeyboardInterrupt:
        sys.exit("interrupted; every server the bench started is stopped")
