"""The SQLite file's memory index written from a process of its own (index_worker.py):
making a memory (its text redacted, its id hashed) and writing it (the row, its FTS5
entry, its terms counted) cost about three times what the plain hop does, and in the
proxy's process that work held the GIL the event loop needs. The proxy only keeps the
exchange's parts it holds anyway, as a tuple (for a request naming no session, the
answer's bytes: the process reads its message, wire/kept.py), and sends
them a quarter-second (or SEND_AT exchanges) at a time over a socket; the process makes
the memories, writes them in one transaction per batch, and answers with how many it
handled, how many it lost and the secrets it redacted (counted in this process's
metrics). Search and recall read the file here, and see each batch once it is committed
(WAL).

Nothing is lost silently: exchanges beyond IN_FLIGHT_LIMIT (sent but not answered for,
or waiting), a batch the index failed to write, and those in flight when the process
died or the proxy stopped are counted in `memory_proxy_memories_dropped` and logged
(stores/batch_writer.py's LossLog). The process is started by the first exchange, and
again (RESTART_SECONDS apart at most) after it died; at shutdown it is sent what waits,
then the end of its input, and it writes everything before it exits.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import marshal
import math
import os
import pickle
import socket
import struct
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any, NamedTuple

from memory_proxy.memory.indexing import kept_answer_text, recent_memory_texts
from memory_proxy.memory.redaction import Redaction
from memory_proxy.stores.batch_writer import QUEUE_LIMIT, SHUTDOWN_WRITE_SECONDS, LossLog
from memory_proxy.wire.answer import KeptAnswer

if TYPE_CHECKING:
    from memory_proxy.config import Settings

logger = logging.getLogger("memory_proxy.memory")

FRAME = struct.Struct(">I")  # each message's length, before it
SEND_EVERY_SECONDS = 0.25  # the longest an exchange waits before it is sent
SEND_AT = 512  # exchanges sent at once without waiting
IN_FLIGHT_LIMIT = QUEUE_LIMIT  # exchanges waiting or sent but not yet written
# Exchanges waiting or in flight past which an answer's kept bytes (wire/answer.py's
# KEPT_BYTES at most each) are read here rather than sent: a process that falls behind
# holds at most this many answers' bytes in the proxy.
KEPT_UNANSWERED = 2 * SEND_AT
RESTART_SECONDS = 5.0  # between two starts of the process
WORKER_MODULE = "memory_proxy.memory.index_worker"
_PACKAGE_ROOT = str(Path(__file__).resolve().parents[2])  # this checkout's, in the child too


def frame(payload: bytes) -> bytes:
    return FRAME.pack(len(payload)) + payload


async def read_frame(reader: asyncio.StreamReader) -> bytes | None:
    """The next message, or None at the end of the stream."""
    try:
        (size,) = FRAME.unpack(await reader.readexactly(FRAME.size))
        return await reader.readexactly(size)
    except (asyncio.IncompleteReadError, ConnectionError):
        return None


class WorkerSettings(NamedTuple):
    """What the process needs of the settings, its first message: plain values, so that it
    imports neither the config package nor what that imports (YAML, the proxy's error
    answers): each start of a process costs that much less CPU."""

    sqlite_path: Path
    log_format: str
    redaction: Redaction

    @classmethod
    def of(cls, settings: Settings) -> WorkerSettings:
        return cls(settings.memory.sqlite_path, settings.log_format, Redaction.of(settings))


class IndexProcess:
    """The ExchangeIndexer (indexing.py) of the SQLite file's index, for request memory.

    `settings` go to the process (the file, redaction, the log's format); `on_drop`
    counts lost memories, `on_redacted` each secret the process kept out; `redact` makes
    `memory_text` here, for recall (the exchanges a request carries)."""

    def __init__(
        self,
        settings: Settings,
        on_drop: Callable[[int], None],
        redact: Callable[[str], str],
        on_redacted: Callable[[str], None] = lambda kind: None,
    ) -> None:
        self._settings = WorkerSettings.of(settings)
        self._losses = LossLog("memory", logger, on_drop, plural="memories")
        self._on_redacted = on_redacted
        self.memory_text = recent_memory_texts(redact)
        self._waiting: list[tuple[Any, ...]] = []
        self._in_flight = 0  # sent, not yet answered for
        self._timer: asyncio.TimerHandle | None = None
        self._writer: asyncio.StreamWriter | None = None  # while the process runs
        self._starting: asyncio.Task[None] | None = None
        self._answers: asyncio.Task[None] | None = None
        self._child: asyncio.subprocess.Process | None = None
        self._started_at = -math.inf
        self._closing = False

    @property
    def dropped(self) -> int:
        return self._losses.dropped

    @property
    def unanswered(self) -> int:
        """Exchanges waiting or sent, not yet answered for by the process. Those sent when
        it dies count as lost, though its last batch may have been committed just before."""
        return len(self._waiting) + self._in_flight

    def remember(
        self,
        *,
        user_id: str,
        project: str,
        session_id: str | None,
        client: str,
        model: str | None,
        question: str,
        answer: str | KeptAnswer,
        private: bool = False,
    ) -> None:
        """Keep one exchange for the next batch (indexing.Exchange's fields, in order; a
        kept answer's bytes are read there, unless KEPT_UNANSWERED exchanges wait already:
        then its message is read here, as before, and only its text kept)."""
        if not isinstance(answer, str) and self.unanswered >= KEPT_UNANSWERED:
            if (text := kept_answer_text(answer)) is None:
                return  # no memory in it
            answer = text
        waiting = self._waiting
        waiting.append(
            (user_id, project, session_id, client, model, time.time(), question, answer, private)
        )
        if len(waiting) >= SEND_AT:
            self._send()
        elif self._timer is None:
            self._timer = asyncio.get_running_loop().call_later(SEND_EVERY_SECONDS, self._send)

    def start(self) -> None:
        """Nothing yet: the process starts with the first exchange to write."""

    def _send(self) -> None:
        """What waits, sent to the process (started first when it is not running)."""
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        room = IN_FLIGHT_LIMIT - self._in_flight
        if len(self._waiting) > room:  # the newest go, as a full queue refuses them
            self._losses.lose(len(self._waiting) - max(room, 0), "the write queue was full")
            del self._waiting[max(room, 0) :]
        if not self._waiting:
            return
        if self._writer is None:
            self._start_process()
            return  # sent once it runs, or lost if it cannot start
        batch, self._waiting = self._waiting, []
        self._in_flight += len(batch)
        self._writer.write(frame(marshal.dumps(batch)))

    def _start_process(self) -> None:
        if self._starting is not None:
            return
        if time.monotonic() - self._started_at < RESTART_SECONDS and not self._closing:
            self._losses.lose(len(self._waiting), "the index process is restarting")
            self._waiting = []
            return
        self._started_at = time.monotonic()
        self._starting = asyncio.ensure_future(self._run_process())

    async def _run_process(self) -> None:
        try:
            reader, writer, child = await self._spawn()
        except Exception as exc:
            self._starting = None
            self._losses.lose(len(self._waiting), f"the index process did not start: {exc}")
            self._waiting = []
            return
        self._writer, self._child = writer, child
        self._answers = asyncio.ensure_future(self._read_answers(reader, writer, child))
        self._starting = None
        self._send()

    async def _spawn(
        self,
    ) -> tuple[asyncio.StreamReader, asyncio.StreamWriter, asyncio.subprocess.Process]:
        """The process, its end of a socket pair given as a file descriptor, the settings
        its first message; `-P` and PYTHONPATH: it runs this checkout's code."""
        ours, theirs = socket.socketpair()
        path = os.pathsep.join(p for p in (_PACKAGE_ROOT, os.environ.get("PYTHONPATH")) if p)
        try:
            child = await asyncio.create_subprocess_exec(
                sys.executable,
                "-P",
                "-m",
                WORKER_MODULE,
                str(theirs.fileno()),
                pass_fds=(theirs.fileno(),),
                stdin=asyncio.subprocess.DEVNULL,
                env={**os.environ, "PYTHONPATH": path},
                # Not in the proxy's process group: a signal to the group (Ctrl-C, a
                # supervisor's SIGTERM) would end it, maybe still starting, before the
                # proxy sent it what it holds; it ends when the proxy closes the socket.
                start_new_session=True,
            )
        except BaseException:
            ours.close()
            raise
        finally:
            theirs.close()
        reader, writer = await asyncio.open_unix_connection(sock=ours)
        writer.write(frame(pickle.dumps(self._settings)))
        return reader, writer, child

    async def _read_answers(
        self,
        reader: asyncio.StreamReader,
        writer: asyncio.StreamWriter,
        child: asyncio.subprocess.Process,
    ) -> None:
        """Each batch's answer: (handled, lost, why, {secret kind: count}); then, at the
        end of the stream, the process's exit."""
        while (answer := await read_frame(reader)) is not None:
            handled, lost, reason, redacted = marshal.loads(answer)
            self._in_flight -= handled
            if lost:
                self._losses.lose(lost, reason)
            for kind, count in redacted.items():
                for _ in range(count):
                    self._on_redacted(kind)
        self._writer = None
        writer.close()
        code = await child.wait()
        if self._in_flight:
            why = "the proxy stopped before they were written"
            if not self._closing:
                why = f"the index process exited (code {code})"
            self._losses.lose(self._in_flight, why)
            self._in_flight = 0

    async def aclose(self) -> None:
        """What waits sent and written (for a few seconds at most), the process ended."""
        self._closing = True
        if self._waiting:
            self._send()
        if self._starting is not None:
            await self._starting
        answers = self._answers
        if self._writer is not None:
            self._writer.write_eof()
        if answers is not None:
            try:
                await asyncio.wait_for(asyncio.shield(answers), SHUTDOWN_WRITE_SECONDS)
            except TimeoutError:
                logger.warning("the index process did not finish writing in time: stopped")
                if self._child is not None:
                    with contextlib.suppress(ProcessLookupError):
                        self._child.kill()
                await answers  # its socket closed with it
        if self._waiting:
            self._losses.lose(len(self._waiting), "the proxy stopped before they were written")
            self._waiting = []
        self._losses.close()
