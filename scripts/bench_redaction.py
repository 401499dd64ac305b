"""Measure redaction: its cost per exchange and its false positives on ordinary text.

Corpus (nothing in it is a live secret): this repository's own source and README (not its
tests, whose fixtures are key-shaped on purpose), the Python standard library's source
files (without its test suites, which hold sample keys and certificates on purpose), and
the READMEs and documents of the packages in the proxy's virtual environment (`*.md`,
`*.rst`, each distribution's METADATA). Every redaction there is counted and shown: the
target is at most 1 per 10,000 lines.

Speed: the text is cut into exchanges of about 2 kB, as the proxy redacts a question and
its answer; the figure is the mean CPU time per exchange over the whole corpus, and over
exchanges that hold a secret of every kind.

    .venv/bin/python -m scripts.bench_redaction [--show 40]
"""

from __future__ import annotations

import argparse
import collections
import site
import sysconfig
import time
from collections.abc import Iterator
from pathlib import Path

from memory_proxy.memory.redaction import Redactor

REPOSITORY = Path(__file__).resolve().parent.parent
EXCHANGE_CHARS = 2000
STDLIB_SKIPPED = {"test", "tests", "idle_test", "site-packages", "__pycache__"}
# One of each kind, in the shapes the tests use (none of them is real).
SECRET_EXCHANGE = (
    "Here is my .env:\nOPENAI_API_KEY=sk-proj-Zq4nV8xW2yR6tU0iO3pA7sD1fG5hJ9kL2zX6cV0bN4mQ8wE1rT"
    "\nAWS_ACCESS_KEY_ID=AKIAQ3EGUKRT4XAMPL7Z\nAWS_SECRET_ACCESS_KEY=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"
    "\nGITHUB_TOKEN=ghp_R2d2C3poBb8Yy7Tt6Uu5Ii4Oo3Pp2Aa1Ss0Dd9\n"
    "DATABASE_URL=postgres://shop:Hx7!kq29Lm@db.internal:5432/shop\n"
    "jwt eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiJhbGljZSJ9.3q2v8Xn1Qm7Lz5Kw9Jr4Ht6Gy0Fs2Dp8Bn1Mc3Va5\n"
    "-----BEGIN RSA PRIVATE KEY-----\n"
    "MIIBOgIBAAJBAKj34GkxFhD90vcNLYLInFEX6Ppy1tPf9Cnzj4p4WGeKLs1Pt8Qu\n"
    "-----END RSA PRIVATE KEY-----\n"
)


def corpus_files() -> dict[str, list[Path]]:
    """The corpus's files by part."""
    stdlib = Path(sysconfig.get_paths()["stdlib"])
    packages = Path(site.getsitepackages()[0])
    return {
        "this repository": [
            *sorted(
                path
                for pattern in ("memory_proxy/**/*.py", "supervisor/*.py", "scripts/*.py")
                for path in REPOSITORY.glob(pattern)
                if path.name != Path(__file__).name  # it holds sample secrets on purpose
            ),
            REPOSITORY / "README.md",
        ],
        "Python standard library": sorted(
            path
            for path in stdlib.rglob("*.py")
            if not STDLIB_SKIPPED & set(path.relative_to(stdlib).parts)
        ),
        "site-packages documents": sorted(
            path
            for pattern in ("**/*.md", "**/*.rst", "*.dist-info/METADATA")
            for path in packages.glob(pattern)
        ),
    }


def exchanges(text: str) -> Iterator[str]:
    """Whole lines, about `EXCHANGE_CHARS` at a time."""
    chunk: list[str] = []
    size = 0
    for line in text.splitlines(keepends=True):
        chunk.append(line)
        size += len(line)
        if size >= EXCHANGE_CHARS:
            yield "".join(chunk)
            chunk, size = [], 0
    if chunk:
        yield "".join(chunk)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--show", type=int, default=40, help="redactions to print")
    args = parser.parse_args()
    kinds: collections.Counter[str] = collections.Counter()
    redactor = Redactor(on_redacted=lambda kind: kinds.update([kind]))
    shown = 0
    total_lines = total_chunks = 0
    cpu = 0.0
    for part, files in corpus_files().items():
        lines = chunks = before = 0
        before = sum(kinds.values())
        for path in files:
            text = path.read_text(encoding="utf-8", errors="replace")
            lines += text.count("\n") + 1
            for chunk in exchanges(text):
                chunks += 1
                started = time.process_time()
                redacted = redactor.text(chunk)
                cpu += time.process_time() - started
                if redacted is not chunk and shown < args.show:
                    shown += 1
                    print(f"  {path}: {_changed_lines(chunk, redacted)}")
        found = sum(kinds.values()) - before
        print(f"{part}: {len(files)} files, {lines:,} lines, {found} redactions")
        total_lines += lines
        total_chunks += chunks
    found = sum(kinds.values())
    print(
        f"corpus: {total_lines:,} lines, {found} redactions = "
        f"{found / total_lines * 10_000:.2f} per 10,000 lines; by kind: {dict(kinds)}"
    )
    print(
        f"ordinary text: {cpu / total_chunks * 1e6:.1f} us of CPU "
        f"per {EXCHANGE_CHARS}-character exchange"
    )
    repeats = 2000
    started = time.process_time()
    for _ in range(repeats):
        redactor.text(SECRET_EXCHANGE)
    per = (time.process_time() - started) / repeats
    print(f"an exchange with 7 secrets ({len(SECRET_EXCHANGE)} chars): {per * 1e6:.1f} us of CPU")


def _changed_lines(before: str, after: str) -> str:
    old = before.splitlines()
    new = after.splitlines()
    return " | ".join(n.strip()[:160] for o, n in zip(old, new, strict=False) if o != n)


if __name__ == "__main__":
    main()
