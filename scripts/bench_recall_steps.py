"""Instructions per question of the whole memory path's recall (issue 19): the search's
own work on its thread (the SQLite index's statements and its Python around them, over
scripts/bench's 10,000 memories of one project), and recall on the event loop: a question
whose search the index refuses at once (busy: most of them under 50 clients), and one
answered with its hits (the block built and put into the request).

Like scripts/bench_session_steps.py: each step run 100 and 600 times under callgrind,
the difference divided by 500 (start-up and a first pass over every question left out),
which load does not move. The index is seeded once, by this checkout's code.

    .venv/bin/python -m scripts.bench_recall_steps [--checkout DIR]
        [--split N]  # instead: N searches natively, their thread CPU and SQLite's share
"""

from __future__ import annotations

import argparse
import asyncio
import subprocess
import sys
import tempfile
from pathlib import Path

from scripts.bench_memory import MEMORIES, seed_index
from scripts.bench_processes import ROOT
from scripts.bench_session_steps import instructions

STEPS = ("search", "apply refused", "apply with hits")
RUNS = (100, 600)  # a search runs ~7.8M instructions: fewer runs than the session steps

# Run with the checkout on sys.path: `step` `count`. Written against what both the
# checkout and its base have (SQLiteMemoryIndex, Recall, the shipped recall settings).
DRIVER = """
import asyncio, sys, time
from pathlib import Path
from memory_proxy.config import Settings
from memory_proxy.memory.indexing import exchange_text
from memory_proxy.memory.question import last_human_turn
from memory_proxy.memory.recall import Recall, fill_floor
from memory_proxy.stores.base import SearchBusy
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from memory_proxy.wire.registry import CHAT
from scripts.bench_memory import INDEX_PROJECT, INDEX_USER, SEEDED

PATH = Path({path!r})
QUESTIONS = PATH.with_suffix(".questions").read_text().split("\\n")
settings = Settings().recall


SPLIT = sys.argv[3:] == ["split"]  # thread CPU, and its share in SQLite's statements
IN_SQLITE = [0.0]


class Timed:  # a connection whose statements (executed and fetched) are timed
    def __init__(self, db):
        self.db = db

    def execute(self, *args):
        started = time.thread_time()
        rows = self.db.execute(*args).fetchall()
        IN_SQLITE[0] += time.thread_time() - started
        return Rows(rows)


class Rows(list):
    def fetchone(self):
        return self[0] if self else None

    def fetchall(self):
        return self


class Inline:  # the search thread's work, run on the calling thread
    def __init__(self, connection):
        self.connection = connection

    def run(self, work):
        future = asyncio.get_running_loop().create_future()
        db = self.connection.current()
        future.set_result(work(Timed(db) if SPLIT else db))
        return future


class Refusing:
    def search(self, *args, **kwargs):
        raise SearchBusy("busy")


class Answering:
    def __init__(self, hits):
        self.hits = hits

    def search(self, user_id, project, query, **kwargs):
        future = asyncio.get_running_loop().create_future()
        future.set_result(self.hits[query])
        return future


async def main():
    index = SQLiteMemoryIndex(PATH)
    index._searches = Inline(index._searches._connection)

    def search(question):
        return index.search(
            INDEX_USER, INDEX_PROJECT, question, limit=settings.limit, exclude_session="s1",
            min_share=settings.min_score, fill_share=fill_floor(settings),
        )

    # Every question searched once first (a steady state: its hits' texts read and kept)
    hits = {{}} if sys.argv[1] == "apply refused" else {{q: await search(q) for q in QUESTIONS}}
    requests = []
    for question in QUESTIONS:
        payload = {{"model": "bench", "messages": [{{"role": "user", "content": question}}]}}
        outgoing = {{"model": "bench", "messages": [*SEEDED, *payload["messages"]]}}
        requests.append((payload, outgoing, last_human_turn(CHAT, payload)))

    def recall(backend):
        kept = dict(on_timeout=lambda: None, on_failure=lambda: None, memory_text=exchange_text)
        recall = Recall(backend, settings, **kept)
        def apply(request):
            payload, outgoing, turn = request
            return recall.apply(
                CHAT, payload, outgoing, turn, user_id=INDEX_USER, project=INDEX_PROJECT,
                session_id="s1", history_injected=True,
            )
        return apply

    steps = {{
        "search": search,
        "apply refused": recall(Refusing()),
        "apply with hits": recall(Answering(hits)),
    }}
    step = steps[sys.argv[1]]
    takes = QUESTIONS if sys.argv[1] == "search" else requests
    IN_SQLITE[0], started = 0.0, time.thread_time()
    for number in range(int(sys.argv[2])):
        await step(takes[number % len(takes)])
    if SPLIT:
        spent, count = time.thread_time() - started, int(sys.argv[2])
        print(f"{{spent / count * 1e6:.0f}} us of thread CPU a search, "
              f"{{IN_SQLITE[0] / count * 1e6:.0f}} us of it in SQLite's statements")


asyncio.run(main())
"""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--checkout", type=Path, default=ROOT, help="the code to measure")
    parser.add_argument(
        "--split", type=int, metavar="N", help="instead: N searches' thread CPU, natively"
    )
    args = parser.parse_args()
    with tempfile.TemporaryDirectory(prefix="bench-recall-steps-") as temporary:
        directory = Path(temporary)
        path = directory / "index.sqlite3"
        questions = asyncio.run(seed_index(path, MEMORIES))
        path.with_suffix(".questions").write_text("\n".join(questions))
        code = DRIVER.format(path=str(path))
        if args.split:
            argv = [sys.executable, "-c", code, "search", str(args.split), "split"]
            env = {"PYTHONPATH": str(args.checkout)}
            subprocess.run(argv, cwd=args.checkout, env=env, check=True)
            return
        for step in STEPS:
            few, many = (instructions(args.checkout, step, n, directory, code) for n in RUNS)
            print(f"{step}: {(many - few) / (RUNS[1] - RUNS[0]) / 1000:.1f}k instructions")


if __name__ == "__main__":
    main()
