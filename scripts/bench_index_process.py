"""The index process's cost per memory (memory/index_worker.py), alone: the real worker,
sent exchanges as the proxy sends them (batches of SEND_AT over its socket, marshalled),
each a new memory as in scripts/bench's no-session case ("hi", and an answer holding a
new id; its bytes kept as the proxy keeps them for a request naming no session, its
message read by the process, or with `--answers text` its text alone). Its CPU time
(rusage of the ended child) or, with `--callgrind`, the instructions it ran, for
`--small` and `--large` exchanges: the difference over the difference leaves its start-up
out.

    PYTHONPATH=$PWD .venv/bin/python -m scripts.bench_index_process [--callgrind]
        [--answers kept|text]
"""

from __future__ import annotations

import argparse
import dataclasses
import marshal
import os
import pickle
import resource
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from memory_proxy.config import Settings, load_settings
from memory_proxy.memory.index_process import (
    FRAME,
    SEND_AT,
    WORKER_MODULE,
    WorkerSettings,
    frame,
)
from scripts.bench_nginx import COMPLETION
from scripts.bench_processes import ROOT
from scripts.callgrind import total


def exchanges(count: int, kept: bool) -> list[tuple[object, ...]]:
    """indexing.Exchange's fields, as IndexProcess.remember keeps them: the answer nginx's
    (scripts/bench_nginx.py), kept, or its text."""
    ids = (os.urandom(16).hex() for _ in range(count))
    answers: list[object] = [
        ("chat", "json", COMPLETION.replace("$request_id", new).encode())
        if kept
        else f"Noted (reference {new})."
        for new in ids
    ]
    return [
        ("anonymous", "", None, "unknown", "bench", time.time(), "hi", answer, False)
        for answer in answers
    ]


def run(settings: Settings, count: int, callgrind: bool, kept: bool) -> float:
    """CPU seconds (or instructions) of one worker writing `count` memories."""
    with tempfile.TemporaryDirectory(prefix="bench-index-") as temporary:
        directory = Path(temporary)
        memory = dataclasses.replace(settings.memory, sqlite_path=directory / "m.sqlite3")
        worker = WorkerSettings.of(dataclasses.replace(settings, memory=memory))
        ours, theirs = socket.socketpair()
        argv = [sys.executable, "-P", "-m", WORKER_MODULE, str(theirs.fileno())]
        out = directory / "callgrind.out"
        if callgrind:
            argv = ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", *argv]
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        child = subprocess.Popen(argv, pass_fds=(theirs.fileno(),), stderr=subprocess.DEVNULL)
        theirs.close()
        with ours, ours.makefile("rb") as answers:
            ours.sendall(frame(pickle.dumps(worker)))
            for start in range(0, count, SEND_AT):
                batch = exchanges(min(SEND_AT, count - start), kept)
                ours.sendall(frame(marshal.dumps(batch)))
                (size,) = FRAME.unpack(answers.read(FRAME.size))
                answers.read(size)  # written: the next batch, as the proxy's would come
            ours.shutdown(socket.SHUT_WR)
            answers.read()
        child.wait()
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        if callgrind:
            counted = total(out)
            assert counted is not None, "no callgrind totals"
            return float(counted)
        return (after.ru_utime + after.ru_stime) - (before.ru_utime + before.ru_stime)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", type=int, default=SEND_AT)
    parser.add_argument("--large", type=int, default=21 * SEND_AT)
    parser.add_argument("--callgrind", action="store_true", help="instructions (slow)")
    parser.add_argument("--answers", choices=("kept", "text"), default="kept")
    args = parser.parse_args()
    settings = load_settings(ROOT / "config.yaml")
    kept = args.answers == "kept"
    small, large = (run(settings, n, args.callgrind, kept) for n in (args.small, args.large))
    per_memory = (large - small) / (args.large - args.small)
    if args.callgrind:
        print(f"index process: {per_memory / 1000:.1f}k instructions per memory")
    else:
        print(f"index process: {per_memory * 1e6:.1f} us of CPU per memory")


if __name__ == "__main__":
    main()
