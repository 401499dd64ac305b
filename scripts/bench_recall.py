"""Measure long-term memory recall: quality on two synthetic sets, and search latency.

Long histories (`--parts history`, scripts/bench_recall_history.py): generated multi-session
histories of several users (scripts/recall_history.py), questions asked later in other
words, and off-topic ones, through a running proxy at the shipped config's settings (and
two looser `recall` settings, for comparison); plain FTS5 reference points on the same
data (scripts/bench_recall_reference.py); search time over the histories scaled to 10,000
and 100,000 memories in one project (scripts/bench_recall_scale.py). Questions are split
into "tune" and "test" halves: tuning may look at "tune" only.

Paraphrases: scripts/recall_dataset.py plants ~200 developer facts among a few thousand filler
exchanges of several users and projects; each fact is asked for once in its own words and
once paraphrased, from a new session of the same user and project. Reports recall@5, and
leakage: any hit from another project or user (must be 0).

Latency: search through the index's own thread (as the proxy calls it) over 10,000 and
100,000 memories in a temporary SQLite file, spread over 20 users x 10 projects; p50/p99
of wall time, mean CPU time (both threads: steadier than wall time on a busy machine),
and insert throughput one record at a time (as the proxy adds them) and in batches.

    .venv/bin/python -m scripts.bench_recall [--parts paraphrase,history,latency]
        [--users 8] [--sizes 10000,100000] [--sample 5] [--json FILE]
"""

from __future__ import annotations

import argparse
import asyncio
import html
import json
import os
import random
import statistics
import tempfile
import time
from pathlib import Path
from typing import Any

from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory.question import last_human_turn
from memory_proxy.memory.recall import Recall
from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.base import MemoryIndex, RecallBackend
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.wire.registry import CHAT
from scripts.bench_recall_history import counts, figures, run
from scripts.bench_recall_reference import references
from scripts.bench_recall_scale import one_project_latency
from scripts.recall_dataset import FACTS, Fact, build, filler, record
from scripts.recall_history import USERS, Dataset, build_dataset

TOP_K = 5
KINDS = ("own words", "paraphrase")
NOW = "the-current-session"
PARTS = ("paraphrase", "history", "latency")
# The proxy at the shipped config's recall settings, and looser ones for comparison.
PROXY_VARIANTS: dict[str, dict[str, object]] = {
    "proxy, defaults": {},
    "proxy, min_score 0": {"min_score": 0},
    "proxy, min_score 0, limit 10, 2,000 tokens": {"min_score": 0, "limit": 10, "max_tokens": 2000},
}
COLUMNS = (
    ("single-hop", "single"),
    ("multi-hop", "multi"),
    ("multi-hop, at least one", "multi≥1"),
    ("temporal", "temporal"),
    ("open-domain", "open"),
    ("all", "all"),
    ("tune", "tune"),
    ("test", "test"),
    ("off-topic with a block", "off-topic"),
    ("tokens on-topic", "tok on"),
    ("tokens off-topic", "tok off"),
)


def question(fact: Fact, kind: str) -> str:
    return fact.own_words if kind == "own words" else fact.paraphrase


async def add_in_batches(index: RecallBackend, records: list[MemoryRecord]) -> float:
    """Seconds to add `records`, 500 per call."""
    started = time.perf_counter()
    for start in range(0, len(records), 500):
        await index.add(records[start : start + 500])
    return time.perf_counter() - started


async def recalled_block(recall: Recall, user: str, project: str, text: str) -> str:
    """The block Recall puts into a new session's question (the default settings), or ""."""
    body = {"messages": [{"role": "user", "content": text}]}
    turn = last_human_turn(CHAT, body)
    outcome = await recall.apply(
        CHAT,
        body,
        body,
        turn,
        user_id=user,
        project=project,
        session_id=NOW,
        history_injected=False,
    )
    return str(outcome.body["messages"][-1]["content"]) if outcome.body else ""


async def quality(directory: Path, index: MemoryIndex | None = None) -> dict[str, dict[str, float]]:
    """On a new SQLite file in `directory`, or on the empty `index` given (which it closes)."""
    test_set = build()
    index = index or SQLiteMemoryIndex(directory / "quality.sqlite3")
    recall = Recall(index, RecallSettings(), on_timeout=lambda: None, on_failure=lambda: None)
    try:
        await add_in_batches(index, test_set.records)
        figures: dict[str, dict[str, float]] = {}
        for kind in KINDS:
            found = found_any_project = leaks = in_block = 0
            for fact in test_set.facts:
                user, project = fact.record.user_id, fact.record.project
                text = question(fact, kind)
                hits = await index.search(user, project, text, limit=TOP_K, exclude_session=NOW)
                wide = await index.search(user, None, text, limit=TOP_K, exclude_session=NOW)
                found += fact.record in [hit.record for hit in hits]
                found_any_project += fact.record in [hit.record for hit in wide]
                leaks += sum(hit.record.project != project for hit in hits)
                leaks += sum(hit.record.user_id != user for hit in hits + wide)
                block = html.unescape(await recalled_block(recall, user, project, text))
                in_block += fact.record.text.strip() in block
            count = len(test_set.facts)
            figures[kind] = {
                "questions": count,
                "recall@5": found / count,
                "recall@5 any project": found_any_project / count,
                "recall@budget": in_block / count,
                "leaked hits": leaks,
            }
        figures["set"] = {"facts": len(test_set.facts), "memories": len(test_set.records)}
        return figures
    finally:
        await index.aclose()


