"""The SQLite file's index written from a process of its own (memory/index_process.py):
the proxy's memories land in the file and its search sees them; what the process could
not write (dead, restarting) is counted and logged; what is sent at shutdown is written;
and the process writes exactly the memories the proxy would have made itself."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import signal
from pathlib import Path

import httpx
import psutil
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from memory_proxy.app import MemoryProxy
from memory_proxy.config import MemorySettings, Settings
from memory_proxy.config.recall import RecallSettings
from memory_proxy.memory import index_process
from memory_proxy.memory.index_process import IndexProcess
from memory_proxy.memory.indexing import Exchange, MemoryMaker
from memory_proxy.memory.redaction import Redactor
from memory_proxy.records.memory import MemoryRecord
from memory_proxy.stores.sqlite_index import SQLiteMemoryIndex
from tests.fake_upstream import FakeUpstream
from tests.memory.secret_samples import OPENAI_KEY
from tests.support import LogRecords, serve, wait_until

ALICE = {"x-memory-user-id": "alice", "x-memory-project": "shop"}
WORKER = index_process.WORKER_MODULE


def ask(proxy: str, text: str) -> None:
    body = {"model": "m", "messages": [{"role": "user", "content": text}]}
    answer = httpx.post(f"{proxy}/v1/chat/completions", json=body, headers=ALICE)
    assert answer.status_code == 200


def memory_texts(proxy: str) -> list[str]:
    found = httpx.get(f"{proxy}/v1/memories", params={"user_id": "alice"}).json()["data"]
    return [memory["text"] for memory in found]


def index_processes() -> list[psutil.Process]:
    """This process's live children running the index's worker."""
    found = []
    for child in psutil.Process().children():
        try:
            if WORKER in " ".join(child.cmdline()):
                found.append(child)
        except psutil.Error:  # ended (a zombie until reaped)
            continue
    return found


def remember(
    indexer: IndexProcess,
    question: str,
    answer: str,
    *,
    user: str = "alice",
    project: str = "shop",
    private: bool = False,
) -> None:
    """One exchange named by no session, from client "c" and model "m"."""
    indexer.remember(
        user_id=user,
        project=project,
        session_id=None,
        client="c",
        model="m",
        question=question,
        answer=answer,
        private=private,
    )


async def written_to(path: Path) -> list[MemoryRecord]:
    """Every memory in the SQLite file at `path`."""
    index = SQLiteMemoryIndex(path)
    try:
        return await index.list_memories(None, None, 2000, 0)
    finally:
        await index.aclose()


def dropped(app: MemoryProxy) -> float:
    value = app.metrics.registry.get_sample_value("memory_proxy_memories_dropped_total")
    return value or 0.0


def test_a_process_of_the_proxy_writes_its_memories_and_stops_with_it(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path
) -> None:
    upstream, url = fake_upstream
    upstream.reply_text = f"The staging database is called heron; the key is {OPENAI_KEY}."
    memory = MemorySettings(sqlite_path=tmp_path / "memory.sqlite3")
    recall = RecallSettings(timeout_ms=60_000)  # a budget no loaded machine reaches
    app = MemoryProxy(
        dataclasses.replace(Settings(), litellm_url=url, memory=memory, recall=recall)
    )
    with serve(app) as proxy:
        ask(proxy, "What is the staging database called?")
        wait_until(lambda: len(memory_texts(proxy)) == 1)
        (child,) = index_processes()
        assert child.pid != os.getpid()
        (text,) = memory_texts(proxy)
        assert "heron" in text and OPENAI_KEY not in text  # redacted in the process
        counted = 'memory_proxy_redactions_total{kind="openai-key"} 1.0'
        wait_until(lambda: counted in httpx.get(f"{proxy}/metrics").text)  # its answer
        ask(proxy, "What is the staging database called again?")  # recall sees it
        assert "heron" in upstream.requests[-1].body.decode()
    assert index_processes() == []
    assert dropped(app) == 0


def test_a_dead_index_process_is_counted_logged_once_and_replaced(
    fake_upstream: tuple[FakeUpstream, str], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _upstream, url = fake_upstream
    memory = MemorySettings(sqlite_path=tmp_path / "memory.sqlite3")
    app = MemoryProxy(dataclasses.replace(Settings(), litellm_url=url, memory=memory))
    assert app.memory is not None and isinstance(app.memory.indexer, IndexProcess)
    indexer = app.memory.indexer
    monkeypatch.setattr(index_process, "RESTART_SECONDS", 3600.0)
    with serve(app) as proxy, LogRecords().of("memory_proxy.memory") as logs:
        ask(proxy, "first question")
        wait_until(lambda: len(memory_texts(proxy)) == 1)
        wait_until(lambda: indexer.unanswered == 0)  # its answer read: not lost with it
        (child,) = index_processes()
        child.send_signal(signal.SIGKILL)
        wait_until(lambda: index_processes() == [])
        ask(proxy, "second question")  # lost with it, or too soon to start another
        ask(proxy, "third question")
        wait_until(lambda: dropped(app) == 2)
        monkeypatch.setattr(index_process, "RESTART_SECONDS", 0.0)
        ask(proxy, "fourth question")
        wait_until(lambda: len(memory_texts(proxy)) == 2)
        (again,) = index_processes()
        assert again.pid != child.pid
    lost = [r.getMessage() for r in logs if "lost" in r.getMessage()]
    assert len(lost) == 1, lost  # logged once; the next report a minute later
    # sent to the dead one before the proxy saw it end, or held back from a restart
    assert "the index process exited (code -9)" in lost[0] or "restarting" in lost[0]
    assert dropped(app) == 2


def test_what_is_sent_at_shutdown_is_written_before_the_process_ends(tmp_path: Path) -> None:
    path = tmp_path / "memory.sqlite3"
    settings = dataclasses.replace(Settings(), memory=MemorySettings(sqlite_path=path))
    losses: list[int] = []

    async def main() -> list[MemoryRecord]:
        indexer = IndexProcess(settings, losses.append, lambda text: text)
        indexer.start()
        for number in range(1500):
            remember(indexer, f"question {number}", f"answer {number}")
        await indexer.aclose()  # at once: most are still waiting or on their way
        return await written_to(path)

    written = asyncio.run(main())
    assert losses == [] and len(written) == 1500
    assert index_processes() == []


def test_past_the_queue_limit_the_newest_are_lost_and_counted(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    path = tmp_path / "memory.sqlite3"
    settings_ = dataclasses.replace(Settings(), memory=MemorySettings(sqlite_path=path))
    monkeypatch.setattr(index_process, "IN_FLIGHT_LIMIT", 3)
    losses: list[int] = []

    async def main() -> list[MemoryRecord]:
        indexer = IndexProcess(settings_, losses.append, lambda text: text)
        for number in range(5):
            remember(indexer, f"question {number}", "answer")
        await indexer.aclose()
        return await written_to(path)

    written = sorted(record.text for record in asyncio.run(main()))
    assert losses == [2]
    assert written == [f"User: question {n}\nAssistant: answer" for n in range(3)]


exchanges = st.lists(
    st.tuples(
        st.sampled_from(["alice", "bob"]),
        st.sampled_from(["", "shop"]),
        st.text(max_size=300),
        st.text(max_size=300),
        st.booleans(),
    ),
    min_size=1,
    max_size=12,
)


@settings(max_examples=6, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(exchanges)
def test_the_process_writes_the_memories_the_proxy_would_make(
    tmp_path_factory: pytest.TempPathFactory, sent: list[tuple[str, str, str, str, bool]]
) -> None:
    path = tmp_path_factory.mktemp("index") / "memory.sqlite3"
    settings_ = dataclasses.replace(Settings(), memory=MemorySettings(sqlite_path=path))
    redact = Redactor.configured(settings_).text
    maker = MemoryMaker(redact)
    expected = {
        record.id: record
        for user, project, question, answer, private in sent
        if (
            record := maker.memory(
                Exchange(user, project, None, "c", "m", 1.0, question, answer, private)
            )
        )
    }

    async def main() -> list[MemoryRecord]:
        indexer = IndexProcess(settings_, lambda count: None, redact)
        for user, project, question, answer, private in sent:
            remember(indexer, question, answer, user=user, project=project, private=private)
        await indexer.aclose()
        return await written_to(path)

    written = {r.id: dataclasses.replace(r, created_at=1.0) for r in asyncio.run(main())}
    assert written == expected