def latency_corpus(
    size: int, rng: random.Random, users: int = 20, projects: int = 10
) -> tuple[list[Fact], list[MemoryRecord]]:
    """The quality set's facts over `users` x `projects` (`user0`/`project0`, ...; up to
    200 facts, each kind once per scope), and longer filler (two to four exchanges per
    memory, like a real turn and answer) up to `size` memories."""
    facts = min(200, users * projects * len(FACTS))
    test_set = build(seed=11, users=users, projects=projects, facts=facts, fillers=0)
    scopes = [(f"user{u}", f"project{p}") for u in range(users) for p in range(projects)]
    records = list(test_set.records)
    while len(records) < size:
        user, project = rng.choice(scopes)
        text = "\n".join(filler(rng) for _ in range(rng.randint(2, 4)))
        records.append(record(user, project, f"s{len(records)}", text, 1e9 + len(records)))
    rng.shuffle(records)
    return test_set.facts, records


def percentile(samples: list[float], fraction: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, int(len(ordered) * fraction))]


async def latency(
    directory: Path,
    size: int,
    searches: int,
    users: int = 20,
    projects: int = 10,
    index: MemoryIndex | None = None,
) -> dict[str, float]:
    """Search and insert figures over `size` memories spread over `users` x `projects`
    (one project of one user: every search scores all of them), in a new SQLite file or
    the empty `index` given (which it closes)."""
    rng = random.Random(size)
    facts, records = latency_corpus(size, rng, users, projects)
    path = directory / f"latency-{size}-{users}x{projects}.sqlite3"
    index = index or SQLiteMemoryIndex(path)
    try:
        singles, bulk = records[:1000], records[1000:]
        started = time.perf_counter()
        for one in singles:
            await index.add([one])
        single_rate = len(singles) / (time.perf_counter() - started)
        bulk_rate = len(bulk) / await add_in_batches(index, bulk)
        samples: list[float] = []
        hits = 0
        cpu = 0.0
        for n in range(searches + 50):
            fact = rng.choice(facts)
            user, project = fact.record.user_id, fact.record.project
            text = question(fact, KINDS[n % 2])
            started, cpu_started = time.perf_counter(), time.process_time()
            found = await index.search(user, project, text, limit=TOP_K, exclude_session=NOW)
            elapsed = time.perf_counter() - started
            if n >= 50:  # the first ones warm the page cache
                samples.append(elapsed * 1000)
                cpu += time.process_time() - cpu_started
                hits += len(found)
        return {
            "memories": size,
            "projects": users * projects,
            "search p50 ms": statistics.median(samples),
            "search p99 ms": percentile(samples, 0.99),
            "search cpu ms": cpu * 1000 / len(samples),
            "searches/s": len(samples) / (sum(samples) / 1000),
            "hits/search": hits / len(samples),
            "add records/s (1 per call)": single_rate,
            "add records/s (500 per call)": bulk_rate,
            "file MB": (path.stat().st_size if path.exists() else await index.used_bytes()) / 1e6,
        }
    finally:
        await index.aclose()


def history(directory: Path, users: int, sizes: list[int], searches: int) -> dict[str, Any]:
    """The long-history benchmark: through the proxy, the reference points, and search
    time in one project at each of `sizes`."""
    dataset = build_dataset(users=users)
    rows: dict[str, dict[str, float]] = {}
    texts: list[str] = []
    for number, (name, recall) in enumerate(PROXY_VARIANTS.items()):
        asked, counters, texts = run(directory, dataset, f"history-{number}", recall)
        rows[name] = figures(asked) | {f"proxy {key}": value for key, value in counters.items()}
    rows |= references(dataset, texts)
    questions = [asked.text for asked in (*dataset.questions, *dataset.off_topic)]
    random.Random(0).shuffle(questions)

    async def scaled() -> list[dict[str, float]]:
        return [await one_project_latency(directory, size, questions, searches) for size in sizes]

    return {"set": counts(dataset), "rows": rows, "one project": asyncio.run(scaled())}


def print_history(results: dict[str, Any]) -> None:
    counted = results["set"]
    print(
        f"\nLong histories: {counted['users']:.0f} users, {counted['exchanges']:,.0f} exchanges "
        f"(at least {counted['fewest exchanges of a user']:.0f} a user, "
        f"{counted['sessions per user']:.0f} sessions each); {counted['questions']:.0f} questions "
        f"(single-hop {counted['single-hop questions']:.0f}, multi-hop "
        f"{counted['multi-hop questions']:.0f}, temporal {counted['temporal questions']:.0f}, "
        f"open-domain {counted['open-domain questions']:.0f}), "
        f"{counted['off-topic questions']:.0f} off-topic"
    )
    print("share of questions whose evidence reached the request; off-topic: share given a block;")
    print("tokens: mean injected per question (characters / 4), on-topic and off-topic")
    print(f"{'':44}" + "".join(f"{short:>10}" for _, short in COLUMNS))
    for name, row in results["rows"].items():
        cells = "".join(
            f"{row[key]:>10.0f}" if key.startswith("tokens") else f"{row[key]:>10.3f}"
            for key, _ in COLUMNS
        )
        print(f"{name:<44}{cells}")
        late = row.get("proxy recall_timeouts", 0) + row.get("proxy recall_skipped", 0)
        if late:
            print(f"{'':44}  ({late:.0f} searches past the budget or skipped: found nothing)")
    for row in results["one project"]:
        print(
            f"search in one project, {row['memories']:,.0f} memories of generated histories: "
            f"p50 {row['search p50 ms']:.2f} ms, p99 {row['search p99 ms']:.2f} ms, "
            f"CPU {row['search cpu ms']:.2f} ms, {row['hits/search']:.1f} hits"
        )


def print_sample(dataset: Dataset, count: int) -> None:
    """`count` facts, drawn at random, with the questions they answer: to judge realism."""
    by_evidence: dict[str, list[str]] = {}
    for asked in dataset.questions:
        for exchange_id in {i for group in asked.evidence for i in group}:
            by_evidence.setdefault(exchange_id, []).append(
                f"[{asked.kind}, {asked.split}] {asked.text}"
            )
    exchanges = {exchange.id: exchange for exchange in dataset.exchanges}
    for exchange_id in random.Random(1).sample(sorted(dataset.facts), count):
        exchange = exchanges[exchange_id]
        where = exchange.project or "general memory"
        print(f"\n--- {exchange_id} ({where}): {dataset.facts[exchange_id]}")
        print(f"User: {exchange.question}\nAssistant: {exchange.answer}")
        for line in by_evidence.get(exchange_id, []):
            print(f"  asked: {line}")


def print_quality(q: dict[str, dict[str, float]]) -> None:
    print(f"\nRecall@{TOP_K} ({q['set']['facts']} facts among {q['set']['memories']} memories)")
    print("(recall@budget: in the block Recall puts into the request, at the default settings)")
    print(f"{'question':<12}{'project':>10}{'any project':>13}{'@budget':>10}{'leaked hits':>13}")
    for kind in KINDS:
        row = q[kind]
        print(
            f"{kind:<12}{row['recall@5']:>10.3f}{row['recall@5 any project']:>13.3f}"
            f"{row['recall@budget']:>10.3f}{row['leaked hits']:>13.0f}"
        )


def print_latency(rows: list[dict[str, float]]) -> None:
    load = ", ".join(f"{n:.1f}" for n in os.getloadavg())
    print(f"\nSearch (through the index thread) and insert throughput; load average {load}")
    print(
        f"{'memories':>9}{'projects':>9}{'p50 ms':>9}{'p99 ms':>9}{'cpu ms':>9}{'search/s':>10}"
        f"{'add/s x1':>10}{'add/s x500':>11}{'file MB':>9}"
    )
    for row in rows:
        print(
            f"{row['memories']:>9}{row['projects']:>9.0f}{row['search p50 ms']:>9.2f}"
            f"{row['search p99 ms']:>9.2f}{row['search cpu ms']:>9.2f}{row['searches/s']:>10.0f}"
            f"{row['add records/s (1 per call)']:>10.0f}"
            f"{row['add records/s (500 per call)']:>11.0f}{row['file MB']:>9.1f}"
        )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default=",".join(PARTS), help=f"of {', '.join(PARTS)}")
    parser.add_argument("--sizes", default="10000,100000", help="memories for the latency runs")
    parser.add_argument("--searches", type=int, default=2000, help="searches per size")
    parser.add_argument("--users", type=int, default=USERS, help="long histories generated")
    parser.add_argument("--sample", type=int, default=0, help="print this many generated facts")
    parser.add_argument("--json", type=Path, help="also write the figures here")
    args = parser.parse_args()
    parts = [part for part in args.parts.split(",") if part]
    if unknown := set(parts) - set(PARTS):
        parser.error(f"--parts: unknown {', '.join(sorted(unknown))}")
    sizes = [int(size) for size in args.sizes.split(",") if size]

    results: dict[str, Any] = {}
    with tempfile.TemporaryDirectory(prefix="bench-recall-") as temporary:
        directory = Path(temporary)
        if "paraphrase" in parts:
            results["quality"] = asyncio.run(quality(directory))
            print_quality(results["quality"])
        if "history" in parts:
            results["history"] = history(directory, args.users, sizes, args.searches // 4)
            print_history(results["history"])
        if "latency" in parts:
            results["latency"] = [
                asyncio.run(latency(directory, size, args.searches)) for size in sizes
            ]
            print_latency(results["latency"])
    if args.sample:
        print_sample(build_dataset(users=args.users), args.sample)
    if args.json:
        args.json.write_text(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
